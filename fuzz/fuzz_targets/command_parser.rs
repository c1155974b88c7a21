//! The bot command language (`core::command`) on arbitrary text, as typed
//! in a Matrix room, in `&qq` or as `!qq` commands: nothing panics, the
//! result ignores surrounding whitespace, and the log form of a `login` or
//! `oper` line never shows its password.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qqbridge::core::command::{parse, redact, strip_prefix, Command};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let text = text.as_ref();
    let parsed = parse(text);
    assert_eq!(parse(&format!(" \t{text}\n ")), parsed);
    if let Some(rest) = strip_prefix(text, "!qq") {
        assert!(!rest.starts_with(char::is_whitespace));
        let _ = parse(rest);
    }
    let redacted = redact(text);
    if let Ok(Command::Login { password, .. }) = &parsed {
        let password = password.expose();
        let words: Vec<&str> = text.split_whitespace().collect();
        // The password is the third word; it may only show where another
        // word of the line is the same text.
        let shown_elsewhere = words
            .iter()
            .enumerate()
            .any(|(i, w)| i != 2 && w.contains(password));
        if !shown_elsewhere && !"[redacted]".contains(password) {
            assert!(!redacted.contains(password), "{redacted:?}");
        }
    }
});
