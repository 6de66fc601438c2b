//! `empty(value)`: nothing there.

use super::*;

pub(super) static DEF: BuiltinDef = BuiltinDef {
    name: "empty",
    params: &[Param::req("value", "any")],
    returns: "bool",
    doc: "true for absent, null, `\"\"`, `[]` and `{}`",
    aliases: &["is_empty", "isempty", "blank"],
    in_match: true,
    jit: Jit::Predicate,
    sql: Sql::Condition,
    typing,
    eval,
};

fn typing(_: &[ArgInfo<'_>]) -> Result<(Builtin, Ty), Vec<TypeFault>> {
    Ok((Builtin::Empty, Ty::Bool))
}

fn eval(_: &Builtin, args: &[Value], _: &EvalCx<'_>) -> Result<Value, RuntimeError> {
    Ok(Value::Bool(ops::empty(&args[0])))
}
