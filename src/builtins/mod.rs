//! The registry of built-in functions and actions: one entry per name.
//!
//! Each built-in function lives in its own file here and is one
//! [`BuiltinDef`]: its name, parameters, typing rule, evaluation (on the
//! value operations of `interp::ops`), whether the JIT and store queries can
//! run it, and a doc line. Each action (`notify`, `send_email`, `log`) is
//! one [`ActionDef`] in [`actions`]. The checker types calls, builds its
//! help texts and "did you mean" lists from here, the interpreter evaluates
//! calls through [`BuiltinDef::eval`], the JIT and the filter checker read
//! the eligibility data, and `docs/language.md`'s tables are generated from
//! here (`tests/builtins_doc.rs` fails when they are out of date).
//!
//! The typing rules are pure (no IO): the checker calls them. Evaluation
//! runs only in the interpreter.

pub mod actions;
mod contains;
mod empty;
mod ends_with;
mod int;
mod ip_in;
mod len;
mod lower;
mod matches;
mod now;
mod starts_with;
mod string;
mod trim;
mod upper;

pub use actions::{ActionDef, ACTIONS};

use crate::diag::RuntimeError;
use crate::interp::ops;
use crate::ir::Builtin;
use crate::schema::Schema;
use crate::types::Ty;
use crate::value::Value;

/// A parameter of a built-in function or an action.
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub required: bool,
    /// The accepted type, as the docs write it.
    pub ty: &'static str,
    /// The value used when the argument is left out (actions only).
    pub default: Option<&'static str>,
    /// The allowed string literals, when the parameter is an enumeration.
    pub choices: &'static [&'static str],
    /// Must be a string literal, compiled into the call at check time (a
    /// `matches` pattern); the call keeps only the arguments before it.
    pub literal: bool,
}

impl Param {
    pub const fn req(name: &'static str, ty: &'static str) -> Param {
        Param { name, required: true, ty, default: None, choices: &[], literal: false }
    }

    pub const fn opt(name: &'static str, ty: &'static str) -> Param {
        Param { name, required: false, ty, default: None, choices: &[], literal: false }
    }

    /// An optional parameter taking one of `choices` (a string literal),
    /// `default` when left out.
    pub const fn choice(name: &'static str, default: &'static str, choices: &'static [&'static str]) -> Param {
        Param { name, required: false, ty: "string literal", default: Some(default), choices, literal: false }
    }

    /// A required string literal compiled at check time.
    pub const fn lit(name: &'static str) -> Param {
        Param { name, required: true, ty: "string literal", default: None, choices: &[], literal: true }
    }
}

/// How the JIT can compile a call in a `match` clause (on an event path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jit {
    /// Not compiled: a clause using it runs in the interpreter.
    No,
    /// The call is itself the condition, with a literal second argument
    /// (if any): `starts_with(event.x, "a")`.
    Predicate,
    /// The call compared with a literal: `len(event.x) > 3`,
    /// `lower(event.x) == "a"`.
    CompareWithLiteral,
}

/// How a store query filter can use a call on the filtered row's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sql {
    /// The call is a condition of the filter: `starts_with(name, "a")`.
    Condition,
    /// The call on a field is a term compared with something: `len(tags) > 2`.
    FieldTerm,
    /// The call cannot read the row; the text says why. (It may still be
    /// computed outside the query and bound as a parameter.)
    Unsupported(&'static str),
}

/// What the typing rule knows of one argument.
#[derive(Debug, Clone, Copy)]
pub struct ArgInfo<'a> {
    pub ty: &'a Ty,
    /// The argument's value when it is a literal (after const inlining).
    pub lit: Option<&'a Value>,
}

/// What the checker should print as the expected type of an argument.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    Text(&'static str),
    Ty(Ty),
}

/// Why a call does not type; the checker turns each into its diagnostic.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeFault {
    /// Argument `index` has the wrong type.
    Arg {
        index: usize,
        expected: Expected,
    },
    /// Argument `index` must be a string literal.
    NotALiteral {
        index: usize,
    },
    InvalidRegex {
        index: usize,
        error: String,
    },
    InvalidCidr {
        index: usize,
        found: String,
    },
}

/// A typing rule: the IR function and the result type, or the faults.
pub type Typing = fn(&[ArgInfo<'_>]) -> Result<(Builtin, Ty), Vec<TypeFault>>;

/// What evaluation may consult besides the arguments.
pub struct EvalCx<'a> {
    pub schema: &'a Schema,
    /// The instant of `now()` for this event (nanoseconds since the epoch);
    /// zero reads the clock.
    pub now: i128,
}

/// An evaluation: argument values (in parameter order; literal-only
/// parameters such as `matches`'s pattern are compiled into the `Builtin`).
pub type Eval = fn(&Builtin, &[Value], &EvalCx<'_>) -> Result<Value, RuntimeError>;

/// One built-in function.
pub struct BuiltinDef {
    pub name: &'static str,
    pub params: &'static [Param],
    /// The result type, as the docs write it.
    pub returns: &'static str,
    /// One line for the docs table.
    pub doc: &'static str,
    /// Names other languages use for it, for "did you mean": edit distance
    /// alone does not get from `length` to `len`.
    pub aliases: &'static [&'static str],
    /// Allowed in a `match` clause (false for `now`: a match is pure).
    pub in_match: bool,
    pub jit: Jit,
    pub sql: Sql,
    pub typing: Typing,
    pub eval: Eval,
}

impl std::fmt::Debug for BuiltinDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinDef").field("name", &self.name).finish_non_exhaustive()
    }
}

/// Every built-in function, in the order the docs list them.
pub static BUILTINS: [&BuiltinDef; 13] = [
    &len::DEF,
    &empty::DEF,
    &lower::DEF,
    &upper::DEF,
    &trim::DEF,
    &starts_with::DEF,
    &ends_with::DEF,
    &contains::DEF,
    &matches::DEF,
    &ip_in::DEF,
    &now::DEF,
    &string::DEF,
    &int::DEF,
];

/// The built-in function called `name`.
pub fn function(name: &str) -> Option<&'static BuiltinDef> {
    BUILTINS.iter().copied().find(|d| d.name == name)
}

/// The registry entry of an IR call.
pub fn def(b: &Builtin) -> &'static BuiltinDef {
    match b {
        Builtin::Len => &len::DEF,
        Builtin::Empty => &empty::DEF,
        Builtin::Lower => &lower::DEF,
        Builtin::Upper => &upper::DEF,
        Builtin::Trim => &trim::DEF,
        Builtin::StartsWith => &starts_with::DEF,
        Builtin::EndsWith => &ends_with::DEF,
        Builtin::Contains => &contains::DEF,
        Builtin::Matches(_) => &matches::DEF,
        Builtin::IpIn(_) => &ip_in::DEF,
        Builtin::Now => &now::DEF,
        Builtin::ToString => &string::DEF,
        Builtin::ToInt => &int::DEF,
    }
}

/// The names of every built-in function.
pub fn function_names() -> impl Iterator<Item = &'static str> + Clone {
    BUILTINS.iter().map(|d| d.name)
}

/// A built-in function another language's name stands for (`length` → `len`).
pub fn function_alias(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    BUILTINS.iter().find(|d| d.aliases.contains(&lower.as_str())).map(|d| d.name)
}

/// `a`, `b` and `c`, each in backticks.
pub fn backticked_list(names: impl Iterator<Item = &'static str>) -> String {
    let names: Vec<String> = names.map(|n| format!("`{n}`")).collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// `len(value)`: how a call is written in the docs.
pub fn signature(name: &str, params: &[Param]) -> String {
    let ps: Vec<String> = params
        .iter()
        .map(|p| match (p.required, p.default) {
            (true, _) => p.name.to_string(),
            (false, Some(d)) => format!("{}: \"{d}\"", p.name),
            (false, None) => format!("{}: ...", p.name),
        })
        .collect();
    format!("{name}({})", ps.join(", "))
}

/// The markdown table of built-in functions in `docs/language.md`.
pub fn functions_table() -> String {
    let mut out = String::from("| function | parameters | result | meaning |\n|---|---|---|---|\n");
    for d in BUILTINS.iter() {
        let params: Vec<String> = d.params.iter().map(|p| format!("`{}`: {}", p.name, p.ty)).collect();
        let params = if params.is_empty() { "—".to_string() } else { params.join(", ") };
        out.push_str(&format!("| `{}` | {params} | `{}` | {} |\n", signature(d.name, d.params), d.returns, d.doc));
    }
    out
}

/// The markdown table of actions in `docs/language.md`.
pub fn actions_table() -> String {
    let mut out = String::from("| action | parameter | type | default | meaning |\n|---|---|---|---|---|\n");
    for a in ACTIONS.iter() {
        for (i, p) in a.params.iter().enumerate() {
            let (name, doc) = if i == 0 { (format!("`{}`", a.name), a.doc) } else { (String::new(), "") };
            let ty = if p.choices.is_empty() {
                p.ty.to_string()
            } else {
                p.choices.iter().map(|c| format!("`\"{c}\"`")).collect::<Vec<_>>().join(" \\| ")
            };
            let default = match (p.required, p.default) {
                (true, _) => "required".to_string(),
                (false, Some(d)) => format!("`\"{d}\"`"),
                (false, None) => "none".to_string(),
            };
            out.push_str(&format!("| {name} | `{}` | {ty} | {default} | {doc} |\n", p.name));
        }
    }
    out
}

// Shared pieces of the typing rules.

/// A string, or a value whose kind is only known at run time.
pub(crate) fn stringish(t: &Ty) -> bool {
    matches!(t.unwrap_optional(), Ty::String | Ty::Any | Ty::Error | Ty::Never)
}

/// `t`, optional when the first argument may be absent (absent in, absent out).
fn absent_through(t: Ty, args: &[ArgInfo<'_>]) -> Ty {
    if args.first().is_some_and(|a| a.ty.admits_absent()) {
        t.optional()
    } else {
        t
    }
}

fn wrong(index: usize, expected: &'static str) -> Vec<TypeFault> {
    vec![TypeFault::Arg { index, expected: Expected::Text(expected) }]
}

/// Every argument in `indexes` must be a string.
fn strings(args: &[ArgInfo<'_>], indexes: &[usize]) -> Result<(), Vec<TypeFault>> {
    let faults: Vec<TypeFault> = indexes
        .iter()
        .filter(|&&i| !stringish(args[i].ty))
        .map(|&i| TypeFault::Arg { index: i, expected: Expected::Text("string") })
        .collect();
    if faults.is_empty() {
        Ok(())
    } else {
        Err(faults)
    }
}

/// The string literal of argument `index`.
fn literal(args: &[ArgInfo<'_>], index: usize) -> Result<String, Vec<TypeFault>> {
    match args[index].lit {
        Some(Value::Str(s)) => Ok(s.to_string()),
        _ => Err(vec![TypeFault::NotALiteral { index }]),
    }
}

/// A string-to-string function: absent (or null) in, absent out.
fn map_str(v: &Value, f: impl Fn(&str) -> String) -> Result<Value, RuntimeError> {
    Ok(match ops::str_arg(v)? {
        Some(s) => Value::str(&f(s)),
        None => Value::Absent,
    })
}

/// A two-string predicate: false when either is absent or null.
fn pred(a: &Value, b: &Value, f: impl Fn(&str, &str) -> bool) -> Result<Value, RuntimeError> {
    Ok(Value::Bool(match (ops::str_arg(a)?, ops::str_arg(b)?) {
        (Some(a), Some(b)) => f(a, b),
        _ => false,
    }))
}

/// An entry was handed an IR call of another entry: a bug, reported as an
/// error rather than a panic.
fn mismatch(b: &Builtin) -> RuntimeError {
    RuntimeError::new(
        crate::diag::Code::StoreFailure,
        format!("internal error: `{}` was evaluated by another function's entry", def(b).name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_entries_agree_with_the_ir() {
        let mut seen = std::collections::BTreeSet::new();
        for d in BUILTINS.iter() {
            assert!(seen.insert(d.name), "`{}` is registered twice", d.name);
            assert!(function(d.name).is_some_and(|f| std::ptr::eq(f, *d)));
            assert!(!d.doc.is_empty() && !d.doc.ends_with('.'), "`{}`: one doc line, no final period", d.name);
            for a in d.aliases {
                assert!(function(a).is_none(), "alias `{a}` of `{}` is itself a function", d.name);
                assert_eq!(a.to_ascii_lowercase(), *a, "aliases are matched lower-case");
            }
        }
        for a in ACTIONS.iter() {
            assert!(function(a.name).is_none(), "`{}` is both an action and a function", a.name);
        }
    }

    #[test]
    fn typing_gives_the_entry_it_was_asked_for() {
        // Arguments of the most permissive type, string literals where a
        // literal is needed: every rule must type them and name itself.
        let any = Ty::Any;
        let s = Ty::String;
        let re = Value::str("^a");
        let cidr = Value::str("10.0.0.0/8");
        for d in BUILTINS.iter() {
            let args: Vec<ArgInfo<'_>> = d
                .params
                .iter()
                .map(|p| match (d.name, p.name) {
                    ("matches", "pattern") => ArgInfo { ty: &s, lit: Some(&re) },
                    ("ip_in", "range") => ArgInfo { ty: &s, lit: Some(&cidr) },
                    _ => ArgInfo { ty: &any, lit: None },
                })
                .collect();
            let (b, _) = (d.typing)(&args).unwrap_or_else(|f| panic!("`{}` does not type: {f:?}", d.name));
            assert!(std::ptr::eq(def(&b), *d), "`{}` typed as `{}`", d.name, def(&b).name);
        }
    }

    #[test]
    fn literal_faults_name_the_argument() {
        let s = Ty::String;
        let bad = Value::str("(");
        let args = [ArgInfo { ty: &s, lit: None }, ArgInfo { ty: &s, lit: Some(&bad) }];
        let faults = (matches::DEF.typing)(&args).unwrap_err();
        assert!(matches!(&faults[..], [TypeFault::InvalidRegex { index: 1, .. }]), "{faults:?}");
        let args = [ArgInfo { ty: &s, lit: None }, ArgInfo { ty: &s, lit: None }];
        assert_eq!((ip_in::DEF.typing)(&args).unwrap_err(), vec![TypeFault::NotALiteral { index: 1 }]);
        let int = Ty::Int;
        let args = [ArgInfo { ty: &int, lit: None }, ArgInfo { ty: &int, lit: None }];
        assert_eq!((starts_with::DEF.typing)(&args).unwrap_err().len(), 2, "both arguments are reported");
    }

    #[test]
    fn aliases_find_their_function() {
        assert_eq!(function_alias("Length"), Some("len"));
        assert_eq!(function_alias("regex"), Some("matches"));
        assert_eq!(function_alias("no_such_thing"), None);
        assert_eq!(backticked_list(["a", "b", "c"].into_iter()), "`a`, `b` and `c`");
    }
}
