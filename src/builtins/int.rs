//! `int(value)`: an int from a number or a decimal string.

use super::*;

pub(super) static DEF: BuiltinDef = BuiltinDef {
    name: "int",
    params: &[Param::req("value", "int, float or string")],
    returns: "int",
    doc: "an int from an int, a float (truncated) or a decimal string; absent stays absent",
    aliases: &["to_int", "parse_int", "integer", "toint"],
    in_match: true,
    jit: Jit::No,
    sql: Sql::Unsupported("this function cannot read the row's fields"),
    typing,
    eval,
};

fn typing(args: &[ArgInfo<'_>]) -> Result<(Builtin, Ty), Vec<TypeFault>> {
    if !matches!(args[0].ty.unwrap_optional(), Ty::Int | Ty::Float | Ty::String | Ty::Any | Ty::Error) {
        return Err(wrong(0, "int, float or string"));
    }
    Ok((Builtin::ToInt, absent_through(Ty::Int, args)))
}

fn eval(_: &Builtin, args: &[Value], _: &EvalCx<'_>) -> Result<Value, RuntimeError> {
    ops::to_int(&args[0])
}
