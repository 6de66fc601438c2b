//! The pre-pass that runs before pest: one linear scan over the file that
//!
//! - cuts it into top-level item chunks (so one broken item does not hide the
//!   next, and two broken items give two errors),
//! - tracks brackets, strings (with escapes and `{}` interpolation) and
//!   comments, and records the first *lexical* error of each chunk: an
//!   unterminated string, an unclosed or stray bracket,
//! - keeps a token list, used only to describe the token at an error
//!   position ("found `)`") and the token before it.
//!
//! An item keyword (`rule`, `const`, `type`, ...) starts a new chunk when no
//! bracket is open, and also when it stands at the very start of a line while
//! brackets are open: the item before it is then missing a closing bracket.

/// Deeper bracket nesting than this is reported instead of parsed, which
/// bounds the recursion of pest and of every later stage.
pub(crate) const MAX_DEPTH: usize = 48;

/// At most this many operators (`not`, `-`, `+`, `and`, `.`, `[`, ...) in
/// one item. Operator chains make the parser, the AST builder and the
/// checker recurse once per operator, so a machine-generated chain of
/// thousands would overflow a thread's stack; no hand-written rule comes
/// near this.
pub(crate) const MAX_OPERATORS: usize = 500;

/// Keywords that start a top-level item.
pub(crate) const ITEM_KEYWORDS: &[&str] =
    &["rule", "const", "type", "event", "entity", "discriminator", "identity", "recipient", "time", "test"];

/// Every keyword of the language.
pub const KEYWORDS: &[&str] = &[
    "rule",
    "match",
    "where",
    "guard",
    "let",
    "action",
    "const",
    "for",
    "in",
    "and",
    "or",
    "not",
    "true",
    "false",
    "null",
    "set",
    "append",
    "to",
    "remove",
    "exists",
    "count",
    "first",
    "all",
    "any",
    "event",
    "entity",
    "type",
    "key",
    "discriminator",
    "identity",
    "recipient",
    "if",
    "else",
];

pub(crate) fn is_keyword(word: &str) -> bool {
    KEYWORDS.contains(&word)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    /// An identifier or keyword.
    Word,
    Number,
    /// ASCII punctuation; `== != <= >=` are one token.
    Punct,
    /// The opening `"` of a string.
    Quote,
    /// The closing `"` of a string.
    StrEnd,
    StrText,
    Escape,
    /// `{` inside a string.
    InterpOpen,
    /// `}` closing an interpolation.
    InterpClose,
    /// Any other character.
    Other,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// What an open bracket belongs to, for "missing `}` to close ...".
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Opener {
    /// The body of a top-level item: `rule r {`, `type T {`, ...
    Item { keyword: &'static str, name: Option<String> },
    /// `action {`, `if ... {`, `else {`, `for ... {`
    Block(&'static str),
    /// `match t {`
    Patterns,
    /// `{` inside a string.
    Interpolation,
    /// Any other bracket.
    Plain,
}

/// The first lexical problem of a chunk, as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LexError {
    /// A string still open at the end of its line (strings are single-line).
    UnterminatedString { quote: usize },
    /// A bracket never closed; `at` is where the closing one is missing.
    Unclosed { open: usize, open_ch: char, opener: Opener, at: usize },
    /// A closing bracket that closes nothing; `open` is the innermost
    /// bracket that is open there, if any.
    Stray { at: usize, ch: char, open: Option<(usize, char)> },
    /// Brackets nested deeper than [`MAX_DEPTH`].
    TooDeep { at: usize },
    /// More than [`MAX_OPERATORS`] operators in one item; the item is not
    /// handed to the parser at all.
    TooComplex { at: usize },
}

impl LexError {
    /// The position from which the problem is visible: an error pest finds
    /// before it is independent of it and reported instead.
    pub(crate) fn anchor(&self) -> usize {
        match self {
            LexError::UnterminatedString { quote } => *quote,
            LexError::Unclosed { at, .. } => *at,
            LexError::Stray { at, .. } => *at,
            LexError::TooDeep { at } => *at,
            LexError::TooComplex { at } => *at,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Chunk {
    pub start: usize,
    pub end: usize,
    pub error: Option<LexError>,
}

#[derive(Debug, Default)]
pub(crate) struct Scan {
    pub tokens: Vec<Token>,
    pub chunks: Vec<Chunk>,
}

impl Scan {
    /// The token that contains `pos`, or else the first one after it.
    pub(crate) fn token_at(&self, pos: usize) -> Option<Token> {
        let i = self.tokens.partition_point(|t| t.end <= pos);
        self.tokens.get(i).copied()
    }

    /// The tokens that lie inside `start..end`.
    pub(crate) fn tokens_in(&self, start: usize, end: usize) -> &[Token] {
        let lo = self.tokens.partition_point(|t| t.start < start);
        let hi = self.tokens.partition_point(|t| t.end <= end);
        &self.tokens[lo..hi.max(lo)]
    }

    /// The last token that ends at or before `pos`.
    pub(crate) fn token_before(&self, pos: usize) -> Option<Token> {
        let i = self.tokens.partition_point(|t| t.end <= pos);
        i.checked_sub(1).map(|i| self.tokens[i])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    Paren,
    Bracket,
    Brace,
    Str,
    Interp,
}

#[derive(Debug, Clone)]
struct Frame {
    kind: FrameKind,
    pos: usize,
    opener: Opener,
}

fn opener_char(kind: FrameKind) -> char {
    match kind {
        FrameKind::Paren => '(',
        FrameKind::Bracket => '[',
        FrameKind::Brace | FrameKind::Interp => '{',
        FrameKind::Str => '"',
    }
}

struct Scanner<'a> {
    text: &'a str,
    bytes: &'a [u8],
    i: usize,
    out: Scan,
    stack: Vec<Frame>,
    chunk_start: usize,
    chunk_error: Option<LexError>,
    /// Operators seen in the current chunk, and where the one over the
    /// limit is.
    chunk_ops: usize,
    /// A problem that keeps the chunk from the parser (too deep, too many
    /// operators); it wins over any other error of the chunk.
    fatal: Option<LexError>,
    /// The current chunk has a token (junk before the first item counts).
    chunk_has_token: bool,
    /// End of the last token of the current chunk.
    last_end: usize,
    /// Item keyword and name of the current chunk.
    item_kw: Option<&'static str>,
    item_name: Option<String>,
    want_item_name: bool,
    /// The last block keyword (`action if else for match`) and the depth it
    /// was seen at, to describe the `{` that follows it.
    pending_block: Option<(&'static str, usize)>,
}

/// Scan `text` into chunks and tokens. Linear in the length of `text`.
pub(crate) fn scan(text: &str) -> Scan {
    let mut s = Scanner {
        text,
        bytes: text.as_bytes(),
        i: 0,
        out: Scan::default(),
        stack: Vec::new(),
        chunk_start: 0,
        chunk_error: None,
        chunk_ops: 0,
        fatal: None,
        chunk_has_token: false,
        last_end: 0,
        item_kw: None,
        item_name: None,
        want_item_name: false,
        pending_block: None,
    };
    if text.starts_with('\u{feff}') {
        s.i = 3;
        s.chunk_start = 3;
        s.last_end = 3;
    }
    s.run();
    s.out
}

impl Scanner<'_> {
    fn in_string(&self) -> bool {
        matches!(self.stack.last(), Some(f) if f.kind == FrameKind::Str)
    }

    fn inside_any_string(&self) -> bool {
        self.stack.iter().any(|f| f.kind == FrameKind::Str)
    }

    fn error(&mut self, e: LexError) {
        if self.chunk_error.is_none() {
            self.chunk_error = Some(e);
        }
    }

    fn push_token(&mut self, kind: Tok, start: usize, end: usize) {
        let t = &self.text[start..end];
        let is_op = match kind {
            Tok::Word => matches!(t, "not" | "and" | "or" | "in"),
            Tok::Punct => matches!(
                t,
                "+" | "-" | "*" | "/" | "%" | "==" | "!=" | "<" | "<=" | ">" | ">=" | "." | "[" | "(" | "!" | "&" | "|"
            ),
            _ => false,
        };
        if is_op {
            self.chunk_ops += 1;
            if self.chunk_ops > MAX_OPERATORS && self.fatal.is_none() {
                self.fatal = Some(LexError::TooComplex { at: start });
            }
        }
        self.out.tokens.push(Token { kind, start, end });
        self.chunk_has_token = true;
        self.last_end = end;
    }

    fn run(&mut self) {
        while self.i < self.bytes.len() {
            if self.in_string() {
                self.string_step();
            } else {
                self.code_step();
            }
        }
        if self.inside_any_string() {
            self.string_line_ended();
        }
        self.finish_chunk(self.bytes.len());
    }

    /// Close the current chunk at `end` (reporting unclosed brackets) and
    /// start a new one there.
    fn finish_chunk(&mut self, end: usize) {
        if let Some(top) = self.stack.last() {
            let e = LexError::Unclosed {
                open: top.pos,
                open_ch: opener_char(top.kind),
                opener: top.opener.clone(),
                at: self.last_end,
            };
            self.error(e);
        }
        // Too deep or too many operators wins over any other problem: such
        // a chunk must not reach the (recursive) parser.
        if let Some(e) = self.fatal.take() {
            self.chunk_error = Some(e);
        }
        self.chunk_ops = 0;
        if self.chunk_has_token {
            self.out.chunks.push(Chunk { start: self.chunk_start, end, error: self.chunk_error.take() });
        }
        self.chunk_error = None;
        self.chunk_start = end;
        self.chunk_has_token = false;
        self.last_end = end;
        self.stack.clear();
        self.item_kw = None;
        self.item_name = None;
        self.want_item_name = false;
        self.pending_block = None;
    }

    /// A line break (or the end of input) inside a string: strings are
    /// single-line. Report it and resume in code after the string.
    fn string_line_ended(&mut self) {
        let Some(outer) = self.stack.iter().position(|f| f.kind == FrameKind::Str) else {
            return;
        };
        let interp = self.stack[outer..].iter().find(|f| f.kind == FrameKind::Interp).cloned();
        let e = match interp {
            Some(f) => {
                // The `}` is missing where a string starts inside the
                // interpolation (`"{a.b" ...`), or else at the line's end.
                let at = self.stack.iter().skip_while(|g| g.pos <= f.pos).find(|g| g.kind == FrameKind::Str);
                LexError::Unclosed {
                    open: f.pos,
                    open_ch: '{',
                    opener: Opener::Interpolation,
                    at: at.map_or(self.last_end, |g| g.pos),
                }
            }
            None => {
                let quote = self.stack.iter().rev().find(|f| f.kind == FrameKind::Str).map(|f| f.pos);
                LexError::UnterminatedString { quote: quote.unwrap_or(self.stack[outer].pos) }
            }
        };
        self.error(e);
        self.stack.truncate(outer);
    }

    fn string_step(&mut self) {
        let b = self.bytes;
        let start = self.i;
        match b[start] {
            b'"' => {
                self.stack.pop();
                self.push_token(Tok::StrEnd, start, start + 1);
                self.i += 1;
            }
            b'\\' => {
                let mut j = start + 1;
                if b.get(j) == Some(&b'u') && b.get(j + 1) == Some(&b'{') {
                    j += 2;
                    while j < b.len() && !matches!(b[j], b'}' | b'"' | b'\n') {
                        j += 1;
                    }
                    if b.get(j) == Some(&b'}') {
                        j += 1;
                    }
                } else if j < b.len() && b[j] != b'\n' {
                    j += utf8_len(b[j]);
                }
                let j = j.min(b.len());
                self.push_token(Tok::Escape, start, j);
                self.i = j;
            }
            b'{' => {
                self.push_token(Tok::InterpOpen, start, start + 1);
                self.stack.push(Frame { kind: FrameKind::Interp, pos: start, opener: Opener::Interpolation });
                self.i += 1;
            }
            b'\n' => {
                self.string_line_ended();
                self.i += 1;
            }
            _ => {
                let mut j = start;
                while j < b.len() && !matches!(b[j], b'"' | b'\\' | b'{' | b'\n') {
                    j += 1;
                }
                self.push_token(Tok::StrText, start, j);
                self.i = j;
            }
        }
    }

    fn open(&mut self, kind: FrameKind, start: usize) {
        let depth = self.stack.len();
        let opener = if kind == FrameKind::Brace {
            let block = self.pending_block.take().filter(|&(_, d)| d == depth).map(|(kw, _)| kw);
            match block {
                Some("match") => Opener::Patterns,
                Some(kw) => Opener::Block(kw),
                None if depth == 0 && matches!(self.item_kw, Some("rule" | "type" | "event" | "entity")) => {
                    Opener::Item { keyword: self.item_kw.unwrap_or("rule"), name: self.item_name.clone() }
                }
                None => Opener::Plain,
            }
        } else {
            Opener::Plain
        };
        if depth >= MAX_DEPTH && self.fatal.is_none() {
            self.fatal = Some(LexError::TooDeep { at: start });
        }
        self.stack.push(Frame { kind, pos: start, opener });
    }

    fn close(&mut self, ch: char, start: usize) {
        let want = match ch {
            ')' => FrameKind::Paren,
            ']' => FrameKind::Bracket,
            _ => FrameKind::Brace,
        };
        if let Some(top) = self.stack.last() {
            if top.kind == want || (ch == '}' && top.kind == FrameKind::Interp) {
                let interp = top.kind == FrameKind::Interp;
                self.stack.pop();
                let kind = if interp { Tok::InterpClose } else { Tok::Punct };
                self.push_token(kind, start, start + 1);
                return;
            }
        }
        // Look for a matching opener below, without crossing a string.
        let mut found = None;
        for (k, f) in self.stack.iter().enumerate().rev() {
            if f.kind == FrameKind::Str {
                break;
            }
            if f.kind == want {
                found = Some(k);
                break;
            }
        }
        match found {
            Some(k) => {
                let top = self.stack.last().cloned().expect("a frame above the match");
                self.error(LexError::Unclosed {
                    open: top.pos,
                    open_ch: opener_char(top.kind),
                    opener: top.opener,
                    at: self.last_end,
                });
                self.stack.truncate(k);
            }
            None => {
                let open = self.stack.last().filter(|f| f.kind != FrameKind::Str).map(|f| (f.pos, opener_char(f.kind)));
                self.error(LexError::Stray { at: start, ch, open });
            }
        }
        self.push_token(Tok::Punct, start, start + 1);
    }

    fn code_step(&mut self) {
        let b = self.bytes;
        let start = self.i;
        let c = b[start];
        match c {
            b' ' | b'\t' | b'\r' => self.i += 1,
            b'\n' => {
                if self.inside_any_string() {
                    self.string_line_ended();
                }
                self.i += 1;
            }
            b'#' => {
                while self.i < b.len() && b[self.i] != b'\n' {
                    self.i += 1;
                }
            }
            b'"' => {
                self.want_item_name = false;
                self.push_token(Tok::Quote, start, start + 1);
                self.stack.push(Frame { kind: FrameKind::Str, pos: start, opener: Opener::Plain });
                self.i += 1;
            }
            b'(' | b'[' | b'{' => {
                self.want_item_name = false;
                self.push_token(Tok::Punct, start, start + 1);
                let kind = match c {
                    b'(' => FrameKind::Paren,
                    b'[' => FrameKind::Bracket,
                    _ => FrameKind::Brace,
                };
                self.open(kind, start);
                self.i += 1;
            }
            b')' | b']' | b'}' => {
                self.want_item_name = false;
                self.close(c as char, start);
                self.i += 1;
            }
            b'a'..=b'z' | b'A'..=b'Z' | b'_' => {
                let mut j = start + 1;
                while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                    j += 1;
                }
                self.word(start, j);
                self.i = j;
            }
            b'0'..=b'9' => {
                let mut j = start;
                while j < b.len() && b[j].is_ascii_digit() {
                    j += 1;
                }
                if b.get(j) == Some(&b'.') && b.get(j + 1).is_some_and(u8::is_ascii_digit) {
                    j += 1;
                    while j < b.len() && b[j].is_ascii_digit() {
                        j += 1;
                    }
                }
                if matches!(b.get(j), Some(b'e' | b'E')) {
                    let mut k = j + 1;
                    if matches!(b.get(k), Some(b'+' | b'-')) {
                        k += 1;
                    }
                    if b.get(k).is_some_and(u8::is_ascii_digit) {
                        while k < b.len() && b[k].is_ascii_digit() {
                            k += 1;
                        }
                        j = k;
                    }
                }
                self.want_item_name = false;
                self.push_token(Tok::Number, start, j);
                self.i = j;
            }
            _ if c.is_ascii() => {
                let two = b.get(start + 1) == Some(&b'=') && matches!(c, b'=' | b'!' | b'<' | b'>');
                let end = start + if two { 2 } else { 1 };
                if self.want_item_name && c == b'*' {
                    self.item_name = Some("*".to_string());
                }
                self.want_item_name = false;
                self.push_token(Tok::Punct, start, end);
                self.i = end;
            }
            _ => {
                let len = utf8_len(c);
                let end = (start + len).min(b.len());
                self.want_item_name = false;
                self.push_token(Tok::Other, start, end);
                self.i = end;
            }
        }
    }

    fn word(&mut self, start: usize, end: usize) {
        let word = &self.text[start..end];
        if let Some(kw) = ITEM_KEYWORDS.iter().copied().find(|k| *k == word) {
            if self.starts_item(start, end) {
                self.finish_chunk(start);
                self.item_kw = Some(kw);
                self.want_item_name = true;
                self.push_token(Tok::Word, start, end);
                return;
            }
        }
        if self.want_item_name {
            self.item_name = Some(word.to_string());
            self.want_item_name = false;
        }
        let depth = self.stack.len();
        match word {
            "action" | "if" | "else" | "for" | "match" => {
                self.pending_block = Some((block_kw(word), depth));
            }
            "let" | "guard" => self.pending_block = None,
            _ => {}
        }
        self.push_token(Tok::Word, start, end);
    }

    /// Does the item keyword at `start..end` begin a new item?
    fn starts_item(&self, start: usize, end: usize) -> bool {
        if self.inside_any_string() {
            return false;
        }
        let line_start = start == 0 || self.bytes[start - 1] == b'\n';
        if !self.stack.is_empty() && !line_start {
            return false;
        }
        // Inside a `test` body, `event { ... }` is one of its steps, even at
        // the start of a line (after an own-line comment, say): never an
        // `event` schema item, which cannot stand inside braces anyway.
        if !self.stack.is_empty() && self.item_kw == Some("test") && &self.text[start..end] == "event" {
            return false;
        }
        // `time` is no keyword: it is an item only at the top level and
        // followed by a name (`time created`), never in `let time = ...`
        // or an expression that goes on at the start of a line.
        if &self.text[start..end] == "time"
            && (!self.stack.is_empty()
                || !self.next_significant(end).is_some_and(|c| c.is_ascii_alphabetic() || c == b'_'))
        {
            return false;
        }
        // `test` is no keyword either: an item only at the top level and
        // followed by its name, a string (`test "locks the account" {`).
        if &self.text[start..end] == "test" && (!self.stack.is_empty() || self.next_significant(end) != Some(b'"')) {
            return false;
        }
        // Not a field name (`x.type`, `key type: int`) nor a name right
        // after the keyword that starts an item (`rule event`,
        // `discriminator type`). Only the keyword that *started* the item
        // counts: after `discriminator type`, a following `event` is a new
        // item even though `type` is also an item keyword.
        if let Some(prev) = self.out.tokens.last() {
            let p = &self.text[prev.start..prev.end];
            if p == "." || (prev.kind == Tok::Word && (p == "key" || self.want_item_name)) {
                return false;
            }
        }
        !matches!(self.next_significant(end), Some(b':' | b'.'))
    }

    /// The next byte after `from` that is not whitespace or a comment.
    fn next_significant(&self, from: usize) -> Option<u8> {
        let b = self.bytes;
        let mut j = from;
        while j < b.len() {
            match b[j] {
                b' ' | b'\t' | b'\r' | b'\n' => j += 1,
                b'#' => {
                    while j < b.len() && b[j] != b'\n' {
                        j += 1;
                    }
                }
                c => return Some(c),
            }
        }
        None
    }
}

fn block_kw(word: &str) -> &'static str {
    match word {
        "action" => "action",
        "if" => "if",
        "else" => "else",
        "for" => "for",
        _ => "match",
    }
}

/// The length of the UTF-8 sequence a leading byte starts (1 for a
/// continuation byte, so scanning always advances).
fn utf8_len(b: u8) -> usize {
    match b {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}
