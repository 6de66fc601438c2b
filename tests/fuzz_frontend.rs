//! Property tests for the front end: random and mutated policy text fed to
//! the parser, the checker and both renderers must never panic, and every
//! diagnostic span must stay inside its file.

mod common;

use herald::cli::render::{self, Style};
use herald::compile::{self, SchemaChoice};
use herald::span::{FileId, SourceMap};
use proptest::prelude::*;
use std::sync::OnceLock;

/// Tokens to insert besides the keywords: punctuation, literals, and non-ASCII
/// text (multi-byte characters are where byte/char confusions panic).
const OTHER_TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    ".",
    "|",
    "*",
    "?",
    "=",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "/",
    "%",
    "\"",
    "\\",
    "\\u{",
    "{}",
    "#",
    "\n",
    " ",
    "_",
    "x",
    "User",
    "Group",
    "login",
    "pk",
    "42",
    "-7",
    "4.5",
    "1e999",
    "99999999999999999999",
    "\"s\"",
    "\"{x}\"",
    "é",
    "→",
    "😀",
    "\u{0}",
    "\u{feff}",
    "ß",
    "中文",
    "\t",
    "\r\n",
    "'",
    ";",
    "&&",
    "!",
];

/// Every keyword of the language, then the other tokens.
fn vocab() -> &'static [&'static str] {
    static V: OnceLock<Vec<&'static str>> = OnceLock::new();
    V.get_or_init(|| herald::syntax::KEYWORDS.iter().chain(OTHER_TOKENS).copied().collect())
}

fn corpus() -> &'static Vec<String> {
    static C: OnceLock<Vec<String>> = OnceLock::new();
    C.get_or_init(|| {
        let mut files = common::fixtures("good");
        files.extend(common::good_fixtures());
        files.iter().map(|p| std::fs::read_to_string(p).unwrap()).collect()
    })
}

/// Split text into tokens: runs of word characters, runs of spaces, and
/// single other characters.
fn tokens(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let class = |c: char| {
        if c.is_alphanumeric() || c == '_' {
            1
        } else if c == ' ' {
            2
        } else {
            0
        }
    };
    for c in text.chars() {
        let k = class(c);
        if k != 0 && cur.chars().next().is_some_and(|p| class(p) == k) {
            cur.push(c);
        } else {
            if !cur.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
            cur.push(c);
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[derive(Debug, Clone)]
enum Mutation {
    DeleteToken(usize),
    InsertToken(usize, usize),
    DuplicateToken(usize),
    SwapTokens(usize, usize),
    DeleteByte(usize),
    InsertByte(usize, u8),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        any::<usize>().prop_map(Mutation::DeleteToken),
        (any::<usize>(), 0..vocab().len()).prop_map(|(a, b)| Mutation::InsertToken(a, b)),
        any::<usize>().prop_map(Mutation::DuplicateToken),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::SwapTokens(a, b)),
        any::<usize>().prop_map(Mutation::DeleteByte),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Mutation::InsertByte(a, b)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(text: &str, muts: &[Mutation]) -> String {
    let mut toks = tokens(text);
    let mut bytes: Option<Vec<u8>> = None;
    for m in muts {
        if toks.is_empty() {
            toks.push("x".into());
        }
        let n = toks.len();
        match *m {
            Mutation::DeleteToken(i) => {
                toks.remove(i % n);
            }
            Mutation::InsertToken(i, v) => toks.insert(i % (n + 1), vocab()[v].to_string()),
            Mutation::DuplicateToken(i) => {
                let t = toks[i % n].clone();
                toks.insert(i % n, t);
            }
            Mutation::SwapTokens(a, b) => toks.swap(a % n, b % n),
            // Byte mutations work on the text as bytes; the result is made
            // valid UTF-8 lossily, as `herald check` rejects other input.
            Mutation::DeleteByte(i) => {
                let mut b = toks.concat().into_bytes();
                if !b.is_empty() {
                    let i = i % b.len();
                    b.remove(i);
                }
                bytes = Some(b);
            }
            Mutation::InsertByte(i, v) => {
                let mut b = toks.concat().into_bytes();
                let i = i % (b.len() + 1);
                b.insert(i, v);
                bytes = Some(b);
            }
            Mutation::Truncate(i) => {
                let mut b = toks.concat().into_bytes();
                b.truncate(i % (b.len() + 1));
                bytes = Some(b);
            }
        }
        if let Some(b) = bytes.take() {
            toks = tokens(&String::from_utf8_lossy(&b));
        }
    }
    toks.concat()
}

/// Parse, check and render; panics (failing the case) on any problem.
fn front_end(text: &str) {
    let mut sources = SourceMap::new();
    let f = sources.add("fuzz.herald", text);
    let compiled = compile::compile(&mut sources, SchemaChoice::Auto, &[f]);
    for d in &compiled.diagnostics {
        for s in std::iter::once(d.span).chain(d.labels.iter().map(|l| l.span)) {
            let t = sources.text(s.file);
            assert!(s.start <= s.end && (s.end as usize) <= t.len(), "{}: span {}..{} outside", d.code, s.start, s.end);
            assert!(
                t.is_char_boundary(s.start as usize) && t.is_char_boundary(s.end as usize),
                "{}: split char",
                d.code
            );
        }
        assert!(!d.message.is_empty());
    }
    let _ = render::human(&compiled.diagnostics, &sources, Style::Plain);
    let _ = render::json(&compiled.diagnostics, &sources);
    // The lone-expression entry point too.
    let _ = herald::syntax::parse_expr(FileId(0), text);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mutated_good_policies_never_panic(pick in any::<usize>(), muts in prop::collection::vec(mutation(), 1..6)) {
        let c = corpus();
        let text = apply(&c[pick % c.len()], &muts);
        front_end(&text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_token_soup_never_panics(toks in prop::collection::vec(0..vocab().len(), 0..60)) {
        let text: String = toks.iter().map(|&i| vocab()[i]).collect::<Vec<_>>().join(" ");
        front_end(&text);
    }

    #[test]
    fn arbitrary_strings_never_panic(text in "\\PC{0,200}") {
        front_end(&text);
    }
}

/// Deep nesting must be reported, not overflow the stack.
#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for open in ["(", "[", "{", "not "] {
        let text = format!("rule r {{ match login where {} true }}", open.repeat(5000));
        front_end(&text);
    }
    let text = format!("const c = {}1", "-".repeat(5000));
    front_end(&text);
    // Long operator chains recurse too; each must be refused, not crash,
    // on a test thread's small stack.
    let chains = [
        "not ".repeat(5000) + "true",
        "-".repeat(5000) + "1 == 1",
        "1".to_string() + &" + 1".repeat(5000) + " == 1",
        "true".to_string() + &" and true".repeat(5000),
        "event".to_string() + &".a".repeat(5000) + " == 1",
        "event.app".to_string() + &"[0]".repeat(5000) + " == 1",
        "\"".to_string() + &"{1 + ".repeat(40) + &"}".repeat(40) + "\" == \"\"",
    ];
    for body in chains {
        let text = format!("rule r {{ match login where {body} }}\nrule s {{ match login }}\n");
        front_end(&text);
        let mut sources = SourceMap::new();
        let f = sources.add("deep.herald", text);
        let compiled = compile::compile(&mut sources, SchemaChoice::Auto, &[f]);
        assert!(compiled.errors() >= 1, "{}", &body[..40]);
    }
}
