//! The surface syntax: the pest grammar (`grammar/herald.pest`), the AST and
//! the translation of pest's failures into readable diagnostics. No pest type
//! leaves this module.
//!
//! Parsing runs in three steps:
//! 1. [`scan`] cuts the file into top-level items and finds lexical errors
//!    (unterminated strings, unbalanced brackets) in one linear pass;
//! 2. pest parses each item on its own (`parser`), so one broken item
//!    does not hide the next;
//! 3. `build` turns pest's pairs into the [`ast`], with absolute spans.
//!
//! [`fmt`] formats a file that parses (`herald fmt`) from the same parse
//! tree, keeping comments.
//!
//! Each broken item gives exactly one diagnostic (the first problem in it);
//! errors are data ([`error::SyntaxError`]) until the end, where each becomes
//! a [`Diagnostic`].

pub mod ast;
mod build;
mod error;
pub mod fmt;
mod parser;
mod scan;

pub use scan::KEYWORDS;

use crate::diag::Diagnostic;
use crate::span::{FileId, Span};
use build::Builder;
use error::SyntaxError;
use parser::{HeraldParser, Rule};
use pest::error::{ErrorVariant, InputLocation};
use pest::Parser as _;

/// The result of parsing one file: the items that parsed and the
/// diagnostics for those that did not.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub ast: ast::File,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parse one source file. Never fails and never panics: what does not
/// parse is reported in `diagnostics` and left out of `ast`. Every span is a
/// byte range into `text` tagged with `file`.
pub fn parse(file: FileId, text: &str) -> Parsed {
    let scan = scan::scan(text);
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for chunk in &scan.chunks {
        parse_chunk(file, text, &scan, chunk, &mut items, &mut errors);
    }
    Parsed { ast: ast::File { items }, diagnostics: errors.iter().map(SyntaxError::to_diagnostic).collect() }
}

/// Parse a lone expression (for tests and tools). `None` when it does not
/// parse; the diagnostics say why.
pub fn parse_expr(file: FileId, text: &str) -> (Option<ast::Expr>, Vec<Diagnostic>) {
    let scan = scan::scan(text);
    let lex = scan.chunks.iter().filter_map(|c| c.error.clone()).min_by_key(|e| e.anchor());
    let too_big = scan
        .chunks
        .iter()
        .filter_map(|c| c.error.as_ref())
        .find(|e| matches!(e, scan::LexError::TooDeep { .. } | scan::LexError::TooComplex { .. }));
    if let Some(e) = too_big {
        return (None, vec![error::from_lex(file, e).to_diagnostic()]);
    }
    let (expr, errors) = match HeraldParser::parse(Rule::expr_entry, text) {
        Ok(pairs) => {
            let mut b = Builder::new(file, 0, text.len(), &scan);
            let expr = pairs.into_iter().find(|p| p.as_rule() == Rule::expr).map(|p| b.expr(p));
            let mut errors = b.errors;
            if let Some(e) = &lex {
                errors.insert(0, error::from_lex(file, e));
            }
            (expr.filter(|_| errors.is_empty()), errors)
        }
        Err(e) => {
            let err = pest_failure(file, text, &scan, 0, text.len(), e);
            let err = match lex {
                Some(l) if l.anchor() <= err.span().start as usize => error::from_lex(file, &l),
                _ => err,
            };
            (None, vec![err])
        }
    };
    (expr, errors.iter().map(SyntaxError::to_diagnostic).collect())
}

fn parse_chunk(
    file: FileId,
    text: &str,
    scan: &scan::Scan,
    chunk: &scan::Chunk,
    items: &mut Vec<ast::Item>,
    errors: &mut Vec<SyntaxError>,
) {
    let src = &text[chunk.start..chunk.end];
    // Items nested too deeply or with too many operators never reach pest:
    // parsing them (and building and checking their AST) recurses once per
    // level and could overflow the stack.
    if let Some(e @ (scan::LexError::TooDeep { .. } | scan::LexError::TooComplex { .. })) = &chunk.error {
        errors.push(error::from_lex(file, e));
        return;
    }
    match HeraldParser::parse(Rule::item_entry, src) {
        Ok(pairs) => {
            let mut b = Builder::new(file, chunk.start, chunk.end, scan);
            items.extend(b.items(pairs));
            // A lexical error in a chunk that parses cannot happen with the
            // current grammar; report it anyway rather than lose it.
            if let Some(e) = &chunk.error {
                errors.push(error::from_lex(file, e));
            }
            errors.extend(b.errors);
        }
        Err(e) => {
            let pest_err = pest_failure(file, text, scan, chunk.start, chunk.end, e);
            let pest_pos = pest_err.span().start as usize;
            // The first problem of the item: a lexical one unless pest
            // failed before it.
            let err = match &chunk.error {
                Some(l) if l.anchor() <= pest_pos => error::from_lex(file, l),
                // `"{a.b c"`: pest stops at `c`, inside an interpolation the
                // scanner knows is never closed. Say so, at pest's position.
                Some(scan::LexError::Unclosed {
                    open, open_ch, opener: opener @ scan::Opener::Interpolation, ..
                }) if *open < pest_pos => SyntaxError::Unclosed {
                    at: Span::point(file, pest_pos),
                    open: Span::new(file, *open, open + 1),
                    open_ch: *open_ch,
                    opener: opener.clone(),
                },
                _ => pest_err,
            };
            // Stray text after a complete item: keep the item.
            if let SyntaxError::ExpectedItem { at, .. } | SyntaxError::Stray { at, .. } = &err {
                if let Ok(pairs) = HeraldParser::parse(Rule::item_prefix, src) {
                    let mut b = Builder::new(file, chunk.start, chunk.end, scan);
                    let built = b.items(pairs);
                    let end = built.last().map_or(usize::MAX, |i| i.span().end as usize);
                    if end <= at.start as usize {
                        items.extend(built);
                        errors.extend(b.errors);
                    }
                }
            }
            errors.push(err);
        }
    }
}

/// Translate pest's failure on `text[start..end]` into a syntax error with
/// absolute positions.
fn pest_failure(
    file: FileId,
    text: &str,
    scan: &scan::Scan,
    start: usize,
    end: usize,
    e: pest::error::Error<Rule>,
) -> SyntaxError {
    let rel = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let pos = start + rel;
    match e.variant {
        ErrorVariant::ParsingError { positives, .. } => error::translate(file, text, scan, pos, end, &positives),
        ErrorVariant::CustomError { .. } => SyntaxError::LimitReached { at: Span::point(file, pos.min(text.len())) },
    }
}
