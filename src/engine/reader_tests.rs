//! The chunk reader: resuming (`skip_to`), chunk boundaries with reused
//! buffers, and the last-line helper the checkpoint hashes.

use super::hash::Xxh64;
use super::reader::{Chunk, ChunkReader, CHUNK};
use super::{last_line, lines};
use std::io::Read;
use std::sync::mpsc;

/// Hands out at most `step` bytes per read, like a slow pipe.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.step.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// The number of lines (blank included) in a chunk, as the workers count
/// them: the writer numbers the chunks' lines with these counts.
fn chunk_lines(c: &Chunk) -> u64 {
    if c.oversized.is_some() {
        1
    } else {
        lines(&c.data, 0).count() as u64
    }
}

/// Each chunk with the number of its first line (as the writer numbers
/// them, from the reader's first line), its offset and its bytes.
fn all_chunks<R: Read>(reader: &mut ChunkReader<R>) -> Vec<(u64, u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut line = reader.line;
    while let Some(c) = reader.next_chunk().expect("reads") {
        let n = chunk_lines(&c);
        out.push((line, c.offset, c.data));
        line += n;
    }
    out
}

#[test]
fn last_line_is_the_last_of_lines() {
    for data in [&b"a\nb\n"[..], b"a\nb", b"a\r\nbc\r\n", b"\n", b"a\n\n", b"x", b"a\nb\r", b"\r\n"] {
        let expected = lines(data, 1).last().map(|(_, s, e)| &data[s..e]).expect("non-empty");
        assert_eq!(last_line(data), expected, "{:?}", String::from_utf8_lossy(data));
    }
}

/// The hash of `text` as the reader would record it after `n` bytes.
fn prefix(text: &[u8], n: usize) -> u64 {
    Xxh64::of(&text[..n])
}

#[test]
fn skip_to_resumes_after_the_checkpoint_when_the_bytes_agree() {
    let text: Vec<u8> = (1..=50).flat_map(|i| format!("{{\"n\":{i}}}\r\n").into_bytes()).collect();
    let skipped: usize = (1..=20).map(|i| format!("{{\"n\":{i}}}\r\n").len()).sum();
    for step in [1, 7, 1 << 20] {
        let mut r = ChunkReader::new(Trickle { data: &text, step });
        assert!(r.skip_to(skipped as u64, prefix(&text, skipped), &mut None).expect("reads"), "step {step}");
        r.line = 21;
        let chunks = all_chunks(&mut r);
        let (first_line, offset, data) = &chunks[0];
        assert_eq!(*first_line, 21);
        assert_eq!(*offset, skipped as u64);
        let rest: Vec<u8> = chunks.iter().flat_map(|c| c.2.clone()).collect();
        assert_eq!(rest, text[skipped..].to_vec());
        assert!(data.starts_with(b"{\"n\":21}\r\n"));
    }
}

#[test]
fn skip_to_refuses_other_bytes_before_the_checkpoint() {
    let old = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
    let cp = old.len();
    let expected = prefix(old, cp);
    // A line fixed in place (same length), another middle line, a shorter
    // input, the last line continued.
    for new in [
        &b"{\"a\":1}\n{\"b\":9}\n{\"c\":3}\n"[..],
        b"{\"a\":1}\n{\"x\":2}\n{\"c\":3}\nmore\n",
        b"{\"a\":1}\n",
        b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}",
    ] {
        let mut r = ChunkReader::new(new);
        assert!(!r.skip_to(cp as u64, expected, &mut None).expect("reads"), "{}", String::from_utf8_lossy(new));
    }
    // The same bytes and more lines: accepted.
    let mut r = ChunkReader::new(&b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n{\"d\":4}\n"[..]);
    assert!(r.skip_to(cp as u64, expected, &mut None).expect("reads"));
}

#[test]
fn skip_to_a_checkpoint_without_a_line_end_needs_the_line_to_end_there() {
    let old = b"a\nb";
    let expected = prefix(old, old.len());
    for (new, same, next) in [
        (&b"a\nb"[..], true, &b""[..]),
        (b"a\nb\nc\n", true, b"c\n"),
        (b"a\nb\r\nc\n", true, b"c\n"),
        (b"a\nbx\n", false, b""),
        (b"a\nb \n", false, b""),
    ] {
        let mut r = ChunkReader::new(new);
        let ok = r.skip_to(old.len() as u64, expected, &mut None).expect("reads");
        assert_eq!(ok, same, "{}", String::from_utf8_lossy(new));
        if ok {
            let rest: Vec<u8> = all_chunks(&mut r).into_iter().flat_map(|c| c.2).collect();
            assert_eq!(rest, next.to_vec());
        }
    }
}

#[test]
fn reused_buffers_give_the_same_chunks() {
    // Long enough for several chunks, with lines straddling chunk edges.
    let line = format!("{{\"pad\":\"{}\"}}\n", "x".repeat(1000));
    let text = line.repeat(3000);
    let fresh = all_chunks(&mut ChunkReader::new(text.as_bytes()));
    assert!(fresh.len() > 2);
    let (tx, rx) = mpsc::sync_channel(4);
    let mut r = ChunkReader::new(text.as_bytes());
    r.spare = Some(rx);
    let mut reused = Vec::new();
    let mut line = r.line;
    while let Some(c) = r.next_chunk().expect("reads") {
        reused.push((line, c.offset, c.data.clone()));
        line += chunk_lines(&c);
        // A spent buffer still holding old bytes: the reader must clear it.
        let mut spent = c.data;
        spent.extend_from_slice(b"garbage");
        tx.try_send(spent).expect("room in the pool");
    }
    assert_eq!(fresh, reused);
    let joined: Vec<u8> = reused.iter().flat_map(|c| c.2.clone()).collect();
    assert_eq!(joined, text.as_bytes());
}

#[test]
fn unread_reads_the_input_again_from_its_first_line() {
    let text = b"\xef\xbb\xbfa\nb\nc\nd\n";
    for step in [1, 3, 1 << 20] {
        let mut r = ChunkReader::new(Trickle { data: text, step });
        assert_eq!(r.first_line().expect("reads"), b"a");
        let mut kept = Some(Vec::new());
        // A checkpoint of another input: same offset, other bytes.
        assert!(!r.skip_to(7, 0, &mut kept).expect("reads"));
        r.unread(kept.expect("under the limit"));
        let chunks = all_chunks(&mut r);
        assert_eq!((chunks[0].0, chunks[0].1), (1, 3), "step {step}");
        let rest: Vec<u8> = chunks.iter().flat_map(|c| c.2.clone()).collect();
        assert_eq!(rest, b"a\nb\nc\nd\n".to_vec());
    }
}

#[test]
fn chunk_hashes_are_the_prefix_hashes() {
    let line = format!("{{\"pad\":\"{}\"}}\n", "y".repeat(500));
    let text = format!("\u{feff}{}", line.repeat(5000));
    let text = text.as_bytes();
    let mut r = ChunkReader::new(Trickle { data: text, step: 70_000 });
    r.first_line().expect("reads");
    let mut chunks = 0;
    while let Some(c) = r.next_chunk().expect("reads") {
        assert_eq!(c.hash_before.digest(), prefix(text, c.offset as usize));
        assert_eq!(c.hash_after, prefix(text, c.end as usize));
        assert_eq!(c.end, c.offset + c.data.len() as u64);
        chunks += 1;
    }
    assert!(chunks > 1);
    assert_eq!(r.prefix_hash(), Xxh64::of(text));
}

/// A line of `len` bytes and a short one, fed `step` bytes per read.
fn long_line(len: usize) -> Vec<u8> {
    let mut text = vec![b'x'; len];
    text.extend_from_slice(b"\n{}\n");
    text
}

#[test]
fn a_long_line_on_a_pipe_is_scanned_in_linear_time() {
    // Reads as small as a pipe's: before, every read rescanned the whole
    // line so far for a newline, and the work grew with the square.
    let work = |len: usize| {
        let text = long_line(len);
        let mut r = ChunkReader::new(Trickle { data: &text, step: 4096 });
        let joined: Vec<u8> = all_chunks(&mut r).into_iter().flat_map(|c| c.2).collect();
        assert_eq!(joined, text);
        r.scan_work
    };
    let (small, large) = (work(2 << 20), work(8 << 20));
    // Four times the input: about four times the work (twice that would
    // already be quadratic's 16x halved).
    assert!(large <= small * 5, "scan work {small} for 2 MiB, {large} for 8 MiB");
    assert!(large >= 8 << 20, "every byte is looked at: {large}");
}

#[test]
fn a_line_over_the_limit_is_streamed_past_with_its_length_and_hash() {
    let limit = 10_000;
    let mut big = vec![0xffu8; 3 << 20];
    big[..4].copy_from_slice(b"{\"a\"");
    let mut text = b"{\"n\":1}\n".to_vec();
    text.extend_from_slice(&big);
    text.extend_from_slice(b"\r\n{\"n\":3}\n");
    for step in [4096, 1 << 20, usize::MAX] {
        let mut r = ChunkReader::with_max_line(Trickle { data: &text, step }, limit);
        let mut chunks = Vec::new();
        let mut line = r.line;
        while let Some(c) = r.next_chunk().expect("reads") {
            let n = chunk_lines(&c);
            chunks.push((line, c));
            line += n;
        }
        let over: Vec<_> = chunks.iter().filter(|(_, c)| c.oversized.is_some()).collect();
        assert_eq!(over.len(), 1, "step {step}");
        let (first_line, c) = over[0];
        let o = c.oversized.expect("oversized");
        assert_eq!((*first_line, o.length, o.hash), (2, big.len() as u64, Xxh64::of(&big)));
        assert!(c.data.len() <= super::RAW_PREFIX && big.starts_with(&c.data));
        assert_eq!(c.hash_after, Xxh64::of(&text[..c.end as usize]));
        // Never held whole: the buffer stays within the limit and a read.
        assert!(r.peak <= limit + 2 * CHUNK, "peak buffer {} bytes", r.peak);
        let (last_first_line, last) = chunks.last().expect("chunks");
        assert_eq!(*last_first_line, 3, "step {step}");
        assert!(last.data.ends_with(b"{\"n\":3}\n"));
        assert_eq!(last.hash_after, Xxh64::of(&text));
    }
}
