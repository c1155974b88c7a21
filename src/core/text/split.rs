//! Cutting text into pieces that fit a byte limit, on UTF-8 character
//! boundaries. IRC lines and QQ messages share this one implementation.

/// The smallest budget that can carry any character (a UTF-8 character is at
/// most 4 bytes). Smaller budgets are raised to this, because text that
/// cannot be sent at all helps nobody more than a slightly long line.
pub const MIN_PIECE_BYTES: usize = 4;

/// How far back from the hard limit (in percent of the piece) a cut may move
/// to land after a preferred break such as a space.
const BREAK_WINDOW_PERCENT: usize = 20;

/// Characters after which a cut reads naturally: spaces and the Chinese
/// punctuation that ends a clause, since Chinese text has no spaces.
const SOFT_BREAKS: &[char] = &[' ', '\t', '，', '。', '！', '？', '、', '；', '：', '…'];

/// Splits `text` into consecutive non-empty pieces of at most
/// `max(max_bytes, MIN_PIECE_BYTES)` bytes whose concatenation is `text`.
///
/// A cut prefers to follow a soft break (space, Chinese punctuation, or any
/// of `extra_breaks`) found in the last fifth of the piece, and avoids
/// separating a character from the combining marks, variation selectors,
/// skin tones or zero-width joiners that belong to it.
pub(crate) fn cut_to_limit<'a>(
    text: &'a str,
    max_bytes: usize,
    extra_breaks: &[char],
) -> Vec<&'a str> {
    let max_bytes = max_bytes.max(MIN_PIECE_BYTES);
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > max_bytes {
        let cut = cut_point(rest, max_bytes, extra_breaks);
        let (piece, tail) = rest.split_at(cut);
        pieces.push(piece);
        rest = tail;
    }
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// Where to cut `text` (longer than `max_bytes`): always a char boundary in
/// `1..=max_bytes`.
fn cut_point(text: &str, max_bytes: usize, extra_breaks: &[char]) -> usize {
    let hard = floor_char_boundary(text, max_bytes);
    if hard == 0 {
        // Unreachable with max_bytes >= 4; cutting after the first character
        // still guarantees progress.
        return text.chars().next().map_or(text.len(), char::len_utf8);
    }
    let hard = back_off_grapheme_tail(text, hard);
    // A cut right after a break character ending at or after this index is
    // close enough to the limit to be worth the shorter piece.
    let window_start = hard - hard * BREAK_WINDOW_PERCENT / 100;
    let soft = text
        .get(..hard)
        .unwrap_or("")
        .char_indices()
        .rev()
        .map(|(i, c)| (i + c.len_utf8(), c))
        .take_while(|(end, _)| *end >= window_start)
        .find(|(end, c)| {
            (SOFT_BREAKS.contains(c) || extra_breaks.contains(c)) && !splits_grapheme(text, *end)
        });
    soft.map_or(hard, |(end, _)| end)
}

/// The largest char boundary of `text` that is `<= index`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    (0..=index)
        .rev()
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(0)
}

/// Moves a cut at `cut` back so it does not split a grapheme, unless that
/// would leave nothing before it (then the raw boundary is kept).
fn back_off_grapheme_tail(text: &str, cut: usize) -> usize {
    let mut at = cut;
    while at > 0 && splits_grapheme(text, at) {
        at = floor_char_boundary(text, at - 1);
    }
    if at == 0 {
        cut
    } else {
        at
    }
}

/// Whether cutting at byte `at` would separate a character from a mark that
/// attaches to it, or break a zero-width-joiner sequence.
fn splits_grapheme(text: &str, at: usize) -> bool {
    let before = text.get(..at).and_then(|s| s.chars().next_back());
    let after = text.get(at..).and_then(|s| s.chars().next());
    matches!(before, Some('\u{200D}')) || after.is_some_and(attaches_to_previous)
}

/// Characters that render as part of the character before them.
fn attaches_to_previous(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'     // combining diacritical marks
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{200D}'                // zero-width joiner
        | '\u{20D0}'..='\u{20FF}'   // combining marks for symbols, keycap
        | '\u{FE00}'..='\u{FE0F}'   // variation selectors
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{1F3FB}'..='\u{1F3FF}' // emoji skin tones
        | '\u{E0020}'..='\u{E007F}' // emoji tag sequences
        | '\u{E0100}'..='\u{E01EF}')
}

/// Splits a message for a QQ-side length limit: pieces of at most
/// `max(max_bytes, MIN_PIECE_BYTES)` bytes, cut preferably after a line
/// break, space or Chinese punctuation. Line breaks inside a piece are kept;
/// line breaks at the end of a piece are dropped (a message never needs to
/// end with one) and pieces left empty are skipped.
pub fn split_message_for_limit(text: &str, max_bytes: usize) -> Vec<String> {
    cut_to_limit(text, max_bytes, &['\n'])
        .into_iter()
        .map(|piece| piece.trim_end_matches(['\n', '\r']))
        .filter(|piece| !piece.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn short_text_is_one_piece() {
        assert_eq!(cut_to_limit("你好", 10, &[]), vec!["你好"]);
        assert!(cut_to_limit("", 10, &[]).is_empty());
    }

    #[test]
    fn chinese_is_cut_on_char_boundaries() {
        // 3 bytes per character: 10 bytes hold 3 characters.
        assert_eq!(
            cut_to_limit("一二三四五六七", 10, &[]),
            vec!["一二三", "四五六", "七"]
        );
    }

    #[test]
    fn cut_prefers_a_space_or_chinese_comma_near_the_end() {
        assert_eq!(
            cut_to_limit("hello world again", 14, &[]),
            vec!["hello world ", "again"]
        );
        // The comma ends at byte 27, in the last fifth of a 30-byte piece.
        assert_eq!(
            cut_to_limit("一二三四五六七八，九十一二三", 30, &[]),
            vec!["一二三四五六七八，", "九十一二三"]
        );
        // A space early in the piece is not worth a short line.
        assert_eq!(
            cut_to_limit("a bcdefghijklmnop", 10, &[]),
            vec!["a bcdefghi", "jklmnop"]
        );
    }

    #[test]
    fn cut_keeps_emoji_modifiers_with_their_base() {
        // 👍 (4 bytes) + skin tone (4 bytes): the hard limit (7) falls between them.
        assert_eq!(cut_to_limit("abc👍🏽d", 10, &[]), vec!["abc", "👍🏽d"]);
        // When the pair alone exceeds the budget, splitting it is the only way.
        assert_eq!(cut_to_limit("👍🏽", 6, &[]), vec!["👍", "🏽"]);
    }

    #[test]
    fn tiny_budgets_still_make_progress() {
        assert_eq!(cut_to_limit("微笑", 0, &[]), vec!["微", "笑"]);
    }

    #[test]
    fn qq_split_prefers_line_breaks_and_drops_them_at_piece_ends() {
        let text = "第一行内容\n第二行内容比较长";
        let pieces = split_message_for_limit(text, 20);
        assert_eq!(pieces, vec!["第一行内容", "第二行内容比", "较长"]);
        assert_eq!(split_message_for_limit("\n\n", 10), Vec::<String>::new());
    }

    proptest! {
        #[test]
        fn pieces_fit_and_concatenate_back(text in "\\PC{0,200}", max in 0usize..64) {
            let pieces = cut_to_limit(&text, max, &[]);
            prop_assert_eq!(pieces.concat(), text.as_str());
            for p in &pieces {
                prop_assert!(!p.is_empty());
                prop_assert!(p.len() <= max.max(MIN_PIECE_BYTES));
            }
        }

        #[test]
        fn qq_pieces_fit(text in "(\\PC|\n){0,200}", max in 4usize..64) {
            for p in split_message_for_limit(&text, max) {
                prop_assert!(!p.is_empty() && p.len() <= max);
            }
        }
    }
}
