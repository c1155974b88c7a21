//! IRC text: stripping mIRC formatting codes, CTCP ACTION, and splitting
//! text into lines that fit a 512-byte IRC message and cannot inject
//! commands.

use crate::core::model::RichText;

use super::plain::{parse_plain, render_plain, FaceStyle};
use super::split::cut_to_limit;

/// Longest IRC message including the trailing CR LF (RFC 2812 §2.3).
pub const IRC_MAX_LINE_BYTES: usize = 512;

/// Bytes a CTCP ACTION wrapper adds to a line: `\x01ACTION ` and `\x01`.
pub const CTCP_ACTION_OVERHEAD: usize = CTCP_ACTION_PREFIX.len() + 1;

const CTCP_DELIMITER: char = '\x01';
const CTCP_ACTION_PREFIX: &str = "\x01ACTION ";

/// Bytes that would end an IRC line (and so start a new, injected command)
/// or that servers reject.
fn is_line_breaking_byte(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\0')
}

/// Removes mIRC formatting: colours `\x03NN[,NN]`, hex colours
/// `\x04RRGGBB[,RRGGBB]`, bold `\x02`, italics `\x1d`, underline `\x1f`,
/// strikethrough `\x1e`, monospace `\x11`, reverse `\x16` and reset `\x0f`.
/// The result contains none of these bytes, so stripping twice changes
/// nothing.
pub fn strip_irc_formatting(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x02' | '\x1d' | '\x1f' | '\x1e' | '\x11' | '\x16' | '\x0f' => {}
            '\x03' => skip_colour_codes(&mut chars, 2, |c| c.is_ascii_digit()),
            '\x04' => skip_colour_codes(&mut chars, 6, |c| c.is_ascii_hexdigit()),
            c => out.push(c),
        }
    }
    out
}

/// Skips a colour argument after `\x03`/`\x04`: up to `max_digits`
/// foreground digits, then `,` and background digits only when a digit
/// follows the comma (a comma without one is text: "\x034,hello").
fn skip_colour_codes(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    max_digits: usize,
    is_digit: fn(&char) -> bool,
) {
    let mut skipped = 0;
    while skipped < max_digits && chars.next_if(is_digit).is_some() {
        skipped += 1;
    }
    if skipped == 0 {
        return;
    }
    let mut lookahead = chars.clone();
    if lookahead.next() == Some(',') && lookahead.next().as_ref().is_some_and(is_digit) {
        chars.next();
        let mut background = 0;
        while background < max_digits && chars.next_if(is_digit).is_some() {
            background += 1;
        }
    }
}

/// A CTCP request or reply `\x01COMMAND args\x01` as `(COMMAND, args)`.
/// The closing `\x01` is optional, as some clients leave it out.
pub fn parse_ctcp(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix(CTCP_DELIMITER)?;
    let inner = inner.strip_suffix(CTCP_DELIMITER).unwrap_or(inner);
    let (command, args) = inner.split_once(' ').unwrap_or((inner, ""));
    (!command.is_empty()).then_some((command, args))
}

/// Splits off a CTCP ACTION (`/me`): `(true, "waves")` for
/// `"\x01ACTION waves\x01"`, `(false, text)` for anything else.
pub fn parse_irc_action(text: &str) -> (bool, &str) {
    match parse_ctcp(text) {
        Some((command, args)) if command.eq_ignore_ascii_case("ACTION") => (true, args),
        _ => (false, text),
    }
}

/// Wraps one line as a CTCP ACTION.
pub fn render_irc_action(text: &str) -> String {
    format!("{CTCP_ACTION_PREFIX}{text}{CTCP_DELIMITER}")
}

/// How many bytes of text fit in `:prefix PRIVMSG target :text\r\n` within
/// 512 bytes, where `prefix` (`nick!user@host`, as the server will relay
/// it) is `prefix_len` bytes and the target `target_len` bytes. Zero when
/// nothing fits.
pub fn irc_payload_budget(prefix_len: usize, target_len: usize) -> usize {
    // ':' + prefix + " PRIVMSG " + target + " :" + text + "\r\n"
    const FRAMING: usize = 1 + " PRIVMSG ".len() + " :".len() + "\r\n".len();
    IRC_MAX_LINE_BYTES.saturating_sub(FRAMING + prefix_len + target_len)
}

/// Splits text into IRC lines: one per line of the input (`\r\n`, `\r` or
/// `\n`), with NUL removed, empty lines dropped and long lines cut on UTF-8
/// character boundaries (after a space near the end if there is one) into
/// pieces of at most `max_bytes` bytes. No line contains CR, LF or NUL.
/// Budgets below 4 bytes are raised to 4 so every character can be sent.
pub fn split_irc_lines(text: &str, max_bytes: usize) -> Vec<String> {
    let mut lines = Vec::new();
    for line in text.split(['\r', '\n']) {
        let clean: String = line
            .chars()
            .filter(|c| !is_line_breaking_byte(*c))
            .collect();
        lines.extend(
            cut_to_limit(&clean, max_bytes, &[])
                .into_iter()
                .map(str::to_owned),
        );
    }
    lines
}

/// Renders a message as IRC lines for one PRIVMSG each, within `max_bytes`
/// per line (see [`irc_payload_budget`]); actions become CTCP ACTIONs, each
/// line wrapped separately. Stray `\x01` bytes are removed so a message can
/// never pose as a CTCP request.
pub fn render_irc_lines(rich: &RichText, style: FaceStyle, max_bytes: usize) -> Vec<String> {
    let text: String = render_plain(rich, style)
        .chars()
        .filter(|c| *c != CTCP_DELIMITER)
        .collect();
    if rich.action {
        let budget = max_bytes.saturating_sub(CTCP_ACTION_OVERHEAD);
        split_irc_lines(&text, budget)
            .iter()
            .map(|line| render_irc_action(line))
            .collect()
    } else {
        split_irc_lines(&text, max_bytes)
    }
}

/// Parses an IRC PRIVMSG/NOTICE text: CTCP ACTION sets the action flag,
/// formatting codes are stripped, face codes and URLs are recognised.
pub fn parse_irc(text: &str) -> RichText {
    let (action, body) = parse_irc_action(text);
    let mut rich = parse_plain(&strip_irc_formatting(body));
    rich.action = action;
    rich
}

#[cfg(test)]
mod tests;
