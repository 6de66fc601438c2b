//! The reader thread's side: the input cut into chunks at line boundaries,
//! the running hash of everything consumed (what checkpoints store), and
//! lines too long to hold, streamed past.

use super::hash::Xxh64;
use std::io::Read;
use std::sync::mpsc::Receiver;

/// Bytes per chunk handed to a worker, and per read.
pub(super) const CHUNK: usize = 1 << 20;

/// Bytes per read once the input has read short (a pipe).
const PIPE_READ: usize = 64 << 10;

/// The most input [`ChunkReader::skip_to`] keeps to read again when a
/// checkpoint turns out not to belong to this input.
pub(super) const KEEP_LIMIT: usize = 64 << 20;

/// The default of `--max-line-bytes`.
pub const DEFAULT_MAX_LINE: usize = 64 << 20;

/// How much of a dead-lettered line `herald_dead_letter.raw` keeps (its
/// length and hash are stored whole).
pub(super) const RAW_PREFIX: usize = 64 << 10;

/// A line longer than the limit: only its start was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Oversized {
    /// The line's length in bytes, without its terminator.
    pub length: u64,
    /// XXH64 of the whole line, without its terminator.
    pub hash: u64,
}

/// A piece of the input ending at a line boundary.
pub(super) struct Chunk {
    pub seq: u64,
    /// The chunk's bytes; for an oversized line, the start of it (at most
    /// [`RAW_PREFIX`] bytes).
    pub data: Vec<u8>,
    /// Byte offset of `data` in the input.
    pub offset: u64,
    /// Byte offset in the input after the chunk (`offset + data.len()`
    /// except for an oversized line).
    pub end: u64,
    /// The running hash of the input before `offset`, to hash a prefix that
    /// ends inside the chunk (a batch commit in its middle).
    pub hash_before: Xxh64,
    /// The hash of the input up to `end`.
    pub hash_after: u64,
    /// `data` is the start of one line longer than the limit.
    pub oversized: Option<Oversized>,
}

/// Reads the input in chunks that end at line boundaries.
pub(super) struct ChunkReader<R: Read> {
    input: R,
    pub(super) buf: Vec<u8>,
    /// `buf[..scanned]` holds no newline: searches resume there, so a long
    /// line arriving in many small reads is scanned once, not once per read.
    scanned: usize,
    /// Buffers of chunks the writer is done with, to read the next chunks
    /// into: reusing them saves allocating, and faulting in, a fresh
    /// megabyte per chunk.
    pub(super) spare: Option<Receiver<Vec<u8>>>,
    seq: u64,
    /// The number of the first line the reader hands over (1 for a file;
    /// after a checkpoint, the line after it). Chunks carry no line
    /// numbers: counting lines was a pass over every byte on this serial
    /// thread, so the workers count each chunk's lines (they split it into
    /// lines anyway) and the writer numbers them in input order.
    pub(super) line: u64,
    pub(super) offset: u64,
    /// XXH64 of the input before `offset`.
    hash: Xxh64,
    /// The input started with a byte order mark (dropped, but hashed).
    bom: bool,
    eof: bool,
    /// The last read returned less than asked: the input has nothing more
    /// ready for now.
    short: bool,
    /// Lines longer than this are dead letters, streamed past.
    max_line: usize,
    /// Bytes searched for a newline (a measure of the reader's work, for
    /// the linearity test).
    pub(super) scan_work: u64,
    /// The largest `buf` capacity seen (for the memory-bound test).
    pub(super) peak: usize,
}

impl<R: Read> ChunkReader<R> {
    #[cfg(test)]
    pub fn new(input: R) -> Self {
        ChunkReader::with_max_line(input, DEFAULT_MAX_LINE)
    }

    pub fn with_max_line(input: R, max_line: usize) -> Self {
        ChunkReader {
            input,
            buf: Vec::new(),
            scanned: 0,
            spare: None,
            seq: 0,
            line: 1,
            offset: 0,
            hash: Xxh64::new(),
            bom: false,
            eof: false,
            short: false,
            max_line: max_line.max(1),
            scan_work: 0,
            peak: 0,
        }
    }

    /// Where the first newline in `buf` is, resuming the search where the
    /// last one stopped.
    fn newline(&mut self) -> Option<usize> {
        let from = self.scanned.min(self.buf.len());
        match memchr::memchr(b'\n', &self.buf[from..]) {
            Some(i) => {
                self.scan_work += i as u64 + 1;
                self.scanned = from + i;
                Some(from + i)
            }
            None => {
                self.scan_work += (self.buf.len() - from) as u64;
                self.scanned = self.buf.len();
                None
            }
        }
    }

    /// Drop the first `n` bytes of `buf` (consumed: hashed and counted).
    fn consume(&mut self, n: usize) {
        self.hash.update(&self.buf[..n]);
        self.offset += n as u64;
        if n == self.buf.len() {
            self.buf.clear();
        } else {
            self.buf.drain(..n);
        }
        self.scanned = self.scanned.saturating_sub(n);
    }

    /// What to ask of one read when anything will do: after a short read (a
    /// pipe hands over at most its buffer, 64 KiB on Linux) no more than a
    /// pipe holds, since every read zero-fills what it asks for first.
    fn next_ask(&self) -> usize {
        if self.short {
            PIPE_READ
        } else {
            CHUNK
        }
    }

    /// One read of up to `ask` bytes appended to `buf`.
    fn read_more(&mut self, ask: usize) -> std::io::Result<usize> {
        let old = self.buf.len();
        // Exactly what is asked for: a doubling growth would let a long
        // line's buffer reach twice the line limit.
        self.buf.reserve_exact(ask);
        self.buf.resize(old + ask, 0);
        self.peak = self.peak.max(self.buf.capacity());
        let n = loop {
            match self.input.read(&mut self.buf[old..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.buf.truncate(old);
                    return Err(e);
                }
            }
        };
        self.buf.truncate(old + n);
        self.short = n < ask;
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    /// Read until the buffer holds at least one full line (or EOF, or more
    /// than a line may hold) and either `want` bytes or everything the input
    /// has ready: a short read (a pipe whose producer is slow, `tail -f |
    /// herald run`) hands over the complete lines at once instead of
    /// waiting for a full chunk. A regular file only reads short at its end.
    fn fill(&mut self, want: usize) -> std::io::Result<()> {
        while !self.eof {
            match self.newline() {
                None if self.buf.len() > self.max_line => break,
                Some(_) if self.buf.len() >= want || self.short => break,
                _ => {}
            }
            let ask = self.next_ask().max(want.saturating_sub(self.buf.len()));
            self.read_more(ask)?;
        }
        Ok(())
    }

    /// The first line of the input (for its fingerprint), without consuming
    /// it. Called once, before anything else reads: it also drops a UTF-8
    /// byte order mark at the very start (editors on Windows write one; JSON
    /// parsers may ignore it), which would otherwise make line 1 a dead letter.
    pub fn first_line(&mut self) -> std::io::Result<&[u8]> {
        self.fill(3)?;
        if self.offset == 0 && self.buf.starts_with(b"\xef\xbb\xbf") {
            // Offsets and the prefix hash stay those of the input's bytes.
            self.consume(3);
            self.bom = true;
        }
        let end = self.newline().unwrap_or(self.buf.len()).min(self.max_line);
        let mut line = &self.buf[..end];
        if line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        Ok(line)
    }

    /// The hash of the input consumed so far.
    pub fn prefix_hash(&self) -> u64 {
        self.hash.digest()
    }

    /// Consume the input up to byte `target` (a checkpoint's offset) and
    /// say whether those bytes are the ones the checkpoint hashed
    /// (`expected`) and end at a line boundary. The consumed bytes are
    /// appended to `keep` while it stays under [`KEEP_LIMIT`] (it becomes
    /// `None` beyond), so that the caller can [`unread`](Self::unread) them
    /// when they turn out to be another input's.
    pub fn skip_to(&mut self, target: u64, expected: u64, keep: &mut Option<Vec<u8>>) -> std::io::Result<bool> {
        let mut last = None;
        while self.offset < target {
            if self.buf.is_empty() {
                if self.eof {
                    return Ok(false);
                }
                self.read_more(self.next_ask())?;
                continue;
            }
            let n = self.buf.len().min((target - self.offset) as usize);
            if let Some(k) = keep {
                if k.len() + n <= KEEP_LIMIT {
                    k.extend_from_slice(&self.buf[..n]);
                } else {
                    *keep = None;
                }
            }
            last = Some(self.buf[n - 1]);
            self.consume(n);
        }
        if self.hash.digest() != expected {
            return Ok(false);
        }
        if last.is_none() || last == Some(b'\n') {
            return Ok(true);
        }
        // The checkpoint's last line had no line end (the input's end then):
        // it is the same line only if the input still ends there, or ends
        // the line there now.
        while self.buf.len() < 2 && !self.eof {
            self.read_more(CHUNK)?;
        }
        let end = if self.buf.is_empty() {
            0
        } else if self.buf[0] == b'\n' {
            1
        } else if self.buf.starts_with(b"\r\n") && last != Some(b'\r') {
            2
        } else {
            return Ok(false);
        };
        if let Some(k) = keep {
            k.extend_from_slice(&self.buf[..end]);
        }
        self.consume(end);
        Ok(true)
    }

    /// Put back the bytes `skip_to` kept: the input reads again from its
    /// first line (after a byte order mark).
    pub fn unread(&mut self, mut kept: Vec<u8>) {
        let skipped = kept.len() as u64;
        kept.extend_from_slice(&self.buf);
        self.buf = kept;
        self.scanned = 0;
        self.line = 1;
        self.offset -= skipped;
        self.hash = Xxh64::new();
        if self.bom {
            self.hash.update(b"\xef\xbb\xbf");
        }
    }

    pub fn next_chunk(&mut self) -> std::io::Result<Option<Chunk>> {
        self.fill(CHUNK)?;
        if self.buf.is_empty() {
            return Ok(None);
        }
        let cut = if self.eof && self.buf.len() <= self.max_line {
            self.buf.len()
        } else {
            match memchr::memrchr(b'\n', &self.buf) {
                Some(i) => i + 1,
                // The buffer is one line's start, over the limit.
                None => return self.oversized().map(Some),
            }
        };
        self.scan_work += (self.buf.len() - cut) as u64;
        // The partial line after the cut starts the next buffer, a spent one
        // when the writer has returned any.
        let mut next = self.spare.as_ref().and_then(|r| r.try_recv().ok()).unwrap_or_default();
        next.clear();
        next.reserve(CHUNK + (self.buf.len() - cut));
        next.extend_from_slice(&self.buf[cut..]);
        self.buf.truncate(cut);
        let data = std::mem::replace(&mut self.buf, next);
        // The rest holds no newline.
        self.scanned = self.buf.len();
        let hash_before = self.hash.clone();
        self.hash.update(&data);
        let start = self.offset;
        self.offset += data.len() as u64;
        let chunk = Chunk {
            seq: self.seq,
            offset: start,
            end: self.offset,
            hash_before,
            hash_after: self.hash.digest(),
            oversized: None,
            data,
        };
        self.seq += 1;
        Ok(Some(chunk))
    }

    /// `buf` starts a line longer than the limit and holds no newline: keep
    /// its start, hash and count the rest of the line as it streams past
    /// (never holding more than the limit and a read), and hand over the
    /// start as a chunk of its own.
    fn oversized(&mut self) -> std::io::Result<Chunk> {
        let start = self.offset;
        let hash_before = self.hash.clone();
        let prefix = self.buf[..self.buf.len().min(RAW_PREFIX)].to_vec();
        let mut line = Xxh64::new();
        // A `\r` ending a piece may be the line terminator's: it is hashed
        // with the next piece, or dropped before the newline.
        let mut held_cr = false;
        loop {
            let (piece, ends) = match self.newline() {
                Some(i) => (i, true),
                None => (self.buf.len(), false),
            };
            if held_cr {
                line.update(b"\r");
            }
            let body = &self.buf[..piece];
            held_cr = body.last() == Some(&b'\r');
            line.update(if held_cr { &body[..piece - 1] } else { body });
            if ends {
                self.consume(piece + 1);
                break;
            }
            self.consume(piece);
            if self.eof {
                break;
            }
            self.read_more(self.next_ask())?;
        }
        let chunk = Chunk {
            seq: self.seq,
            offset: start,
            end: self.offset,
            hash_before,
            hash_after: self.hash.digest(),
            oversized: Some(Oversized { length: line.len(), hash: line.digest() }),
            data: prefix,
        };
        self.seq += 1;
        Ok(chunk)
    }
}
