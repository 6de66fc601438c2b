//! `herald fmt`: one canonical layout for everything the grammar accepts.
//!
//! The formatter works on pest's parse tree (every token of the grammar is a
//! named rule, so the tree's leaves are exactly the source's tokens) plus the
//! source text: comments are not tokens (they are part of the silent
//! `WHITESPACE` rule), so they are recovered from the gaps between leaves and
//! re-emitted at the token that follows them. A comment with no line break
//! between it and the previous token is *trailing* (it stays at the end of that
//! line); any other is an *own-line* comment.
//!
//! Layout (docs/fmt.md has the user-facing description):
//! - two spaces per level; items, clauses, statements one per line;
//! - blank lines are kept between items, clauses, statements, fields and broken
//!   arguments (several collapse to one); a `rule` is always set apart by one;
//! - a call's arguments, a list, a pattern block and a field block are written
//!   on one line when that line stays within [`WIDTH`] columns and holds no
//!   comment; otherwise one element per line, each followed by a comma;
//! - other expressions are never wrapped; a comment inside one breaks the line
//!   after it and the expression continues four spaces deeper;
//! - string literals (interpolations included) and numbers are kept verbatim.
//!
//! Adding a construct to the grammar usually needs nothing here: a rule without
//! a case in [`Fmt::node`] is written token by token, with the spacing of
//! [`space_between`]. A construct with a layout of its own (a block, a
//! breakable list) gets one arm in `node` calling [`Fmt::delimited`] or
//! [`Fmt::block`].
//!
//! Before it returns, [`format`] re-parses its output and compares the token
//! sequence (commas aside) and the comments with the input's: a formatter bug
//! becomes an error, never a changed program or a lost comment.

use super::parser::{HeraldParser, Rule};
use super::scan;
use crate::diag::Diagnostic;
use crate::span::FileId;
use pest::iterators::Pair;
use pest::Parser as _;

/// The column limit of the "fits on one line" test.
pub const WIDTH: usize = 100;
/// A list is broken only when it opens at or before this column.
pub const BREAK_BEFORE: usize = 60;
const INDENT: &str = "  ";

/// Why a file was not formatted.
#[derive(Debug, Clone)]
pub enum FormatError {
    /// The file does not parse; these are its diagnostics (as `check` reports them).
    Syntax(Vec<Diagnostic>),
    /// The formatter's own safety check failed (a bug: the file is left alone).
    Internal(String),
}

/// Format one file. `Ok` holds the canonical text (equal to `text` when it is
/// already formatted).
pub fn format(text: &str) -> Result<String, FormatError> {
    let parsed = super::parse(FileId(0), text);
    let errors: Vec<Diagnostic> = parsed.diagnostics.into_iter().filter(|d| d.is_error()).collect();
    if !errors.is_empty() {
        return Err(FormatError::Syntax(errors));
    }
    let items = parse_items(text).map_err(FormatError::Internal)?;
    let out = format_items(text, &items);
    // Safety net: the same tokens (commas aside) and the same comments.
    let again =
        parse_items(&out).map_err(|e| FormatError::Internal(format!("the formatted text does not parse: {e}")))?;
    let (t0, c0) = tokens_and_comments(text, &items);
    let (t1, c1) = tokens_and_comments(&out, &again);
    if t0 != t1 {
        return Err(FormatError::Internal("formatting would change the tokens of the program".into()));
    }
    if c0 != c1 {
        return Err(FormatError::Internal("formatting would lose or change a comment".into()));
    }
    Ok(out)
}

/// The comments of a file that parses, in order, without their `#` and
/// trailing blanks (for tests: nothing may get lost).
pub fn comments(text: &str) -> Option<Vec<String>> {
    let items = parse_items(text).ok()?;
    Some(tokens_and_comments(text, &items).1)
}

/// Parse every top-level item of a file that parses. The pairs are relative
/// to their chunk; the offset is the chunk's start.
fn parse_items(text: &str) -> Result<Vec<(usize, Pair<'_, Rule>)>, String> {
    let scan = scan::scan(text);
    let mut items = Vec::new();
    for chunk in &scan.chunks {
        let src = &text[chunk.start..chunk.end];
        let pairs = HeraldParser::parse(Rule::item_entry, src).map_err(|e| e.to_string())?;
        for p in pairs {
            if p.as_rule() == Rule::item {
                items.push((chunk.start, p));
            }
        }
    }
    Ok(items)
}

/// A leaf of the parse tree: a token. Strings are leaves (kept verbatim).
fn is_leaf(p: &Pair<Rule>) -> bool {
    p.as_rule() == Rule::string || p.clone().into_inner().next().is_none()
}

fn leaves<'i>(p: Pair<'i, Rule>, out: &mut Vec<Pair<'i, Rule>>) {
    if is_leaf(&p) {
        out.push(p);
    } else {
        for c in p.into_inner() {
            leaves(c, out);
        }
    }
}

/// A comment in the source: byte range (the `#` to the line end, blanks
/// trimmed) and text.
#[derive(Debug, Clone)]
struct Comment {
    start: usize,
    end: usize,
}

/// The comments in `text[from..to]`, a stretch of whitespace and comments.
fn gap_comments(text: &str, from: usize, to: usize, out: &mut Vec<Comment>) {
    let bytes = text.as_bytes();
    let mut i = from;
    while i < to {
        if bytes[i] == b'#' {
            let mut j = i;
            while j < to && bytes[j] != b'\n' {
                j += 1;
            }
            let end = i + text[i..j].trim_end().len();
            out.push(Comment { start: i, end });
            i = j;
        } else {
            i += 1;
        }
    }
}

fn all_leaves<'i>(items: &[(usize, Pair<'i, Rule>)]) -> Vec<(usize, Pair<'i, Rule>)> {
    let mut v = Vec::new();
    for (off, item) in items {
        let mut ls = Vec::new();
        leaves(item.clone(), &mut ls);
        v.extend(ls.into_iter().map(|l| (*off, l)));
    }
    v
}

fn all_comments(text: &str, items: &[(usize, Pair<Rule>)]) -> Vec<Comment> {
    let mut comments = Vec::new();
    let mut at = 0;
    for (off, l) in all_leaves(items) {
        let s = off + l.as_span().start();
        gap_comments(text, at, s, &mut comments);
        at = off + l.as_span().end();
    }
    gap_comments(text, at, text.len(), &mut comments);
    comments
}

fn tokens_and_comments(text: &str, items: &[(usize, Pair<Rule>)]) -> (Vec<String>, Vec<String>) {
    let toks = all_leaves(items)
        .into_iter()
        .filter(|(_, l)| l.as_rule() != Rule::comma)
        .map(|(_, l)| l.as_str().to_string())
        .collect();
    let comments = all_comments(text, items).into_iter().map(|c| text[c.start..c.end].to_string()).collect();
    (toks, comments)
}

fn format_items(text: &str, items: &[(usize, Pair<Rule>)]) -> String {
    let mut f = Fmt {
        text,
        comments: all_comments(text, items),
        next_comment: 0,
        out: String::with_capacity(text.len() + 64),
        col: 0,
        indent: 0,
        last_end: None,
        nl: None,
        prev: None,
        glue: false,
        flat: false,
        failed: false,
        off: 0,
    };
    let mut prev_rule = false;
    for (i, (off, item)) in items.iter().enumerate() {
        f.off = *off;
        let decl = item.clone().into_inner().next();
        let is_rule = decl.as_ref().is_some_and(|d| d.as_rule() == Rule::rule_decl);
        if i > 0 {
            f.newline(true, is_rule || prev_rule);
        }
        prev_rule = is_rule;
        f.node(item.clone());
    }
    f.newline(true, false);
    f.flush_comments(text.len());
    let mut out = f.out;
    let trimmed = out.trim_end().len();
    out.truncate(trimmed);
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// A requested line break, written when the next token or comment comes.
#[derive(Debug, Clone, Copy)]
struct Newline {
    /// A blank line in the source here is kept (collapsed to one).
    blank_ok: bool,
    /// Put a blank line here whatever the source has.
    force_blank: bool,
}

struct Fmt<'t> {
    text: &'t str,
    comments: Vec<Comment>,
    next_comment: usize,
    out: String,
    /// Characters since the last line break of `out`.
    col: usize,
    indent: usize,
    /// End (absolute) of the last token or comment written.
    last_end: Option<usize>,
    nl: Option<Newline>,
    /// The last token written (for spacing).
    prev: Option<Rule>,
    /// The next token is written without a space before it.
    glue: bool,
    /// Measuring a one-line layout: any comment or forced break fails it.
    flat: bool,
    failed: bool,
    /// The start of the current item's chunk (pest's positions are relative to it).
    off: usize,
}

/// What [`Fmt::measure`] restores.
struct Snapshot {
    len: usize,
    col: usize,
    next_comment: usize,
    last_end: Option<usize>,
    nl: Option<Newline>,
    prev: Option<Rule>,
    glue: bool,
    flat: bool,
    failed: bool,
}

impl<'t> Fmt<'t> {
    fn snapshot(&self) -> Snapshot {
        Snapshot {
            len: self.out.len(),
            col: self.col,
            next_comment: self.next_comment,
            last_end: self.last_end,
            nl: self.nl,
            prev: self.prev,
            glue: self.glue,
            flat: self.flat,
            failed: self.failed,
        }
    }

    fn restore(&mut self, s: Snapshot) {
        self.out.truncate(s.len);
        self.col = s.col;
        self.next_comment = s.next_comment;
        self.last_end = s.last_end;
        self.nl = s.nl;
        self.prev = s.prev;
        self.glue = s.glue;
        self.flat = s.flat;
        self.failed = s.failed;
    }

    /// Whether `write` laid out on one line fits: no comment, no forced line
    /// break, within [`WIDTH`]. Leaves no trace.
    fn fits(&mut self, write: impl FnOnce(&mut Self)) -> bool {
        if self.flat {
            return true;
        }
        let snap = self.snapshot();
        self.flat = true;
        self.failed = false;
        write(self);
        let ok = !self.failed && self.col <= WIDTH;
        self.restore(snap);
        ok
    }

    fn push(&mut self, s: &str) {
        self.out.push_str(s);
        match s.rfind('\n') {
            Some(i) => self.col = s[i + 1..].chars().count(),
            None => self.col += s.chars().count(),
        }
    }

    fn newline(&mut self, blank_ok: bool, force_blank: bool) {
        if self.flat {
            self.failed = true;
            return;
        }
        let prev = self.nl.unwrap_or(Newline { blank_ok, force_blank });
        self.nl = Some(Newline { blank_ok: blank_ok && prev.blank_ok, force_blank: force_blank || prev.force_blank });
    }

    fn write_indent(&mut self, extra: usize) {
        for _ in 0..self.indent + extra {
            self.push(INDENT);
        }
    }

    fn blank_in_source(&self, to: usize) -> bool {
        // A line holding only blanks; a skipped comma between two line breaks
        // (`a\n,\nb`) is no blank line.
        let from = self.last_end.unwrap_or(0).min(to);
        let lines: Vec<&str> = self.text[from..to].split('\n').collect();
        lines.len() > 2 && lines[1..lines.len() - 1].iter().any(|l| l.trim().is_empty())
    }

    /// Start a line for something beginning at `at`, honouring a pending
    /// line break (or breaking mid-expression when `forced`).
    fn line_start(&mut self, at: usize) {
        if let Some(nl) = self.nl.take() {
            if !self.out.is_empty() {
                let blank = nl.force_blank || (nl.blank_ok && self.blank_in_source(at));
                self.push(if blank { "\n\n" } else { "\n" });
            }
            self.write_indent(0);
        }
    }

    /// Write the comments that start before `pos`.
    fn flush_comments(&mut self, pos: usize) {
        while let Some(c) = self.comments.get(self.next_comment).cloned() {
            if c.start >= pos {
                break;
            }
            if self.flat {
                self.failed = true;
                return;
            }
            self.next_comment += 1;
            let body = &self.text[c.start..c.end];
            let trailing = self.last_end.is_some_and(|e| !self.text[e..c.start].contains('\n')) && !self.out.is_empty();
            if trailing {
                self.push("  ");
                self.push(body);
                self.last_end = Some(c.end);
                if self.nl.is_none() {
                    // A comment inside a line: the rest continues deeper.
                    self.nl = Some(Newline { blank_ok: false, force_blank: false });
                    self.indent += 2;
                    self.line_start(c.end);
                    self.indent -= 2;
                    self.prev = None;
                }
            } else {
                // An own-line comment. Where no line break was due (inside an
                // expression), the comment and what follows go deeper.
                let mid = self.nl.is_none() && !self.out.is_empty();
                if mid {
                    self.nl = Some(Newline { blank_ok: false, force_blank: false });
                    self.indent += 2;
                }
                self.line_start(c.start);
                self.push(body);
                self.last_end = Some(c.end);
                if mid {
                    self.nl = Some(Newline { blank_ok: false, force_blank: false });
                    self.line_start(pos);
                    self.indent -= 2;
                    self.prev = None;
                } else {
                    self.nl = Some(Newline { blank_ok: true, force_blank: false });
                }
            }
        }
    }

    /// Whether a comment not yet written starts before `pos`.
    fn comment_before(&self, pos: usize) -> bool {
        self.comments.get(self.next_comment).is_some_and(|c| c.start < pos)
    }

    /// Write one token.
    fn tok(&mut self, p: &Pair<Rule>) {
        let start = self.off + p.as_span().start();
        self.flush_comments(start);
        if self.flat && self.failed {
            return;
        }
        let at_line_start = self.nl.is_some() || self.out.is_empty() || self.out.ends_with('\n');
        self.line_start(start);
        let rule = p.as_rule();
        if !at_line_start && !self.glue && self.prev.is_some_and(|prev| space_between(prev, rule)) {
            self.push(" ");
        }
        self.glue = false;
        self.push(p.as_str());
        self.prev = Some(rule);
        self.last_end = Some(self.off + p.as_span().end());
    }

    /// Write a subtree.
    fn node(&mut self, p: Pair<Rule>) {
        if self.flat && self.failed {
            return;
        }
        if is_leaf(&p) {
            self.tok(&p);
            return;
        }
        match p.as_rule() {
            Rule::rule_decl => {
                let mut clauses = Vec::new();
                let (mut open, mut close) = (None, None);
                for c in p.into_inner() {
                    match c.as_rule() {
                        Rule::lbrace => open = Some(c),
                        Rule::rbrace => close = Some(c),
                        Rule::clause => clauses.push(c),
                        _ if open.is_none() => self.node(c),
                        _ => {}
                    }
                }
                self.block(open, clauses, close);
            }
            Rule::block => {
                let mut stmts = Vec::new();
                let (mut open, mut close) = (None, None);
                for c in p.into_inner() {
                    match c.as_rule() {
                        Rule::lbrace => open = Some(c),
                        Rule::rbrace => close = Some(c),
                        _ => stmts.push(c),
                    }
                }
                self.block(open, stmts, close);
            }
            // `test "name" { steps }`: one step per line, like a rule's clauses.
            Rule::test_decl => {
                let mut steps = Vec::new();
                let (mut open, mut close) = (None, None);
                for c in p.into_inner() {
                    match c.as_rule() {
                        Rule::lbrace if open.is_none() => open = Some(c),
                        Rule::rbrace => close = Some(c),
                        Rule::test_step => steps.push(c),
                        _ if open.is_none() => self.node(c),
                        _ => {}
                    }
                }
                self.block(open, steps, close);
            }
            Rule::field_block | Rule::pattern_block | Rule::object => self.delimited(p, true),
            Rule::list | Rule::call => self.delimited(p, false),
            Rule::if_stmt => {
                for c in p.into_inner() {
                    // `} else {` shares a line, unless comments come between:
                    // then `else` starts a line of its own after them.
                    if c.as_rule() == Rule::kw_else && self.comment_before(self.off + c.as_span().start()) {
                        self.newline(false, false);
                    }
                    self.node(c);
                }
            }
            Rule::index => {
                for (i, c) in p.into_inner().enumerate() {
                    if i == 0 {
                        self.glue = true;
                    }
                    self.node(c);
                }
            }
            Rule::query => {
                for c in p.into_inner() {
                    if c.as_rule() == Rule::lparen {
                        self.glue = true;
                    }
                    self.node(c);
                }
            }
            _ => {
                for c in p.into_inner() {
                    self.node(c);
                }
            }
        }
    }

    /// `{ ... }` whose elements go one per line (rule bodies, statement
    /// blocks). An empty one is `{}`.
    fn block(&mut self, open: Option<Pair<Rule>>, elems: Vec<Pair<Rule>>, close: Option<Pair<Rule>>) {
        let (Some(open), Some(close)) = (open, close) else { return };
        self.tok(&open);
        let close_at = self.off + close.as_span().start();
        let has_comment = self.comments.get(self.next_comment).is_some_and(|c| c.start < close_at);
        if elems.is_empty() && !has_comment {
            self.glue = true;
            self.tok(&close);
            return;
        }
        if self.flat {
            self.failed = true;
            return;
        }
        self.indent += 1;
        for (i, e) in elems.into_iter().enumerate() {
            self.newline(i > 0, false);
            self.node(e);
        }
        self.newline(true, false);
        self.flush_comments(close_at);
        self.indent -= 1;
        self.nl = Some(Newline { blank_ok: false, force_blank: false });
        self.tok(&close);
    }

    /// A bracketed, comma-separated list: call arguments, list elements,
    /// field and pattern blocks. One line when it fits; otherwise one element
    /// per line with a trailing comma. `spaced`: `{ a }` rather than `(a)`.
    fn delimited(&mut self, p: Pair<Rule>, spaced: bool) {
        let mut head = Vec::new();
        let mut elems = Vec::new();
        let (mut open, mut close) = (None, None);
        for c in p.into_inner() {
            match c.as_rule() {
                Rule::lbrace | Rule::lbrack | Rule::call_open if open.is_none() => open = Some(c),
                Rule::rbrace | Rule::rbrack | Rule::rparen => close = Some(c),
                Rule::comma => {}
                _ if open.is_none() => head.push(c),
                _ => elems.push(c),
            }
        }
        let (Some(open), Some(close)) = (open, close) else { return };
        for h in head {
            self.node(h);
        }
        if open.as_rule() == Rule::call_open {
            self.glue = true;
        }
        let one_line = |f: &mut Self| {
            f.tok(&open);
            for (i, e) in elems.iter().enumerate() {
                if i == 0 {
                    f.glue = !spaced;
                } else {
                    f.push(",");
                    f.prev = Some(Rule::comma);
                }
                f.node(e.clone());
            }
            f.glue = !spaced || elems.is_empty();
            let close_at = f.off + close.as_span().start();
            f.flush_comments(close_at);
            f.tok(&close);
        };
        // Breaking a list that opens far to the right gains little (`... or
        // empty(` then one short argument): it stays on the long line.
        let open_at = self.off + open.as_span().start();
        let close_at = self.off + close.as_span().start();
        let has_comment = self.comments[self.next_comment..].iter().any(|c| c.start > open_at && c.start < close_at);
        let col = if self.nl.is_some() { self.indent * INDENT.len() } else { self.col };
        if has_comment || (col <= BREAK_BEFORE && !self.fits(one_line)) {
            return self.broken(open, elems, close);
        }
        {
            let was = self.flat;
            self.flat = true;
            one_line(self);
            self.flat = was;
        }
    }

    fn broken(&mut self, open: Pair<Rule>, elems: Vec<Pair<Rule>>, close: Pair<Rule>) {
        self.tok(&open);
        self.indent += 1;
        for (i, e) in elems.into_iter().enumerate() {
            self.newline(i > 0, false);
            self.node(e);
            self.glue = true;
            self.push(",");
            self.glue = false;
            self.prev = Some(Rule::comma);
        }
        self.newline(true, false);
        self.flush_comments(self.off + close.as_span().start());
        self.indent -= 1;
        self.nl = Some(Newline { blank_ok: false, force_blank: false });
        self.tok(&close);
    }
}

/// Whether a space separates two adjacent tokens on a line (before layout
/// overrides such as a call's `(` or an index's `[`).
fn space_between(prev: Rule, next: Rule) -> bool {
    use Rule::*;
    if matches!(prev, lparen | call_open | lbrack | dot | neg_op) {
        return false;
    }
    !matches!(next, rparen | rbrack | comma | dot | colon | arg_colon | call_open | question)
}
