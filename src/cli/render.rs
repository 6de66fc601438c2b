//! Rendering diagnostics for people (miette) and for programs (JSON).
//! The only place diagnostics become text.

use crate::diag::{Diagnostic, Severity};
use crate::span::{SourceMap, Span};
use miette::{
    GraphicalReportHandler, GraphicalTheme, LabeledSpan, MietteError, MietteSpanContents, SourceCode, SourceSpan,
    SpanContents,
};
use std::fmt;

/// How to draw human output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// Colours and Unicode (a terminal without NO_COLOR).
    Color,
    /// Unicode drawing, no colour (pipes, files, NO_COLOR, snapshots).
    Plain,
}

impl Style {
    /// Colour only on a terminal, and never with NO_COLOR set.
    pub fn detect(stream_is_terminal: bool) -> Style {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        if stream_is_terminal && !no_color {
            Style::Color
        } else {
            Style::Plain
        }
    }
}

/// A named source whose columns count characters, as the JSON form does.
///
/// miette reports the column of the `file:line:col` header in *bytes* since
/// the start of the line, so a line with `é` or `€` before the span would
/// get a larger column in human output than in JSON (which counts Unicode
/// characters, per CONTRACT.md). This wrapper lets miette find the span and
/// its lines as usual and only recounts the column in characters. (Tabs
/// count as one character in both; miette widens them only when drawing.)
struct CharColumns {
    name: String,
    text: String,
}

impl CharColumns {
    fn new(name: &str, text: &str) -> CharColumns {
        CharColumns { name: name.to_string(), text: text.to_string() }
    }
}

impl SourceCode for CharColumns {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.as_str().read_span(span, context_lines_before, context_lines_after)?;
        // miette's column is the number of bytes between the start of the
        // span's line and the span (0 when context lines are included).
        let bytes = inner.column();
        let column = span
            .offset()
            .checked_sub(bytes)
            .and_then(|line_start| self.text.get(line_start..span.offset()))
            .map_or(bytes, |before| before.chars().count());
        Ok(Box::new(MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line(),
            column,
            inner.line_count(),
        )))
    }
}

/// A diagnostic bound to its source, in the shape miette renders.
struct Report {
    code: String,
    severity: miette::Severity,
    message: String,
    help: Option<String>,
    source: CharColumns,
    labels: Vec<LabeledSpan>,
    /// Labels that point into other files, rendered as related reports.
    related: Vec<Report>,
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        if self.code.is_empty() {
            None
        } else {
            Some(Box::new(&self.code))
        }
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help.as_ref().map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            None
        } else {
            Some(Box::new(self.related.iter().map(|r| r as &dyn miette::Diagnostic)))
        }
    }
}

fn labeled(span: Span, text: &str, primary: bool) -> LabeledSpan {
    let label = if text.is_empty() { None } else { Some(text.to_string()) };
    if primary {
        LabeledSpan::new_primary_with_span(label, (span.start as usize, span.len()))
    } else {
        LabeledSpan::new_with_span(label, (span.start as usize, span.len()))
    }
}

fn report(d: &Diagnostic, sources: &SourceMap) -> Report {
    let file = sources.get(d.span.file);
    let mut labels = vec![labeled(d.span, &d.label, true)];
    let mut related = Vec::new();
    for l in &d.labels {
        if l.span.file == d.span.file {
            labels.push(labeled(l.span, &l.message, false));
        } else {
            let other = sources.get(l.span.file);
            // A note in another file ("first declared here" in the schema),
            // shown as advice: it is not a second problem.
            related.push(Report {
                code: String::new(),
                severity: miette::Severity::Advice,
                message: l.message.clone(),
                help: None,
                source: CharColumns::new(&other.name, &other.text),
                labels: vec![labeled(l.span, "", true)],
                related: vec![],
            });
        }
    }
    Report {
        code: d.code.as_str().to_string(),
        severity: match d.severity {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        },
        message: d.message.clone(),
        help: d.help.clone(),
        source: CharColumns::new(&file.name, &file.text),
        labels,
        related,
    }
}

/// Render diagnostics as miette reports, then a one-line summary.
pub fn human(diags: &[Diagnostic], sources: &SourceMap, style: Style) -> String {
    let theme = match style {
        Style::Color => GraphicalTheme::unicode(),
        Style::Plain => GraphicalTheme::unicode_nocolor(),
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false);
    let mut out = String::new();
    for d in diags {
        let r = report(d, sources);
        if handler.render_report(&mut out, &r).is_err() {
            out.push_str(&format!("{}[{}]: {}\n", d.severity.as_str(), d.code, d.message));
        }
        out.push('\n');
    }
    out
}

/// `error: 2 errors, 1 warning` style summary (empty when there is nothing).
pub fn summary(errors: usize, warnings: usize) -> String {
    let plural = |n: usize, w: &str| format!("{n} {w}{}", if n == 1 { "" } else { "s" });
    match (errors, warnings) {
        (0, 0) => String::new(),
        (0, w) => format!("check passed with {}\n", plural(w, "warning")),
        (e, 0) => format!("check failed: {}\n", plural(e, "error")),
        (e, w) => format!("check failed: {}, {}\n", plural(e, "error"), plural(w, "warning")),
    }
}

/// The JSON form of CONTRACT.md: `{"diagnostics":[...], "errors": N, "warnings": N}`.
pub fn json(diags: &[Diagnostic], sources: &SourceMap) -> serde_json::Value {
    use serde_json::json;
    let pos = |span: Span| {
        let f = sources.get(span.file);
        let (line, column) = f.line_col(span.start as usize);
        (f.name.clone(), line, column)
    };
    let items: Vec<serde_json::Value> = diags
        .iter()
        .map(|d| {
            let (file, line, column) = pos(d.span);
            let mut labels = vec![];
            if !d.label.is_empty() {
                labels.push(json!({
                    "message": d.label, "line": line, "column": column,
                    "offset": d.span.start, "length": d.span.len(),
                }));
            }
            for l in &d.labels {
                // CONTRACT.md's label shape has no `file`: a label in another
                // file (rare: a duplicate declared in the schema file) names
                // it in its message instead.
                let (lfile, lline, lcol) = pos(l.span);
                let message =
                    if l.span.file == d.span.file { l.message.clone() } else { format!("{} (in {lfile})", l.message) };
                labels.push(json!({
                    "message": message, "line": lline, "column": lcol,
                    "offset": l.span.start, "length": l.span.len(),
                }));
            }
            json!({
                "code": d.code.as_str(),
                "severity": d.severity.as_str(),
                "message": d.message,
                "file": file,
                "line": line,
                "column": column,
                "offset": d.span.start,
                "length": d.span.len(),
                "labels": labels,
                "help": d.help,
            })
        })
        .collect();
    let errors = diags.iter().filter(|d| d.is_error()).count();
    json!({ "diagnostics": items, "errors": errors, "warnings": diags.len() - errors })
}
