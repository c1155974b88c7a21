//! WebQQ's status strings and numbers (webqq.md §7) for the world's
//! presences, and the `client_type` others see.

use crate::qq::sim::account::Presence;
use crate::qq::sim::events::Origin;

/// `client_type` of a PC client (HTTP QQ 1.1 users and simulated ones).
pub const CLIENT_TYPE_PC: i64 = 1;
/// `client_type` of a WebQQ session.
pub const CLIENT_TYPE_WEBQQ: i64 = 41;

/// The presence a status string (`login2.status`, `change_status2`)
/// asks for. Logging in "offline" would make no sense for a session, so
/// `login2` maps it to hidden itself.
pub fn presence_of(status: &str) -> Option<Presence> {
    Some(match status {
        "online" => Presence::Online,
        "away" => Presence::Away,
        "busy" => Presence::Busy,
        "silent" => Presence::Silent,
        "callme" => Presence::CallMe,
        "hidden" => Presence::Invisible,
        "offline" => Presence::Offline,
        _ => return None,
    })
}

/// The status string of a presence.
pub fn status_string(presence: Presence) -> &'static str {
    match presence {
        Presence::Online => "online",
        Presence::Away => "away",
        Presence::Busy => "busy",
        Presence::Silent => "silent",
        Presence::CallMe => "callme",
        Presence::Invisible => "hidden",
        Presence::Offline => "offline",
    }
}

/// The numeric `stat` of a presence (lwqq's enum).
pub fn stat_code(presence: Presence) -> i64 {
    match presence {
        Presence::Online => 10,
        Presence::Offline => 20,
        Presence::Away => 30,
        Presence::Invisible => 40,
        Presence::Busy => 50,
        Presence::CallMe => 60,
        Presence::Silent => 70,
    }
}

/// `client_type` of an account whose session (if any) speaks `protocol`.
pub fn client_type(protocol: Option<Origin>) -> i64 {
    match protocol {
        Some(Origin::Webqq) => CLIENT_TYPE_WEBQQ,
        _ => CLIENT_TYPE_PC,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_round_trip_and_numbers_follow_lwqq() {
        for presence in [
            Presence::Online,
            Presence::Away,
            Presence::Busy,
            Presence::Silent,
            Presence::CallMe,
            Presence::Invisible,
            Presence::Offline,
        ] {
            assert_eq!(presence_of(status_string(presence)), Some(presence));
        }
        assert_eq!(presence_of("slient"), None);
        assert_eq!(stat_code(Presence::Online), 10);
        assert_eq!(stat_code(Presence::Silent), 70);
        assert_eq!(client_type(Some(Origin::Webqq)), 41);
        assert_eq!(client_type(None), 1);
    }
}
