//! `herald lsp` driven by a real LSP client: this test speaks JSON-RPC with
//! `Content-Length` framing over the built binary's stdin and stdout, as an
//! editor does. Scenario: a workspace whose `herald.toml` names a schema; open
//! a file with a mistake, receive the diagnostic with its code, apply the
//! quick fix, see the diagnostic go, complete after `event.`, hover, go to a
//! definition, format.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Client {
    child: Child,
    stdin: ChildStdin,
    messages: mpsc::Receiver<Value>,
    next_id: i64,
}

fn read_message(r: &mut BufReader<ChildStdout>) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(v) = line.strip_prefix("Content-Length: ") {
            len = v.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len?];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

impl Client {
    fn start(root: &std::path::Path) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_herald"))
            .arg("lsp")
            .current_dir(root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn herald lsp");
        let stdin = child.stdin.take().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            while let Some(m) = read_message(&mut stdout) {
                if tx.send(m).is_err() {
                    break;
                }
            }
        });
        Client { child, stdin, messages: rx, next_id: 1 }
    }

    fn send(&mut self, v: Value) {
        let body = v.to_string();
        write!(self.stdin, "Content-Length: {}\r\n\r\n{body}", body.len()).unwrap();
        self.stdin.flush().unwrap();
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    fn next(&mut self) -> Value {
        self.messages.recv_timeout(Duration::from_secs(30)).expect("the server answers within 30 s")
    }

    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        loop {
            let m = self.next();
            if m.get("id") == Some(&json!(id)) {
                assert!(m.get("error").is_none(), "{method} failed: {m}");
                return m["result"].clone();
            }
        }
    }

    /// The next `publishDiagnostics` notification.
    fn diagnostics(&mut self) -> Vec<Value> {
        loop {
            let m = self.next();
            if m["method"] == "textDocument/publishDiagnostics" {
                return m["params"]["diagnostics"].as_array().unwrap().clone();
            }
        }
    }
}

/// Apply LSP text edits (non-overlapping, UTF-16 positions) to `text`.
fn apply(text: &str, edits: &[Value]) -> String {
    let offset = |pos: &Value| -> usize {
        let (line, ch) = (pos["line"].as_u64().unwrap() as usize, pos["character"].as_u64().unwrap() as usize);
        let start: usize = text.split_inclusive('\n').take(line).map(str::len).sum();
        let mut units = 0;
        for (i, c) in text[start..].char_indices() {
            if units >= ch || c == '\n' {
                return start + i;
            }
            units += c.len_utf16();
        }
        text.len()
    };
    let mut edits: Vec<(usize, usize, String)> = edits
        .iter()
        .map(|e| (offset(&e["range"]["start"]), offset(&e["range"]["end"]), e["newText"].as_str().unwrap().to_string()))
        .collect();
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (s, e, new) in edits {
        out.replace_range(s..e, &new);
    }
    out
}

#[test]
fn editing_session_over_stdio() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let schema =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/github/schema.herald")).unwrap();
    std::fs::write(root.join("schema.herald"), schema).unwrap();
    std::fs::write(root.join("herald.toml"), "# the workspace's schema\nschema = \"schema.herald\"\n").unwrap();
    let uri = format!("file://{}/policy.herald", root.display());
    let root_uri = format!("file://{}", root.display());

    let mut c = Client::start(root);
    let init = c.request("initialize", json!({"processId": null, "rootUri": root_uri, "capabilities": {}}));
    assert_eq!(init["capabilities"]["textDocumentSync"], json!(1));
    c.notify("initialized", json!({}));

    // A mistake after a non-ASCII comment: columns count UTF-16 units.
    let text = "# pushes — 🚀 tracked\nrule big_push {\n  match push { ref: r }\n  guard startswith(r, \"refs/heads/\") # 🚀\n  action log(\"push to {r}\")\n}\n";
    c.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "herald", "version": 1, "text": text}}),
    );
    let diags = c.diagnostics();
    assert_eq!(diags.len(), 1, "{diags:?}");
    let d = &diags[0];
    assert_eq!(d["code"], "E0112");
    assert_eq!(d["severity"], 1);
    assert_eq!(d["range"], json!({"start": {"line": 3, "character": 8}, "end": {"line": 3, "character": 18}}));
    assert!(d["message"].as_str().unwrap().contains("did you mean `starts_with`"), "{d}");

    // The quick fix replaces the name with the suggestion.
    let actions = c.request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": d["range"], "context": {"diagnostics": [d]}}),
    );
    let action = &actions[0];
    assert_eq!(action["kind"], "quickfix");
    let edits = action["edit"]["changes"][&uri].as_array().unwrap().clone();
    let fixed = apply(text, &edits);
    assert!(fixed.contains("guard starts_with(r, \"refs/heads/\")"), "{fixed}");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]}),
    );
    assert_eq!(c.diagnostics(), Vec::<Value>::new());

    // Completion after `event.` offers the fields of the matched event (from
    // the workspace schema) and of every event.
    let typing = fixed.replace("action log(\"push to {r}\")", "action log(event.)");
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": typing}]}),
    );
    let _ = c.diagnostics();
    let line = typing.lines().position(|l| l.contains("event.)")).unwrap();
    let col = typing.lines().nth(line).unwrap().find("event.").unwrap() + "event.".len();
    let items = c.request(
        "textDocument/completion",
        json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": col}}),
    );
    let labels: Vec<&str> = items.as_array().unwrap().iter().map(|i| i["label"].as_str().unwrap()).collect();
    for want in ["ref", "forced", "commits", "repository", "sender"] {
        assert!(labels.contains(&want), "no `{want}` in {labels:?}");
    }
    assert!(!labels.contains(&"pull_request"), "a field of another event: {labels:?}");

    // Back to the fixed text; hover on the binding `r` in the guard.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 4}, "contentChanges": [{"text": fixed}]}),
    );
    assert_eq!(c.diagnostics(), Vec::<Value>::new());
    let hover = c
        .request("textDocument/hover", json!({"textDocument": {"uri": uri}, "position": {"line": 3, "character": 20}}));
    assert!(hover["contents"]["value"].as_str().unwrap().contains("r: string"), "{hover}");
    let hover = c
        .request("textDocument/hover", json!({"textDocument": {"uri": uri}, "position": {"line": 3, "character": 10}}));
    assert!(hover["contents"]["value"].as_str().unwrap().contains("starts_with("), "{hover}");

    // Go to definition: the use of `r` leads to the pattern binding.
    let def = c.request(
        "textDocument/definition",
        json!({"textDocument": {"uri": uri}, "position": {"line": 3, "character": 20}}),
    );
    assert_eq!(def["uri"], json!(uri));
    assert_eq!(def["range"]["start"], json!({"line": 2, "character": 20}));

    // Formatting: the edit gives `herald fmt`'s layout.
    let messy = "rule   big_push{match push{ref:r}\nguard starts_with(r,\"refs/heads/\") # 🚀\n}\n";
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 5}, "contentChanges": [{"text": messy}]}),
    );
    let _ = c.diagnostics();
    let edits = c.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 2, "insertSpaces": true}}),
    );
    let formatted = apply(messy, edits.as_array().unwrap());
    assert_eq!(
        formatted,
        "rule big_push {\n  match push { ref: r }\n  guard starts_with(r, \"refs/heads/\")  # 🚀\n}\n"
    );

    // A diagnostic's other places in the file come as related information.
    let twice = "rule a {\n  match push\n}\nrule a {\n  match pull_request\n}\n";
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 6}, "contentChanges": [{"text": twice}]}),
    );
    let diags = c.diagnostics();
    assert_eq!(diags[0]["code"], "E0113");
    let related = diags[0]["relatedInformation"].as_array().expect("related information").clone();
    assert!(
        related.iter().any(|r| r["message"] == "first defined here"
            && r["location"]["uri"] == json!(uri)
            && r["location"]["range"]["start"] == json!({"line": 0, "character": 5})),
        "{related:?}"
    );

    assert_eq!(c.request("shutdown", Value::Null), Value::Null);
    c.notify("exit", Value::Null);
    let status = c.child.wait().unwrap();
    assert!(status.success());
}

#[test]
fn positions_count_utf16_units() {
    use herald::lsp::{offset, position};
    let text = "a🚀b\né c";
    // 🚀 is 4 bytes and 2 UTF-16 units.
    assert_eq!(position(text, 5), lsp_types::Position { line: 0, character: 3 });
    assert_eq!(offset(text, lsp_types::Position { line: 0, character: 3 }), 5);
    assert_eq!(position(text, text.len()), lsp_types::Position { line: 1, character: 3 });
    assert_eq!(offset(text, lsp_types::Position { line: 1, character: 1 }), 9);
    // Past the end of a line: its end.
    assert_eq!(offset(text, lsp_types::Position { line: 0, character: 99 }), 6);
}
