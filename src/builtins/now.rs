//! `now()`: the instant of the event's processing.

use super::*;

pub(super) static DEF: BuiltinDef = BuiltinDef {
    name: "now",
    params: &[],
    returns: "timestamp",
    doc: "the current time, one instant per event; not allowed in `match`",
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
    // Zero means no instant was fixed for the event: read the clock.
    Ok(Value::Timestamp(if cx.now == 0 { crate::value::now_nanos() } else { cx.now }))
}
