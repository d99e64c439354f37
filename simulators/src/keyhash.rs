//! Turning textual keys into the `u64` object ids the harness runs on.
//!
//! The replay loop keys everything by `u64` (no allocation, a one-multiply hash).
//! Text traces whose key field is a plain decimal number keep that number, so the
//! CSV export of a block trace has the same ids as its binary form. Any other key is
//! hashed with 64-bit FNV-1a over its UTF-8 bytes: fixed forever (unlike
//! `std`'s randomly seeded hasher), so the same trace gives the same ids on every
//! run and machine. Two distinct keys collide with probability about n²/2⁶⁵, which
//! for a billion distinct keys is about 3%: one merged pair among a billion
//! objects, far below anything a hit ratio can show.

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a of `bytes`.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h = FNV_OFFSET;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// The object id of a textual key: its value if it is a decimal `u64`, else its
/// FNV-1a hash.
pub fn key_id(field: &str) -> u64 {
    let field = field.trim();
    match field.parse::<u64>() {
        Ok(n) if !field.starts_with('+') => n,
        _ => fnv1a64(field.as_bytes()),
    }
}

/// The object id of a key that is always hashed (Twitter's anonymised keys, whose
/// all-digit values are still opaque strings).
pub fn hashed_key_id(field: &str) -> u64 {
    fnv1a64(field.trim().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_keys_keep_their_value_and_others_hash_stably() {
        assert_eq!(key_id("3345071"), 3_345_071);
        assert_eq!(key_id(" 42 "), 42);
        // Published FNV-1a 64 test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(key_id("user:1"), fnv1a64(b"user:1"));
        assert_ne!(key_id("user:1"), key_id("user:2"));
        assert_eq!(hashed_key_id("12"), fnv1a64(b"12"));
    }
}
