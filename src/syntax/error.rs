//! Syntax errors as plain data, and the one function that turns each into a
//! [`Diagnostic`]. Also the translation of a pest failure (a position and
//! the rules expected there) into a [`SyntaxError`].

use super::parser::{rule_info, Class, Rule};
use super::scan::{self, LexError, Opener, Scan, Tok};
use crate::diag::{self, Code, Diagnostic};
use crate::span::{FileId, Span};

/// A description of the token found where something else was expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    End,
    Ident(String),
    Keyword(String),
    Number(String),
    Str,
    Token(String),
}

impl Found {
    fn describe(&self) -> String {
        match self {
            Found::End => "end of input".to_string(),
            Found::Ident(w) => format!("identifier `{w}`"),
            Found::Keyword(w) => format!("keyword `{w}`"),
            Found::Number(n) => format!("number `{n}`"),
            Found::Str => "string".to_string(),
            Found::Token(t) => format!("`{}`", t.escape_debug()),
        }
    }

    fn word(&self) -> Option<&str> {
        match self {
            Found::Ident(w) | Found::Keyword(w) => Some(w),
            _ => None,
        }
    }
}

/// What a keyword was used to name (for E0007).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRole {
    Rule,
    Const,
    Binding,
    LoopVar,
    Type,
    Entity,
    EventType,
    Other,
}

/// A hint attached to an "expected ..., found ..." error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Hint {
    /// A close keyword: "did you mean `action`?"
    DidYouMean(String),
    /// `x.f(...)`: there are no methods.
    Method(MethodCall),
    /// `=` where a comparison could follow.
    Equals,
    /// `&&`, `||`, `!`
    AndOp,
    OrOp,
    NotOp,
    /// `'...'`
    SingleQuote,
    /// `;`
    Semicolon,
    /// `rule {`: the name is missing.
    RuleName,
}

/// What is known of a method call `receiver.name(...)` (there are none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MethodCall {
    /// The dotted path before `.name`, when it is one (`context.geo`).
    pub receiver: Option<String>,
    pub name: String,
    /// The built-in function `name` means, by name or by a common alias
    /// (`x.length()` means `len`), if any.
    pub builtin: Option<&'static str>,
    /// A first argument that is a string literal naming a field (`x.get("k")`).
    pub key: Option<String>,
}

impl MethodCall {
    /// One sentence that never names a function Herald does not have.
    fn help(&self) -> String {
        let recv = self.receiver.as_deref().unwrap_or("x");
        match (self.builtin, &self.key) {
            (Some(f), _) => format!("there are no methods: call the function `{f}` with the value first, as in `{f}({recv})`"),
            (None, Some(k)) => format!("there are no methods: read the field directly, as in `{recv}.{k}`"),
            (None, None) => format!(
                "there are no methods: read a field as `{recv}.name`, or call a built-in function (see docs/language.md)"
            ),
        }
    }
}

/// Why an escape sequence is invalid (E0005).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EscapeProblem {
    /// `\q`
    Unknown,
    /// `\u{...}` that is not 1 to 6 hex digits, or has no `}`.
    BadUnicode,
    /// `\u{D800}`: hex digits that name no Unicode scalar value.
    NotAChar,
}

/// What is wrong with a duration literal (E0011, E0012, E0013); `at` is
/// the offending part of the literal.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum DurationProblem {
    /// E0011: `5x`, `3sec`.
    UnknownUnit { at: Span, unit: String },
    /// E0012: more than about 292 years.
    Overflow,
    /// E0013: `1.5h`.
    Fraction { at: Span },
    /// E0013: `30m1h`, `1s1s`.
    UnitOrder { at: Span, unit: String },
    /// E0013: `1h30`.
    MissingUnit { at: Span },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SyntaxError {
    /// E0001: the general case.
    Expected { at: Span, expected: Vec<&'static str>, found: Found, hint: Option<Hint> },
    /// E0001: `a < b < c`.
    ChainedComparison { op: Span, text: String },
    /// E0001: brackets nested deeper than the scanner allows.
    TooDeep { at: Span },
    /// E0001: more than `scan::MAX_OPERATORS` operators in one item.
    TooComplex { at: Span },
    /// E0001: pest's own recursion limits.
    LimitReached { at: Span },
    /// E0002
    UnterminatedString { quote: Span },
    /// E0003: `at` is the point where the closing bracket is missing.
    Unclosed { at: Span, open: Span, open_ch: char, opener: Opener },
    /// E0004
    Stray { at: Span, ch: char, open: Option<(Span, char)> },
    /// E0005
    InvalidEscape { span: Span, escape: String, problem: EscapeProblem },
    /// E0006
    NumberOutOfRange { span: Span, text: String, float: bool },
    /// E0007
    KeywordAsName { span: Span, keyword: String, role: NameRole },
    /// E0008
    EmptyInterpolation { span: Span },
    /// E0009: `at` is the point after the operator.
    MissingExpr { op: String, op_span: Span, at: Span, found: Found },
    /// E0010
    ExpectedItem { at: Span, found: Found, suggestion: Option<String> },
    /// E0011, E0012, E0013: a duration literal that is not one.
    BadDuration { span: Span, text: String, problem: DurationProblem },
    /// E0011: a number, a space, then a duration unit (`5 m`).
    SpacedDuration { span: Span, text: String },
}

impl SyntaxError {
    /// The primary span.
    pub(crate) fn span(&self) -> Span {
        match self {
            SyntaxError::Expected { at, .. }
            | SyntaxError::TooDeep { at }
            | SyntaxError::TooComplex { at }
            | SyntaxError::LimitReached { at }
            | SyntaxError::Unclosed { at, .. }
            | SyntaxError::Stray { at, .. }
            | SyntaxError::MissingExpr { at, .. }
            | SyntaxError::ExpectedItem { at, .. } => *at,
            SyntaxError::ChainedComparison { op, .. } => *op,
            SyntaxError::UnterminatedString { quote } => *quote,
            SyntaxError::InvalidEscape { span, .. }
            | SyntaxError::NumberOutOfRange { span, .. }
            | SyntaxError::BadDuration { span, .. }
            | SyntaxError::SpacedDuration { span, .. }
            | SyntaxError::KeywordAsName { span, .. }
            | SyntaxError::EmptyInterpolation { span } => *span,
        }
    }

    /// The one place syntax errors become prose.
    pub(crate) fn to_diagnostic(&self) -> Diagnostic {
        match self {
            SyntaxError::Expected { at, expected, found, hint } => {
                let list = join_or(expected);
                let help = hint.as_ref().map(|h| match h {
                    Hint::DidYouMean(s) => format!("did you mean `{s}`?"),
                    Hint::Method(m) => m.help(),
                    Hint::Equals => "use `==` to compare two values".to_string(),
                    Hint::AndOp => "write `and` instead of `&&`".to_string(),
                    Hint::OrOp => "write `or` instead of `||`".to_string(),
                    Hint::NotOp => "write `not` instead of `!`".to_string(),
                    Hint::SingleQuote => "strings use double quotes: `\"...\"`".to_string(),
                    Hint::Semicolon => {
                        "remove the `;`: clauses and statements need no separator".to_string()
                    }
                    Hint::RuleName => "give the rule a name, as in `rule notify_admins {`".to_string(),
                });
                Diagnostic::new(
                    Code::UnexpectedToken,
                    *at,
                    format!("expected {list}, found {}", found.describe()),
                )
                .with_label(format!("expected {list}"))
                .with_help(help.unwrap_or_else(|| format!("write {list} here, or remove what does not belong")))
            }
            SyntaxError::ChainedComparison { op, text } => Diagnostic::new(
                Code::UnexpectedToken,
                *op,
                "comparison operators cannot be chained",
            )
            .with_label(format!("a second comparison: `{text}`"))
            .with_help("combine the comparisons with `and`, as in `a < b and b < c`"),
            SyntaxError::TooDeep { at } => Diagnostic::new(
                Code::UnexpectedToken,
                *at,
                "brackets are nested too deeply",
            )
            .with_label(format!("more than {} levels deep", scan::MAX_DEPTH))
            .with_help("split the expression into smaller ones with `let`"),
            SyntaxError::TooComplex { at } => Diagnostic::new(
                Code::UnexpectedToken,
                *at,
                "this item has too many operators",
            )
            .with_label(format!("operator number {}", scan::MAX_OPERATORS + 1))
            .with_help("split the expression into smaller ones with `let`, or the rule into several rules"),
            SyntaxError::LimitReached { at } => Diagnostic::new(
                Code::UnexpectedToken,
                *at,
                "this item is nested too deeply to parse",
            )
            .with_label("too deeply nested")
            .with_help("split the expression into smaller ones with `let`"),
            SyntaxError::UnterminatedString { quote } => Diagnostic::new(
                Code::UnterminatedString,
                *quote,
                "this string is never closed",
            )
            .with_label("the string starts here")
            .with_help("add `\"` at the end of the string; a string cannot span lines, write `\\n` for a line break"),
            SyntaxError::Unclosed { at, open, open_ch, opener } => {
                let close = closer(*open_ch);
                let (what, opened, help) = match opener {
                    Opener::Item { keyword, name } => {
                        let what = match name {
                            Some(n) => format!("{keyword} `{n}`"),
                            None => format!("the {keyword}"),
                        };
                        let help = format!("add `{close}` at the end of the {keyword}");
                        (what.clone(), format!("{what} opened here"), help)
                    }
                    Opener::Block(kw) => (
                        format!("the `{kw}` block"),
                        format!("`{kw}` block opened here"),
                        format!("add `{close}` at the end of the `{kw}` block"),
                    ),
                    Opener::Patterns => (
                        "the field patterns".to_string(),
                        "field patterns opened here".to_string(),
                        format!("add `{close}` after the last field pattern"),
                    ),
                    Opener::Interpolation => (
                        "the interpolation".to_string(),
                        "interpolation opened here".to_string(),
                        "add `}` to end the interpolation, or write `\\{` for a literal brace"
                            .to_string(),
                    ),
                    Opener::Plain => (
                        format!("this `{open_ch}`"),
                        format!("`{open_ch}` opened here"),
                        format!("add `{close}` to close it"),
                    ),
                };
                Diagnostic::new(Code::UnclosedDelimiter, *at, format!("missing `{close}` to close {what}"))
                    .with_label(format!("expected `{close}`"))
                    .with_secondary(*open, opened)
                    .with_help(help)
            }
            SyntaxError::Stray { at, ch, open } => {
                let d = Diagnostic::new(Code::UnmatchedDelimiter, *at, format!("unexpected closing `{ch}`"));
                match open {
                    Some((span, o)) => d
                        .with_label(format!("this `{ch}` does not close the `{o}`"))
                        .with_secondary(*span, format!("`{o}` opened here"))
                        .with_help(format!("write `{}` here, or remove the `{ch}`", closer(*o))),
                    None => d
                        .with_label(format!("no `{}` is open here", opener_of(*ch)))
                        .with_help(format!("remove this `{ch}`, or add the `{}` it should close", opener_of(*ch))),
                }
            }
            SyntaxError::InvalidEscape { span, escape, problem } => {
                let (msg, label) = match problem {
                    EscapeProblem::Unknown => (format!("unknown escape `{escape}` in a string"), "unknown escape"),
                    EscapeProblem::BadUnicode => (
                        format!("invalid unicode escape `{escape}`"),
                        "expected 1 to 6 hex digits in `\\u{...}`",
                    ),
                    EscapeProblem::NotAChar => (
                        format!("invalid unicode escape `{escape}`"),
                        "not a Unicode character",
                    ),
                };
                let help = match problem {
                    EscapeProblem::Unknown => "the escapes are `\\\"`, `\\\\`, `\\n`, `\\t`, `\\r`, `\\{`, `\\}` and `\\u{...}`; write `\\\\` for a backslash",
                    _ => "write a character's code point in hex, as in `\\u{1F600}`",
                };
                Diagnostic::new(Code::InvalidEscape, *span, msg).with_label(label).with_help(help)
            }
            SyntaxError::NumberOutOfRange { span, text, float } => {
                if *float {
                    Diagnostic::new(Code::InvalidNumber, *span, format!("number `{text}` is out of range"))
                        .with_label("too large for a 64-bit float")
                        .with_help("use a smaller number")
                } else {
                    Diagnostic::new(Code::InvalidNumber, *span, format!("integer `{text}` is out of range"))
                        .with_label("does not fit in a 64-bit signed integer")
                        .with_help("integers go from -9223372036854775808 to 9223372036854775807; write a float such as `1e20` for larger numbers")
                }
            }
            SyntaxError::BadDuration { span, text, problem } => duration_diagnostic(*span, text, problem),
            SyntaxError::SpacedDuration { span, text } => {
                let fixed: String = text.chars().filter(|c| !c.is_whitespace()).collect();
                Diagnostic::new(Code::UnknownDurationUnit, *span, format!("`{text}` is not a duration"))
                    .with_label("a space between the number and its unit")
                    .with_help(format!("did you mean `{fixed}`? A duration's unit follows its number directly"))
            }
            SyntaxError::KeywordAsName { span, keyword, role } => {
                let what = match role {
                    NameRole::Rule => "name a rule",
                    NameRole::Const => "name a const",
                    NameRole::Binding => "name a binding",
                    NameRole::LoopVar => "name a loop variable",
                    NameRole::Type => "name a type",
                    NameRole::Entity => "name an entity",
                    NameRole::EventType => "name an event type",
                    NameRole::Other => "be used as a name",
                };
                Diagnostic::new(Code::KeywordAsName, *span, format!("`{keyword}` is a keyword and cannot {what}"))
                    .with_label("a keyword")
                    .with_help(format!("choose another name, such as `{keyword}_`"))
            }
            SyntaxError::EmptyInterpolation { span } => Diagnostic::new(
                Code::EmptyInterpolation,
                *span,
                "empty `{}` in a string",
            )
            .with_label("no expression between the braces")
            .with_help("write `\\{\\}` for literal braces, or put an expression between them"),
            SyntaxError::MissingExpr { op, op_span, at, found } => Diagnostic::new(
                Code::ExpectedExpression,
                *at,
                format!("expected an expression after `{op}`"),
            )
            .with_label(format!("expected an expression, found {}", found.describe()))
            .with_secondary(*op_span, format!("`{op}` needs a value after it"))
            .with_help(format!("complete the expression, or remove the `{op}`")),
            SyntaxError::ExpectedItem { at, found, suggestion } => Diagnostic::new(
                Code::ExpectedItem,
                *at,
                format!("expected `rule`, `const` or a schema item, found {}", found.describe()),
            )
            .with_label("not the start of an item")
            .with_help(match suggestion {
                Some(s) => format!("did you mean `{s}`?"),
                None => "every item starts with `rule`, `const`, `type`, `event`, `entity`, `discriminator`, `identity`, `recipient` or `time`".to_string(),
            }),
        }
    }
}

fn closer(open: char) -> char {
    match open {
        '(' => ')',
        '[' => ']',
        _ => '}',
    }
}

fn opener_of(close: char) -> char {
    match close {
        ')' => '(',
        ']' => '[',
        _ => '{',
    }
}

/// "a", "a or b", "a, b or c"
fn join_or(items: &[&str]) -> String {
    match items {
        [] => "something else".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Describe the token at (or just after) byte `pos` of the file.
fn found_at(scan: &Scan, text: &str, pos: usize, limit: usize) -> (Found, Option<(usize, usize)>) {
    let Some(t) = scan.token_at(pos).filter(|t| t.start < limit) else {
        return (Found::End, None);
    };
    if t.start < pos {
        // Inside a token (an atomic rule failed half-way): describe the
        // character there.
        let ch = text[pos..].chars().next();
        return match ch {
            Some(c) => (Found::Token(c.to_string()), Some((pos, pos + c.len_utf8()))),
            None => (Found::End, None),
        };
    }
    let s = &text[t.start..t.end];
    let found = match t.kind {
        Tok::Word if scan::is_keyword(s) => Found::Keyword(s.to_string()),
        Tok::Word => Found::Ident(s.to_string()),
        Tok::Number => Found::Number(s.to_string()),
        Tok::Quote => Found::Str,
        _ => Found::Token(s.to_string()),
    };
    (found, Some((t.start, t.end)))
}

fn is_operator(s: &str) -> bool {
    matches!(s, "==" | "!=" | "<" | "<=" | ">" | ">=" | "+" | "-" | "*" | "/" | "%" | "=" | "and" | "or" | "not" | "in")
}

/// Keywords that begin or continue clauses, statements and expressions:
/// finding one where a name is expected usually means something is missing,
/// not that the keyword was meant as a name.
fn is_structural(kw: &str) -> bool {
    matches!(
        kw,
        "match"
            | "where"
            | "guard"
            | "let"
            | "action"
            | "in"
            | "and"
            | "or"
            | "not"
            | "to"
            | "else"
            | "if"
            | "for"
            | "true"
            | "false"
            | "null"
            | "exists"
            | "count"
            | "first"
            | "all"
            | "any"
            | "event"
            | "set"
            | "append"
            | "remove"
    )
}

/// Turn a pest failure at absolute byte `pos`, expecting `positives`, into a
/// syntax error. `limit` is the end of the chunk being parsed.
pub(crate) fn translate(
    file: FileId,
    text: &str,
    scan: &Scan,
    pos: usize,
    limit: usize,
    positives: &[Rule],
) -> SyntaxError {
    let (found, found_range) = found_at(scan, text, pos, limit);
    let prev = scan.token_before(pos);
    let at = match (found_range, prev) {
        (Some((s, e)), _) => Span::new(file, s, e),
        (None, Some(p)) => Span::point(file, p.end),
        (None, None) => Span::point(file, pos.min(text.len())),
    };
    let has = |r: Rule| positives.contains(&r);
    let classes: Vec<Class> = positives.iter().map(|&r| rule_info(r).1).collect();

    // Stray text after a complete item, or before the first one.
    if classes.contains(&Class::Item) {
        let suggestion = found.word().and_then(|w| diag::suggest(w, scan::ITEM_KEYWORDS.iter().copied()));
        return SyntaxError::ExpectedItem { at, found, suggestion };
    }

    if let Some(e) = unclosed_patterns(file, text, scan, prev, has(Rule::colon)) {
        return e;
    }

    let found_text = found_range.map(|(s, e)| &text[s..e]);
    // `5 m`: an integer, whitespace, then a duration unit where an operator
    // was expected.
    if let (Some(p), Some(unit), Some((_, end))) = (prev, found_text, found_range) {
        let number = &text[p.start..p.end];
        if p.kind == Tok::Number
            && number.bytes().all(|b| b.is_ascii_digit())
            && p.end < end
            && crate::value::DURATION_UNITS.iter().any(|(u, _)| *u == unit)
        {
            return SyntaxError::SpacedDuration {
                span: Span::new(file, p.start, end),
                text: text[p.start..end].to_string(),
            };
        }
    }
    // `a < b < c`: an expression just ended and a comparison follows.
    if let Some(op @ ("==" | "!=" | "<" | "<=" | ">" | ">=" | "in")) = found_text {
        if has(Rule::sum_op) && !has(Rule::cmp_op) {
            return SyntaxError::ChainedComparison { op: at, text: op.to_string() };
        }
    }

    let expects_expr = classes.contains(&Class::Expr);
    let prev_text = prev.map(|p| &text[p.start..p.end]);
    if let (Some(p), Some(op)) = (prev, prev_text) {
        let prev_is_op = is_operator(op) && (p.kind == Tok::Punct || p.kind == Tok::Word);
        if prev_is_op && expects_expr {
            return SyntaxError::MissingExpr {
                op: op.to_string(),
                op_span: Span::new(file, p.start, p.end),
                at: Span::point(file, p.end),
                found,
            };
        }
    }

    if let Found::Keyword(kw) = &found {
        let declares = match prev_text {
            Some("rule") => Some(NameRole::Rule),
            Some("const") => Some(NameRole::Const),
            Some("let") => Some(NameRole::Binding),
            Some("for") => Some(NameRole::LoopVar),
            Some("type") => Some(NameRole::Type),
            Some("entity" | "recipient") => Some(NameRole::Entity),
            _ => None,
        };
        let wants_name = has(Rule::ident) || has(Rule::event_name) || has(Rule::bind);
        let role = match declares {
            Some(role) if wants_name => Some(role),
            // After `field:` in a pattern, a keyword can only have been meant
            // as a binding name (`true`, `false` and `null` parse as literals).
            _ if has(Rule::pattern) && prev_text == Some(":") => Some(NameRole::Binding),
            _ if wants_name && !is_structural(kw) => Some(match prev_text {
                Some("match" | "|" | "event") => NameRole::EventType,
                _ => NameRole::Other,
            }),
            _ if expects_expr && !is_structural(kw) => Some(NameRole::Other),
            _ => None,
        };
        if let Some(role) = role {
            return SyntaxError::KeywordAsName { span: at, keyword: kw.clone(), role };
        }
    }

    let high: Vec<Rule> =
        positives.iter().copied().filter(|&r| !matches!(rule_info(r).1, Class::Low | Class::Hidden)).collect();
    let shown: Vec<Rule> = if high.is_empty() {
        positives.iter().copied().filter(|&r| rule_info(r).1 != Class::Hidden).collect()
    } else {
        high
    };
    let mut expected: Vec<&'static str> = Vec::new();
    for r in shown {
        let name = rule_info(r).0;
        if !expected.contains(&name) {
            expected.push(name);
        }
    }

    let hint = hint_for(&found, found_range, prev_text, scan, prev, text, positives);
    SyntaxError::Expected { at, expected, found, hint }
}

/// `match login { a: { b: true }` and the next line starts a clause: the
/// rule's own `}` balances the brackets, so pest reads `action` as one more
/// field name and stops at the word after it, expecting `:`. What is missing
/// is a `}` at the end of the last complete field pattern: report that,
/// there, against the innermost `{` still open before the clause keyword.
fn unclosed_patterns(
    file: FileId,
    text: &str,
    scan: &Scan,
    prev: Option<scan::Token>,
    expects_colon: bool,
) -> Option<SyntaxError> {
    let kw = prev.filter(|t| t.kind == Tok::Word)?;
    let starts_line = text[..kw.start].rsplit('\n').next().is_some_and(|l| l.trim().is_empty());
    if !expects_colon || !starts_line || !matches!(&text[kw.start..kw.end], "action" | "guard" | "let" | "match") {
        return None;
    }
    let last = scan.token_before(kw.start)?;
    let mut depth = 0usize;
    let mut at = kw.start;
    let open = loop {
        let t = scan.token_before(at)?;
        at = t.start;
        if t.kind != Tok::Punct {
            continue;
        }
        match &text[t.start..t.end] {
            "}" => depth += 1,
            "{" if depth == 0 => break t,
            "{" => depth -= 1,
            _ => {}
        }
    };
    // The `{` right after `match EVENT` (or `EVENT | EVENT`) holds the
    // field patterns; any other is a nested pattern's.
    let before = scan.token_before(open.start).map(|t| &text[t.start..t.end]);
    let before2 = scan.token_before(open.start).and_then(|t| scan.token_before(t.start)).map(|t| &text[t.start..t.end]);
    let opener =
        if before.is_some() && matches!(before2, Some("match" | "|")) { Opener::Patterns } else { Opener::Plain };
    Some(SyntaxError::Unclosed {
        at: Span::point(file, last.end),
        open: Span::new(file, open.start, open.end),
        open_ch: '{',
        opener,
    })
}

/// A hint for an unexpected token, from the token, the one before it and
/// what was expected.
fn hint_for(
    found: &Found,
    found_range: Option<(usize, usize)>,
    prev_text: Option<&str>,
    scan: &Scan,
    prev: Option<scan::Token>,
    text: &str,
    positives: &[Rule],
) -> Option<Hint> {
    let found_text = found_range.map(|(s, e)| &text[s..e]);
    let open_end = found_range.map(|(_, e)| e);
    if let Some(w) = found.word() {
        let mut candidates: Vec<&str> = Vec::new();
        for &r in positives {
            match rule_info(r).0 {
                "a clause" => candidates.extend(["match", "let", "guard", "action"]),
                "a statement" => candidates.extend(["set", "append", "remove", "for", "if"]),
                n if n.starts_with('`') && n[1..].starts_with(|c: char| c.is_ascii_alphabetic()) => {
                    candidates.push(n.trim_matches('`'))
                }
                _ => {}
            }
        }
        return diag::suggest(w, candidates).map(Hint::DidYouMean);
    }
    let comparison_may_follow = positives.contains(&Rule::cmp_op);
    match found_text? {
        "{" if prev_text == Some("rule") => Some(Hint::RuleName),
        "(" => {
            // `x.f(` : the token before is a field name after a `.`.
            let p = prev?;
            let before = scan.token_before(p.start)?;
            if p.kind != Tok::Word || &text[before.start..before.end] != "." {
                return None;
            }
            Some(Hint::Method(method_call(scan, text, before, prev_text.unwrap_or_default(), open_end?)))
        }
        "=" if comparison_may_follow => Some(Hint::Equals),
        "&" => Some(Hint::AndOp),
        "|" if comparison_may_follow => Some(Hint::OrOp),
        "!" => Some(Hint::NotOp),
        "'" => Some(Hint::SingleQuote),
        ";" => Some(Hint::Semicolon),
        _ => None,
    }
}

/// `receiver.name(` where `dot` is the `.` before `name` and `open_end` the
/// end of the `(`.
fn method_call(scan: &Scan, text: &str, dot: scan::Token, name: &str, open_end: usize) -> MethodCall {
    // The receiver: `a.b.c` walking back from the dot, words and dots only.
    let mut start = None;
    let mut at = dot.start;
    while let Some(w) = scan.token_before(at).filter(|t| t.kind == Tok::Word) {
        start = Some(w.start);
        match scan.token_before(w.start) {
            Some(d) if d.kind == Tok::Punct && &text[d.start..d.end] == "." => at = d.start,
            _ => break,
        }
    }
    let receiver = start.map(|s| text[s..dot.start].to_string());
    // `("key"` followed by `)` or `,`: a string literal naming a field.
    let key = scan.tokens_in(open_end, text.len()).get(..3).and_then(|t| {
        let [q, body, close] = t else { return None };
        let word = &text[body.start..body.end];
        let is_name = word.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !scan::is_keyword(word);
        (q.kind == Tok::Quote && body.kind == Tok::StrText && close.kind == Tok::StrEnd && is_name)
            .then(|| word.to_string())
    });
    MethodCall { receiver, name: name.to_string(), builtin: crate::check::builtin_function(name), key }
}

/// A lexical error from the scanner as a syntax error.
pub(crate) fn from_lex(file: FileId, e: &LexError) -> SyntaxError {
    match e {
        LexError::UnterminatedString { quote } => {
            SyntaxError::UnterminatedString { quote: Span::new(file, *quote, quote + 1) }
        }
        LexError::Unclosed { open, open_ch, opener, at } => SyntaxError::Unclosed {
            at: Span::point(file, *at),
            open: Span::new(file, *open, open + 1),
            open_ch: *open_ch,
            opener: opener.clone(),
        },
        LexError::Stray { at, ch, open } => SyntaxError::Stray {
            at: Span::new(file, *at, at + 1),
            ch: *ch,
            open: open.map(|(p, c)| (Span::new(file, p, p + 1), c)),
        },
        LexError::TooDeep { at } => SyntaxError::TooDeep { at: Span::new(file, *at, at + 1) },
        LexError::TooComplex { at } => {
            // The operator may be two bytes (`==`); a point span is enough.
            SyntaxError::TooComplex { at: Span::point(file, *at) }
        }
    }
}

/// The diagnostic for a malformed duration literal.
fn duration_diagnostic(span: Span, text: &str, problem: &DurationProblem) -> Diagnostic {
    const UNITS: &str = "the units are `d`, `h`, `m`, `s`, `ms`, `us` and `ns`";
    match problem {
        DurationProblem::UnknownUnit { at, unit } => {
            let units = crate::value::DURATION_UNITS.iter().map(|(u, _)| *u);
            // A common spelling first (`sec`, `min`, `w`), then "did you mean".
            let alias = match unit.to_ascii_lowercase().as_str() {
                "sec" | "secs" | "second" | "seconds" => Some("s".to_string()),
                "min" | "mins" | "minute" | "minutes" => Some("m".to_string()),
                "hr" | "hrs" | "hour" | "hours" => Some("h".to_string()),
                "day" | "days" => Some("d".to_string()),
                "msec" | "millis" => Some("ms".to_string()),
                "µs" | "usec" | "micros" => Some("us".to_string()),
                "nsec" | "nanos" => Some("ns".to_string()),
                "w" | "wk" | "week" | "weeks" => None,
                // "did you mean" over one-letter units only makes sense for longer typos (`mn`).
                _ => (unit.len() >= 2).then(|| crate::diag::suggest(unit, units)).flatten().or_else(|| {
                    // A capital letter: `5M` (months?) or `5H`.
                    let l = unit.to_ascii_lowercase();
                    crate::value::DURATION_UNITS.iter().find(|(u, _)| *u == l).map(|(u, _)| u.to_string())
                }),
            };
            let number = &text[..(at.start - span.start) as usize];
            let help = match (alias, unit.as_str()) {
                (_, "w" | "wk" | "week" | "weeks") => {
                    let weeks: Option<i64> = number.parse().ok();
                    match weeks.and_then(|w| w.checked_mul(7)) {
                        Some(days) => format!("there is no week unit: did you mean `{days}d`?"),
                        None => format!("there is no week unit: write the days with `d`; {UNITS}"),
                    }
                }
                (Some(u), _) => format!("did you mean `{number}{u}`? {UNITS}"),
                (None, _) => format!("{UNITS}; months and years have no fixed length"),
            };
            Diagnostic::new(Code::UnknownDurationUnit, *at, format!("unknown duration unit `{unit}` in `{text}`"))
                .with_label("not a unit")
                .with_help(help)
        }
        DurationProblem::Overflow => {
            Diagnostic::new(Code::DurationOutOfRange, span, format!("duration `{text}` is out of range"))
                .with_label("longer than a duration can be")
                .with_help("durations go up to about 292 years (`106751d`)")
        }
        DurationProblem::Fraction { at } => {
            Diagnostic::new(Code::MalformedDuration, *at, format!("duration `{text}` has a fraction"))
                .with_label("a duration's numbers are whole")
                .with_help("write it with smaller units: `1h30m` for an hour and a half, `1s500ms` for 1.5 seconds")
        }
        DurationProblem::UnitOrder { at, unit } => {
            Diagnostic::new(Code::MalformedDuration, *at, format!("unit `{unit}` out of order in `{text}`"))
                .with_label("must be smaller than the unit before it")
                .with_help("write each unit once, largest first: `1h30m`, `2d12h`, `1m30s`")
        }
        DurationProblem::MissingUnit { at } => {
            Diagnostic::new(Code::MalformedDuration, *at, format!("duration `{text}` ends in a number without a unit"))
                .with_label("no unit")
                .with_help(format!("every number in a duration needs a unit, as in `1h30m`; {UNITS}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::span::FileId;

    fn help_for(call: &str) -> String {
        let text = format!("rule r {{\n  match login\n  guard {call} == 1\n  action log(\"x\")\n}}\n");
        let parsed = super::super::parse(FileId(0), &text);
        let d = parsed.diagnostics.first().unwrap_or_else(|| panic!("`{call}` parsed"));
        d.help.clone().unwrap_or_default()
    }

    /// A method call's help names a function only if Herald has it.
    #[test]
    fn method_help_names_only_real_functions() {
        let builtins = crate::check::builtin_function;
        for (call, want) in [
            ("x.get(\"k\")", "`x.k`"),
            ("context.geo.get(\"country\", 1)", "`context.geo.country`"),
            ("x.keys()", "`x.name`"),
            ("x.length()", "`len(x)`"),
            ("x.lower()", "`lower(x)`"),
            ("x.get(k)", "`x.name`"),
        ] {
            let help = help_for(call);
            assert!(help.contains(want), "`{call}`: {help}");
            for (i, _) in help.match_indices('(') {
                let name: String = help[..i]
                    .chars()
                    .rev()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                assert!(
                    name.is_empty() || builtins(&name) == Some(name.as_str()),
                    "`{call}`: help names `{name}`, not a built-in: {help}"
                );
            }
            assert!(!help.contains("??"), "`{call}`: {help}");
        }
    }
}
