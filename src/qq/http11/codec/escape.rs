//! The percent rules of HTTP QQ 1.1 values (http11.md §4), one pair of
//! functions per direction.
//!
//! * Requests: the server percent-decodes `%XX` once and keeps `+` literal;
//!   a careful client escapes `%`, `&`, `=`, `,`, `+`, control bytes and
//!   non-ASCII bytes, and sends everything else (spaces included) raw.
//! * Replies: the server escapes `,` as `%252c` (so list separators stay
//!   unambiguous), `%` `&` `=` and control bytes as lowercase `%xx`, and
//!   sends everything else as raw UTF-8.
//!
//! Reply decoding is a single pass that turns `%252c` into `,` and other
//! `%XX` into their byte. That equals the spec's "decode once, then replace
//! `%2c`" for everything the server sends, and additionally lets a literal
//! `%2c` in a text survive: the encoder writes it as `%25%32c`, which the
//! spec's `%252c` token can never match.

/// Writes `%XX` with uppercase hex (the form-encoding convention).
fn push_hex_upper(out: &mut String, byte: u8) {
    // ok (indexing): a nibble is always below 16.
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

/// Writes `%xx` with lowercase hex, as the server does (`%01`, `%0d%0a`).
fn push_hex_lower(out: &mut String, byte: u8) {
    // ok (indexing): a nibble is always below 16.
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0f)]));
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// The byte of a `%XX` escape starting at `raw[at]`, if there is one.
fn escape_at(raw: &[u8], at: usize) -> Option<u8> {
    match raw.get(at..at + 3) {
        Some([b'%', hi, lo]) => Some(hex_value(*hi)? << 4 | hex_value(*lo)?),
        _ => None,
    }
}

/// Encodes a request value: printable ASCII other than `% & = , +` stays raw.
pub fn encode_request_value(text: &str, out: &mut String) {
    for byte in text.bytes() {
        match byte {
            b'%' | b'&' | b'=' | b',' | b'+' => push_hex_upper(out, byte),
            0x20..=0x7e => out.push(char::from(byte)),
            _ => push_hex_upper(out, byte),
        }
    }
}

/// Decodes a request value: `%XX` once; invalid escapes and `+` stay literal.
pub fn decode_request_value(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut at = 0;
    while let Some(&byte) = raw.get(at) {
        if let Some(decoded) = escape_at(raw, at) {
            out.push(decoded);
            at += 3;
        } else {
            out.push(byte);
            at += 1;
        }
    }
    out
}

/// Encodes a reply text value exactly as the simulator's server does.
pub fn encode_reply_text(text: &str, out: &mut String) {
    let mut chars = text.chars().peekable();
    let mut escape_next_two = false;
    while let Some(ch) = chars.next() {
        if escape_next_two {
            // Only reached for the '2' of a literal "%2c" (see module docs).
            escape_next_two = false;
            push_hex_lower(out, b'2');
            continue;
        }
        match ch {
            ',' => out.push_str("%252c"),
            '%' => {
                out.push_str("%25");
                let mut ahead = chars.clone();
                if ahead.next() == Some('2') && matches!(ahead.next(), Some('c' | 'C')) {
                    escape_next_two = true;
                }
            }
            '&' => out.push_str("%26"),
            '=' => out.push_str("%3d"),
            c if u32::from(c) < 0x20 => push_hex_lower(out, c as u8), // ok: c < 0x20
            c => out.push(c),
        }
    }
}

/// Decodes a reply value: `%252c` (any case) is a comma, `%XX` a byte.
pub fn decode_reply_value(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut at = 0;
    while let Some(&byte) = raw.get(at) {
        let comma_token = raw
            .get(at..at + 5)
            .is_some_and(|t| t.eq_ignore_ascii_case(b"%252c"));
        if comma_token {
            out.push(b',');
            at += 5;
        } else if let Some(decoded) = escape_at(raw, at) {
            out.push(decoded);
            at += 3;
        } else {
            out.push(byte);
            at += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(text: &str) -> String {
        let mut out = String::new();
        encode_reply_text(text, &mut out);
        out
    }

    #[test]
    fn reply_escapes_match_the_captured_samples() {
        assert_eq!(
            reply("网络为媒,关系为本.\r\n"),
            "网络为媒%252c关系为本.%0d%0a"
        );
        assert_eq!(reply("\u{1}"), "%01");
        assert_eq!(reply("a&b=c%d"), "a%26b%3dc%25d");
        assert_eq!(reply("http://blog.hackfan.net"), "http://blog.hackfan.net");
    }

    #[test]
    fn literal_percent_2c_survives_a_reply_round_trip() {
        for text in ["%2c", "%2C", "%%2c,", "x%2cy", "%2", "%"] {
            let wire = reply(text);
            assert_eq!(
                decode_reply_value(wire.as_bytes()),
                text.as_bytes(),
                "{wire}"
            );
        }
    }

    #[test]
    fn reply_decoding_follows_the_spec_algorithm() {
        assert_eq!(decode_reply_value(b"a%252Cb%0d%0a"), b"a,b\r\n");
        assert_eq!(decode_reply_value(b"%2c"), b",");
        assert_eq!(decode_reply_value(b"100%"), b"100%");
        assert_eq!(decode_reply_value(b"%zz%4"), b"%zz%4");
    }

    #[test]
    fn request_values_decode_once_and_keep_plus() {
        assert_eq!(decode_request_value(b"a+b%2Cc%252c"), b"a+b,c%2c");
        let mut out = String::new();
        encode_request_value("hi there, 好+&=%\r\n", &mut out);
        assert_eq!(out, "hi there%2C %E5%A5%BD%2B%26%3D%25%0D%0A");
        assert_eq!(
            decode_request_value(out.as_bytes()),
            "hi there, 好+&=%\r\n".as_bytes()
        );
    }
}
