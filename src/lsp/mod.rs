//! `herald lsp`: a Language Server over stdio (`lsp-server` + `lsp-types`).
//!
//! Every open document is checked on its own (full text sync) against the
//! schema of the workspace: `schema` from the initialization options, else
//! `schema = "..."` in a `herald.toml` at the workspace root (relative to
//! it), else the policy's own schema items or the built-in authentik schema,
//! as `herald check` chooses. Queries go to [`crate::analysis`] with byte
//! offsets; this module converts LSP positions, which count UTF-16 code
//! units, to and from them.

use crate::analysis::{self, CompletionKind as CK};
use crate::compile::{self, Compiled, SchemaChoice};
use crate::diag::{self, Diagnostic};
use crate::span::{FileId, SourceMap, Span};
use crate::syntax;
use lsp_server::{Connection, Message, Notification, Request, Response};
use lsp_types as lt;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Run the server until the client says `exit`; returns the exit code.
pub fn main() -> i32 {
    let (conn, io) = Connection::stdio();
    let code = match serve(&conn) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("herald lsp: {e}");
            1
        }
    };
    drop(conn);
    let _ = io.join();
    code
}

fn capabilities() -> lt::ServerCapabilities {
    lt::ServerCapabilities {
        text_document_sync: Some(lt::TextDocumentSyncCapability::Kind(lt::TextDocumentSyncKind::FULL)),
        hover_provider: Some(lt::HoverProviderCapability::Simple(true)),
        completion_provider: Some(lt::CompletionOptions {
            trigger_characters: Some(vec![".".into(), "{".into(), ",".into(), "(".into()]),
            ..Default::default()
        }),
        definition_provider: Some(lt::OneOf::Left(true)),
        code_action_provider: Some(lt::CodeActionProviderCapability::Simple(true)),
        document_formatting_provider: Some(lt::OneOf::Left(true)),
        ..Default::default()
    }
}

struct Server {
    /// The schema file, when one is configured.
    schema: Option<PathBuf>,
    docs: HashMap<String, String>,
}

/// One checked document.
struct Analysis {
    sources: SourceMap,
    file: FileId,
    compiled: Compiled,
    ast: syntax::ast::File,
}

fn serve(conn: &Connection) -> Result<(), String> {
    let caps = serde_json::to_value(capabilities()).map_err(|e| e.to_string())?;
    let init = conn.initialize(caps).map_err(|e| e.to_string())?;
    let params: lt::InitializeParams = serde_json::from_value(init).map_err(|e| e.to_string())?;
    let mut server = Server { schema: configured_schema(&params), docs: HashMap::new() };
    for msg in &conn.receiver {
        match msg {
            Message::Request(req) => {
                if conn.handle_shutdown(&req).map_err(|e| e.to_string())? {
                    return Ok(());
                }
                // A bug in a query must not end the editing session: a panic
                // becomes an error response to that request.
                let id = req.id.clone();
                let resp = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.request(req)))
                    .unwrap_or_else(|_| {
                        Response::new_err(id, lsp_server::ErrorCode::InternalError as i32, "internal error".into())
                    });
                conn.sender.send(Message::Response(resp)).map_err(|e| e.to_string())?;
            }
            Message::Notification(n) => {
                let publish = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| server.notification(n)));
                if let Ok(Some(publish)) = publish {
                    conn.sender.send(Message::Notification(publish)).map_err(|e| e.to_string())?;
                }
            }
            Message::Response(_) => {}
        }
    }
    Ok(())
}

/// `schema` from the initialization options, else from `herald.toml` in
/// the workspace root.
fn configured_schema(params: &lt::InitializeParams) -> Option<PathBuf> {
    let root =
        params.workspace_folders.as_ref().and_then(|f| f.first()).and_then(|f| uri_path(f.uri.as_str())).or_else(
            || {
                #[allow(deprecated)]
                params.root_uri.as_ref().and_then(|u| uri_path(u.as_str()))
            },
        );
    let from_options = params
        .initialization_options
        .as_ref()
        .and_then(|o| o.get("schema"))
        .and_then(|s| s.as_str())
        .map(PathBuf::from);
    let rel = from_options.or_else(|| {
        let text = std::fs::read_to_string(root.as_ref()?.join("herald.toml")).ok()?;
        toml_schema(&text).map(PathBuf::from)
    })?;
    Some(match (&root, rel.is_relative()) {
        (Some(r), true) => r.join(rel),
        _ => rel,
    })
}

/// The `schema = "..."` line of a `herald.toml` (the only key read; no TOML
/// library for one string).
fn toml_schema(text: &str) -> Option<String> {
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(rest) = line.strip_prefix("schema") {
            let v = rest.trim_start().strip_prefix('=')?.trim();
            return Some(v.trim_matches(|c| c == '"' || c == '\'').to_string());
        }
        if line.starts_with('[') {
            // Keys under a table are not ours.
            return None;
        }
    }
    None
}

/// The file path of a `file://` URI (percent-decoded).
fn uri_path(uri: &str) -> Option<PathBuf> {
    let rest = uri.strip_prefix("file://")?;
    let mut bytes = Vec::new();
    let b = rest.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&rest[i + 1..i + 3], 16) {
                bytes.push(v);
                i += 3;
                continue;
            }
        }
        bytes.push(b[i]);
        i += 1;
    }
    String::from_utf8(bytes).ok().map(PathBuf::from)
}

fn path_uri(p: &Path) -> Option<lt::Uri> {
    let s: String = p
        .to_string_lossy()
        .bytes()
        .map(|c| match c {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => (c as char).to_string(),
            _ => format!("%{c:02X}"),
        })
        .collect();
    lt::Uri::from_str(&format!("file://{s}")).ok()
}

impl Server {
    fn analyse(&self, uri: &str) -> Option<Analysis> {
        let text = self.docs.get(uri)?;
        let mut sources = SourceMap::new();
        let mut choice = SchemaChoice::Auto;
        if let Some(p) = &self.schema {
            if let Ok(t) = std::fs::read_to_string(p) {
                choice = SchemaChoice::File(sources.add(p.display().to_string(), t));
            }
        }
        let file = sources.add(uri.to_string(), text.clone());
        let ast = syntax::parse(file, text).ast;
        let compiled = compile::compile(&mut sources, choice, &[file]);
        Some(Analysis { sources, file, compiled, ast })
    }

    fn notification(&mut self, n: Notification) -> Option<Notification> {
        let uri = match n.method.as_str() {
            "textDocument/didOpen" => {
                let p: lt::DidOpenTextDocumentParams = serde_json::from_value(n.params).ok()?;
                let uri = p.text_document.uri.as_str().to_string();
                self.docs.insert(uri.clone(), p.text_document.text);
                uri
            }
            "textDocument/didChange" => {
                let p: lt::DidChangeTextDocumentParams = serde_json::from_value(n.params).ok()?;
                let uri = p.text_document.uri.as_str().to_string();
                // Full sync: the last change holds the whole text.
                let text = p.content_changes.into_iter().last()?.text;
                self.docs.insert(uri.clone(), text);
                uri
            }
            "textDocument/didClose" => {
                let p: lt::DidCloseTextDocumentParams = serde_json::from_value(n.params).ok()?;
                self.docs.remove(p.text_document.uri.as_str());
                let params =
                    lt::PublishDiagnosticsParams { uri: p.text_document.uri, diagnostics: vec![], version: None };
                return Some(Notification::new("textDocument/publishDiagnostics".into(), params));
            }
            _ => return None,
        };
        let a = self.analyse(&uri)?;
        let diagnostics =
            a.compiled.diagnostics.iter().filter(|d| d.span.file == a.file).map(|d| lsp_diagnostic(&a, d)).collect();
        let params = lt::PublishDiagnosticsParams { uri: lt::Uri::from_str(&uri).ok()?, diagnostics, version: None };
        Some(Notification::new("textDocument/publishDiagnostics".into(), params))
    }

    fn request(&mut self, req: Request) -> Response {
        let id = req.id.clone();
        let result = match req.method.as_str() {
            "textDocument/hover" => self.hover(req.params),
            "textDocument/completion" => self.completion(req.params),
            "textDocument/definition" => self.definition(req.params),
            "textDocument/codeAction" => self.code_action(req.params),
            "textDocument/formatting" => self.formatting(req.params),
            _ => {
                return Response::new_err(
                    id,
                    lsp_server::ErrorCode::MethodNotFound as i32,
                    format!("unsupported request {}", req.method),
                )
            }
        };
        match result {
            Ok(v) => Response::new_ok(id, v),
            Err(e) => Response::new_err(id, lsp_server::ErrorCode::InvalidParams as i32, e),
        }
    }

    fn position_query(&self, params: lt::TextDocumentPositionParams) -> Result<(Analysis, usize), String> {
        let uri = params.text_document.uri.as_str();
        let a = self.analyse(uri).ok_or_else(|| format!("document {uri} is not open"))?;
        let off = offset(a.sources.text(a.file), params.position);
        Ok((a, off))
    }

    fn hover(&self, params: serde_json::Value) -> Result<serde_json::Value, String> {
        let p: lt::HoverParams = serde_json::from_value(params).map_err(|e| e.to_string())?;
        let (a, off) = self.position_query(p.text_document_position_params)?;
        let text = a.sources.text(a.file);
        let Some((span, doc)) = analysis::hover(a.compiled.program.as_ref(), text, a.file, off) else {
            return Ok(serde_json::Value::Null);
        };
        let hover = lt::Hover {
            contents: lt::HoverContents::Markup(lt::MarkupContent { kind: lt::MarkupKind::Markdown, value: doc }),
            range: Some(range(text, span)),
        };
        serde_json::to_value(hover).map_err(|e| e.to_string())
    }

    fn completion(&self, params: serde_json::Value) -> Result<serde_json::Value, String> {
        let p: lt::CompletionParams = serde_json::from_value(params).map_err(|e| e.to_string())?;
        let (a, off) = self.position_query(p.text_document_position)?;
        let text = a.sources.text(a.file);
        let items: Vec<lt::CompletionItem> = analysis::complete(&a.compiled.schema, Some(&a.ast), text, off)
            .into_iter()
            .map(|c| lt::CompletionItem {
                label: c.label,
                kind: Some(match c.kind {
                    CK::Field => lt::CompletionItemKind::FIELD,
                    CK::Function => lt::CompletionItemKind::FUNCTION,
                    CK::Action => lt::CompletionItemKind::METHOD,
                    CK::Rule => lt::CompletionItemKind::MODULE,
                    CK::Const => lt::CompletionItemKind::CONSTANT,
                    CK::Entity => lt::CompletionItemKind::STRUCT,
                }),
                detail: Some(c.detail),
                ..Default::default()
            })
            .collect();
        serde_json::to_value(lt::CompletionResponse::Array(items)).map_err(|e| e.to_string())
    }

    fn definition(&self, params: serde_json::Value) -> Result<serde_json::Value, String> {
        let p: lt::GotoDefinitionParams = serde_json::from_value(params).map_err(|e| e.to_string())?;
        let uri = p.text_document_position_params.text_document.uri.clone();
        let (a, off) = self.position_query(p.text_document_position_params)?;
        let text = a.sources.text(a.file);
        let Some(span) = analysis::definition(a.compiled.program.as_ref(), &a.ast, text, a.file, off) else {
            return Ok(serde_json::Value::Null);
        };
        let target_uri = if span.file == a.file {
            Some(uri)
        } else {
            // A definition in the schema file; the built-in schema has no file.
            self.schema.as_deref().filter(|_| a.sources.get(span.file).name != "authentik").and_then(path_uri)
        };
        let Some(target_uri) = target_uri else { return Ok(serde_json::Value::Null) };
        let loc = lt::Location { uri: target_uri, range: range(a.sources.text(span.file), span) };
        serde_json::to_value(lt::GotoDefinitionResponse::Scalar(loc)).map_err(|e| e.to_string())
    }

    // `WorkspaceEdit::changes` is a map keyed by `Uri`, whose cached parts
    // clippy counts as interior mutability; the keys are never mutated.
    #[allow(clippy::mutable_key_type)]
    fn code_action(&self, params: serde_json::Value) -> Result<serde_json::Value, String> {
        let p: lt::CodeActionParams = serde_json::from_value(params).map_err(|e| e.to_string())?;
        let uri = p.text_document.uri.clone();
        let a = self.analyse(uri.as_str()).ok_or("document not open")?;
        let text = a.sources.text(a.file);
        let (lo, hi) = (offset(text, p.range.start), offset(text, p.range.end));
        let mut actions = Vec::new();
        for d in a.compiled.diagnostics.iter().filter(|d| d.span.file == a.file) {
            let (s, e) = (d.span.start as usize, d.span.end as usize);
            if e < lo || s > hi {
                continue;
            }
            let Some((span, new)) = analysis::suggested_fix(d) else { continue };
            let edit = lt::TextEdit { range: range(text, span), new_text: new.clone() };
            let mut changes = HashMap::new();
            changes.insert(uri.clone(), vec![edit]);
            actions.push(lt::CodeActionOrCommand::CodeAction(lt::CodeAction {
                title: format!("Replace with `{new}`"),
                kind: Some(lt::CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![lsp_diagnostic(&a, d)]),
                edit: Some(lt::WorkspaceEdit { changes: Some(changes), ..Default::default() }),
                is_preferred: Some(true),
                ..Default::default()
            }));
        }
        serde_json::to_value(actions).map_err(|e| e.to_string())
    }

    fn formatting(&self, params: serde_json::Value) -> Result<serde_json::Value, String> {
        let p: lt::DocumentFormattingParams = serde_json::from_value(params).map_err(|e| e.to_string())?;
        let text = self.docs.get(p.text_document.uri.as_str()).ok_or("document not open")?;
        match syntax::fmt::format(text) {
            Ok(out) if out == *text => serde_json::to_value(Vec::<lt::TextEdit>::new()).map_err(|e| e.to_string()),
            Ok(out) => {
                let whole = range(text, Span::new(FileId(0), 0, text.len()));
                serde_json::to_value(vec![lt::TextEdit { range: whole, new_text: out }]).map_err(|e| e.to_string())
            }
            // A file that does not parse is not formatted; its diagnostics
            // are already published.
            Err(_) => Ok(serde_json::Value::Null),
        }
    }
}

fn lsp_diagnostic(a: &Analysis, d: &Diagnostic) -> lt::Diagnostic {
    let text = a.sources.text(a.file);
    let uri = lt::Uri::from_str(&a.sources.get(a.file).name).ok();
    let related: Vec<lt::DiagnosticRelatedInformation> = d
        .labels
        .iter()
        .filter(|l| l.span.file == a.file)
        .filter_map(|l| {
            Some(lt::DiagnosticRelatedInformation {
                location: lt::Location { uri: uri.clone()?, range: range(text, l.span) },
                message: l.message.clone(),
            })
        })
        .collect();
    let mut message = d.message.clone();
    if let Some(h) = &d.help {
        message.push_str("\nhelp: ");
        message.push_str(h);
    }
    lt::Diagnostic {
        range: range(text, d.span),
        severity: Some(match d.severity {
            diag::Severity::Error => lt::DiagnosticSeverity::ERROR,
            _ => lt::DiagnosticSeverity::WARNING,
        }),
        code: Some(lt::NumberOrString::String(d.code.as_str().to_string())),
        source: Some("herald".into()),
        message,
        related_information: (!related.is_empty()).then_some(related),
        ..Default::default()
    }
}

/// The LSP position (line, UTF-16 column) of a byte offset.
pub fn position(text: &str, offset: usize) -> lt::Position {
    let offset = offset.min(text.len());
    let mut offset = offset;
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[..line_start].matches('\n').count();
    let character: usize = text[line_start..offset].chars().map(char::len_utf16).sum();
    lt::Position { line: line as u32, character: character as u32 }
}

/// The byte offset of an LSP position (clamped to its line and the text).
pub fn offset(text: &str, pos: lt::Position) -> usize {
    let mut line_start = 0;
    for _ in 0..pos.line {
        match text[line_start..].find('\n') {
            Some(i) => line_start += i + 1,
            None => return text.len(),
        }
    }
    let line_end = text[line_start..].find('\n').map_or(text.len(), |i| line_start + i);
    let mut units = 0u32;
    for (i, c) in text[line_start..line_end].char_indices() {
        if units >= pos.character {
            return line_start + i;
        }
        units += c.len_utf16() as u32;
    }
    line_end
}

fn range(text: &str, span: Span) -> lt::Range {
    lt::Range { start: position(text, span.start as usize), end: position(text, span.end as usize) }
}
