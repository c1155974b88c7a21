//! Numeric replies: building them with `irc::proto` types, the welcome
//! burst with ISUPPORT, and the multi-line replies (NAMES, MOTD) split so
//! every line fits in 512 bytes.

use irc::proto::{Command, Message, Prefix, Response};

use super::{BOT_NICK, CHANNELLEN, CONTROL_CHANNEL, NICKLEN};

pub const RPL_WELCOME: u16 = 1;
pub const RPL_YOURHOST: u16 = 2;
pub const RPL_CREATED: u16 = 3;
pub const RPL_MYINFO: u16 = 4;
pub const RPL_ISUPPORT: u16 = 5;
pub const RPL_UMODEIS: u16 = 221;
pub const RPL_AWAY: u16 = 301;
pub const RPL_USERHOST: u16 = 302;
pub const RPL_ISON: u16 = 303;
pub const RPL_UNAWAY: u16 = 305;
pub const RPL_NOWAWAY: u16 = 306;
pub const RPL_WHOISUSER: u16 = 311;
pub const RPL_WHOISSERVER: u16 = 312;
pub const RPL_ENDOFWHO: u16 = 315;
pub const RPL_ENDOFWHOIS: u16 = 318;
pub const RPL_WHOISCHANNELS: u16 = 319;
pub const RPL_WHOISSPECIAL: u16 = 320;
pub const RPL_LISTSTART: u16 = 321;
pub const RPL_LIST: u16 = 322;
pub const RPL_LISTEND: u16 = 323;
pub const RPL_CHANNELMODEIS: u16 = 324;
pub const RPL_CREATIONTIME: u16 = 329;
pub const RPL_TOPIC: u16 = 332;
pub const RPL_TOPICWHOTIME: u16 = 333;
pub const RPL_VERSION: u16 = 351;
pub const RPL_WHOREPLY: u16 = 352;
pub const RPL_NAMREPLY: u16 = 353;
pub const RPL_ENDOFNAMES: u16 = 366;
pub const RPL_ENDOFBANLIST: u16 = 368;
pub const RPL_MOTD: u16 = 372;
pub const RPL_MOTDSTART: u16 = 375;
pub const RPL_ENDOFMOTD: u16 = 376;
pub const ERR_NOSUCHNICK: u16 = 401;
pub const ERR_NOSUCHCHANNEL: u16 = 403;
pub const ERR_CANNOTSENDTOCHAN: u16 = 404;
pub const ERR_INVALIDCAPCMD: u16 = 410;
pub const ERR_NORECIPIENT: u16 = 411;
pub const ERR_NOTEXTTOSEND: u16 = 412;
pub const ERR_INPUTTOOLONG: u16 = 417;
pub const ERR_UNKNOWNCOMMAND: u16 = 421;
pub const ERR_NONICKNAMEGIVEN: u16 = 431;
pub const ERR_ERRONEUSNICKNAME: u16 = 432;
pub const ERR_NICKNAMEINUSE: u16 = 433;
pub const ERR_NOTONCHANNEL: u16 = 442;
pub const ERR_NOTREGISTERED: u16 = 451;
pub const ERR_NEEDMOREPARAMS: u16 = 461;
pub const ERR_ALREADYREGISTERED: u16 = 462;
pub const ERR_PASSWDMISMATCH: u16 = 464;
pub const ERR_YOUREBANNEDCREEP: u16 = 465;
pub const ERR_UNKNOWNMODE: u16 = 472;
pub const ERR_NOPRIVILEGES: u16 = 481;
pub const ERR_CHANOPRIVSNEEDED: u16 = 482;
pub const ERR_UMODEUNKNOWNFLAG: u16 = 501;
pub const ERR_USERSDONTMATCH: u16 = 502;

/// The version string shown in 002/004/351.
pub fn version() -> String {
    format!("qqbridge-{}", env!("CARGO_PKG_VERSION"))
}

/// The ISUPPORT tokens (005).
pub fn isupport_tokens() -> Vec<String> {
    [
        "CHANTYPES=&#".to_owned(),
        "PREFIX=(ov)@+".to_owned(),
        "CHANMODES=b,,,nt".to_owned(),
        format!("NICKLEN={NICKLEN}"),
        format!("CHANNELLEN={CHANNELLEN}"),
        "CASEMAPPING=rfc1459".to_owned(),
        "NETWORK=QQ".to_owned(),
        "MODES=4".to_owned(),
        "AWAYLEN=200".to_owned(),
        "TOPICLEN=300".to_owned(),
        "CHANLIMIT=&#:".to_owned(),
        "TARGMAX=PRIVMSG:4,NOTICE:4,JOIN:,PART:,WHOIS:1".to_owned(),
    ]
    .to_vec()
}

/// Builds numerics for one client.
#[derive(Debug, Clone)]
pub struct Numerics {
    pub server: String,
    /// The client's nick (`*` before registration).
    pub nick: String,
}

impl Numerics {
    pub fn new(server: &str, nick: &str) -> Self {
        Numerics {
            server: server.to_owned(),
            nick: nick.to_owned(),
        }
    }

    /// `:server <code> <nick> <params...>`
    pub fn reply(&self, code: u16, params: &[&str]) -> Message {
        let mut args = Vec::with_capacity(params.len() + 1);
        args.push(self.nick.clone());
        args.extend(params.iter().map(|p| (*p).to_owned()));
        let command = match format!("{code:03}").parse::<Response>() {
            Ok(response) => Command::Response(response, args),
            Err(_) => Command::Raw(format!("{code:03}"), args),
        };
        self.server_message(command)
    }

    pub fn server_message(&self, command: Command) -> Message {
        Message {
            tags: None,
            prefix: Some(Prefix::ServerName(self.server.clone())),
            command,
        }
    }

    /// 001-005 and the MOTD.
    pub fn welcome(&self, full_prefix: &str, created: &str, motd: &[String]) -> Vec<Message> {
        let version = version();
        let mut out = vec![
            self.reply(
                RPL_WELCOME,
                &[&format!("Welcome to the QQ gateway, {full_prefix}")],
            ),
            self.reply(
                RPL_YOURHOST,
                &[&format!(
                    "Your host is {}, running version {version}",
                    self.server
                )],
            ),
            self.reply(
                RPL_CREATED,
                &[&format!("This server was created {created}")],
            ),
            self.reply(RPL_MYINFO, &[&self.server, &version, "i", "bntov", "bov"]),
        ];
        let tokens = isupport_tokens();
        for chunk in tokens.chunks(12) {
            let mut params: Vec<&str> = chunk.iter().map(String::as_str).collect();
            params.push("are supported by this server");
            out.push(self.reply(RPL_ISUPPORT, &params));
        }
        out.extend(self.motd(motd));
        out
    }

    pub fn motd(&self, lines: &[String]) -> Vec<Message> {
        let mut out = vec![self.reply(
            RPL_MOTDSTART,
            &[&format!("- {} Message of the day -", self.server)],
        )];
        for line in lines {
            out.push(self.reply(RPL_MOTD, &[&format!("- {line}")]));
        }
        out.push(self.reply(RPL_ENDOFMOTD, &["End of /MOTD command."]));
        out
    }

    /// 353 lines (as many as needed to stay within 512 bytes) and 366.
    pub fn names(&self, channel: &str, entries: &[String]) -> Vec<Message> {
        // ":server 353 nick = channel :" + names + CRLF
        let overhead = 1 + self.server.len() + 5 + self.nick.len() + 3 + channel.len() + 2 + 2;
        let budget = 512usize.saturating_sub(overhead).max(NICKLEN + 2);
        let mut out = Vec::new();
        let mut line = String::new();
        for entry in entries {
            if !line.is_empty() && line.len() + 1 + entry.len() > budget {
                out.push(self.reply(RPL_NAMREPLY, &["=", channel, &line]));
                line.clear();
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(entry);
        }
        if !line.is_empty() {
            out.push(self.reply(RPL_NAMREPLY, &["=", channel, &line]));
        }
        out.push(self.reply(RPL_ENDOFNAMES, &[channel, "End of /NAMES list."]));
        out
    }
}

/// The MOTD: how to use the gateway.
pub fn motd_lines() -> Vec<String> {
    [
        "This is qqbridge: QQ buddies as IRC users, QQ groups as channels.".to_owned(),
        format!("Talk to {BOT_NICK} in {CONTROL_CHANNEL}. Type \"help\" there for the commands."),
        format!("Log in with: /OPER <qq number> <password>   (or: login <qq number> <password> in {CONTROL_CHANNEL})"),
        "Then /msg <buddy nick> <text> to chat; /away <reason> sets you busy on QQ.".to_owned(),
    ]
    .to_vec()
}
