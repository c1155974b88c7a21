//! The IRC gateway's input path on arbitrary bytes (invalid UTF-8, bare CR
//! or LF, NUL, overlong lines and tags): framing, the length limits and the
//! guarded parser; then the outgoing side, `core::text`'s IRC splitting and
//! the gateway's encoder, which must never let text start a second line.
#![no_main]

use irc::proto::{Command, Message, Prefix};
use libfuzzer_sys::fuzz_target;
use qqbridge::core::text::{parse_irc, split_irc_lines, split_message_for_limit};
use qqbridge::irc::gateway::wire::{classify, encode, parse_line, Frame, MAX_BODY_BYTES};

fuzz_target!(|data: &[u8]| {
    // Incoming: frames never hold a line end, and whatever parses
    // re-encodes as exactly one line.
    for frame in qqbridge::fuzzing::gateway_frames(data) {
        if let Frame::Line(line) = frame {
            assert!(!line.is_empty());
            assert!(!line.contains(['\r', '\n']), "{line:?}");
            if let Ok(message) = parse_line(&line) {
                assert_one_wire_line(&encode(&message));
            }
        }
    }
    if let Frame::Line(line) = classify(data) {
        // The limits hold on the bytes read (lossy decoding may grow them).
        let body = match data.first() {
            Some(b'@') => data
                .iter()
                .position(|b| *b == b' ')
                .map_or(0, |s| data.len() - s - 1),
            _ => data.len(),
        };
        assert!(body <= MAX_BODY_BYTES);
        let _ = parse_line(&line);
    }

    // Outgoing: text from QQ split into PRIVMSG lines within the budget
    // (the first byte picks it, to reach the small ones too).
    let text = String::from_utf8_lossy(data);
    let budget = data.first().map_or(400, |b| usize::from(*b) * 2);
    let lines = split_irc_lines(&text, budget);
    for line in &lines {
        assert!(!line.is_empty());
        assert!(!line.contains(['\r', '\n', '\0']), "{line:?}");
        assert!(line.len() <= budget.max(4), "{} > {budget}", line.len());
    }
    // Never a silent drop: only line ends and NUL are removed.
    let kept: String = text
        .chars()
        .filter(|c| !matches!(c, '\r' | '\n' | '\0'))
        .collect();
    assert_eq!(lines.concat(), kept);
    // The same cutter for QQ's limits: only line ends at a cut go.
    let pieces = split_message_for_limit(&text, budget);
    for piece in &pieces {
        assert!(!piece.is_empty() && piece.len() <= budget.max(4));
    }
    let strip = |t: &str| -> String { t.chars().filter(|c| !matches!(c, '\r' | '\n')).collect() };
    assert_eq!(strip(&pieces.concat()), strip(&text));
    let _ = parse_irc(&text);
    let privmsg = Message {
        tags: None,
        prefix: Some(Prefix::Nickname("nick".into(), "10001".into(), "qq".into())),
        command: Command::PRIVMSG("#group".into(), text.into_owned()),
    };
    assert_one_wire_line(&encode(&privmsg));
});

/// CR LF only at the end, no NUL, at most 510 bytes of body.
fn assert_one_wire_line(wire: &str) {
    let inner = wire
        .strip_suffix("\r\n")
        .unwrap_or_else(|| panic!("{wire:?}"));
    assert!(!inner.contains(['\r', '\n', '\0']), "{wire:?}");
    let body = match inner.strip_prefix('@') {
        Some(_) => inner.find(' ').map_or("", |s| &inner[s + 1..]),
        None => inner,
    };
    assert!(
        body.len() <= MAX_BODY_BYTES,
        "{} bytes: {wire:?}",
        body.len()
    );
}
