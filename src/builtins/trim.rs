//! `trim(value)`: the string without leading and trailing whitespace.

use super::*;

pub(super) static DEF: BuiltinDef = BuiltinDef {
    name: "trim",
    params: &[Param::req("value", "string")],
    returns: "string",
    doc: "the string without leading and trailing whitespace; absent stays absent",
    aliases: &["strip", "chomp"],
    in_match: true,
    jit: Jit::No,
    // SQLite's `lower`/`upper` are ASCII-only, so they would disagree with
    // the interpreter on other letters.
    sql: Sql::FieldTerm,
    typing,
    eval,
};

fn typing(args: &[ArgInfo<'_>]) -> Result<(Builtin, Ty), Vec<TypeFault>> {
    strings(args, &[0])?;
    Ok((Builtin::Trim, absent_through(Ty::String, args)))
}

fn eval(_: &Builtin, args: &[Value], _: &EvalCx<'_>) -> Result<Value, RuntimeError> {
    map_str(&args[0], |s| s.trim().to_string())
}
