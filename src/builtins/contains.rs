//! `contains(value, part)`: a substring, or an item of a list.

use super::*;

pub(super) static DEF: BuiltinDef = BuiltinDef {
    name: "contains",
    params: &[Param::req("value", "string or list"), Param::req("part", "string or item")],
    returns: "bool",
    doc: "is `part` a substring of the string, or an item of the list",
    aliases: &["includes", "has", "find"],
    in_match: true,
    // Only on a string (the JIT reads one slot); a list falls back to the
    // interpreter.
    jit: Jit::Predicate,
    sql: Sql::Condition,
    typing,
    eval,
};

fn typing(args: &[ArgInfo<'_>]) -> Result<(Builtin, Ty), Vec<TypeFault>> {
    match args[0].ty.unwrap_optional() {
        Ty::String => strings(args, &[1])?,
        Ty::List(elem) => {
            if !crate::check::comparable(elem.unwrap_optional(), args[1].ty.unwrap_optional()) {
                return Err(vec![TypeFault::Arg { index: 1, expected: Expected::Ty((**elem).clone()) }]);
            }
        }
        Ty::Any | Ty::Error => {}
        _ => return Err(wrong(0, "string or list")),
    }
    Ok((Builtin::Contains, Ty::Bool))
}

fn eval(_: &Builtin, args: &[Value], _: &EvalCx<'_>) -> Result<Value, RuntimeError> {
    match &args[0] {
        Value::List(_) => Ok(Value::Bool(ops::contains(&args[0], &args[1]))),
        _ => pred(&args[0], &args[1], |a, b| a.contains(b)),
    }
}
