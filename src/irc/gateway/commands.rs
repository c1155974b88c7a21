//! What a registered client can do: PRIVMSG to buddies, groups and the bot;
//! JOIN, PART, WHO, WHOIS, NAMES, LIST, MODE, TOPIC, AWAY, OPER, PING, QUIT,
//! ISON, USERHOST, NICK, CAP, MOTD, VERSION; anything else is answered with
//! ERR_UNKNOWNCOMMAND.

use irc::proto::{ChannelMode, Command, Message, Mode, UserMode};

use crate::core::model::{ChatId, Uin};
use crate::core::text::{irc_lowercase, is_valid_irc_nick, parse_ctcp, parse_irc};

use super::buddies::{away_reason, SyncCtx, UserView};
use super::connection::{command_name, ClientInfo, Conn};
use super::control_channel::{bot_notice, BotJob};
use super::numerics::*;
use super::server_time::unix_seconds;
use super::sessions::NickRefused;
use super::{BOT_NICK, CONTROL_CHANNEL, NICKLEN, QQ_HOST};

/// Targets handled per PRIVMSG (ISUPPORT TARGMAX).
const MAX_TARGETS: usize = 4;
/// Nicks answered per ISON/USERHOST.
const MAX_LOOKUPS: usize = 32;

/// Commands this server knows; a known one with missing parameters gets
/// 461 rather than 421.
const KNOWN: &[&str] = &[
    "PRIVMSG", "NOTICE", "JOIN", "PART", "WHO", "WHOIS", "NAMES", "LIST", "MODE", "TOPIC", "AWAY",
    "OPER", "PING", "PONG", "QUIT", "ISON", "USERHOST", "NICK", "USER", "PASS", "CAP", "MOTD",
    "VERSION", "KICK", "INVITE", "KILL",
];

fn is_control(name: &str) -> bool {
    name.eq_ignore_ascii_case(CONTROL_CHANNEL)
}

fn is_bot(name: &str) -> bool {
    irc_lowercase(name) == irc_lowercase(BOT_NICK)
}

/// WHOIS lines for the bot.
pub fn whois_bot(n: &Numerics) -> Vec<Message> {
    vec![
        n.reply(
            RPL_WHOISUSER,
            &[BOT_NICK, BOT_NICK, &n.server, "*", "qqbridge control bot"],
        ),
        n.reply(
            RPL_WHOISCHANNELS,
            &[BOT_NICK, &format!("@{CONTROL_CHANNEL}")],
        ),
        n.reply(RPL_WHOISSERVER, &[BOT_NICK, &n.server, "QQ gateway"]),
    ]
}

/// WHOIS lines for the client itself.
pub fn whois_self(n: &Numerics, info: &ClientInfo, in_control: bool) -> Vec<Message> {
    let mut out = vec![n.reply(
        RPL_WHOISUSER,
        &[&info.nick, &info.ident, &info.host, "*", &info.realname],
    )];
    if in_control {
        out.push(n.reply(RPL_WHOISCHANNELS, &[&info.nick, CONTROL_CHANNEL]));
    }
    out.push(n.reply(RPL_WHOISSERVER, &[&info.nick, &n.server, "QQ gateway"]));
    if let Some(away) = &info.away {
        out.push(n.reply(RPL_AWAY, &[&info.nick, away]));
    }
    out
}

/// WHOIS lines for a QQ user the view knows (without the profile).
pub fn whois_person(n: &Numerics, v: &UserView, uin: Uin) -> Vec<Message> {
    let Some(person) = v.people.get(&uin) else {
        return Vec::new();
    };
    let nick = person.nick.as_str();
    let mut out = vec![n.reply(
        RPL_WHOISUSER,
        &[nick, &uin.to_string(), QQ_HOST, "*", &person.realname],
    )];
    let mut channels = Vec::new();
    if let Some(control) = &v.shown.control {
        if let Some(flags) = control.get(&uin) {
            channels.push(format!(
                "{}{CONTROL_CHANNEL}",
                if flags.voice { "+" } else { "" }
            ));
        }
    }
    for shown in v.shown.channels.values() {
        if shown.members.contains(&uin) {
            channels.push(shown.name.clone());
        }
    }
    if !channels.is_empty() {
        out.push(n.reply(RPL_WHOISCHANNELS, &[nick, &channels.join(" ")]));
    }
    let status = match v.buddies.get(&uin) {
        Some(presence) => format!("QQ {uin}, {}", presence.as_seen_by_others()),
        None => format!("QQ {uin}, not a buddy"),
    };
    out.push(n.reply(RPL_WHOISSERVER, &[nick, "qq", &status]));
    if let Some(reason) = v.buddies.get(&uin).and_then(|p| away_reason(*p)) {
        out.push(n.reply(RPL_AWAY, &[nick, reason]));
    }
    out
}

impl Conn {
    /// The bridge user this connection is authenticated as, if it is.
    fn attached_user(&self) -> Option<String> {
        let user = self.link.info().user?;
        self.gw.is_attached(&user, self.link.id).then_some(user)
    }

    fn sync_ctx_since(&self) -> u64 {
        unix_seconds(self.gw.created)
    }

    /// Brings the client's channels up to date with the view.
    fn sync_view(&self, v: &mut UserView) {
        let (numerics, me, caps) = self.gw.sync_ctx_parts(&self.link);
        let ctx = SyncCtx {
            numerics: &numerics,
            me,
            caps,
            since: self.sync_ctx_since(),
        };
        self.link.send_all(v.sync(&ctx));
    }

    pub async fn handle_registered(&mut self, message: Message) {
        match message.command {
            Command::PRIVMSG(targets, text) => self.privmsg(&targets, &text).await,
            // Notices are for automatic replies; they are not relayed.
            Command::NOTICE(..) => {}
            Command::JOIN(channels, _, _) => self.join(&channels).await,
            Command::PART(channels, _) => self.part(&channels).await,
            Command::WHO(mask, _) => self.who(mask.as_deref()).await,
            Command::WHOIS(_, nicks) => {
                let nick = nicks.split(',').next().unwrap_or("").to_owned();
                self.bot_job(BotJob::Whois(nick)).await;
            }
            Command::NAMES(channels, _) => self.names(channels.as_deref()).await,
            Command::LIST(..) => self.list().await,
            Command::ChannelMODE(channel, modes) => self.channel_mode(&channel, &modes).await,
            Command::UserMODE(nick, modes) => self.user_mode(&nick, &modes),
            Command::TOPIC(channel, topic) => self.topic(&channel, topic.is_some()).await,
            Command::AWAY(reason) => self.away(reason).await,
            Command::OPER(uin, password) => {
                self.bot_job(BotJob::Oper {
                    uin,
                    password: crate::secret::Secret::new(password),
                })
                .await
            }
            Command::PING(token, _) => {
                let server = self.gw.settings.server_name.clone();
                self.link.send(
                    self.numerics()
                        .server_message(Command::PONG(server, Some(token))),
                );
            }
            Command::PONG(..) => {}
            Command::QUIT(_) => {
                self.link.close("Client quit");
                self.quit = true;
            }
            Command::ISON(nicks) => self.ison(&nicks).await,
            Command::USERHOST(nicks) => self.userhost(&nicks).await,
            Command::NICK(nick) => self.change_nick(&nick).await,
            Command::USER(..) | Command::PASS(_) => self.already_registered(),
            Command::CAP(_, sub, arg, _) => {
                self.cap(&sub, arg.as_deref());
            }
            Command::MOTD(_) => {
                self.link.send_all(self.numerics().motd(&motd_lines()));
            }
            Command::VERSION(_) => {
                let n = self.numerics();
                self.reply(RPL_VERSION, &[&version(), &n.server, "QQ gateway"]);
            }
            Command::KICK(channel, ..) | Command::INVITE(_, channel) => self.reply(
                ERR_CHANOPRIVSNEEDED,
                &[&channel, "You're not channel operator"],
            ),
            Command::KILL(..) => self.reply(
                ERR_NOPRIVILEGES,
                &["Permission Denied- You're not an IRC operator"],
            ),
            Command::Raw(verb, _) => {
                let upper = verb.to_ascii_uppercase();
                if upper == "PRIVMSG" || upper == "NOTICE" {
                    self.reply(ERR_NORECIPIENT, &[&format!("No recipient given ({upper})")]);
                } else if KNOWN.contains(&upper.as_str()) {
                    self.reply(ERR_NEEDMOREPARAMS, &[&upper, "Not enough parameters"]);
                } else {
                    let verb: String = verb.chars().take(32).collect();
                    self.reply(ERR_UNKNOWNCOMMAND, &[&verb, "Unknown command"]);
                }
            }
            other => {
                let verb = command_name(&other);
                self.reply(ERR_UNKNOWNCOMMAND, &[&verb, "Unknown command"]);
            }
        }
    }

    async fn privmsg(&mut self, targets: &str, text: &str) {
        if text.is_empty() {
            self.reply(ERR_NOTEXTTOSEND, &["No text to send"]);
            return;
        }
        for target in targets
            .split(',')
            .filter(|t| !t.is_empty())
            .take(MAX_TARGETS)
        {
            if is_control(target) || is_bot(target) {
                let reply_to = if is_control(target) {
                    CONTROL_CHANNEL.to_owned()
                } else {
                    self.link.nick()
                };
                if let Some((ctcp, args)) = parse_ctcp(text) {
                    self.bot_ctcp(ctcp, args);
                    continue;
                }
                self.bot_job(BotJob::Line {
                    text: text.to_owned(),
                    reply_to,
                })
                .await;
            } else if target.starts_with('#') || target.starts_with('&') {
                self.to_group(target, text).await;
            } else {
                self.to_person(target, text).await;
            }
        }
    }

    /// CTCP to the bot: VERSION and PING are answered, the rest ignored.
    fn bot_ctcp(&self, ctcp: &str, args: &str) {
        let answer = match ctcp.to_ascii_uppercase().as_str() {
            "VERSION" => format!("\u{1}VERSION {}\u{1}", version()),
            "PING" => format!("\u{1}PING {args}\u{1}"),
            _ => return,
        };
        let server = self.gw.settings.server_name.clone();
        self.link
            .send_all(bot_notice(&server, &self.link.nick(), &[answer]));
    }

    /// Tells the client, from the bot, that something was not sent.
    fn not_sent(&self, what: String) {
        let server = self.gw.settings.server_name.clone();
        self.link
            .send_all(bot_notice(&server, &self.link.nick(), &[what]));
    }

    async fn to_person(&self, target: &str, text: &str) {
        let Some(user) = self.attached_user() else {
            self.reply(ERR_NOSUCHNICK, &[target, "No such nick"]);
            return;
        };
        let chat = {
            let view = self.gw.view(&user);
            let v = view.lock().await;
            v.uin_of(target).map(|uin| v.chat_for(uin))
        };
        let chat = match chat {
            Some(chat) => chat,
            None => match self.gw.store.puppet_by_name(&user, target).await {
                Ok(Some(uin)) => ChatId::Buddy(uin),
                _ => {
                    self.reply(ERR_NOSUCHNICK, &[target, "No such nick"]);
                    return;
                }
            },
        };
        self.send_to_qq(&user, chat, target, text).await;
    }

    async fn to_group(&self, target: &str, text: &str) {
        let Some(user) = self.attached_user() else {
            self.reply(ERR_NOSUCHCHANNEL, &[target, "No such channel"]);
            return;
        };
        let group = {
            let view = self.gw.view(&user);
            let v = view.lock().await;
            v.group_by_channel(target)
                .map(|g| (g, v.shown.channels.contains_key(&g)))
        };
        match group {
            None => self.reply(ERR_NOSUCHCHANNEL, &[target, "No such channel"]),
            Some((_, false)) => self.reply(
                ERR_CANNOTSENDTOCHAN,
                &[target, "Cannot send to channel (join it first)"],
            ),
            Some((group, true)) => {
                self.send_to_qq(&user, ChatId::Group(group), target, text)
                    .await
            }
        }
    }

    async fn send_to_qq(&self, user: &str, chat: ChatId, target: &str, text: &str) {
        if let Some((ctcp, _)) = parse_ctcp(text) {
            if !ctcp.eq_ignore_ascii_case("ACTION") {
                return;
            }
        }
        let rich = parse_irc(text);
        if rich.is_empty() {
            self.reply(ERR_NOTEXTTOSEND, &["No text to send"]);
            return;
        }
        if let Err(e) = self.gw.core.send_to_qq(user, chat, rich, None).await {
            self.not_sent(format!("not sent to {target}: {e}"));
        }
    }

    async fn join(&mut self, channels: &str) {
        for channel in channels.split(',').filter(|c| !c.is_empty()) {
            if channel == "0" {
                let all: Vec<String> = self.joined_channels().await;
                self.part(&all.join(",")).await;
                continue;
            }
            let user = self.attached_user();
            if is_control(channel) {
                match user {
                    Some(user) => {
                        let view = self.gw.view(&user);
                        let mut v = view.lock().await;
                        if v.shown.control.is_none() {
                            v.shown.control_parted = false;
                            self.sync_view(&mut v);
                        }
                    }
                    None => {
                        if !self.link.info().pending_control {
                            super::control_channel::join_pending(&self.gw, &self.link);
                            self.link.update(|i| i.pending_control = true);
                        }
                    }
                }
                continue;
            }
            let group = match &user {
                Some(user) => {
                    let view = self.gw.view(user);
                    let mut v = view.lock().await;
                    match v.group_by_channel(channel) {
                        Some(group) => {
                            if v.shown.parted.remove(&group) {
                                self.sync_view(&mut v);
                            }
                            true
                        }
                        None => false,
                    }
                }
                None => false,
            };
            if !group {
                self.reply(
                    ERR_NOSUCHCHANNEL,
                    &[
                        channel,
                        "No such channel (your QQ groups are joined automatically)",
                    ],
                );
            }
        }
    }

    /// The channels the client is in.
    async fn joined_channels(&self) -> Vec<String> {
        match self.attached_user() {
            Some(user) => {
                let view = self.gw.view(&user);
                let v = view.lock().await;
                let mut out = Vec::new();
                if v.shown.control.is_some() {
                    out.push(CONTROL_CHANNEL.to_owned());
                }
                out.extend(v.shown.channels.values().map(|c| c.name.clone()));
                out
            }
            None if self.link.info().pending_control => vec![CONTROL_CHANNEL.to_owned()],
            None => Vec::new(),
        }
    }

    async fn part(&mut self, channels: &str) {
        for channel in channels.split(',').filter(|c| !c.is_empty()) {
            let part = Message {
                tags: None,
                prefix: Some(self.link.prefix()),
                command: Command::PART(channel.to_owned(), None),
            };
            let left = match self.attached_user() {
                Some(user) => {
                    let view = self.gw.view(&user);
                    let mut v = view.lock().await;
                    if is_control(channel) {
                        let was_in = v.shown.control.take().is_some();
                        v.shown.control_parted = true;
                        was_in
                    } else {
                        match v.group_by_channel(channel) {
                            Some(group) => {
                                let was_in = v.shown.channels.remove(&group).is_some();
                                v.shown.parted.insert(group);
                                was_in
                            }
                            None => false,
                        }
                    }
                }
                None if is_control(channel) => {
                    let was_in = self.link.info().pending_control;
                    self.link.update(|i| i.pending_control = false);
                    was_in
                }
                None => false,
            };
            if left {
                self.link.send(part);
            } else {
                self.reply(ERR_NOTONCHANNEL, &[channel, "You're not on that channel"]);
            }
        }
    }

    /// One RPL_WHOREPLY.
    fn who_line(
        n: &Numerics,
        channel: &str,
        ident: &str,
        host: &str,
        nick: &str,
        flags: &str,
        realname: &str,
    ) -> Message {
        n.reply(
            RPL_WHOREPLY,
            &[
                channel,
                ident,
                host,
                &n.server,
                nick,
                flags,
                &format!("0 {realname}"),
            ],
        )
    }

    async fn who(&self, mask: Option<&str>) {
        let n = self.numerics();
        let info = self.link.info();
        let me_flags = if info.away.is_some() { "G" } else { "H" };
        let mask = mask.unwrap_or("*");
        let mut out = Vec::new();
        let user = self.attached_user();
        if is_control(mask) {
            if user.is_some() || info.pending_control {
                out.push(Self::who_line(
                    &n,
                    CONTROL_CHANNEL,
                    BOT_NICK,
                    &n.server,
                    BOT_NICK,
                    "H@",
                    "qqbridge control bot",
                ));
                out.push(Self::who_line(
                    &n,
                    CONTROL_CHANNEL,
                    &info.ident,
                    &info.host,
                    &info.nick,
                    me_flags,
                    &info.realname,
                ));
            }
            if let Some(user) = &user {
                let view = self.gw.view(user);
                let v = view.lock().await;
                if let Some(control) = &v.shown.control {
                    for (uin, flags) in control {
                        let Some(person) = v.people.get(uin) else {
                            continue;
                        };
                        let status = format!(
                            "{}{}",
                            if flags.away { "G" } else { "H" },
                            if flags.voice { "+" } else { "" }
                        );
                        out.push(Self::who_line(
                            &n,
                            CONTROL_CHANNEL,
                            &uin.to_string(),
                            QQ_HOST,
                            &person.nick,
                            &status,
                            &person.realname,
                        ));
                    }
                }
            }
        } else if mask.starts_with('#') {
            if let Some(user) = &user {
                let view = self.gw.view(user);
                let v = view.lock().await;
                if let Some(group) = v.group_by_channel(mask) {
                    let cards = v.groups.get(&group).map(|g| &g.cards);
                    if let Some(shown) = v.shown.channels.get(&group) {
                        out.push(Self::who_line(
                            &n,
                            &shown.name,
                            &info.ident,
                            &info.host,
                            &info.nick,
                            me_flags,
                            &info.realname,
                        ));
                        for uin in &shown.members {
                            let Some(person) = v.people.get(uin) else {
                                continue;
                            };
                            let away = v.buddies.get(uin).and_then(|p| away_reason(*p)).is_some();
                            out.push(Self::who_line(
                                &n,
                                &shown.name,
                                &uin.to_string(),
                                QQ_HOST,
                                &person.nick,
                                if away { "G" } else { "H" },
                                cards.and_then(|c| c.get(uin)).unwrap_or(&person.realname),
                            ));
                        }
                    }
                }
            }
        } else if is_bot(mask) {
            out.push(Self::who_line(
                &n,
                "*",
                BOT_NICK,
                &n.server,
                BOT_NICK,
                "H",
                "qqbridge control bot",
            ));
        } else if irc_lowercase(mask) == irc_lowercase(&info.nick) {
            out.push(Self::who_line(
                &n,
                "*",
                &info.ident,
                &info.host,
                &info.nick,
                me_flags,
                &info.realname,
            ));
        } else if let Some(user) = &user {
            let view = self.gw.view(user);
            let v = view.lock().await;
            if let Some(uin) = v.uin_of(mask) {
                if let Some(person) = v.people.get(&uin) {
                    let away = v.buddies.get(&uin).and_then(|p| away_reason(*p)).is_some();
                    out.push(Self::who_line(
                        &n,
                        "*",
                        &uin.to_string(),
                        QQ_HOST,
                        &person.nick,
                        if away { "G" } else { "H" },
                        &person.realname,
                    ));
                }
            }
        }
        out.push(n.reply(RPL_ENDOFWHO, &[mask, "End of /WHO list."]));
        self.link.send_all(out);
    }

    async fn names(&self, channels: Option<&str>) {
        let n = self.numerics();
        let wanted: Vec<String> = match channels {
            Some(list) => list
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            None => self.joined_channels().await,
        };
        let mut out = Vec::new();
        for channel in wanted {
            let entries = self.channel_names(&channel).await;
            match entries {
                Some(entries) => out.extend(n.names(&channel, &entries)),
                None => out.push(n.reply(RPL_ENDOFNAMES, &[&channel, "End of /NAMES list."])),
            }
        }
        self.link.send_all(out);
    }

    /// NAMES entries of a channel the client is in.
    async fn channel_names(&self, channel: &str) -> Option<Vec<String>> {
        let info = self.link.info();
        let Some(user) = self.attached_user() else {
            return (is_control(channel) && info.pending_control)
                .then(|| vec![format!("@{BOT_NICK}"), info.nick.clone()]);
        };
        let view = self.gw.view(&user);
        let v = view.lock().await;
        if is_control(channel) {
            let (numerics, me, caps) = self.gw.sync_ctx_parts(&self.link);
            let ctx = SyncCtx {
                numerics: &numerics,
                me,
                caps,
                since: self.sync_ctx_since(),
            };
            return v
                .shown
                .control
                .as_ref()
                .map(|members| v.control_names(&ctx, members));
        }
        let group = v.group_by_channel(channel)?;
        let shown = v.shown.channels.get(&group)?;
        let mut names = vec![info.nick.clone()];
        names.extend(
            shown
                .members
                .iter()
                .filter_map(|u| v.nick_of(*u).map(str::to_owned)),
        );
        Some(names)
    }

    async fn list(&self) {
        let n = self.numerics();
        let mut out = vec![n.reply(RPL_LISTSTART, &["Channel", "Users  Name"])];
        match self.attached_user() {
            Some(user) => {
                let view = self.gw.view(&user);
                let v = view.lock().await;
                let members = 2 + v.buddies.len();
                out.push(n.reply(
                    RPL_LIST,
                    &[
                        CONTROL_CHANNEL,
                        &members.to_string(),
                        super::buddies::CONTROL_TOPIC,
                    ],
                ));
                for group in v.groups.values() {
                    out.push(n.reply(
                        RPL_LIST,
                        &[
                            &group.name,
                            &(group.members.len() + 1).to_string(),
                            &group.topic,
                        ],
                    ));
                }
            }
            None => out.push(n.reply(
                RPL_LIST,
                &[CONTROL_CHANNEL, "2", super::buddies::CONTROL_TOPIC],
            )),
        }
        out.push(n.reply(RPL_LISTEND, &["End of /LIST"]));
        self.link.send_all(out);
    }

    /// The topic of a channel the client may know: `&qq` or a group.
    async fn channel_topic(&self, channel: &str) -> Option<String> {
        if is_control(channel) {
            return Some(super::buddies::CONTROL_TOPIC.to_owned());
        }
        let user = self.attached_user()?;
        let view = self.gw.view(&user);
        let v = view.lock().await;
        let group = v.group_by_channel(channel)?;
        v.groups.get(&group).map(|g| g.topic.clone())
    }

    async fn channel_mode(&self, channel: &str, modes: &[Mode<ChannelMode>]) {
        if self.channel_topic(channel).await.is_none() {
            self.reply(ERR_NOSUCHCHANNEL, &[channel, "No such channel"]);
            return;
        }
        if modes.is_empty() {
            self.reply(RPL_CHANNELMODEIS, &[channel, "+nt"]);
            self.reply(
                RPL_CREATIONTIME,
                &[channel, &self.sync_ctx_since().to_string()],
            );
            return;
        }
        let ban_list_query = modes.iter().all(|m| {
            matches!(
                m,
                Mode::NoPrefix(ChannelMode::Ban) | Mode::Plus(ChannelMode::Ban, None)
            )
        });
        if ban_list_query {
            self.reply(RPL_ENDOFBANLIST, &[channel, "End of channel ban list"]);
        } else {
            self.reply(
                ERR_CHANOPRIVSNEEDED,
                &[channel, "You're not channel operator"],
            );
        }
    }

    fn user_mode(&self, nick: &str, modes: &[Mode<UserMode>]) {
        let own = self.link.nick();
        if irc_lowercase(nick) != irc_lowercase(&own) {
            self.reply(ERR_USERSDONTMATCH, &["Cant change mode for other users"]);
            return;
        }
        if modes.is_empty() {
            let current = if self.link.info().invisible {
                "+i"
            } else {
                "+"
            };
            self.reply(RPL_UMODEIS, &[current]);
            return;
        }
        let mut changed = String::new();
        for mode in modes {
            match mode {
                Mode::Plus(UserMode::Invisible, _) | Mode::NoPrefix(UserMode::Invisible) => {
                    self.link.update(|i| i.invisible = true);
                    changed.push_str("+i");
                }
                Mode::Minus(UserMode::Invisible, _) => {
                    self.link.update(|i| i.invisible = false);
                    changed.push_str("-i");
                }
                _ => {
                    self.reply(ERR_UMODEUNKNOWNFLAG, &["Unknown MODE flag"]);
                    return;
                }
            }
        }
        self.link.send(Message {
            tags: None,
            prefix: Some(self.link.prefix()),
            command: Command::Raw("MODE".to_owned(), vec![own, changed]),
        });
    }

    async fn topic(&self, channel: &str, setting: bool) {
        match self.channel_topic(channel).await {
            None => self.reply(ERR_NOSUCHCHANNEL, &[channel, "No such channel"]),
            Some(_) if setting => self.reply(
                ERR_CHANOPRIVSNEEDED,
                &[channel, "You're not channel operator"],
            ),
            Some(topic) => {
                let n = self.numerics();
                self.reply(RPL_TOPIC, &[channel, &topic]);
                self.reply(
                    RPL_TOPICWHOTIME,
                    &[channel, &n.server, &self.sync_ctx_since().to_string()],
                );
            }
        }
    }

    async fn away(&self, reason: Option<String>) {
        let reason = reason.filter(|r| !r.trim().is_empty());
        self.link.update(|i| i.away = reason.clone());
        if reason.is_some() {
            self.reply(
                RPL_NOWAWAY,
                &["You have been marked as being away (busy on QQ)"],
            );
        } else {
            self.reply(
                RPL_UNAWAY,
                &["You are no longer marked as being away (online on QQ)"],
            );
        }
        self.bot_job(BotJob::Away(reason)).await;
    }

    /// (nick as known, ident, host, away) of a nick the client can see.
    async fn lookup(&self, nick: &str) -> Option<(String, String, String, bool)> {
        let info = self.link.info();
        if is_bot(nick) {
            return Some((
                BOT_NICK.to_owned(),
                BOT_NICK.to_owned(),
                self.gw.settings.server_name.clone(),
                false,
            ));
        }
        if irc_lowercase(nick) == irc_lowercase(&info.nick) {
            return Some((info.nick, info.ident, info.host, info.away.is_some()));
        }
        let user = self.attached_user()?;
        let view = self.gw.view(&user);
        let v = view.lock().await;
        let uin = v.uin_of(nick)?;
        let presence = v.buddies.get(&uin)?;
        if !presence.is_available() {
            return None;
        }
        let person = v.people.get(&uin)?;
        Some((
            person.nick.clone(),
            uin.to_string(),
            QQ_HOST.to_owned(),
            away_reason(*presence).is_some(),
        ))
    }

    async fn ison(&self, nicks: &[String]) {
        let mut online = Vec::new();
        for nick in nicks
            .iter()
            .flat_map(|n| n.split(' '))
            .filter(|n| !n.is_empty())
            .take(MAX_LOOKUPS)
        {
            if let Some((known, ..)) = self.lookup(nick).await {
                online.push(known);
            }
        }
        self.reply(RPL_ISON, &[&online.join(" ")]);
    }

    async fn userhost(&self, nicks: &[String]) {
        let mut entries = Vec::new();
        for nick in nicks.iter().filter(|n| !n.is_empty()).take(5) {
            if let Some((known, ident, host, away)) = self.lookup(nick).await {
                entries.push(format!(
                    "{known}={}{ident}@{host}",
                    if away { '-' } else { '+' }
                ));
            }
        }
        self.reply(RPL_USERHOST, &[&entries.join(" ")]);
    }

    async fn change_nick(&self, nick: &str) {
        let old = self.link.nick();
        if nick == old {
            return;
        }
        if !is_valid_irc_nick(nick, NICKLEN) {
            self.reply(ERR_ERRONEUSNICKNAME, &[nick, "Erroneous nickname"]);
            return;
        }
        if let Some(user) = self.attached_user() {
            let taken_by_buddy = self.gw.view(&user).lock().await.uin_of(nick).is_some();
            if taken_by_buddy {
                self.reply(
                    ERR_NICKNAMEINUSE,
                    &[nick, "Nickname is already in use (by a QQ buddy)"],
                );
                return;
            }
        }
        match self.gw.claim_nick(self.link.id, nick) {
            Ok(()) => {
                let prefix = self.link.prefix();
                self.link.update(|i| i.nick = nick.to_owned());
                self.link.send(Message {
                    tags: None,
                    prefix: Some(prefix),
                    command: Command::NICK(nick.to_owned()),
                });
            }
            Err(NickRefused::InUse) => {
                self.reply(ERR_NICKNAMEINUSE, &[nick, "Nickname is already in use"])
            }
        }
    }
}
