//! `ends_with(value, suffix)`: does the string end with `suffix`.

use super::*;

pub(super) static DEF: BuiltinDef = BuiltinDef {
    name: "ends_with",
    params: &[Param::req("value", "string"), Param::req("suffix", "string")],
    returns: "bool",
    doc: "does the string end with `suffix`; false when either is absent",
    aliases: &["endswith", "has_suffix", "hassuffix"],
    in_match: true,
    jit: Jit::Predicate,
    sql: Sql::Condition,
    typing,
    eval,
};

fn typing(args: &[ArgInfo<'_>]) -> Result<(Builtin, Ty), Vec<TypeFault>> {
    strings(args, &[0, 1])?;
    Ok((Builtin::EndsWith, Ty::Bool))
}

fn eval(_: &Builtin, args: &[Value], _: &EvalCx<'_>) -> Result<Value, RuntimeError> {
    pred(&args[0], &args[1], |a, b| a.ends_with(b))
}
