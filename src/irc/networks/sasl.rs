//! SASL PLAIN (RFC 4616) for the bot: the `AUTHENTICATE` payload, base64
//! encoded and cut into the 400-byte chunks IRCv3 SASL requires.

use crate::secret::Secret;

/// IRCv3 `AUTHENTICATE` lines carry at most this many bytes of payload.
const CHUNK: usize = 400;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
fn base64(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                // ok: the index is a 6-bit value, always within the alphabet.
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The arguments of the `AUTHENTICATE` lines that log `username` in with
/// PLAIN: chunks of 400 bytes, and a final `+` when the last chunk is
/// exactly 400 bytes long (or the payload is empty).
pub(crate) fn plain_payload(username: &str, password: &Secret) -> Vec<String> {
    let mut raw = Vec::with_capacity(username.len() * 2 + password.expose().len() + 2);
    raw.extend_from_slice(username.as_bytes());
    raw.push(0);
    raw.extend_from_slice(username.as_bytes());
    raw.push(0);
    raw.extend_from_slice(password.expose().as_bytes());
    let encoded = base64(&raw);
    let mut lines: Vec<String> = encoded
        .as_bytes()
        .chunks(CHUNK)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    if !matches!(lines.last(), Some(l) if l.len() < CHUNK) {
        lines.push("+".to_owned());
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
    }

    #[test]
    fn plain_payload_is_chunked() {
        let lines = plain_payload("jilles", &Secret::new("sesame"));
        assert_eq!(lines, vec!["amlsbGVzAGppbGxlcwBzZXNhbWU="]);
        let long = plain_payload("u", &Secret::new("p".repeat(600)));
        assert_eq!(long[0].len(), 400);
        assert!(long.iter().all(|l| l.len() <= 400));
    }
}
