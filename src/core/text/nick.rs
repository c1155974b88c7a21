//! IRC nicknames for QQ users: Chinese nicks spelled in pinyin, sanitised to
//! RFC 2812 nick syntax, with stable fallbacks when a nick is taken.

use std::collections::HashSet;

use pinyin::ToPinyin;

use crate::core::model::Uin;

/// What an empty or entirely unusable nick becomes.
const FALLBACK_NICK: &str = "qq";

/// Numbered fallbacks tried after the QQ-number ones, so the candidate list
/// ends even when `max_len` leaves room for few distinct nicks.
const MAX_NUMBERED_FALLBACK: u32 = 9999;

/// RFC 2812 "special": `[ ] \ ` _ ^ { | }`.
fn is_special(c: char) -> bool {
    matches!(c, '[' | ']' | '\\' | '`' | '_' | '^' | '{' | '|' | '}')
}

fn is_nick_start(c: char) -> bool {
    c.is_ascii_alphabetic() || is_special(c)
}

fn is_nick_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || is_special(c) || c == '-'
}

/// Whether `nick` is a valid RFC 2812 nickname of at most `max_len` bytes.
pub fn is_valid_irc_nick(nick: &str, max_len: usize) -> bool {
    let mut chars = nick.chars();
    chars.next().is_some_and(is_nick_start) && chars.all(is_nick_char) && nick.len() <= max_len
}

/// An IRC nick for a QQ nickname: Chinese characters become tone-less
/// pinyin with each syllable capitalised (`微程` → `WeiCheng`, `Hackfan 好`
/// → `HackfanHao`), full-width and accented Latin letters become ASCII,
/// everything else not allowed in a nick is dropped. The result is valid
/// (a leading digit or `-` gets a `_` in front), never empty (`qq`), and at
/// most `max_len` bytes (at least 1).
pub fn irc_nick_from_qq_nick(nick: &str, max_len: usize) -> String {
    let mut spelled = String::with_capacity(nick.len());
    for c in nick.chars() {
        if let Some(syllable) = c.to_pinyin() {
            push_capitalised_syllable(&mut spelled, syllable.plain());
        } else if let Some(ascii) = fold_to_ascii(c) {
            spelled.push(ascii);
        }
    }
    sanitize_irc_nick(&spelled, max_len)
}

/// Makes any string a valid nick of at most `max(max_len, 1)` bytes by
/// dropping disallowed characters; see [`irc_nick_from_qq_nick`].
pub fn sanitize_irc_nick(raw: &str, max_len: usize) -> String {
    let mut nick: String = raw.chars().filter(|c| is_nick_char(*c)).collect();
    if nick.starts_with(|c: char| !is_nick_start(c)) {
        nick.insert(0, '_');
    }
    if nick.is_empty() {
        nick.push_str(FALLBACK_NICK);
    }
    // ok: every remaining character is ASCII, so any length is a boundary.
    nick.truncate(max_len.max(1));
    nick
}

fn push_capitalised_syllable(out: &mut String, syllable: &str) {
    let mut chars = syllable.chars().map(|c| if c == 'ü' { 'v' } else { c });
    if let Some(first) = chars.next() {
        out.push(first.to_ascii_uppercase());
    }
    out.extend(chars);
}

/// The ASCII character a Latin-looking character stands for: itself if
/// ASCII, the half-width form of a full-width one (`ＱＱ１２３`, common in
/// Chinese nicks), the base letter of a common accented one.
fn fold_to_ascii(c: char) -> Option<char> {
    if c.is_ascii() {
        return Some(c);
    }
    if ('\u{FF01}'..='\u{FF5E}').contains(&c) {
        return char::from_u32(u32::from(c) - 0xFEE0);
    }
    let base = match c {
        'à'..='å' | 'ā' => 'a',
        'À'..='Å' | 'Ā' => 'A',
        'ç' => 'c',
        'Ç' => 'C',
        'è'..='ë' | 'ē' => 'e',
        'È'..='Ë' | 'Ē' => 'E',
        'ì'..='ï' | 'ī' => 'i',
        'Ì'..='Ï' | 'Ī' => 'I',
        'ñ' => 'n',
        'Ñ' => 'N',
        'ò'..='ö' | 'ø' | 'ō' => 'o',
        'Ò'..='Ö' | 'Ø' | 'Ō' => 'O',
        'ù'..='û' | 'ū' => 'u',
        'ü' | 'ǖ' | 'ǘ' | 'ǚ' | 'ǜ' => 'v',
        'Ù'..='Û' | 'Ū' => 'U',
        'Ü' => 'V',
        'ý' | 'ÿ' => 'y',
        'Ý' => 'Y',
        _ => return None,
    };
    Some(base)
}

/// Nicks to try, in a stable order, when `base` may be taken: `base`,
/// `base_`, `base<last 4 digits of uin>`, `base<uin>`, then `base2`,
/// `base3`… `base` may be a QQ nick; it goes through
/// [`irc_nick_from_qq_nick`], which leaves a valid nick unchanged. All are valid nicks of at most `max_len` bytes (the base is
/// shortened to make room for a suffix) and no nick repeats; the sequence is
/// finite.
pub fn nick_candidates(base: &str, uin: Uin, max_len: usize) -> impl Iterator<Item = String> {
    let max_len = max_len.max(1);
    let base = irc_nick_from_qq_nick(base, max_len);
    let digits = uin.to_string();
    let last4 = digits
        .get(digits.len().saturating_sub(4)..)
        .unwrap_or(&digits)
        .to_owned();
    let fixed = vec![String::new(), "_".to_owned(), last4, digits];
    let numbered = (2..=MAX_NUMBERED_FALLBACK).map(|n| n.to_string());
    let mut seen = HashSet::new();
    fixed
        .into_iter()
        .chain(numbered)
        .map(move |suffix| with_suffix(&base, &suffix, max_len))
        .filter(move |nick| seen.insert(nick.clone()))
}

/// `base` + `suffix` within `max_len` bytes, shortening the base first and
/// then the suffix (keeping its end), but always keeping the base's first
/// character so the nick still starts validly.
fn with_suffix(base: &str, suffix: &str, max_len: usize) -> String {
    let suffix_room = max_len.saturating_sub(1);
    let suffix = suffix
        .get(suffix.len().saturating_sub(suffix_room)..)
        .unwrap_or("");
    let base_room = max_len.saturating_sub(suffix.len()).max(1);
    let base_part = base.get(..base_room.min(base.len())).unwrap_or(base);
    format!("{base_part}{suffix}")
}

/// Lowercases a nick under the `rfc1459` case mapping most IRC servers use
/// (`[]\~` are the upper case of `{}|^`), for comparing nicks.
pub fn irc_lowercase(nick: &str) -> String {
    nick.chars()
        .map(|c| match c {
            '[' => '{',
            ']' => '}',
            '\\' => '|',
            '~' => '^',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc1459_lowercase_folds_letters_and_brackets_only() {
        assert_eq!(irc_lowercase("FooBAR"), "foobar");
        assert_eq!(irc_lowercase("[A]"), irc_lowercase("{a}"));
        assert_eq!(irc_lowercase(r"x\y~z"), "x|y^z");
        for name in ["{a}|^", "qq_10001", "小明", "Ä", "a-b_c`"] {
            assert_eq!(irc_lowercase(&irc_lowercase(name)), irc_lowercase(name));
        }
        assert_eq!(irc_lowercase("小明Ä"), "小明Ä");
    }

    #[test]
    fn chinese_nicks_become_capitalised_pinyin() {
        assert_eq!(irc_nick_from_qq_nick("微程", 30), "WeiCheng");
        assert_eq!(irc_nick_from_qq_nick("Hackfan 好", 30), "HackfanHao");
        assert_eq!(irc_nick_from_qq_nick("小绿", 30), "XiaoLv");
        assert_eq!(irc_nick_from_qq_nick("张三@公司", 30), "ZhangSanGongSi");
    }

    #[test]
    fn nicks_are_sanitised() {
        assert_eq!(irc_nick_from_qq_nick("ＱＱ小冰", 30), "QQXiaoBing");
        assert_eq!(irc_nick_from_qq_nick("2B青年", 30), "_2BQingNian");
        assert_eq!(irc_nick_from_qq_nick("-_-", 30), "_-_-");
        assert_eq!(irc_nick_from_qq_nick("José ♥", 30), "Jose");
        assert_eq!(irc_nick_from_qq_nick("[bot]|away", 30), "[bot]|away");
        assert_eq!(irc_nick_from_qq_nick("", 30), "qq");
        assert_eq!(irc_nick_from_qq_nick("♥★", 30), "qq");
        assert_eq!(irc_nick_from_qq_nick("中华人民共和国", 9), "ZhongHuaR");
        assert_eq!(irc_nick_from_qq_nick("微程", 0), "W");
    }

    #[test]
    fn candidates_follow_the_documented_order() {
        let got: Vec<String> = nick_candidates("WeiCheng", Uin(3924684389), 30)
            .take(6)
            .collect();
        assert_eq!(
            got,
            vec![
                "WeiCheng",
                "WeiCheng_",
                "WeiCheng4389",
                "WeiCheng3924684389",
                "WeiCheng2",
                "WeiCheng3"
            ]
        );
    }

    #[test]
    fn candidates_shorten_the_base_to_fit() {
        let got: Vec<String> = nick_candidates("ZhongHuaRen", Uin(10002), 9)
            .take(5)
            .collect();
        assert_eq!(
            got,
            vec![
                "ZhongHuaR",
                "ZhongHua_",
                "Zhong0002",
                "Zhon10002",
                "ZhongHua2"
            ]
        );
        // With room for two characters only, the list is short but finite.
        let tiny: Vec<String> = nick_candidates("微程", Uin(10002), 2).collect();
        assert_eq!(tiny.len(), 12, "{tiny:?}");
        assert!(tiny.iter().all(|n| n.len() <= 2 && n.starts_with('W')));
    }

    #[test]
    fn compares_nicks_case_insensitively() {
        assert_eq!(irc_lowercase("Wei[Cheng]\\~"), "wei{cheng}|^");
    }

    proptest! {
        #[test]
        fn generated_nicks_are_always_valid(nick in "\\PC{0,20}", max_len in 1usize..32) {
            let generated = irc_nick_from_qq_nick(&nick, max_len);
            prop_assert!(is_valid_irc_nick(&generated, max_len), "{:?}", generated);
        }

        #[test]
        fn candidates_are_valid_distinct_and_fit(
            base in "\\PC{0,12}",
            uin in 10000u64..5_000_000_000,
            max_len in 1usize..16,
        ) {
            let candidates: Vec<String> = nick_candidates(&base, Uin(uin), max_len).take(50).collect();
            prop_assert!(!candidates.is_empty());
            let distinct: HashSet<&String> = candidates.iter().collect();
            prop_assert_eq!(distinct.len(), candidates.len());
            for c in &candidates {
                prop_assert!(is_valid_irc_nick(c, max_len), "{:?}", c);
            }
        }
    }
}
