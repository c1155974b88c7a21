//! Bridge user ids of the IRC networks side, and the other names derived
//! from a network's name (puppet naming scope, portal side, outbox
//! destinations).
//!
//! - `irc:<network>:relay@<uin>`: a relay QQ login from the config; the
//!   `@` cannot occur in a nick, so no IRC user can be mistaken for it.
//! - `irc:<network>:<nick>`: an IRC user who logged in to QQ by messaging
//!   the bot (nick rfc1459-lowercased).

use crate::core::model::Uin;
use crate::core::text::irc_lowercase;

/// The side name: prefix of every user id this side owns.
pub const SIDE_NAME: &str = "irc";

const RELAY_MARK: &str = "relay@";

/// Who a bridge user of this side is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Who {
    /// A configured relay login.
    Relay(Uin),
    /// An IRC user (lowercased nick).
    Person(String),
}

pub fn relay_user_id(network: &str, uin: Uin) -> String {
    format!("{SIDE_NAME}:{network}:{RELAY_MARK}{uin}")
}

pub fn person_user_id(network: &str, nick: &str) -> String {
    format!("{SIDE_NAME}:{network}:{}", irc_lowercase(nick))
}

/// Splits a user id of this side into its network and who it is.
pub(crate) fn parse_user_id(user: &str) -> Option<(&str, Who)> {
    let rest = user.strip_prefix(SIDE_NAME)?.strip_prefix(':')?;
    let (network, who) = rest.split_once(':')?;
    if network.is_empty() || who.is_empty() {
        return None;
    }
    let who = match who.strip_prefix(RELAY_MARK) {
        Some(uin) => Who::Relay(uin.parse().ok()?),
        None => Who::Person(who.to_owned()),
    };
    Some((network, who))
}

/// The naming scope of a network's puppets in the store, the side of its
/// portals (runtime channel mappings) and of its message links.
pub(crate) fn network_scope(network: &str) -> String {
    format!("{SIDE_NAME}:{network}")
}

/// Outbox destination of what goes to one IRC target (channel or nick).
pub(crate) fn to_irc_destination(network: &str, target: &str) -> String {
    format!("{SIDE_NAME}:{network}:to:{}", irc_lowercase(target))
}

/// Outbox destination of what IRC users say in one channel, on its way to
/// the relay login.
pub(crate) fn from_irc_destination(network: &str, channel: &str) -> String {
    format!("{SIDE_NAME}:{network}:from:{}", irc_lowercase(channel))
}

/// Prefix of every outbox destination of a network.
pub(crate) fn destination_prefix(network: &str) -> String {
    format!("{SIDE_NAME}:{network}:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_ids_round_trip() {
        let relay = relay_user_id("libera", Uin(10001));
        assert_eq!(relay, "irc:libera:relay@10001");
        assert_eq!(
            parse_user_id(&relay),
            Some(("libera", Who::Relay(Uin(10001))))
        );
        let person = person_user_id("libera", "Alice[m]");
        assert_eq!(person, "irc:libera:alice{m}");
        assert_eq!(
            parse_user_id(&person),
            Some(("libera", Who::Person("alice{m}".into())))
        );
        assert_eq!(parse_user_id("gateway:alice"), None);
        assert_eq!(parse_user_id("irc:libera"), None);
        assert_eq!(parse_user_id("irc:libera:relay@x"), None);
    }
}
