//! The checker's problems as plain data, and the one place that turns them
//! into prose ([`CheckError::to_diagnostic`]). Types are carried already
//! rendered (`found: "string?"`) so the data needs no schema to print.

use crate::builtins;
use crate::diag::{Code, Diagnostic};
use crate::ir::{HttpMethod, LogLevel, Severity};
use crate::span::Span;

/// `"a", "b" or "c"`: the literals of an enumerated parameter.
fn quoted_choices(choices: &[&str]) -> String {
    let quoted: Vec<String> = choices.iter().map(|c| format!("\"{c}\"")).collect();
    match quoted.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// "`a`", "`a` and `b`", "`a`, `b` and `c`"
fn list_names(names: &[String]) -> String {
    match names {
        [] => "no arguments".to_string(),
        [one] => format!("`{one}`"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(|n| format!("`{n}`")).collect();
            format!("{} and `{last}`", init.join(", "))
        }
    }
}

/// "a `string`", "an `int`": the article for a rendered type.
fn a(ty: &str) -> String {
    let article = if ty.starts_with(['i', 'a', 'e', 'o']) { "an" } else { "a" };
    format!("{article} `{ty}`")
}

fn did_you_mean(s: &Option<String>) -> Option<String> {
    s.as_ref().map(|s| format!("did you mean `{s}`?"))
}

#[derive(Debug, Clone)]
pub enum CheckError {
    // names
    UnknownEventType {
        span: Span,
        name: String,
        suggestion: Option<String>,
    },
    UnknownField {
        span: Span,
        field: String,
        owner: String,
        suggestion: Option<String>,
    },
    /// E0601: `window`/`throttle` in a schema without `time`.
    NoEventTime {
        span: Span,
        clause: &'static str,
    },
    /// E0603: a `by` key or `distinct` value of a record or list type.
    DistinctNotComparable {
        span: Span,
        found: String,
        what: &'static str,
    },
    /// E0604: `window 0m`, `throttle 0s`.
    ZeroDuration {
        span: Span,
        clause: &'static str,
    },
    /// E0606: `after login as uid` where `uid` is already bound.
    AfterNameClash {
        span: Span,
        name: String,
        first: Span,
    },
    /// E0605: `window.count` before (or without) a `window` clause;
    /// `window.foo`. `bound` lists what is bound at this point.
    StateNameUnbound {
        span: Span,
        name: String,
        clause: &'static str,
        known: bool,
    },
    UnknownName {
        span: Span,
        name: String,
        suggestion: Option<String>,
        hint: Option<String>,
    },
    UnknownEntity {
        span: Span,
        name: String,
        suggestion: Option<String>,
    },
    UnknownFunction {
        span: Span,
        name: String,
        suggestion: Option<String>,
    },
    UnknownStatement {
        span: Span,
        name: String,
        suggestion: Option<String>,
        is_function: bool,
    },
    DuplicateRule {
        span: Span,
        name: String,
        first: Span,
    },
    DuplicateConst {
        span: Span,
        name: String,
        first: Span,
    },
    DuplicateBinding {
        span: Span,
        name: String,
        first: Span,
    },
    // types
    TypeMismatch {
        span: Span,
        expected: String,
        found: String,
        context: String,
    },
    FieldTypeConflict {
        span: Span,
        field: String,
        a: (String, String),
        b: (String, String),
    },
    OptionalValue {
        span: Span,
        found: String,
        needed: String,
        help: String,
    },
    Incomparable {
        span: Span,
        op: &'static str,
        lhs: String,
        rhs: String,
    },
    /// A `match` pattern literal whose type the field can never have.
    PatternType {
        span: Span,
        field_span: Span,
        field: String,
        field_ty: String,
        pattern_ty: String,
    },
    BadArithmetic {
        span: Span,
        op: &'static str,
        lhs: String,
        rhs: String,
    },
    /// E0213: an operator on a timestamp or a duration it does not take.
    BadTimeArithmetic {
        span: Span,
        op: &'static str,
        lhs: String,
        rhs: String,
        help: String,
    },
    /// E0214: a duration compared with a number; `number` is an int
    /// literal's text (empty for anything else).
    DurationNumber {
        span: Span,
        op: &'static str,
        number: String,
    },
    NotBoolean {
        span: Span,
        op: &'static str,
        found: String,
    },
    BadIn {
        span: Span,
        elem: String,
        container: String,
    },
    NoFields {
        span: Span,
        field: String,
        ty: String,
    },
    BadIndex {
        span: Span,
        ty: String,
        index: String,
    },
    ConditionNotBool {
        span: Span,
        clause: &'static str,
        found: String,
    },
    MixedList {
        span: Span,
        first: String,
        found: String,
        first_span: Span,
    },
    NotOrderable {
        span: Span,
        op: &'static str,
        ty: String,
    },
    BadLookupKey {
        span: Span,
        entity: String,
        key_ty: String,
        found: String,
    },
    // clause rules and purity
    /// `after`: the pure part is an `after` clause's, not the `match`.
    QueryInMatch {
        span: Span,
        after: bool,
    },
    NowInMatch {
        span: Span,
        after: bool,
    },
    ActionInExpression {
        span: Span,
        name: String,
        in_match: bool,
    },
    ClauseOrder {
        span: Span,
        clause: &'static str,
        after: &'static str,
        after_span: Span,
    },
    MissingMatch {
        span: Span,
        rule: String,
    },
    DuplicateMatch {
        span: Span,
        first: Span,
    },
    PatternOnAny {
        span: Span,
    },
    ConstNotLiteral {
        span: Span,
        name: String,
    },
    TestUnknownRule {
        span: Span,
        name: String,
        suggestion: Option<String>,
    },
    TestNotLiteral {
        span: Span,
        what: &'static str,
    },
    TestNotRuntimeCode {
        span: Span,
        found: String,
    },
    UnsupportedFilter {
        span: Span,
        reason: &'static str,
    },
    EntityAsValue {
        span: Span,
        name: String,
    },
    // statements
    EventReadOnly {
        span: Span,
    },
    NotAnEntityBinding {
        span: Span,
        name: String,
        found: String,
    },
    SetTypeMismatch {
        span: Span,
        place: String,
        expected: String,
        found: String,
    },
    AppendNotList {
        span: Span,
        place: String,
        found: String,
    },
    RemoveRequired {
        span: Span,
        place: String,
    },
    ForNotList {
        span: Span,
        found: String,
    },
    UnknownArgument {
        span: Span,
        func: String,
        name: String,
        suggestion: Option<String>,
        params: Vec<String>,
    },
    MissingArgument {
        span: Span,
        func: String,
        name: String,
    },
    DuplicateArgument {
        span: Span,
        name: String,
        first: Span,
    },
    ArgumentType {
        span: Span,
        func: String,
        name: String,
        expected: String,
        found: String,
    },
    InvalidSeverity {
        span: Span,
        found: String,
        suggestion: Option<String>,
    },
    InvalidLevel {
        span: Span,
        found: String,
        suggestion: Option<String>,
    },
    InvalidMethod {
        span: Span,
        found: String,
        suggestion: Option<String>,
    },
    WebhookHeaders {
        span: Span,
        found: String,
    },
    NoRecipientEntity {
        span: Span,
    },
    BadRecipients {
        span: Span,
        entity: String,
        key_ty: String,
        found: String,
    },
    TooManyArguments {
        span: Span,
        func: String,
        max: usize,
    },
    PositionalAfterNamed {
        span: Span,
        named: Span,
    },
    SetKey {
        span: Span,
        entity: String,
        key: String,
    },
    SetManyToMany {
        span: Span,
        stmt: &'static str,
        field: String,
        /// The binding written through (`group`), for the help's example.
        root: Option<String>,
    },
    // literals
    InvalidRegex {
        span: Span,
        error: String,
    },
    InvalidCidr {
        span: Span,
        found: String,
    },
    NotALiteral {
        span: Span,
        func: &'static str,
        what: &'static str,
    },
    InvalidUuid {
        span: Span,
        found: String,
    },
    InvalidTimestamp {
        span: Span,
        found: String,
    },
    // warnings
    FilterShadows {
        span: Span,
        name: String,
        entity: String,
        outer: Span,
    },
    UnusedBinding {
        span: Span,
        name: String,
    },
    GuardLetNotOptional {
        span: Span,
        found: String,
    },
    NullCompareNeverAbsent {
        span: Span,
        ty: String,
        always: bool,
    },
    DuplicateMatchType {
        span: Span,
        name: String,
        first: Span,
    },
    // upsert, delete, add, remove … from
    LinkNotManyToMany {
        span: Span,
        stmt: &'static str,
        place: String,
        found: String,
        is_list: bool,
    },
    BadLinkElement {
        span: Span,
        stmt: &'static str,
        place: String,
        entity: String,
        key_ty: String,
        found: String,
    },
    BadRowKey {
        span: Span,
        stmt: &'static str,
        entity: String,
        key_ty: String,
        found: String,
    },
    UpsertKeyField {
        span: Span,
        entity: String,
        key: String,
    },
    UpsertDuplicateField {
        span: Span,
        field: String,
        first: Span,
    },
    UpsertMissingRequired {
        span: Span,
        entity: String,
        missing: Vec<String>,
    },
    WriteAfterDelete {
        span: Span,
        name: String,
        deleted: Span,
    },
    DuplicateObjectKey {
        span: Span,
        key: String,
        first: Span,
    },
    ObjectKeyInterpolated {
        span: Span,
    },
    CoalesceMismatch {
        span: Span,
        lhs: String,
        rhs: String,
        rhs_span: Span,
    },
    CoalesceNeverAbsent {
        span: Span,
        ty: String,
        op: Span,
    },
}

impl CheckError {
    /// An error rather than a warning.
    pub fn is_error(&self) -> bool {
        self.to_diagnostic().is_error()
    }

    pub fn to_diagnostic(&self) -> Diagnostic {
        use CheckError::*;
        match self {
            UnknownEventType { span, name, suggestion } => Diagnostic::new(Code::UnknownEventType, *span, format!("unknown event type `{name}`"))
                .with_label("not declared in the schema")
                .with_help(did_you_mean(suggestion).unwrap_or_else(|| "declare it with `event NAME { ... }` or match one of the schema's event types".into())),
            UnknownField { span, field, owner, suggestion } => Diagnostic::new(Code::UnknownField, *span, format!("{owner} has no field `{field}`"))
                .with_label("unknown field")
                .with_help(did_you_mean(suggestion).unwrap_or_else(|| "declare the field in the schema, or reach it through an `any` field".into())),
            NoEventTime { span, clause } => Diagnostic::new(Code::NoEventTime, *span, format!("`{clause}` needs event time, but the schema has no `time` item"))
                .with_label("uses event time")
                .with_help("declare which event field is the event's time, e.g. `time created` (a `timestamp` field of `event *`)"),
            DistinctNotComparable { span, found, what } => Diagnostic::new(Code::DistinctNotComparable, *span, format!("{what} cannot be a value of type `{found}`"))
                .with_label("a record or a list, not a single value")
                .with_help("use a scalar field inside it (a string, number, uuid, timestamp, bool or entity)"),
            AfterNameClash { span, name, first } => Diagnostic::new(Code::AfterNameClash, *span, format!("`{name}` is already bound in this rule"))
                .with_label("the earlier event would hide this binding")
                .with_secondary(*first, "first bound here")
                .with_help("pick another name for the earlier event, e.g. `as prev`"),
            ZeroDuration { span, clause } => Diagnostic::new(Code::ZeroDuration, *span, format!("a `{clause}` of zero length"))
                .with_label("no event time is inside a zero-length interval")
                .with_help("give a positive duration such as `10m`"),
            StateNameUnbound { span, name, clause, known } => {
                let help = if *known {
                    format!("`{name}` is bound after a `{clause}` clause: move this use below one (or add one)")
                } else if *clause == "window" {
                    "a `window` clause binds `window.count`, `window.distinct`, `window.first` and `window.last`".to_string()
                } else {
                    "a `throttle` clause binds `throttle.suppressed`".to_string()
                };
                Diagnostic::new(Code::StateNameUnbound, *span, format!("`{name}` is not bound here"))
                    .with_label(if *known { "no earlier clause binds it" } else { "no clause binds this name" })
                    .with_help(help)
            }
            UnknownName { span, name, suggestion, hint } => Diagnostic::new(Code::UnknownName, *span, format!("cannot find `{name}` in this scope"))
                .with_label("not a binding, a const or `event`")
                .with_help(did_you_mean(suggestion).or_else(|| hint.clone()).unwrap_or_else(|| format!("bind `{name}` first (with `let`, `guard let` or a field pattern), or declare `const {name} = ...`"))),
            UnknownEntity { span, name, suggestion } => Diagnostic::new(Code::UnknownEntity, *span, format!("unknown entity `{name}`"))
                .with_label("not an entity of the schema")
                .with_help(did_you_mean(suggestion).unwrap_or_else(|| "queries read entities declared with `entity`".into())),
            UnknownFunction { span, name, suggestion } => Diagnostic::new(Code::UnknownFunction, *span, format!("unknown function `{name}`"))
                .with_label("not a built-in function")
                .with_help(did_you_mean(suggestion).unwrap_or_else(|| format!("the built-in functions are {}", builtins::backticked_list(builtins::function_names())))),
            UnknownStatement { span, name, suggestion, is_function } => {
                let d = Diagnostic::new(Code::UnknownStatement, *span, format!("`{name}` is not an action"));
                if *is_function {
                    d.with_label("a function, not an action").with_help(format!("an action statement is {}, `set`, `append`, `remove`, `for` or `if`; a function's result would be discarded", builtins::actions::action_names().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")))
                } else {
                    d.with_label("unknown action").with_help(did_you_mean(suggestion).unwrap_or_else(|| format!("actions are {}", builtins::backticked_list(builtins::actions::action_names()))))
                }
            }
            DuplicateRule { span, name, first } => Diagnostic::new(Code::DuplicateRule, *span, format!("rule `{name}` is defined twice"))
                .with_label("defined again here").with_secondary(*first, "first defined here")
                .with_help("rule names identify firings in the store: give each rule its own name"),
            DuplicateConst { span, name, first } => Diagnostic::new(Code::DuplicateConst, *span, format!("const `{name}` is defined twice"))
                .with_label("defined again here").with_secondary(*first, "first defined here")
                .with_help("remove one definition or rename it"),
            DuplicateBinding { span, name, first } => Diagnostic::new(Code::DuplicateBinding, *span, format!("`{name}` is already bound in this rule"))
                .with_label("bound again here").with_secondary(*first, "first bound here")
                .with_help("choose a different name"),
            TypeMismatch { span, expected, found, context } => Diagnostic::new(Code::TypeMismatch, *span, format!("expected `{expected}`, found `{found}`{context}"))
                .with_label(format!("this is `{found}`"))
                .with_help(format!("give a value of type `{expected}` here")),
            FieldTypeConflict { span, field, a, b } => Diagnostic::new(Code::TypeMismatch, *span, format!("field `{field}` is `{}` in event `{}` but `{}` in event `{}`", a.1, a.0, b.1, b.0))
                .with_label("read here")
                .with_help("match the event types in separate rules, or read the field where it has one type"),
            OptionalValue { span, found, needed, help } => Diagnostic::new(Code::OptionalValue, *span, format!("`{found}` may be absent, but `{needed}` is required here"))
                .with_label("may be absent")
                .with_help(help.clone()),
            Incomparable { span, op, lhs, rhs } => Diagnostic::new(Code::IncomparableTypes, *span, format!("cannot compare `{lhs}` with `{rhs}`"))
                .with_label(format!("`{op}` between `{lhs}` and `{rhs}`"))
                .with_help("compare values of the same type (`int` and `float` mix; `uuid` and `timestamp` compare with strings)"),
            // Said in terms of the pattern the user wrote: there is no `==`
            // in `match login { field: "yes" }`, even if it compiles to one.
            PatternType { span, field_span, field, field_ty, pattern_ty } => Diagnostic::new(Code::IncomparableTypes, *span, format!("this pattern is a `{pattern_ty}` but `{field}` is a `{field_ty}`"))
                .with_label(format!("a `{pattern_ty}` pattern"))
                .with_secondary(*field_span, format!("this field is a `{field_ty}`"))
                .with_help(pattern_help(field_ty)),
            BadArithmetic { span, op, lhs, rhs } => {
                let help = if *op == "+" && (lhs.contains("string") || rhs.contains("string")) {
                    "to build text from other values, use interpolation: \"{x} and {y}\"".to_string()
                } else {
                    format!("`{op}` works on numbers{}", if *op == "+" { ", strings and lists of the same type" } else { "" })
                };
                Diagnostic::new(Code::BadArithmetic, *span, format!("cannot apply `{op}` to `{lhs}` and `{rhs}`")).with_label("unsupported operands").with_help(help)
            }
            BadTimeArithmetic { span, op, lhs, rhs, help } => Diagnostic::new(Code::BadTimeArithmetic, *span, format!("cannot apply `{op}` to `{lhs}` and `{rhs}`"))
                .with_label("not a time operation")
                .with_help(help.clone()),
            DurationNumber { span, op, number } => {
                let help = if number.is_empty() {
                    "a number has no unit: compare with a duration literal such as `5m`".to_string()
                } else {
                    format!("a number has no unit: did you mean `{number}s` (or `{number}m`, `{number}h`, `{number}d`)?")
                };
                Diagnostic::new(Code::DurationNumber, *span, format!("cannot compare a duration with a number using `{op}`"))
                    .with_label("a duration on one side, a number on the other")
                    .with_help(help)
            }
            NotBoolean { span, op, found } => Diagnostic::new(Code::NotBoolean, *span, format!("`{op}` needs a `bool`, found `{found}`"))
                .with_label(format!("this is `{found}`"))
                .with_help("turn it into a condition with a comparison, e.g. `x == \"value\"` or `not empty(x)`"),
            BadIn { span, elem, container } => Diagnostic::new(Code::BadIn, *span, format!("cannot test `{elem}` in `{container}`"))
                .with_label("not a list of this type or a string")
                .with_help("`x in [a, b]` tests list membership; `\"sub\" in s` tests a substring"),
            NoFields { span, field, ty } => Diagnostic::new(Code::NoFields, *span, format!("`{ty}` has no fields, so `.{field}` cannot be read"))
                .with_label("field access on a value without fields")
                .with_help("only records, entities, objects and `any` values have fields; on a list of them, `.field` reads every element's field (`group.users.email`)"),
            BadIndex { span, ty, index } => Diagnostic::new(Code::BadIndex, *span, format!("cannot index `{ty}` with `{index}`"))
                .with_label("not indexable this way")
                .with_help("index lists with an `int`, `any` values with an `int` or a `string`, and entities with their key: `User[pk]`"),
            ConditionNotBool { span, clause, found } => Diagnostic::new(Code::ConditionNotBool, *span, format!("the condition of `{clause}` must be a `bool`, found `{found}`"))
                .with_label(format!("this is `{found}`"))
                .with_help("write a comparison or a predicate, e.g. `x == 1` or `not empty(x)`"),
            MixedList { span, first, found, first_span } => Diagnostic::new(Code::MixedList, *span, format!("list elements must have one type: expected `{first}`, found `{found}`"))
                .with_label(format!("this is `{found}`")).with_secondary(*first_span, format!("the list's type comes from this `{first}`"))
                .with_help("make all elements the same type"),
            NotOrderable { span, op, ty } => Diagnostic::new(Code::NotOrderable, *span, format!("`{op}` cannot order values of type `{ty}`"))
                .with_label("no order")
                .with_help("order numbers, strings or timestamps; compare other values with `==` or `!=`"),
            BadLookupKey { span, entity, key_ty, found } => Diagnostic::new(Code::BadLookupKey, *span, format!("`{entity}` is keyed by `{key_ty}`, found `{found}`"))
                .with_label("wrong key type")
                .with_help(format!("look `{entity}` rows up by {} or a list of them", a(key_ty))),
            QueryInMatch { span, after: false } => Diagnostic::new(Code::QueryInMatch, *span, "a `match` clause cannot query the store")
                .with_label("store query")
                .with_help("move this to a `guard` or `let` clause; `match` reads only the event so it can run compiled on every event"),
            QueryInMatch { span, after: true } => Diagnostic::new(Code::QueryInMatch, *span, "an `after` clause cannot query the store")
                .with_label("store query")
                .with_help("move this to a `guard` below the `after` clause (its bindings are in scope there); `after` reads only the earlier event, as it goes by"),
            NowInMatch { span, after: false } => Diagnostic::new(Code::NowInMatch, *span, "a `match` clause cannot read the clock")
                .with_label("`now()` here")
                .with_help("move the time check to a `guard` clause, e.g. `guard event.created > ...`"),
            NowInMatch { span, after: true } => Diagnostic::new(Code::NowInMatch, *span, "an `after` clause cannot read the clock")
                .with_label("`now()` here")
                .with_help("the clause already bounds the earlier event's time with `within`; compare times in a `guard` below it"),
            ActionInExpression { span, name, in_match } => Diagnostic::new(Code::ActionInExpression, *span, format!("`{name}` is an action and has no value"))
                .with_label("action used as an expression")
                .with_help(if *in_match { format!("move `{name}` to an `action` clause; `match` only decides whether the rule applies") } else { format!("call `{name}` in an `action` clause: `action {name}(...)`") }),
            ClauseOrder { span, clause, after, after_span } => Diagnostic::new(Code::ClauseOrder, *span, format!("`{clause}` cannot come after `{after}`"))
                .with_label("out of order").with_secondary(*after_span, format!("`{after}` is here"))
                .with_help("write `match` first, then `let` and `guard` clauses, then `action` clauses"),
            MissingMatch { span, rule } => Diagnostic::new(Code::MissingMatch, *span, format!("rule `{rule}` has no `match` clause"))
                .with_label("every rule needs one")
                .with_help("add a first clause like `match login` or `match any`"),
            DuplicateMatch { span, first } => Diagnostic::new(Code::DuplicateMatch, *span, "a rule has exactly one `match` clause")
                .with_label("second `match`").with_secondary(*first, "first `match` here")
                .with_help("list several event types in one clause (`match a | b`) and combine conditions with `and` in `where`"),
            PatternOnAny { span } => Diagnostic::new(Code::PatternOnAny, *span, "`match any` cannot have field patterns")
                .with_label("field patterns")
                .with_help("name the event types (`match a | b { ... }`) or test fields in `where`"),
            ConstNotLiteral { span, name } => Diagnostic::new(Code::ConstNotLiteral, *span, format!("const `{name}` must be a literal"))
                .with_label("not a literal")
                .with_help("give a string without interpolation, a number, a bool, `null`, or a list or object of these (`{ team: \"sec\", ids: [1, 2] }`)"),
            TestUnknownRule { span, name, suggestion } => Diagnostic::new(Code::TestUnknownRule, *span, format!("no rule `{name}` for this test to expect"))
                .with_label("not a rule of the files under test")
                .with_help(did_you_mean(suggestion).unwrap_or_else(|| "`expect` names a rule declared in the files given to `herald test`".into())),
            TestNotLiteral { span, what } => Diagnostic::new(Code::TestNotLiteral, *span, format!("{what} must be a literal"))
                .with_label("not a literal")
                .with_help("tests state data as written: strings without interpolation, numbers, bools, `null`, and lists and objects of these"),
            TestNotRuntimeCode { span, found } => Diagnostic::new(Code::TestNotRuntimeCode, *span, format!("`{found}` is not a run-time error code"))
                .with_label("a rule can never fail with this")
                .with_help(format!("rules fail with the R codes: {}", Code::ALL.iter().filter(|c| c.as_str().starts_with('R')).map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "))),
            UnsupportedFilter { span, reason } => Diagnostic::new(Code::UnsupportedFilter, *span, format!("this filter cannot run in the store: {reason}"))
                .with_label("unsupported in a query filter")
                .with_help("filters compare entity fields with values (`==`, `<`, `in`, `== null`), combine with `and`/`or`/`not`, and may use `starts_with`, `ends_with`, `contains`, `empty`, `len` and `lower`/`upper`/`trim` of string fields; compute anything else outside the query"),
            EntityAsValue { span, name } => Diagnostic::new(Code::UnknownName, *span, format!("`{name}` is an entity, not a value"))
                .with_label("entity name")
                .with_help(format!("look a row up with `{name}[key]` or query with `first {name}(...)`")),
            EventReadOnly { span } => Diagnostic::new(Code::EventReadOnly, *span, "events are read-only")
                .with_label("cannot change the event")
                .with_help("write to an entity instead: bind it with `guard let x = Entity[key]` and `set x.field = ...`"),
            NotAnEntityBinding { span, name, found } => Diagnostic::new(Code::NotAnEntityBinding, *span, format!("`{name}` is `{found}`, not an entity row"))
                .with_label("not an entity binding")
                .with_help("`set`, `append` and `remove` change entity rows bound with `guard let`, `let` or `for`"),
            SetTypeMismatch { span, place, expected, found } => Diagnostic::new(Code::SetTypeMismatch, *span, format!("cannot set `{place}` (`{expected}`) to {}", a(found)))
                .with_label(format!("this is `{found}`"))
                .with_help(format!("give {}; convert with `int(...)` or `string(...)` if needed", a(expected))),
            AppendNotList { span, place, found } => Diagnostic::new(Code::AppendNotList, *span, format!("cannot append to `{place}`, which is `{found}`"))
                .with_label("not a list")
                .with_help("append to a list field or to a path inside an `any` field"),
            RemoveRequired { span, place } => Diagnostic::new(Code::RemoveRequired, *span, format!("cannot remove `{place}`: the field is required"))
                .with_label("required field")
                .with_help("remove optional fields or keys inside an `any` field; `set` a required field instead"),
            ForNotList { span, found } => Diagnostic::new(Code::ForNotList, *span, format!("`for` needs a list, found `{found}`"))
                .with_label("not a list")
                .with_help("iterate over a list, e.g. `for u in User[keys]` or `for g in all Group()`"),
            UnknownArgument { span, func, name, suggestion, params } => Diagnostic::new(Code::UnknownArgument, *span, format!("`{func}` has no argument `{name}`"))
                .with_label("unknown argument")
                .with_help(did_you_mean(suggestion).unwrap_or_else(|| format!("`{func}` takes {}", list_names(params)))),
            MissingArgument { span, func, name } => Diagnostic::new(Code::MissingArgument, *span, format!("`{func}` needs the argument `{name}`"))
                .with_label(format!("`{name}` missing"))
                .with_help(format!("add `{name}: ...`")),
            DuplicateArgument { span, name, first } => Diagnostic::new(Code::DuplicateArgument, *span, format!("argument `{name}` is given twice"))
                .with_label("given again here").with_secondary(*first, "first given here")
                .with_help("remove one of them"),
            ArgumentType { span, func, name, expected, found } => Diagnostic::new(Code::ArgumentType, *span, format!("argument `{name}` of `{func}` must be `{expected}`, found `{found}`"))
                .with_label(format!("this is `{found}`"))
                .with_help(format!("give {}", a(expected))),
            InvalidSeverity { span, found, suggestion } => Diagnostic::new(Code::InvalidSeverity, *span, format!("`{found}` is not a severity"))
                .with_label("invalid severity")
                .with_help(did_you_mean(suggestion).unwrap_or_else(|| format!("use {}", quoted_choices(&Severity::NAMES)))),
            InvalidLevel { span, found, suggestion } => Diagnostic::new(Code::InvalidLevel, *span, format!("`{found}` is not a log level"))
                .with_label("invalid level")
                .with_help(did_you_mean(suggestion).unwrap_or_else(|| format!("use {}", quoted_choices(&LogLevel::NAMES)))),
            InvalidMethod { span, found, suggestion } => Diagnostic::new(Code::InvalidMethod, *span, format!("`{found}` is not a webhook method"))
                .with_label("invalid method")
                .with_help(did_you_mean(suggestion).unwrap_or_else(|| format!("use {}", quoted_choices(&HttpMethod::NAMES)))),
            WebhookHeaders { span, found } => Diagnostic::new(Code::ArgumentType, *span, format!("argument `headers` of `webhook` must be a record of strings, found `{found}`"))
                .with_label(format!("this is `{found}`"))
                .with_help("give a record whose fields are strings, e.g. `{ Authorization: \"Bearer {token}\" }`"),
            NoRecipientEntity { span } => Diagnostic::new(Code::NoRecipientEntity, *span, "`notify` needs a `recipient` entity, and the schema declares none")
                .with_label("no recipient entity")
                .with_help("declare one in the schema, e.g. `recipient User`"),
            BadRecipients { span, entity, key_ty, found } => Diagnostic::new(Code::BadRecipients, *span, format!("`notify` sends to `{entity}` rows or keys, found `{found}`"))
                .with_label(format!("this is `{found}`"))
                .with_help(format!("give a `{entity}`, {} key, or a list of either", a(key_ty))),
            TooManyArguments { span, func, max } => Diagnostic::new(Code::TooManyArguments, *span, format!("`{func}` takes at most {max} argument{}", if *max == 1 { "" } else { "s" }))
                .with_label("extra argument")
                .with_help("remove the extra arguments"),
            PositionalAfterNamed { span, named } => Diagnostic::new(Code::PositionalAfterNamed, *span, "a positional argument cannot follow a named one")
                .with_label("positional").with_secondary(*named, "named argument here")
                .with_help("name this argument too, or move it before the named ones"),
            SetKey { span, entity, key } => Diagnostic::new(Code::SetKey, *span, format!("`{key}` is the key of `{entity}` and cannot change"))
                .with_label("key field")
                .with_help("change other fields; a row's key identifies it"),
            SetManyToMany { span, stmt, field, root } => {
                let b = root.as_deref().unwrap_or("row");
                Diagnostic::new(Code::SetManyToMany, *span, format!("`{stmt}` cannot change the many-to-many field `{field}`"))
                .with_label("many-to-many field")
                .with_help(match *stmt {
                    "upsert" => format!("give the other fields here, then link rows with `add X to {b}.{field}` through a binding of the row"),
                    "remove" => format!("unlink rows with `remove X from {b}.{field}`; to unlink all, `for x in {b}.{field} {{ remove x from {b}.{field} }}`"),
                    _ => format!("links change one at a time: `add X to {b}.{field}` and `remove X from {b}.{field}`"),
                })
            }
            InvalidRegex { span, error } => Diagnostic::new(Code::InvalidRegex, *span, "invalid regular expression")
                .with_label(error.clone())
                .with_help("fix the pattern; the syntax is that of the Rust `regex` crate"),
            InvalidCidr { span, found } => Diagnostic::new(Code::InvalidCidr, *span, format!("`{found}` is not a CIDR range"))
                .with_label("invalid range")
                .with_help("write an address and prefix length, e.g. \"10.0.0.0/8\" or \"2001:db8::/32\""),
            NotALiteral { span, func, what } => Diagnostic::new(Code::NotALiteral, *span, format!("the {what} of `{func}` must be a string literal"))
                .with_label("not a literal")
                .with_help(format!("write the {what} in place, so it is checked when the policy compiles")),
            InvalidUuid { span, found } => Diagnostic::new(Code::InvalidUuid, *span, format!("`{found}` is not a UUID"))
                .with_label("invalid UUID")
                .with_help("write 32 hex digits, with or without dashes: \"305332a4-50ac-475e-b97c-e2cd167238a6\""),
            InvalidTimestamp { span, found } => Diagnostic::new(Code::InvalidTimestamp, *span, format!("`{found}` is not an RFC 3339 timestamp"))
                .with_label("invalid timestamp")
                .with_help("write a date, time and offset: \"2026-04-14T08:02:07Z\""),
            FilterShadows { span, name, entity, outer } => Diagnostic::new(Code::FilterShadows, *span, format!("`{name}` here is the field of `{entity}`, not the outer `{name}`"))
                .with_label(format!("field of `{entity}`")).with_secondary(*outer, "outer binding hidden by it")
                .with_help(format!("rename the outer binding if you meant it; inside a filter, bare names are fields of `{entity}`")),
            UnusedBinding { span, name } => Diagnostic::new(Code::UnusedBinding, *span, format!("`{name}` is never used"))
                .with_label("unused binding")
                .with_help(format!("remove it, or name it `_{name}` if it is only a check")),
            GuardLetNotOptional { span, found } => Diagnostic::new(Code::GuardLetNotOptional, *span, format!("`guard let` on {}, which is never absent", a(found)))
                .with_label("always present")
                .with_help("use `let` instead; `guard let` is for values that may be absent"),
            NullCompareNeverAbsent { span, ty, always } => Diagnostic::new(Code::NullCompareNeverAbsent, *span, format!("{} is never absent, so this is always {always}", a(ty)))
                .with_label("never null")
                .with_help("remove the comparison, or check the schema: the field may need to be optional"),
            DuplicateMatchType { span, name, first } => Diagnostic::new(Code::DuplicateMatchType, *span, format!("event type `{name}` is listed twice"))
                .with_label("listed again").with_secondary(*first, "first listed here")
                .with_help("remove the repetition"),
            LinkNotManyToMany { span, stmt, place, found, is_list } => Diagnostic::new(Code::LinkNotManyToMany, *span, format!("`{stmt}` needs a many-to-many field, but `{place}` is `{found}`"))
                .with_label("not a many-to-many field")
                .with_help(if *is_list {
                    "`add`/`remove … from` change links between rows; to grow a list use `append VALUE to ...`, to clear a value `remove x.field`".to_string()
                } else {
                    "`add`/`remove … from` work on fields declared `[Entity]`, e.g. `add u to group.users`; use `set` for other fields".to_string()
                }),
            BadLinkElement { span, stmt, place, entity, key_ty, found } => Diagnostic::new(Code::BadLinkElement, *span, format!("`{stmt}` on `{place}` needs a `{entity}` or its key (`{key_ty}`), found `{found}`"))
                .with_label(format!("this is `{found}`"))
                .with_help(format!("give a `{entity}` row, its key, or a list of either")),
            BadRowKey { span, stmt, entity, key_ty, found } => Diagnostic::new(Code::BadRowKey, *span, format!("`{stmt} {entity}[...]` needs one `{key_ty}` key, found `{found}`"))
                .with_label("wrong key type")
                .with_help(if found.starts_with('[') {
                    format!("`{stmt}` writes one row; loop over the list: `for k in keys {{ {stmt} {entity}[k] ... }}`")
                } else {
                    format!("give {} key", a(key_ty))
                }),
            UpsertKeyField { span, entity, key } => Diagnostic::new(Code::UpsertKeyField, *span, format!("`{key}` is the key of `{entity}`; it is given in the brackets"))
                .with_label("key field")
                .with_help(format!("remove this field: `upsert {entity}[KEY] {{ ... }}` sets `{key}` to KEY")),
            UpsertDuplicateField { span, field, first } => Diagnostic::new(Code::UpsertDuplicateField, *span, format!("field `{field}` is given twice"))
                .with_label("given again").with_secondary(*first, "first given here")
                .with_help("give each field once"),
            WriteAfterDelete { span, name, deleted } => Diagnostic::new(Code::WriteAfterDelete, *span, format!("`{name}`'s row was deleted above; there is nothing to write to"))
                .with_label("write to a deleted row").with_secondary(*deleted, "deleted here")
                .with_help(format!("write before the `delete`, or `upsert` the row again first; reading `{name}` after the `delete` is fine (it keeps the values it had)")),
            UpsertMissingRequired { span, entity, missing } => {
                let list = missing.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ");
                Diagnostic::new(Code::UpsertMissingRequired, *span, format!("this `upsert` leaves out the required field{} {list} of `{entity}`", if missing.len() == 1 { "" } else { "s" }))
                    .with_label("can only update")
                    .with_help(format!("when no `{entity}` row has this key, creating one fails with R0002; give {list} to create rows, or use `set` on a bound row to update only"))
            }
            DuplicateObjectKey { span, key, first } => Diagnostic::new(Code::DuplicateObjectKey, *span, format!("the key `{key}` appears twice in this object"))
                .with_label("key given again").with_secondary(*first, "first given here")
                .with_help("give each key once; a JSON object keeps one value per key"),
            ObjectKeyInterpolated { span } => Diagnostic::new(Code::ObjectKeyInterpolated, *span, "an object key cannot interpolate")
                .with_label("`{...}` in a key")
                .with_help("write the key as plain text (`\\{` for a literal brace): an object's keys are fixed when the policy is checked"),
            CoalesceMismatch { span, lhs, rhs, rhs_span } => Diagnostic::new(Code::CoalesceMismatch, *span, format!("`??` cannot choose between `{lhs}` and `{rhs}`"))
                .with_label(format!("the default is `{rhs}`")).with_secondary(*rhs_span, format!("the value is `{lhs}`"))
                .with_help(format!("give a default of the value's type, e.g. `x ?? {}`", default_example(lhs))),
            CoalesceNeverAbsent { span, ty, op } => Diagnostic::new(Code::CoalesceNeverAbsent, *span, format!("{} is never absent, so the default after `??` is never used", a(ty)))
                .with_label("never absent or null").with_secondary(*op, "this `??` has no effect")
                .with_help("remove `?? ...`, or check the schema: the field may need to be optional (`T?`)"),
        }
    }
}

/// A default value of a type, for the help of `??` mismatches.
fn default_example(ty: &str) -> &'static str {
    match ty.trim_end_matches('?') {
        "int" => "0",
        "float" => "0.0",
        "bool" => "false",
        "string" => "\"\"",
        t if t.starts_with('[') => "[]",
        t if t.starts_with('{') => "{}",
        _ => "...",
    }
}

/// The help for a pattern of the wrong type: an example of a pattern the
/// field can match, where the type has a literal form.
fn pattern_help(field_ty: &str) -> String {
    let example = match field_ty.trim_end_matches('?') {
        "bool" => Some("`true` or `false`"),
        "int" => Some("`3`"),
        "float" => Some("`1.5`"),
        "string" | "uuid" | "timestamp" => Some("`\"text\"`"),
        _ => None,
    };
    match example {
        Some(e) => format!("write a pattern of the field's type, such as {e}, or bind the field to a name"),
        None => "bind the field to a name and test it in a `guard`".to_string(),
    }
}
