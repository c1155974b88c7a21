//! Matrix ids of the bridge's own users and rooms: the bot
//! `@<sender_localpart>:<domain>`, the ghost of QQ number N
//! `@<user_prefix>N:<domain>`, and group aliases
//! `#<alias_prefix>group_<number>:<domain>`.

use ruma::{OwnedUserId, UserId};

use crate::core::model::{GroupNumber, Uin};

use super::MatrixError;

#[derive(Debug, Clone)]
pub struct Ids {
    pub domain: String,
    pub bot: OwnedUserId,
    pub user_prefix: String,
    pub alias_prefix: String,
}

impl Ids {
    pub fn new(
        domain: &str,
        sender_localpart: &str,
        user_prefix: &str,
        alias_prefix: &str,
    ) -> Result<Ids, MatrixError> {
        let bot = parse_user_id(&format!("@{sender_localpart}:{domain}"))?;
        Ok(Ids {
            domain: domain.to_owned(),
            bot,
            user_prefix: user_prefix.to_owned(),
            alias_prefix: alias_prefix.to_owned(),
        })
    }

    /// The ghost of a QQ user.
    pub fn ghost(&self, uin: Uin) -> Result<OwnedUserId, MatrixError> {
        parse_user_id(&format!("@{}{uin}:{}", self.user_prefix, self.domain))
    }

    /// The QQ number behind a ghost id, if it is one of ours.
    pub fn ghost_uin(&self, user_id: &str) -> Option<Uin> {
        let rest = user_id.strip_prefix('@')?;
        let (localpart, server) = rest.split_once(':')?;
        if server != self.domain {
            return None;
        }
        let digits = localpart.strip_prefix(&self.user_prefix)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 19 {
            return None;
        }
        digits.parse::<u64>().ok().map(Uin)
    }

    /// Whether a user is the bridge itself: the bot, or anyone in the ghost
    /// namespace (events from them are never relayed back).
    pub fn is_bridge_user(&self, user_id: &str) -> bool {
        if user_id == self.bot.as_str() {
            return true;
        }
        user_id
            .strip_prefix('@')
            .and_then(|rest| rest.split_once(':'))
            .is_some_and(|(localpart, server)| {
                server == self.domain && localpart.starts_with(&self.user_prefix)
            })
    }

    pub fn is_bot(&self, user_id: &str) -> bool {
        user_id == self.bot.as_str()
    }

    /// The alias localpart of a group portal.
    pub fn group_alias_localpart(&self, group: GroupNumber) -> String {
        format!("{}group_{group}", self.alias_prefix)
    }

    /// The group number behind `#<alias_prefix>group_N:<domain>`.
    pub fn group_of_alias(&self, alias: &str) -> Option<GroupNumber> {
        let rest = alias.strip_prefix('#')?;
        let (localpart, server) = rest.split_once(':')?;
        if server != self.domain {
            return None;
        }
        let digits = localpart
            .strip_prefix(&self.alias_prefix)?
            .strip_prefix("group_")?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) || digits.len() > 19 {
            return None;
        }
        digits.parse::<u64>().ok().map(GroupNumber)
    }
}

pub fn parse_user_id(text: &str) -> Result<OwnedUserId, MatrixError> {
    UserId::parse(text).map_err(|e| MatrixError::BadId(format!("{text:?}: {e}")))
}

/// `https://matrix.to/#/<user id>`, the link of a mention pill.
pub fn matrix_to(user_id: &str) -> String {
    format!("https://matrix.to/#/{user_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Ids {
        Ids::new("example.org", "qqbot", "_qq_", "_qq_").unwrap()
    }

    #[test]
    fn ghosts_round_trip() {
        let ids = ids();
        let ghost = ids.ghost(Uin(10002)).unwrap();
        assert_eq!(ghost.as_str(), "@_qq_10002:example.org");
        assert_eq!(ids.ghost_uin(ghost.as_str()), Some(Uin(10002)));
        assert_eq!(ids.ghost_uin("@_qq_10002:other.org"), None);
        assert_eq!(ids.ghost_uin("@_qq_x:example.org"), None);
        assert_eq!(ids.ghost_uin("@alice:example.org"), None);
        assert_eq!(
            ids.ghost_uin("@_qq_99999999999999999999999:example.org"),
            None
        );
    }

    #[test]
    fn bridge_users_are_recognised() {
        let ids = ids();
        assert!(ids.is_bridge_user("@qqbot:example.org"));
        assert!(ids.is_bridge_user("@_qq_1:example.org"));
        assert!(ids.is_bridge_user("@_qq_anything:example.org"));
        assert!(!ids.is_bridge_user("@alice:example.org"));
        assert!(!ids.is_bridge_user("@_qq_1:evil.org"));
    }

    #[test]
    fn group_aliases_round_trip() {
        let ids = ids();
        let local = ids.group_alias_localpart(GroupNumber(20001));
        assert_eq!(local, "_qq_group_20001");
        assert_eq!(
            ids.group_of_alias(&format!("#{local}:example.org")),
            Some(GroupNumber(20001))
        );
        assert_eq!(ids.group_of_alias("#_qq_group_:example.org"), None);
    }
}
