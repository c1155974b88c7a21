//! The `get_user_friends2` hash variants of webqq.md §4, computed from the
//! own QQ number and the session's ptwebqq. The December 2013 one is the
//! client's own ([`friend_hash`]); the two others are what Tencent used
//! before and after it.

use super::quirks::HashVariant;
use crate::qq::webqq::crypto::friend_hash;

/// The hash `variant` expects; `None` when hashes are not checked.
pub fn expected_hash(variant: HashVariant, uin: u64, ptwebqq: &str) -> Option<String> {
    match variant {
        HashVariant::Ecok => Some(friend_hash(uin, ptwebqq)),
        HashVariant::PasswordError => Some(password_error_hash(uin, ptwebqq)),
        HashVariant::Quicksort => Some(quicksort_hash(uin, ptwebqq)),
        HashVariant::Off => None,
    }
}

/// July 2013 / July 2014: `ptwebqq + "password error"` XOR the decimal uin
/// repeated to the same length, two upper-case hex digits per character.
fn password_error_hash(uin: u64, ptwebqq: &str) -> String {
    let salted: Vec<u8> = ptwebqq.bytes().chain(*b"password error").collect();
    let digits = uin.to_string();
    salted
        .iter()
        .zip(digits.bytes().cycle())
        .map(|(a, b)| format!("{:02X}", a ^ b))
        .collect()
}

/// August 2013 / May 2014: a 4-byte state starting as the uin's big-endian
/// bytes, stirred by every move of an iterative quicksort over ptwebqq's
/// character codes (twqq's translation of the site's script).
fn quicksort_hash(uin: u64, ptwebqq: &str) -> String {
    let n = (uin & 0xFFFF_FFFF) as u32; // ok: JavaScript's >> works on 32 bits
    let mut r = n.to_be_bytes();
    let mut j: Vec<u16> = ptwebqq.encode_utf16().collect();
    let len = j.len() as i64; // ok: a string's length fits i64
    let mut stack: Vec<(i64, i64)> = vec![(0, len - 1)];
    let at = |i: i64| usize::try_from(i).unwrap_or(usize::MAX);
    while let Some((mut s, mut e)) = stack.pop() {
        if s >= e || s < 0 || e > len {
            continue;
        }
        if s + 1 == e {
            if j.get(at(s)) > j.get(at(e)) {
                j.swap(at(s), at(e));
            }
            continue;
        }
        let (low, high) = (s, e);
        let pivot = j.get(at(s)).copied().unwrap_or_default();
        while s < e {
            while s < e && j.get(at(e)).copied().unwrap_or_default() >= pivot {
                e -= 1;
                r[0] = r[0].wrapping_add(3);
            }
            if s < e {
                let value = j.get(at(e)).copied().unwrap_or_default();
                if let Some(slot) = j.get_mut(at(s)) {
                    *slot = value;
                }
                s += 1;
                r[1] = r[1].wrapping_mul(13).wrapping_add(43);
            }
            while s < e && j.get(at(s)).copied().unwrap_or_default() <= pivot {
                s += 1;
                r[2] = r[2].wrapping_sub(3);
            }
            if s < e {
                let value = j.get(at(s)).copied().unwrap_or_default();
                if let Some(slot) = j.get_mut(at(e)) {
                    *slot = value;
                }
                e -= 1;
                r[3] = r[0] ^ r[1] ^ r[2] ^ r[3].wrapping_add(1);
            }
        }
        if let Some(slot) = j.get_mut(at(s)) {
            *slot = pivot;
        }
        stack.push((low, s - 1));
        stack.push((s + 1, high));
    }
    r.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecok_is_the_clients_hash() {
        assert_eq!(
            expected_hash(
                HashVariant::Ecok,
                1_685_359_365,
                "a4c123b1612dd272d1371c17149d439536b3216fdaeeb975729fae923d5a4fd1"
            )
            .as_deref(),
            Some("07215B3751C4064E")
        );
        assert_eq!(expected_hash(HashVariant::Off, 1, "x"), None);
    }

    #[test]
    fn password_error_hash_is_two_hex_digits_per_salted_character() {
        let pt = "a4c123b1612dd272d1371c17149d439536b3216fdaeeb975729fae923d5a4fd1";
        let hash = password_error_hash(1_685_359_365, pt);
        assert_eq!(hash.len(), 156);
        // 'a' (0x61) XOR '1' (0x31) = 0x50.
        assert!(hash.starts_with("50"));
    }

    #[test]
    fn quicksort_hash_without_moves_is_the_uin() {
        // Sorted input: only the right cursor moves (r0 += 3 per step).
        assert_eq!(quicksort_hash(0x0102_0304, ""), "01020304");
        assert_eq!(quicksort_hash(0x0102_0304, "a"), "01020304");
        assert_eq!(quicksort_hash(0x0102_0304, "ab"), "01020304");
        assert_eq!(quicksort_hash(0x0102_0304, "abc"), "07020304");
        // "ba" swaps in the two-element case, which stirs nothing.
        assert_eq!(quicksort_hash(0x0102_0304, "ba"), "01020304");
        assert_eq!(quicksort_hash(7, "9f3a0c").len(), 8);
    }
}
