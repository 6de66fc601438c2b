//! XXH64, fed incrementally: the running hash of everything the reader has
//! consumed, which a checkpoint stores to prove that a later input starts
//! with the same bytes, and the hash of a dead-lettered line too long to
//! hold whole.
//!
//! Written out here (it is short) rather than taken from a crate: it must
//! never change, since stored checkpoints compare against it. It hashes
//! several GB/s on one core, so the reader thread can afford to feed it
//! every chunk. Not cryptographic: it detects a changed input, it does not
//! resist one built to collide.

const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

fn round(acc: u64, input: u64) -> u64 {
    acc.wrapping_add(input.wrapping_mul(P2)).rotate_left(31).wrapping_mul(P1)
}

fn merge(acc: u64, v: u64) -> u64 {
    (acc ^ round(0, v)).wrapping_mul(P1).wrapping_add(P4)
}

fn read64(b: &[u8]) -> u64 {
    u64::from_le_bytes(b[..8].try_into().expect("8 bytes"))
}

fn read32(b: &[u8]) -> u64 {
    u64::from(u32::from_le_bytes(b[..4].try_into().expect("4 bytes")))
}

/// The state of an XXH64 (seed 0) over the bytes given so far.
#[derive(Clone, Debug)]
pub struct Xxh64 {
    acc: [u64; 4],
    /// Bytes not yet forming a whole 32-byte stripe.
    tail: [u8; 32],
    tail_len: usize,
    total: u64,
}

impl Default for Xxh64 {
    fn default() -> Xxh64 {
        Xxh64::new()
    }
}

impl Xxh64 {
    pub fn new() -> Xxh64 {
        Xxh64 { acc: [P1.wrapping_add(P2), P2, 0, 0u64.wrapping_sub(P1)], tail: [0; 32], tail_len: 0, total: 0 }
    }

    /// The hash of `data` in one go.
    pub fn of(data: &[u8]) -> u64 {
        let mut h = Xxh64::new();
        h.update(data);
        h.digest()
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.total
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn stripe(acc: &mut [u64; 4], s: &[u8]) {
        acc[0] = round(acc[0], read64(&s[0..]));
        acc[1] = round(acc[1], read64(&s[8..]));
        acc[2] = round(acc[2], read64(&s[16..]));
        acc[3] = round(acc[3], read64(&s[24..]));
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if self.tail_len > 0 {
            let take = (32 - self.tail_len).min(data.len());
            self.tail[self.tail_len..self.tail_len + take].copy_from_slice(&data[..take]);
            self.tail_len += take;
            data = &data[take..];
            if self.tail_len < 32 {
                return;
            }
            let tail = self.tail;
            Xxh64::stripe(&mut self.acc, &tail);
            self.tail_len = 0;
        }
        let mut stripes = data.chunks_exact(32);
        for s in &mut stripes {
            Xxh64::stripe(&mut self.acc, s);
        }
        let rest = stripes.remainder();
        self.tail[..rest.len()].copy_from_slice(rest);
        self.tail_len = rest.len();
    }

    /// The hash of everything given so far (the state stays usable).
    pub fn digest(&self) -> u64 {
        let [v1, v2, v3, v4] = self.acc;
        let mut h = if self.total >= 32 {
            let h = v1.rotate_left(1).wrapping_add(v2.rotate_left(7)).wrapping_add(v3.rotate_left(12));
            let h = h.wrapping_add(v4.rotate_left(18));
            merge(merge(merge(merge(h, v1), v2), v3), v4)
        } else {
            P5
        };
        h = h.wrapping_add(self.total);
        let mut rest = &self.tail[..self.tail_len];
        while rest.len() >= 8 {
            h = (h ^ round(0, read64(rest))).rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
            rest = &rest[8..];
        }
        if rest.len() >= 4 {
            h = (h ^ read32(rest).wrapping_mul(P1)).rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
            rest = &rest[4..];
        }
        for &b in rest {
            h = (h ^ u64::from(b).wrapping_mul(P5)).rotate_left(11).wrapping_mul(P1);
        }
        h ^= h >> 33;
        h = h.wrapping_mul(P2);
        h ^= h >> 29;
        h = h.wrapping_mul(P3);
        h ^ (h >> 32)
    }
}

/// A hash as stored: 16 lower-case hex digits.
pub fn hex64(h: u64) -> String {
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::Xxh64;

    #[test]
    fn known_values() {
        // The reference implementation's published values (seed 0).
        assert_eq!(Xxh64::of(b""), 0xEF46_DB37_51D8_E999);
        assert_eq!(Xxh64::of(b"abc"), 0x44BC_2CF5_AD77_0999);
    }

    #[test]
    fn fed_in_pieces_it_hashes_as_in_one_go() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in [0, 1, 3, 4, 7, 8, 31, 32, 33, 63, 64, 65, 200, 1000] {
            let whole = Xxh64::of(&data[..len]);
            for step in [1, 2, 5, 13, 32, 33, 100] {
                let mut h = Xxh64::new();
                for piece in data[..len].chunks(step) {
                    h.update(piece);
                }
                assert_eq!(h.digest(), whole, "len {len}, step {step}");
                assert_eq!(h.len(), len as u64);
            }
        }
        assert_ne!(Xxh64::of(b"a\nb\n"), Xxh64::of(b"a\nc\n"));
    }
}
