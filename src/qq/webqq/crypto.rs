//! The two computations a WebQQ login needs (webqq.md §2.5, §4.1):
//!
//! * the ptlogin2 password encryption
//!   `p = MD5_HEX_UPPER(MD5_HEX_UPPER(md5_raw(pw) ‖ uin8) ‖ UPPER(verifycode))`,
//!   where `uin8` is the QQ number as 8 big-endian bytes, written by
//!   `ptui_checkVC` as eight literal `\xHH` escapes;
//! * the December 2013 ("EC/OK") hash that `get_user_friends2` requires.
//!
//! Both are shared by the client and the simulator. The encrypted password
//! is as good as the password for one login, so it is a [`Secret`].

use md5::{Digest, Md5};

use crate::secret::Secret;

/// The QQ number as the 8 bytes `ptui_checkVC` hands out (big-endian).
pub type Uin8 = [u8; 8];

/// The 8 bytes of a QQ number, big-endian.
pub fn uin_bytes(uin: u64) -> Uin8 {
    uin.to_be_bytes()
}

/// The QQ number back from its 8 bytes.
pub fn uin_from_bytes(bytes: &Uin8) -> u64 {
    u64::from_be_bytes(*bytes)
}

/// Writes 8 bytes as `ptui_checkVC` does: `\x00\x00\x00\x00\x64\x74\x8b\x05`
/// (backslash, `x`, two lower-case hex digits per byte).
pub fn format_uin_escapes(bytes: &Uin8) -> String {
    bytes.iter().map(|b| format!("\\x{b:02x}")).collect()
}

/// Reads the `\xHH` escapes of `ptui_checkVC`'s third argument. Accepts
/// either hex case; anything other than exactly eight escapes is `None`.
pub fn parse_uin_escapes(text: &str) -> Option<Uin8> {
    let mut out = [0u8; 8];
    let mut rest = text.trim();
    for slot in &mut out {
        let tail = rest
            .strip_prefix("\\x")
            .or_else(|| rest.strip_prefix("\\X"))?;
        let hex = tail.get(..2)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *slot = u8::from_str_radix(hex, 16).ok()?;
        rest = tail.get(2..)?;
    }
    rest.is_empty().then_some(out)
}

/// The `p=` value of the ptlogin2 `login` request (webqq.md §2.5).
pub fn encrypt_password(password: &str, uin8: &Uin8, verify_code: &str) -> Secret {
    let h1 = Md5::digest(password.as_bytes());
    let mut inner = Md5::new();
    inner.update(h1);
    inner.update(uin8);
    let h2 = upper_hex(&inner.finalize());
    let mut outer = Md5::new();
    outer.update(h2.as_bytes());
    outer.update(verify_code.to_uppercase().as_bytes());
    Secret::new(upper_hex(&outer.finalize()))
}

/// The Dec-2013 "EC/OK" friend-list hash of the own QQ number and the
/// `ptwebqq` value: 16 upper-case hex digits (webqq.md §4.1).
///
/// Mirrors the site's JavaScript: only the low 32 bits of the number take
/// part (`>>` works on 32-bit integers), only the low 8 bits of each
/// UTF-16 code unit, and slots that no character reached stay 0.
pub fn friend_hash(uin: u64, ptwebqq: &str) -> String {
    let mut a = [0u8; 4];
    // JavaScript's charCodeAt counts UTF-16 code units.
    for (i, unit) in ptwebqq.encode_utf16().enumerate() {
        a[i % 4] ^= (unit & 0xFF) as u8;
    }
    let salt = *b"ECOK";
    let n = (uin & 0xFFFF_FFFF) as u32;
    let d = [
        (n >> 24) as u8 ^ salt[0],
        (n >> 16) as u8 ^ salt[1],
        (n >> 8) as u8 ^ salt[2],
        n as u8 ^ salt[3],
    ];
    (0..4)
        .map(|k| format!("{:02X}{:02X}", a[k], d[k]))
        .collect()
}

fn upper_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE_ESCAPES: &str = r"\x00\x00\x00\x00\x64\x74\x8b\x05";

    #[test]
    fn uin_escapes_of_the_worked_example() {
        let bytes = parse_uin_escapes(SAMPLE_ESCAPES);
        assert_eq!(bytes, Some([0, 0, 0, 0, 0x64, 0x74, 0x8b, 0x05]));
        assert_eq!(bytes.map(|b| uin_from_bytes(&b)), Some(1_685_359_365));
        assert_eq!(
            format_uin_escapes(&uin_bytes(1_685_359_365)),
            SAMPLE_ESCAPES
        );
        assert_eq!(
            parse_uin_escapes(r"\X00\x00\x00\x00\x64\x74\x8B\x05"),
            Some(uin_bytes(1_685_359_365))
        );
    }

    #[test]
    fn malformed_uin_escapes_are_rejected() {
        for bad in [
            "",
            r"\x00\x00\x00\x00\x64\x74\x8b",
            r"\x00\x00\x00\x00\x64\x74\x8b\x05\x00",
            r"\x00\x00\x00\x00\x64\x74\x8b\x0g",
            r"\x00\x00\x00\x00\x64\x74\x8b\x+5",
            "0000000064748b05",
        ] {
            assert_eq!(parse_uin_escapes(bad), None, "{bad}");
        }
    }

    #[test]
    fn password_test_vectors_of_webqq_md() {
        let uin8 = uin_bytes(1_685_359_365);
        assert_eq!(
            encrypt_password("password123", &uin8, "!PTH").expose(),
            "6B336642C524AB0FE9F08E3D46195C50"
        );
        assert_eq!(
            encrypt_password("password123", &uin8, "xkcd").expose(),
            "ECD521E61680F58172848A3CCFA9FF0A"
        );
    }

    #[test]
    fn friend_hash_test_vectors_of_webqq_md() {
        assert_eq!(
            friend_hash(
                1_685_359_365,
                "a4c123b1612dd272d1371c17149d439536b3216fdaeeb975729fae923d5a4fd1"
            ),
            "07215B3751C4064E"
        );
        assert_eq!(friend_hash(3_000_000_000, "ab"), "61F762930011004B");
    }

    proptest! {
        #[test]
        fn uin_escapes_round_trip(uin in any::<u64>()) {
            let text = format_uin_escapes(&uin_bytes(uin));
            prop_assert_eq!(parse_uin_escapes(&text).map(|b| uin_from_bytes(&b)), Some(uin));
        }

        #[test]
        fn uin_escape_parser_never_panics(text in "\\PC{0,40}") {
            let _ = parse_uin_escapes(&text);
        }

        #[test]
        fn friend_hash_is_16_upper_hex(uin in any::<u64>(), pt in "\\PC{0,80}") {
            let hash = friend_hash(uin, &pt);
            prop_assert_eq!(hash.len(), 16);
            prop_assert!(hash.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
        }
    }
}
