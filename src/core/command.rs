//! The bot command language, shared by the Matrix bot, the IRC gateway's
//! `&qq` channel and IRC network bots: one parser, one help text, one set of
//! error messages.

use std::fmt;

use crate::core::model::{ChatId, GroupNumber, Presence, SearchCriteria, Uin};
use crate::qq::Protocol;
use crate::secret::Secret;

/// Who or what a command is about: a QQ number or a name the side knows
/// (IRC nick, display name) that the side resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Uin(Uin),
    Name(String),
}

impl Target {
    fn parse(word: &str) -> Target {
        match word.parse::<u64>() {
            Ok(n) => Target::Uin(Uin(n)),
            Err(_) => Target::Name(word.to_owned()),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Uin(u) => write!(f, "{u}"),
            Target::Name(n) => f.write_str(n),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    Login {
        uin: Uin,
        password: Secret,
        protocol: Option<Protocol>,
    },
    Logout,
    List,
    Info(Target),
    Add {
        uin: Uin,
        message: String,
    },
    Accept(Uin),
    Reject {
        uin: Uin,
        reason: String,
    },
    Remove(Target),
    Search(SearchCriteria),
    Status(Presence),
    Captcha(String),
    /// Open a private chat (portal) with a QQ user.
    Pm(Target),
    /// Give a buddy another nick on this side.
    Rename {
        target: Target,
        name: String,
    },
    /// Set the QQ signature (WebQQ long nick).
    Signature(String),
    /// Map a QQ group to a channel on an IRC network (admin).
    Bridge {
        group: u64,
        network: String,
        channel: String,
    },
    Unbridge {
        group: u64,
        network: String,
        channel: String,
    },
    /// Bind the Matrix room the command is typed in to a QQ buddy chat or
    /// group (Matrix bot mode).
    BridgeRoom(ChatId),
    /// Undo [`Command::BridgeRoom`] for the room the command is typed in.
    UnbridgeRoom,
}

/// One line of help per command; `help` prints these.
pub const HELP: &[(&str, &str)] = &[
    ("help", "this list"),
    (
        "login <qq number> <password> [http11|webqq]",
        "log in to QQ (on IRC, /OPER <qq number> <password> keeps the password out of your window)",
    ),
    ("logout", "log out of QQ"),
    ("list", "your buddies and their status"),
    ("info <nick|qq number>", "a user's profile"),
    ("add <qq number> [message]", "ask to add a buddy"),
    ("accept <qq number>", "accept a friend request"),
    ("reject <qq number> [reason]", "refuse a friend request"),
    ("remove <nick|qq number>", "delete a buddy"),
    (
        "search [age=N] [sex=male|female] [province=NAME]",
        "search for QQ users",
    ),
    (
        "status <online|away|busy|invisible|offline>",
        "set your QQ status",
    ),
    ("captcha <code>", "answer a WebQQ login captcha"),
    ("pm <nick|qq number>", "open a private chat"),
    (
        "rename <nick|qq number> <new nick>",
        "choose another nick for a buddy",
    ),
    ("signature <text>", "set your QQ signature (WebQQ)"),
    (
        "bridge <group number> <network> <#channel>",
        "bridge a QQ group to an IRC channel (admin)",
    ),
    (
        "unbridge <group number> <network> <#channel>",
        "remove that bridge (admin)",
    ),
    (
        "bridge buddy <qq number> | bridge group <group number>",
        "bridge the Matrix room you type it in to that QQ chat (Matrix bot mode)",
    ),
    (
        "unbridge",
        "stop bridging the Matrix room you type it in (Matrix bot mode)",
    ),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    #[error("unknown command {0:?}; type \"help\" for the list")]
    Unknown(String),
    #[error("usage: {0}")]
    Usage(&'static str),
    #[error("{0}")]
    Invalid(String),
}

fn usage(name: &str) -> CommandError {
    let line = HELP
        .iter()
        .find(|(u, _)| u.split_whitespace().next() == Some(name))
        .map_or("help", |(u, _)| *u);
    CommandError::Usage(line)
}

/// Parses one command line (without any `!qq` prefix; see [`strip_prefix`]).
pub fn parse(line: &str) -> Result<Command, CommandError> {
    let line = line.trim();
    let (name, rest) = match line.split_once(char::is_whitespace) {
        Some((n, r)) => (n, r.trim()),
        None => (line, ""),
    };
    let lower = name.to_lowercase();
    let words: Vec<&str> = rest.split_whitespace().collect();
    let uin_at = |i: usize| -> Result<Uin, CommandError> {
        let word = words.get(i).ok_or_else(|| usage(&lower))?;
        word.parse::<Uin>()
            .map_err(|_| CommandError::Invalid(format!("{word:?} is not a QQ number")))
    };
    let target_at = |i: usize| {
        words
            .get(i)
            .map(|w| Target::parse(w))
            .ok_or_else(|| usage(&lower))
    };
    // Free text after the first `n` words, with its spacing kept.
    let text_after = |n: usize| -> String {
        let mut rest = rest;
        for _ in 0..n {
            rest = rest
                .split_once(char::is_whitespace)
                .map_or("", |(_, r)| r.trim_start());
        }
        rest.to_owned()
    };
    let cmd = match lower.as_str() {
        "help" | "?" => Command::Help,
        "login" => {
            if words.len() < 2 || words.len() > 3 {
                return Err(usage("login"));
            }
            let protocol = match words.get(2) {
                Some(p) => Some(
                    p.parse::<Protocol>()
                        .map_err(|e| CommandError::Invalid(e.to_string()))?,
                ),
                None => None,
            };
            Command::Login {
                uin: uin_at(0)?,
                password: Secret::new(words[1]),
                protocol,
            }
        }
        "logout" => Command::Logout,
        "list" | "buddies" => Command::List,
        "info" | "whois" => Command::Info(target_at(0)?),
        "add" => Command::Add {
            uin: uin_at(0)?,
            message: text_after(1),
        },
        "accept" => Command::Accept(uin_at(0)?),
        "reject" => Command::Reject {
            uin: uin_at(0)?,
            reason: text_after(1),
        },
        "remove" | "delete" => Command::Remove(target_at(0)?),
        "search" => Command::Search(parse_criteria(&words)?),
        "status" => {
            let word = words.first().ok_or_else(|| usage("status"))?;
            Command::Status(word.parse().map_err(|e: crate::core::model::ModelError| {
                CommandError::Invalid(e.to_string())
            })?)
        }
        "captcha" => Command::Captcha(words.first().ok_or_else(|| usage("captcha"))?.to_string()),
        "pm" | "query" => Command::Pm(target_at(0)?),
        "rename" => {
            let name = words.get(1).ok_or_else(|| usage("rename"))?;
            Command::Rename {
                target: target_at(0)?,
                name: (*name).to_owned(),
            }
        }
        "signature" => Command::Signature(text_after(0)),
        "bridge" if words.len() == 2 && matches!(words[0], "buddy" | "group") => {
            let number = words[1]
                .parse::<u64>()
                .map_err(|_| CommandError::Invalid(format!("{:?} is not a QQ number", words[1])))?;
            Command::BridgeRoom(if words[0] == "buddy" {
                ChatId::Buddy(Uin(number))
            } else {
                ChatId::Group(GroupNumber(number))
            })
        }
        "unbridge" if words.is_empty() => Command::UnbridgeRoom,
        "bridge" | "unbridge" => {
            if words.len() != 3 {
                return Err(usage(&lower));
            }
            let group = words[0].parse::<u64>().map_err(|_| {
                CommandError::Invalid(format!("{:?} is not a QQ group number", words[0]))
            })?;
            let channel = words[2];
            if !channel.starts_with('#') && !channel.starts_with('&') {
                return Err(CommandError::Invalid(format!(
                    "{channel:?} is not a channel name"
                )));
            }
            let (network, channel) = (words[1].to_owned(), channel.to_owned());
            if lower == "bridge" {
                Command::Bridge {
                    group,
                    network,
                    channel,
                }
            } else {
                Command::Unbridge {
                    group,
                    network,
                    channel,
                }
            }
        }
        "" => return Err(CommandError::Unknown(String::new())),
        _ => return Err(CommandError::Unknown(name.chars().take(32).collect())),
    };
    Ok(cmd)
}

fn parse_criteria(words: &[&str]) -> Result<SearchCriteria, CommandError> {
    let mut c = SearchCriteria::default();
    if words.is_empty() {
        return Err(usage("search"));
    }
    for word in words {
        let (key, value) = word.split_once('=').ok_or_else(|| {
            CommandError::Invalid(format!("{word:?}: write key=value (age, sex, province)"))
        })?;
        match key.to_lowercase().as_str() {
            "age" => {
                c.age =
                    Some(value.parse().map_err(|_| {
                        CommandError::Invalid(format!("age {value:?} is not a number"))
                    })?)
            }
            "sex" | "gender" => {
                c.gender = Some(match value.to_lowercase().as_str() {
                    "male" | "m" | "0" | "男" => 0,
                    "female" | "f" | "1" | "女" => 1,
                    _ => {
                        return Err(CommandError::Invalid(format!(
                            "sex {value:?}: male or female"
                        )))
                    }
                })
            }
            "province" => c.province = Some(value.to_owned()),
            _ => {
                return Err(CommandError::Invalid(format!(
                    "unknown search key {key:?} (age, sex, province)"
                )))
            }
        }
    }
    Ok(c)
}

/// For rooms where the bot is not the only listener: returns the command
/// text if `body` starts with `prefix` (e.g. `!qq`).
pub fn strip_prefix<'a>(body: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = body.trim_start().strip_prefix(prefix)?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then(|| rest.trim_start())
}

/// A command line safe to log or echo: the password of `login` is replaced.
pub fn redact(line: &str) -> String {
    let mut words = line.split_whitespace();
    match words.next() {
        Some(first)
            if first.eq_ignore_ascii_case("login") || first.eq_ignore_ascii_case("oper") =>
        {
            let uin = words.next().unwrap_or("");
            let rest: Vec<&str> = words.skip(1).collect();
            format!("{first} {uin} [redacted] {}", rest.join(" "))
                .trim_end()
                .to_owned()
        }
        _ => line.to_owned(),
    }
}

/// The help text, one line per command.
pub fn help_lines() -> Vec<String> {
    HELP.iter().map(|(u, d)| format!("{u} — {d}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_command() {
        assert_eq!(parse("help"), Ok(Command::Help));
        assert_eq!(
            parse("login 10001 demo webqq"),
            Ok(Command::Login {
                uin: Uin(10001),
                password: Secret::new("demo"),
                protocol: Some(Protocol::Webqq)
            })
        );
        assert_eq!(
            parse("LOGIN 10001 demo"),
            Ok(Command::Login {
                uin: Uin(10001),
                password: Secret::new("demo"),
                protocol: None
            })
        );
        assert_eq!(
            parse("info WeiCheng"),
            Ok(Command::Info(Target::Name("WeiCheng".into())))
        );
        assert_eq!(
            parse("info 10002"),
            Ok(Command::Info(Target::Uin(Uin(10002))))
        );
        assert_eq!(
            parse("add 10003  let me in please"),
            Ok(Command::Add {
                uin: Uin(10003),
                message: "let me in please".into()
            })
        );
        assert_eq!(
            parse("reject 10003 no"),
            Ok(Command::Reject {
                uin: Uin(10003),
                reason: "no".into()
            })
        );
        assert_eq!(parse("status busy"), Ok(Command::Status(Presence::Busy)));
        assert_eq!(
            parse("search age=19 sex=male province=江苏"),
            Ok(Command::Search(SearchCriteria {
                age: Some(19),
                gender: Some(0),
                province: Some("江苏".into())
            }))
        );
        assert_eq!(
            parse("bridge 123 libera #qq"),
            Ok(Command::Bridge {
                group: 123,
                network: "libera".into(),
                channel: "#qq".into()
            })
        );
        assert_eq!(
            parse("bridge buddy 10004"),
            Ok(Command::BridgeRoom(ChatId::Buddy(Uin(10004))))
        );
        assert_eq!(
            parse("bridge group 20001"),
            Ok(Command::BridgeRoom(ChatId::Group(GroupNumber(20001))))
        );
        assert_eq!(parse("unbridge"), Ok(Command::UnbridgeRoom));
        assert!(parse("bridge buddy bob")
            .unwrap_err()
            .to_string()
            .contains("not a QQ number"));
    }

    #[test]
    fn errors_are_one_clear_line() {
        assert_eq!(
            parse("frobnicate"),
            Err(CommandError::Unknown("frobnicate".into()))
        );
        assert_eq!(
            parse("login 10001").unwrap_err().to_string(),
            "usage: login <qq number> <password> [http11|webqq]"
        );
        assert_eq!(
            parse("add bob").unwrap_err().to_string(),
            "\"bob\" is not a QQ number"
        );
        assert_eq!(
            parse("status sleepy").unwrap_err().to_string(),
            "unknown status \"sleepy\" (online, away, busy, invisible, offline)"
        );
        assert!(parse("login 1 pw ftp")
            .unwrap_err()
            .to_string()
            .contains("unknown protocol"));
        assert!(parse("bridge 1 net chan")
            .unwrap_err()
            .to_string()
            .contains("not a channel"));
    }

    #[test]
    fn passwords_are_redacted() {
        let c = parse("login 10001 s3cret").unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(
            redact("login 10001 s3cret webqq"),
            "login 10001 [redacted] webqq"
        );
        assert_eq!(redact("list"), "list");
    }

    #[test]
    fn prefix_is_a_whole_word() {
        assert_eq!(strip_prefix("!qq list", "!qq"), Some("list"));
        assert_eq!(strip_prefix("!qqlist", "!qq"), None);
        assert_eq!(strip_prefix("hello", "!qq"), None);
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,200}") {
            let _ = parse(&s);
            let _ = redact(&s);
        }
    }
}
