//! The chunk reader: resuming (`skip_lines`), chunk boundaries with reused
//! buffers, and the last-line helper the checkpoint hashes.

use super::{last_line, lines, ChunkReader};
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

fn all_chunks<R: Read>(reader: &mut ChunkReader<R>) -> Vec<(u64, u64, Vec<u8>)> {
    let mut out = Vec::new();
    while let Some(c) = reader.next_chunk().expect("reads") {
        out.push((c.first_line, c.offset, c.data));
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

#[test]
fn skip_lines_resumes_after_the_nth_line() {
    let text: Vec<u8> = (1..=50).flat_map(|i| format!("{{\"n\":{i}}}\r\n").into_bytes()).collect();
    for step in [1, 7, 1 << 20] {
        let mut r = ChunkReader::new(Trickle { data: &text, step });
        let last = r.skip_lines(20, &mut None).expect("reads");
        assert_eq!(last.as_deref(), Some(&b"{\"n\":20}"[..]), "step {step}");
        let chunks = all_chunks(&mut r);
        let (first_line, offset, data) = &chunks[0];
        assert_eq!(*first_line, 21);
        let skipped: usize = (1..=20).map(|i| format!("{{\"n\":{i}}}\r\n").len()).sum();
        assert_eq!(*offset, skipped as u64);
        let rest: Vec<u8> = chunks.iter().flat_map(|c| c.2.clone()).collect();
        assert_eq!(rest, text[skipped..].to_vec());
        assert!(data.starts_with(b"{\"n\":21}\r\n"));
    }
}

#[test]
fn skip_lines_past_the_end_finds_nothing() {
    let mut r = ChunkReader::new(&b"a\nb\nc"[..]);
    assert_eq!(r.skip_lines(3, &mut None).expect("reads").as_deref(), Some(&b"c"[..]));
    let mut r = ChunkReader::new(&b"a\nb\n"[..]);
    assert_eq!(r.skip_lines(3, &mut None).expect("reads"), None);
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
    while let Some(c) = r.next_chunk().expect("reads") {
        reused.push((c.first_line, c.offset, c.data.clone()));
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
        r.skip_lines(2, &mut kept).expect("reads");
        r.unread(kept.expect("under the limit"));
        let chunks = all_chunks(&mut r);
        assert_eq!((chunks[0].0, chunks[0].1), (1, 3), "step {step}");
        let rest: Vec<u8> = chunks.iter().flat_map(|c| c.2.clone()).collect();
        assert_eq!(rest, b"a\nb\nc\nd\n".to_vec());
    }
}
