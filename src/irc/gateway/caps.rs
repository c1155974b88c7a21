//! IRCv3 capability negotiation (`CAP LS/LIST/REQ/END`) and the
//! capabilities a client has enabled.

use irc::proto::{CapSubCommand, Command};

/// The capabilities this server offers.
pub const SUPPORTED: &[&str] = &["multi-prefix", "away-notify", "server-time", "message-tags"];

/// What one client enabled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Caps {
    pub multi_prefix: bool,
    pub away_notify: bool,
    pub server_time: bool,
    pub message_tags: bool,
}

impl Caps {
    fn flag(&mut self, name: &str) -> Option<&mut bool> {
        match name.to_ascii_lowercase().as_str() {
            "multi-prefix" => Some(&mut self.multi_prefix),
            "away-notify" => Some(&mut self.away_notify),
            "server-time" => Some(&mut self.server_time),
            "message-tags" => Some(&mut self.message_tags),
            _ => None,
        }
    }

    /// The enabled capabilities, space separated.
    pub fn enabled(&self) -> String {
        let mut names = Vec::new();
        for (on, name) in [
            (self.multi_prefix, "multi-prefix"),
            (self.away_notify, "away-notify"),
            (self.server_time, "server-time"),
            (self.message_tags, "message-tags"),
        ] {
            if on {
                names.push(name);
            }
        }
        names.join(" ")
    }

    /// Applies a `CAP REQ` list atomically: all changes or none. Returns
    /// whether it was accepted.
    pub fn request(&mut self, list: &str) -> bool {
        let mut next = *self;
        for item in list.split_whitespace() {
            let (enable, name) = match item.strip_prefix('-') {
                Some(name) => (false, name),
                None => (true, item),
            };
            match next.flag(name) {
                Some(flag) => *flag = enable,
                None => return false,
            }
        }
        *self = next;
        true
    }
}

/// What a CAP command asks of the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum CapAction {
    /// Reply with these commands (the caller adds the server prefix).
    Reply(Vec<Command>),
    /// Negotiation is over (`CAP END`).
    End,
    /// Unknown subcommand: ERR_INVALIDCAPCMD (410).
    Invalid(String),
}

/// Handles one CAP command for a client called `nick` (`*` before
/// registration). `negotiating` is set while LS/REQ hold registration open.
pub fn handle(
    caps: &mut Caps,
    nick: &str,
    sub: &CapSubCommand,
    arg: Option<&str>,
    negotiating: &mut bool,
) -> CapAction {
    let reply = |sub: CapSubCommand, text: String| {
        Command::CAP(Some(nick.to_owned()), sub, None, Some(text))
    };
    match sub {
        CapSubCommand::LS => {
            *negotiating = true;
            CapAction::Reply(vec![reply(CapSubCommand::LS, SUPPORTED.join(" "))])
        }
        CapSubCommand::LIST => CapAction::Reply(vec![reply(CapSubCommand::LIST, caps.enabled())]),
        CapSubCommand::REQ => {
            *negotiating = true;
            let list = arg.unwrap_or("").to_owned();
            if caps.request(&list) {
                CapAction::Reply(vec![reply(CapSubCommand::ACK, list)])
            } else {
                CapAction::Reply(vec![reply(CapSubCommand::NAK, list)])
            }
        }
        CapSubCommand::END => {
            *negotiating = false;
            CapAction::End
        }
        other => CapAction::Invalid(other.to_str().to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_all_or_nothing() {
        let mut caps = Caps::default();
        assert!(caps.request("multi-prefix away-notify"));
        assert!(caps.multi_prefix && caps.away_notify);
        assert!(!caps.request("server-time sasl"));
        assert!(!caps.server_time);
        assert!(caps.request("-away-notify"));
        assert!(!caps.away_notify);
        assert_eq!(caps.enabled(), "multi-prefix");
    }
}
