//! `string(value)`: the text of a value.

use super::*;

pub(super) static DEF: BuiltinDef = BuiltinDef {
    name: "string",
    params: &[Param::req("value", "any")],
    returns: "string",
    doc:
        "the value as interpolation writes it (timestamps in RFC 3339, lists and objects as JSON); absent stays absent",
    aliases: &["str", "to_string", "tostring", "format"],
    in_match: true,
    jit: Jit::No,
    sql: Sql::Unsupported("this function cannot read the row's fields"),
    typing,
    eval,
};

fn typing(args: &[ArgInfo<'_>]) -> Result<(Builtin, Ty), Vec<TypeFault>> {
    Ok((Builtin::ToString, absent_through(Ty::String, args)))
}

fn eval(_: &Builtin, args: &[Value], cx: &EvalCx<'_>) -> Result<Value, RuntimeError> {
    Ok(match &args[0] {
        Value::Absent | Value::Null => Value::Absent,
        v => Value::str(&v.to_text(Some(cx.schema))),
    })
}
