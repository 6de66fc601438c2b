//! `len(value)`: the length of a string (in characters), a list or an object.

use super::*;

pub(super) static DEF: BuiltinDef = BuiltinDef {
    name: "len",
    params: &[Param::req("value", "string or list")],
    returns: "int",
    doc: "characters in a string, items in a list (keys in an `any` object); absent stays absent",
    aliases: &["length", "lenght", "size", "count", "strlen"],
    in_match: true,
    jit: Jit::CompareWithLiteral,
    sql: Sql::FieldTerm,
    typing,
    eval,
};

fn typing(args: &[ArgInfo<'_>]) -> Result<(Builtin, Ty), Vec<TypeFault>> {
    if !matches!(args[0].ty.unwrap_optional(), Ty::String | Ty::List(_) | Ty::Any | Ty::Error) {
        return Err(wrong(0, "string or list"));
    }
    Ok((Builtin::Len, absent_through(Ty::Int, args)))
}

fn eval(_: &Builtin, args: &[Value], _: &EvalCx<'_>) -> Result<Value, RuntimeError> {
    ops::len(&args[0])
}
