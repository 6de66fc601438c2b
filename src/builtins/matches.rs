//! `matches(value, pattern)`: a regular expression search.

use super::*;
use std::sync::Arc;

pub(super) static DEF: BuiltinDef = BuiltinDef {
    name: "matches",
    params: &[Param::req("value", "string"), Param::lit("pattern")],
    returns: "bool",
    doc: "does the regular expression match somewhere in the string; the pattern is a literal, checked at compile time",
    aliases: &["regex", "re_match", "match_regex", "regex_match"],
    in_match: true,
    jit: Jit::Predicate,
    sql: Sql::Unsupported("`matches` on fields is not supported"),
    typing,
    eval,
};

fn typing(args: &[ArgInfo<'_>]) -> Result<(Builtin, Ty), Vec<TypeFault>> {
    strings(args, &[0])?;
    let lit = literal(args, 1)?;
    match regex::Regex::new(&lit) {
        Ok(re) => Ok((Builtin::Matches(Arc::new(re)), Ty::Bool)),
        Err(e) => {
            // The regex crate's message is several lines; its last `error:`
            // line is the one that says what is wrong.
            let msg = e.to_string();
            let last = msg.lines().rev().find(|l| l.starts_with("error:")).unwrap_or("the pattern does not compile");
            Err(vec![TypeFault::InvalidRegex { index: 1, error: last.trim_start_matches("error: ").to_string() }])
        }
    }
}

fn eval(b: &Builtin, args: &[Value], _: &EvalCx<'_>) -> Result<Value, RuntimeError> {
    let Builtin::Matches(re) = b else {
        return Err(mismatch(b));
    };
    Ok(Value::Bool(match ops::str_arg(&args[0])? {
        Some(s) => re.is_match(s),
        None => false,
    }))
}
