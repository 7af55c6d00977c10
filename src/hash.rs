//! Content hashing: XXH64 of a file's bytes, spelled with its algorithm name.
//!
//! A leaf module: the manifest (freshness, options hash), output naming (`{hash}`) and the
//! output keys all hash through here, with one algorithm and one spelling.

/// The content hash of a source file: `xxh64:` and 16 lower-case hex digits.
///
/// The algorithm name is part of the value so that a later build can switch algorithms: an
/// unknown prefix simply never matches, and everything is rebuilt once.
pub(crate) fn content_hash(bytes: &[u8]) -> String {
    format!("xxh64:{:016x}", xxh64(bytes, 0))
}

/// The first 8 hex digits of a [`content_hash`] (or an options hash), for `{hash}` in names.
pub(crate) fn short_hash(hash: &str) -> &str {
    let digits = hash.rsplit(':').next().unwrap_or(hash);
    digits.get(..8).unwrap_or(digits)
}

// XXH64, written from the published specification (Yann Collet, xxHash, 64-bit variant). It is
// about ten times faster than byte-wise FNV-1a on large inputs and has published test vectors.
const P1: u64 = 0x9E37_79B1_85EB_CA87;
const P2: u64 = 0xC2B2_AE3D_27D4_EB4F;
const P3: u64 = 0x1656_67B1_9E37_79F9;
const P4: u64 = 0x85EB_CA77_C2B2_AE63;
const P5: u64 = 0x27D4_EB2F_1656_67C5;

fn xxh64_round(acc: u64, lane: u64) -> u64 {
    acc.wrapping_add(lane.wrapping_mul(P2))
        .rotate_left(31)
        .wrapping_mul(P1)
}

fn xxh64_merge(acc: u64, lane: u64) -> u64 {
    (acc ^ xxh64_round(0, lane))
        .wrapping_mul(P1)
        .wrapping_add(P4)
}

fn le64(bytes: &[u8]) -> u64 {
    let mut word = [0; 8];
    word.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(word)
}

fn le32(bytes: &[u8]) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(word)
}

/// XXH64 of `data` with `seed`.
pub(crate) fn xxh64(data: &[u8], seed: u64) -> u64 {
    let mut stripes = data.chunks_exact(32);
    let mut h = if data.len() >= 32 {
        let mut v1 = seed.wrapping_add(P1).wrapping_add(P2);
        let mut v2 = seed.wrapping_add(P2);
        let mut v3 = seed;
        let mut v4 = seed.wrapping_sub(P1);
        for stripe in &mut stripes {
            v1 = xxh64_round(v1, le64(&stripe[0..]));
            v2 = xxh64_round(v2, le64(&stripe[8..]));
            v3 = xxh64_round(v3, le64(&stripe[16..]));
            v4 = xxh64_round(v4, le64(&stripe[24..]));
        }
        let h = v1
            .rotate_left(1)
            .wrapping_add(v2.rotate_left(7))
            .wrapping_add(v3.rotate_left(12))
            .wrapping_add(v4.rotate_left(18));
        [v1, v2, v3, v4].into_iter().fold(h, xxh64_merge)
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(data.len() as u64);
    let mut words = stripes.remainder().chunks_exact(8);
    for word in &mut words {
        h ^= xxh64_round(0, le64(word));
        h = h.rotate_left(27).wrapping_mul(P1).wrapping_add(P4);
    }
    let mut tail = words.remainder();
    if tail.len() >= 4 {
        h ^= u64::from(le32(tail)).wrapping_mul(P1);
        h = h.rotate_left(23).wrapping_mul(P2).wrapping_add(P3);
        tail = &tail[4..];
    }
    for &b in tail {
        h ^= u64::from(b).wrapping_mul(P5);
        h = h.rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(P2);
    h ^= h >> 29;
    h = h.wrapping_mul(P3);
    h ^ (h >> 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xxh64_matches_the_published_vectors() {
        let cases: [(&[u8], u64, u64); 8] = [
            (b"", 0, 0xef46_db37_51d8_e999),
            (b"a", 0, 0xd24e_c4f1_a98c_6e5b),
            (b"abc", 0, 0x44bc_2cf5_ad77_0999),
            (b"12345678", 0, 0xd2d0_2f08_cf7c_fd4a),
            (b"123456789012345", 0, 0xc377_d78a_de00_1a3c),
            (
                b"12345678901234567890123456789012",
                0,
                0x40fd_1aa5_2d98_274c,
            ),
            (
                b"The quick brown fox jumps over the lazy dog",
                0,
                0x0b24_2d36_1fda_71bc,
            ),
            (
                b"12345678901234567890123456789012",
                5381,
                0x38ea_26e7_c55f_8095,
            ),
        ];
        for (data, seed, want) in cases {
            assert_eq!(
                xxh64(data, seed),
                want,
                "{:?} seed {seed}",
                String::from_utf8_lossy(data)
            );
        }
        assert_eq!(content_hash(b"abc"), "xxh64:44bc2cf5ad770999");
        assert_eq!(short_hash("xxh64:44bc2cf5ad770999"), "44bc2cf5");
        assert_eq!(short_hash("abc"), "abc");
    }
}
