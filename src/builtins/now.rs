//! `now()`: the instant of the event's processing.

use super::*;

pub(super) static DEF: BuiltinDef = BuiltinDef {
    name: "now",
    params: &[],
    returns: "timestamp",
    doc: "the current time, one instant per event (pinned for a whole run by `run --now`); not allowed in `match`",
    aliases: &["time", "timestamp", "current_time"],
    // A `match` is pure: the JIT may evaluate it at any time, in any order.
    in_match: false,
    jit: Jit::No,
    sql: Sql::Unsupported("this function cannot read the row's fields"),
    typing,
    eval,
};

fn typing(_: &[ArgInfo<'_>]) -> Result<(Builtin, Ty), Vec<TypeFault>> {
    Ok((Builtin::Now, Ty::Timestamp))
}

fn eval(_: &Builtin, _: &[Value], cx: &EvalCx<'_>) -> Result<Value, RuntimeError> {
    // The caller fixes the instant (the engine: the clock once per event, or
    // `--now`); no value of it means "read the clock", so `--now` may pin
    // any timestamp, the epoch included.
    Ok(Value::Timestamp(cx.now))
}
