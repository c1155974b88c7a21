//! The classic QQ face (表情) table: WebQQ protocol id ↔ Chinese name ↔
//! English name ↔ emoji.
//!
//! Ids are the **protocol ids** carried by `["face", id]` (webqq.md §6.4),
//! not panel positions: smile is 14, surprised is 0. The table lists the 105
//! faces of the classic panel in panel order. The 30 ids in 0–134 that the
//! panel does not use have no agreed meaning in the 2013 protocol, so they are
//! deliberately left unnamed (rendered as `[表情N]`) rather than guessed from
//! newer clients, whose numbering differs.

use std::borrow::Cow;

/// Highest protocol face id a WebQQ server accepts (webqq.md §6.4).
pub const MAX_FACE_ID: u16 = 134;

/// Prefix of the fallback label for ids the table does not name: `[表情15]`.
pub const UNNAMED_FACE_PREFIX: &str = "表情";

/// One classic face.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaceInfo {
    /// Protocol id (`["face", id]`).
    pub id: u16,
    /// The name QQ shows and users type as `[微笑]` or `/微笑`.
    pub zh: &'static str,
    /// A short English name, for logs and English-speaking users.
    pub en: &'static str,
    /// The closest emoji, if one is close enough to carry the meaning.
    /// Each emoji appears at most once, so emoji → face → emoji round-trips.
    pub emoji: Option<&'static str>,
}

const fn face(id: u16, zh: &'static str, en: &'static str, emoji: &'static str) -> FaceInfo {
    FaceInfo {
        id,
        zh,
        en,
        emoji: Some(emoji),
    }
}

const fn face_without_emoji(id: u16, zh: &'static str, en: &'static str) -> FaceInfo {
    FaceInfo {
        id,
        zh,
        en,
        emoji: None,
    }
}

/// The classic panel, in panel order (webqq.md §6.4).
pub static FACES: [FaceInfo; 105] = [
    face(14, "微笑", "smile", "🙂"),
    face(1, "撇嘴", "pout", "😕"),
    face(2, "色", "drool", "😍"),
    face(3, "发呆", "daze", "😐"),
    face(4, "得意", "proud", "😌"),
    face(5, "流泪", "tears", "😢"),
    face(6, "害羞", "shy", "😊"),
    face(7, "闭嘴", "zip-it", "🤐"),
    face(8, "睡", "sleep", "😴"),
    face(9, "大哭", "cry", "😭"),
    face(10, "尴尬", "awkward", "😬"),
    face(11, "发怒", "angry", "😡"),
    face(12, "调皮", "tongue", "😜"),
    face(13, "呲牙", "grin", "😁"),
    face(0, "惊讶", "surprised", "😮"),
    face(50, "难过", "sad", "🙁"),
    face(51, "酷", "cool", "😎"),
    face(96, "冷汗", "cold-sweat", "😰"),
    face(53, "抓狂", "frantic", "😫"),
    face(54, "吐", "vomit", "🤮"),
    face(73, "偷笑", "snicker", "🤭"),
    face(74, "可爱", "cute", "🥰"),
    face(75, "白眼", "eye-roll", "🙄"),
    face(76, "傲慢", "haughty", "😤"),
    face(77, "饥饿", "hungry", "🤤"),
    face(78, "困", "sleepy", "😪"),
    face(55, "惊恐", "panic", "😱"),
    face(56, "流汗", "sweat", "😓"),
    face(57, "憨笑", "silly-grin", "😄"),
    face(58, "大兵", "soldier", "💂"),
    face(79, "奋斗", "strive", "💪"),
    face(80, "咒骂", "curse", "🤬"),
    face(81, "疑问", "question", "🤔"),
    face(82, "嘘", "shush", "🤫"),
    face(83, "晕", "dizzy", "😵"),
    face(84, "折磨", "tormented", "😖"),
    face(85, "衰", "unlucky", "😩"),
    face(86, "骷髅", "skull", "💀"),
    face(87, "敲打", "hammer", "🔨"),
    face(88, "再见", "bye", "👋"),
    face(97, "擦汗", "wipe-sweat", "😅"),
    face_without_emoji(98, "抠鼻", "nose-pick"),
    face(99, "鼓掌", "applause", "👏"),
    face(100, "糗大了", "embarrassed", "😳"),
    face(101, "坏笑", "smirk", "😏"),
    face_without_emoji(102, "左哼哼", "humph-left"),
    face_without_emoji(103, "右哼哼", "humph-right"),
    face(104, "哈欠", "yawn", "🥱"),
    face(105, "鄙视", "scorn", "😒"),
    face(106, "委屈", "wronged", "😞"),
    face(107, "快哭了", "about-to-cry", "😥"),
    face(108, "阴险", "sly", "😈"),
    face(109, "亲亲", "kiss", "😚"),
    face(110, "吓", "scared", "😨"),
    face(111, "可怜", "pitiful", "🥺"),
    face(112, "菜刀", "cleaver", "🔪"),
    face(32, "西瓜", "watermelon", "🍉"),
    face(113, "啤酒", "beer", "🍺"),
    face(114, "篮球", "basketball", "🏀"),
    face(115, "乒乓", "ping-pong", "🏓"),
    face(63, "咖啡", "coffee", "☕"),
    face(64, "饭", "rice", "🍚"),
    face(59, "猪头", "pig", "🐷"),
    face(33, "玫瑰", "rose", "🌹"),
    face(34, "凋谢", "wilted-rose", "🥀"),
    face(116, "示爱", "lips", "👄"),
    face(36, "爱心", "heart", "❤️"),
    face(37, "心碎", "broken-heart", "💔"),
    face(38, "蛋糕", "cake", "🎂"),
    face(91, "闪电", "lightning", "⚡"),
    face(92, "炸弹", "bomb", "💣"),
    face(93, "刀", "dagger", "🗡️"),
    face(29, "足球", "soccer", "⚽"),
    face(117, "瓢虫", "ladybug", "🐞"),
    face(72, "便便", "poop", "💩"),
    face(45, "月亮", "moon", "🌙"),
    face(42, "太阳", "sun", "☀️"),
    face(39, "礼物", "gift", "🎁"),
    face(62, "拥抱", "hug", "🤗"),
    face(46, "强", "thumbs-up", "👍"),
    face(47, "弱", "thumbs-down", "👎"),
    face(71, "握手", "handshake", "🤝"),
    face(95, "胜利", "victory", "✌️"),
    face(118, "抱拳", "salute", "🙏"),
    face_without_emoji(119, "勾引", "beckon"),
    face(120, "拳头", "fist", "👊"),
    face_without_emoji(121, "差劲", "bad"),
    face(122, "爱你", "love-you", "🤟"),
    face(123, "NO", "no", "🙅"),
    face(124, "OK", "ok", "👌"),
    face(27, "爱情", "love", "💕"),
    face(21, "飞吻", "blow-kiss", "😘"),
    face_without_emoji(23, "跳跳", "jump"),
    face(25, "发抖", "shiver", "🥶"),
    face(26, "怄火", "fuming", "💢"),
    face_without_emoji(125, "转圈", "twirl"),
    face(126, "磕头", "kowtow", "🙇"),
    face_without_emoji(127, "回头", "look-back"),
    face_without_emoji(128, "跳绳", "skip-rope"),
    face_without_emoji(129, "挥手", "wave"),
    face(130, "激动", "excited", "🤩"),
    face(131, "街舞", "breakdance", "🕺"),
    face(132, "献吻", "kiss-2", "💋"),
    face(133, "左太极", "taichi-left", "☯️"),
    face_without_emoji(134, "右太极", "taichi-right"),
];

/// Other names QQ versions used for the same face (lwqq's theme file calls
/// id 6 `含羞`). Only accepted when parsing, never rendered.
const NAME_ALIASES: [(&str, u16); 1] = [("含羞", 6)];

/// Emoji that Matrix/IRC users commonly type for a face whose canonical
/// emoji is a different one. Only accepted when parsing, never rendered.
const EMOJI_ALIASES: [(char, u16); 6] = [
    ('😀', 13),
    ('😃', 57),
    ('😆', 57),
    ('☺', 6),
    ('♥', 36),
    ('😠', 11),
];

/// Variation selector 16 ("emoji presentation"), ignored when matching.
const EMOJI_PRESENTATION: char = '\u{FE0F}';

/// Longest face name in characters (`糗大了`), which bounds `/name` matching.
pub const MAX_FACE_NAME_CHARS: usize = 3;

/// The face with this protocol id, if the classic panel has it.
pub fn face_by_id(id: u16) -> Option<&'static FaceInfo> {
    FACES.iter().find(|f| f.id == id)
}

/// The face with this Chinese name (or historical alias), without brackets
/// or slash: `face_by_name("微笑")`.
pub fn face_by_name(name: &str) -> Option<&'static FaceInfo> {
    FACES.iter().find(|f| f.zh == name).or_else(|| {
        NAME_ALIASES
            .iter()
            .find(|(alias, _)| *alias == name)
            .and_then(|(_, id)| face_by_id(*id))
    })
}

/// The face for a face code as QQ users typed it: `[微笑]`, `/微笑`, or the
/// fallback form `[表情15]` this module renders for unnamed ids. Returns the
/// protocol id, which for `[表情N]` may be an id the panel does not name.
pub fn face_id_by_code(code: &str) -> Option<u16> {
    if let Some(name) = code.strip_prefix('[').and_then(|c| c.strip_suffix(']')) {
        return face_by_name(name)
            .map(|f| f.id)
            .or_else(|| unnamed_face_id(name));
    }
    let name = code.strip_prefix('/')?;
    face_by_name(name).map(|f| f.id)
}

/// Parses the fallback label `表情N` (N in 0..=MAX_FACE_ID).
pub fn unnamed_face_id(label: &str) -> Option<u16> {
    let digits = label.strip_prefix(UNNAMED_FACE_PREFIX)?;
    if digits.is_empty() || digits.len() > 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse::<u16>().ok().filter(|id| *id <= MAX_FACE_ID)
}

/// The face an emoji stands for. The variation selector U+FE0F is ignored,
/// so `❤` and `❤️` both find the heart.
pub fn face_by_emoji(emoji: &str) -> Option<&'static FaceInfo> {
    let mut chars = emoji.chars().filter(|c| *c != EMOJI_PRESENTATION);
    let first = chars.next()?;
    if chars.next().is_some() {
        return None;
    }
    face_by_emoji_char(first)
}

/// [`face_by_emoji`] for one code point (every table emoji is one code point
/// plus an optional U+FE0F, which a test checks).
pub fn face_by_emoji_char(c: char) -> Option<&'static FaceInfo> {
    FACES
        .iter()
        .find(|f| f.emoji.and_then(|e| e.chars().next()) == Some(c))
        .or_else(|| {
            EMOJI_ALIASES
                .iter()
                .find(|(alias, _)| *alias == c)
                .and_then(|(_, id)| face_by_id(*id))
        })
}

/// The Chinese name of a face, or `表情N` for ids the panel does not name.
pub fn face_label(id: u16) -> Cow<'static, str> {
    match face_by_id(id) {
        Some(f) => Cow::Borrowed(f.zh),
        None => Cow::Owned(format!("{UNNAMED_FACE_PREFIX}{id}")),
    }
}

/// The emoji for a face, if it has one.
pub fn face_emoji(id: u16) -> Option<&'static str> {
    face_by_id(id).and_then(|f| f.emoji)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn anchors_from_the_protocol_doc() {
        assert_eq!(face_by_id(14).map(|f| f.zh), Some("微笑"));
        assert_eq!(face_by_id(0).map(|f| f.zh), Some("惊讶"));
        assert_eq!(face_by_id(50).map(|f| f.zh), Some("难过"));
        assert_eq!(face_by_id(21).map(|f| f.zh), Some("飞吻"));
        assert_eq!(face_by_id(134).map(|f| f.zh), Some("右太极"));
        // ids 1–13 coincide with their panel position.
        for id in 1..=13u16 {
            assert_eq!(FACES[usize::from(id)].id, id);
        }
        assert_eq!(FACES[0].id, 14);
        assert_eq!(FACES[14].id, 0);
    }

    #[test]
    fn exactly_the_documented_ids_are_unused() {
        let unused: Vec<u16> = vec![
            15, 16, 17, 18, 19, 20, 22, 24, 28, 30, 31, 35, 40, 41, 43, 44, 48, 49, 52, 60, 61, 65,
            66, 67, 68, 69, 70, 89, 90, 94,
        ];
        let used: HashSet<u16> = FACES.iter().map(|f| f.id).collect();
        assert_eq!(used.len(), FACES.len(), "ids are unique");
        for id in 0..=MAX_FACE_ID {
            assert_eq!(used.contains(&id), !unused.contains(&id), "id {id}");
        }
    }

    #[test]
    fn names_and_emoji_are_unique_and_emoji_are_single_code_points() {
        let names: HashSet<&str> = FACES.iter().map(|f| f.zh).collect();
        assert_eq!(names.len(), FACES.len());
        assert!(FACES
            .iter()
            .all(|f| f.zh.chars().count() <= MAX_FACE_NAME_CHARS));
        let mut seen = HashSet::new();
        for f in FACES.iter() {
            if let Some(e) = f.emoji {
                let core: Vec<char> = e.chars().filter(|c| *c != EMOJI_PRESENTATION).collect();
                assert_eq!(core.len(), 1, "{e:?} for {}", f.zh);
                assert!(seen.insert(core[0]), "emoji {e} used twice");
            }
        }
        for (alias, _) in EMOJI_ALIASES {
            assert!(
                !seen.contains(&alias),
                "alias {alias} shadows a table emoji"
            );
        }
    }

    #[test]
    fn every_face_round_trips_through_name_and_emoji() {
        for f in FACES.iter() {
            assert_eq!(face_by_name(f.zh).map(|g| g.id), Some(f.id));
            assert_eq!(face_id_by_code(&format!("[{}]", f.zh)), Some(f.id));
            assert_eq!(face_id_by_code(&format!("/{}", f.zh)), Some(f.id));
            if let Some(e) = f.emoji {
                assert_eq!(face_by_emoji(e).map(|g| g.id), Some(f.id));
            }
        }
    }

    #[test]
    fn lookups_by_name_code_and_emoji() {
        assert_eq!(face_by_name("含羞").map(|f| f.id), Some(6));
        assert_eq!(face_by_name("微"), None);
        assert_eq!(face_id_by_code("[微笑]"), Some(14));
        assert_eq!(face_id_by_code("/呲牙"), Some(13));
        assert_eq!(face_id_by_code("微笑"), None);
        assert_eq!(face_id_by_code("[表情15]"), Some(15));
        assert_eq!(face_id_by_code("[表情135]"), None);
        assert_eq!(face_id_by_code("[表情]"), None);
        assert_eq!(face_id_by_code("/表情15"), None);
        assert_eq!(face_by_emoji("❤").map(|f| f.id), Some(36));
        assert_eq!(face_by_emoji("❤️").map(|f| f.id), Some(36));
        assert_eq!(face_by_emoji("😀").map(|f| f.id), Some(13));
        assert_eq!(face_by_emoji("🙂🙂"), None);
        assert_eq!(face_by_emoji(""), None);
    }

    #[test]
    fn labels_fall_back_for_unnamed_ids() {
        assert_eq!(face_label(14), "微笑");
        assert_eq!(face_label(15), "表情15");
        assert_eq!(unnamed_face_id(&face_label(15)), Some(15));
        assert_eq!(face_emoji(98), None);
        assert_eq!(face_emoji(14), Some("🙂"));
    }
}
