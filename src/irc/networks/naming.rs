//! Puppet nicks and real names: the QQ nickname in pinyin through the
//! network's template (`{nick}[qq]`), within the server's NICKLEN, claimed
//! in the store so every QQ user keeps one nick per network; and the stable
//! fallbacks tried when someone on IRC already uses it.

use crate::config::NICK_PLACEHOLDER;
use crate::core::model::Uin;
use crate::core::text::nick_candidates;

/// Nicks claimed when the whole candidate list is taken (never in
/// practice: the list ends with the QQ number).
const CANDIDATES_TRIED: usize = 40;
/// Fallbacks offered to the server when the preferred nick is in use.
const SERVER_FALLBACKS: usize = 6;

/// How a network names its puppets.
#[derive(Debug, Clone)]
pub(crate) struct PuppetNaming {
    template: String,
}

impl PuppetNaming {
    pub fn new(template: &str) -> PuppetNaming {
        PuppetNaming {
            template: template.to_owned(),
        }
    }

    /// Bytes the template adds around the nick.
    fn overhead(&self) -> usize {
        self.template.len().saturating_sub(NICK_PLACEHOLDER.len())
    }

    fn apply(&self, nick: &str) -> String {
        self.template.replacen(NICK_PLACEHOLDER, nick, 1)
    }

    /// Nicks for a QQ user in order of preference, each within `nicklen`:
    /// the pinyin nick, then the stable fallbacks of [`nick_candidates`]
    /// (`_`, last four digits of the QQ number, the whole number, 2, 3…).
    pub fn candidates(&self, qq_nick: &str, uin: Uin, nicklen: usize) -> Vec<String> {
        let room = nicklen.saturating_sub(self.overhead()).max(1);
        nick_candidates(qq_nick, uin, room)
            .take(CANDIDATES_TRIED)
            .map(|n| self.apply(&n))
            .collect()
    }

    /// What a puppet registers with: its claimed nick first, then fallbacks
    /// that carry its QQ number (unlikely to be anyone else's), so the nick
    /// it ends up with is the same every time.
    pub fn registration_nicks(
        &self,
        claimed: &str,
        qq_nick: &str,
        uin: Uin,
        nicklen: usize,
    ) -> Vec<String> {
        let digits = uin.to_string();
        // ok: the digits are ASCII, so any index is a character boundary.
        let last4 = &digits[digits.len().saturating_sub(4)..];
        let mut all = self.candidates(qq_nick, uin, nicklen);
        // Numbered fallbacks with the QQ number's digits first.
        all.sort_by_key(|n| !n.contains(last4));
        let mut nicks = vec![claimed.to_owned()];
        nicks.extend(
            all.into_iter()
                .filter(|n| n != claimed)
                .take(SERVER_FALLBACKS),
        );
        nicks
    }
}

/// The realname (GECOS) of a puppet: the QQ nickname as QQ shows it, and
/// the QQ number, so `/whois` tells who is behind a pinyin nick.
pub(crate) fn puppet_realname(qq_nick: &str, uin: Uin) -> String {
    let clean: String = qq_nick
        .chars()
        .filter(|c| !c.is_control())
        .take(40)
        .collect();
    format!("{clean} (QQ {uin})")
}

/// The username (ident) of a puppet: `qq` and the QQ number's last digits,
/// within the usual 10-character USERLEN.
pub(crate) fn puppet_username(uin: Uin) -> String {
    let digits = uin.to_string();
    // ok: the digits are ASCII, so any index is a character boundary.
    format!("qq{}", &digits[digits.len().saturating_sub(8)..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_wraps_pinyin_within_nicklen() {
        let naming = PuppetNaming::new("{nick}[qq]");
        let c = naming.candidates("微程", Uin(10002), 31);
        assert_eq!(c[0], "WeiCheng[qq]");
        assert_eq!(c[1], "WeiCheng_[qq]");
        assert_eq!(c[2], "WeiCheng0002[qq]");
        let short = naming.candidates("中华人民共和国", Uin(10002), 9);
        assert_eq!(short[0], "Zhong[qq]");
        assert!(short.iter().all(|n| n.len() <= 9), "{short:?}");
    }

    #[test]
    fn registration_fallbacks_carry_the_number() {
        let naming = PuppetNaming::new("{nick}[qq]");
        let nicks = naming.registration_nicks("WeiCheng[qq]", "微程", Uin(10002), 31);
        assert_eq!(nicks[0], "WeiCheng[qq]");
        assert_eq!(nicks[1], "WeiCheng0002[qq]");
        assert!(nicks.len() > 3);
        assert_eq!(
            nicks.iter().filter(|n| *n == "WeiCheng[qq]").count(),
            1,
            "{nicks:?}"
        );
    }

    #[test]
    fn realname_and_username() {
        assert_eq!(puppet_realname("微程", Uin(10002)), "微程 (QQ 10002)");
        assert_eq!(puppet_realname("a\r\nb", Uin(1)), "ab (QQ 1)");
        assert_eq!(puppet_username(Uin(3924684389)), "qq24684389");
    }
}
