//! `upper(value)`: the string in upper case (Unicode).

use super::*;

pub(super) static DEF: BuiltinDef = BuiltinDef {
    name: "upper",
    params: &[Param::req("value", "string")],
    returns: "string",
    doc: "the string in upper case (Unicode); absent stays absent",
    aliases: &["uppercase", "to_upper", "toupper", "upcase"],
    in_match: true,
    jit: Jit::CompareWithLiteral,
    // SQLite's `lower`/`upper` are ASCII-only, so they would disagree with
    // the interpreter on other letters.
    sql: Sql::FieldTerm,
    typing,
    eval,
};

fn typing(args: &[ArgInfo<'_>]) -> Result<(Builtin, Ty), Vec<TypeFault>> {
    strings(args, &[0])?;
    Ok((Builtin::Upper, absent_through(Ty::String, args)))
}

fn eval(_: &Builtin, args: &[Value], _: &EvalCx<'_>) -> Result<Value, RuntimeError> {
    map_str(&args[0], |s| s.to_uppercase())
}
