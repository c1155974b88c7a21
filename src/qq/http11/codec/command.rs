//! Command names and protocol versions of HTTP QQ 1.1 (http11.md §2.2, §6).
//!
//! A command has three spellings: the one clients send (`Query_Stat`), the
//! one the server echoes (`QUERY_STAT`), and whatever case a client happens
//! to use (`Change_stat` in Hackfan's class), which the server accepts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::CodecError;

/// Every command of the 1.1 list plus `Finger` from the 1.0 list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Command {
    Login,
    List,
    QueryStat,
    GetInfo,
    AddToList,
    AckAddToList,
    DelFromList,
    ChangeStat,
    GetMsgEx,
    CltMsg,
    Logout,
    Finger,
}

/// How the server spells `CMD` in a Login reply: \[003\] and the 2010 capture
/// say `Login`, \[001\] says `LOGIN` (protocol README.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum LoginEcho {
    #[default]
    #[serde(rename = "Login")]
    MixedCase,
    #[serde(rename = "LOGIN")]
    UpperCase,
}

impl Command {
    pub const ALL: [Command; 12] = [
        Command::Login,
        Command::List,
        Command::QueryStat,
        Command::GetInfo,
        Command::AddToList,
        Command::AckAddToList,
        Command::DelFromList,
        Command::ChangeStat,
        Command::GetMsgEx,
        Command::CltMsg,
        Command::Logout,
        Command::Finger,
    ];

    /// The spelling clients send.
    pub fn wire_name(self) -> &'static str {
        match self {
            Command::Login => "Login",
            Command::List => "List",
            Command::QueryStat => "Query_Stat",
            Command::GetInfo => "GetInfo",
            Command::AddToList => "AddToList",
            Command::AckAddToList => "Ack_AddToList",
            Command::DelFromList => "DelFromList",
            Command::ChangeStat => "Change_Stat",
            Command::GetMsgEx => "GetMsgEx",
            Command::CltMsg => "CLTMSG",
            Command::Logout => "Logout",
            Command::Finger => "Finger",
        }
    }

    /// The spelling the server echoes in `CMD=` of its reply. `FINGER` is our
    /// choice: no Finger reply was ever captured.
    pub fn echo_name(self, login: LoginEcho) -> &'static str {
        match self {
            Command::Login => match login {
                LoginEcho::MixedCase => "Login",
                LoginEcho::UpperCase => "LOGIN",
            },
            Command::List => "LIST",
            Command::QueryStat => "QUERY_STAT",
            Command::GetInfo => "GETINFO",
            Command::AddToList => "AddToList",
            Command::AckAddToList => "Ack_AddToList",
            Command::DelFromList => "DelFromList",
            Command::ChangeStat => "Change_Stat",
            Command::GetMsgEx => "GETMSGEX",
            Command::CltMsg => "CLTMSG",
            Command::Logout => "LOGOUT",
            Command::Finger => "FINGER",
        }
    }

    /// Matches a wire name case-insensitively (request or echo spelling).
    pub fn parse(name: &str) -> Option<Command> {
        Command::ALL
            .into_iter()
            .find(|cmd| cmd.wire_name().eq_ignore_ascii_case(name))
    }
}

impl FromStr for Command {
    type Err = CodecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Command::parse(s).ok_or(CodecError::UnknownCommand)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

/// The `VER` of a request. Replies always say `1.1` (http11.md §6.13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Version {
    V1_0,
    #[default]
    V1_1,
    V1_2,
}

/// What every reply says in `VER=`.
pub const REPLY_VERSION: &str = "1.1";

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1_0 => "1.0",
            Version::V1_1 => "1.1",
            Version::V1_2 => "1.2",
        }
    }
}

impl FromStr for Version {
    type Err = CodecError;
    /// Exactly `1.0`, `1.1` or `1.2`; anything else is the NULL trigger.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "1.0" => Ok(Version::V1_0),
            "1.1" => Ok(Version::V1_1),
            "1.2" => Ok(Version::V1_2),
            _ => Err(CodecError::BadVersion),
        }
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_case_insensitively_in_both_spellings() {
        for cmd in Command::ALL {
            assert_eq!(Command::parse(cmd.wire_name()), Some(cmd));
            assert_eq!(
                Command::parse(cmd.echo_name(LoginEcho::UpperCase)),
                Some(cmd)
            );
            assert_eq!(Command::parse(&cmd.wire_name().to_lowercase()), Some(cmd));
        }
        assert_eq!(Command::parse("Change_stat"), Some(Command::ChangeStat));
        assert_eq!(Command::parse("Query Stat"), None);
    }

    #[test]
    fn echo_spellings_follow_the_seeds() {
        assert_eq!(Command::Login.echo_name(LoginEcho::MixedCase), "Login");
        assert_eq!(Command::Login.echo_name(LoginEcho::UpperCase), "LOGIN");
        assert_eq!(
            Command::AckAddToList.echo_name(LoginEcho::default()),
            "Ack_AddToList"
        );
        assert_eq!(Command::CltMsg.echo_name(LoginEcho::default()), "CLTMSG");
    }
}
