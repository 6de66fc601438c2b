//! `starts_with(value, prefix)`: does the string begin with `prefix`.

use super::*;

pub(super) static DEF: BuiltinDef = BuiltinDef {
    name: "starts_with",
    params: &[Param::req("value", "string"), Param::req("prefix", "string")],
    returns: "bool",
    doc: "does the string begin with `prefix`; false when either is absent",
    aliases: &["startswith", "has_prefix", "hasprefix", "begins_with"],
    in_match: true,
    jit: Jit::Predicate,
    sql: Sql::Condition,
    typing,
    eval,
};

fn typing(args: &[ArgInfo<'_>]) -> Result<(Builtin, Ty), Vec<TypeFault>> {
    strings(args, &[0, 1])?;
    Ok((Builtin::StartsWith, Ty::Bool))
}

fn eval(_: &Builtin, args: &[Value], _: &EvalCx<'_>) -> Result<Value, RuntimeError> {
    pred(&args[0], &args[1], |a, b| a.starts_with(b))
}
