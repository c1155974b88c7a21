//! The buddy view of one bridge user: which IRC nick every QQ user has
//! (stored puppet names in the scope `gateway:<user>`, so a nick survives
//! restarts), the buddies with their presence, the QQ groups, and what the
//! connected client has been shown of `&qq` and the group channels. `sync`
//! turns the difference between the wanted and the shown state into JOIN,
//! PART, QUIT, MODE and AWAY lines.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use irc::proto::{Command, Message, Prefix};

use crate::core::model::{ChatId, GroupNumber, Presence, Uin};
use crate::core::text::{irc_lowercase, is_valid_irc_nick, nick_candidates, sanitize_irc_nick};
use crate::store::Store;

use super::caps::Caps;
use super::numerics::{Numerics, RPL_TOPIC, RPL_TOPICWHOTIME};
use super::{BOT_NICK, CONTROL_CHANNEL, NICKLEN, QQ_HOST};

/// Most mode changes in one MODE line (ISUPPORT `MODES`).
const MODES_PER_LINE: usize = 4;

/// The topic of `&qq`.
pub const CONTROL_TOPIC: &str =
    "QQ control channel: type \"help\" for the commands; log in with /OPER <qq number> <password>";

/// A QQ user with an IRC nick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    pub nick: String,
    /// The QQ nickname (or group card) as QQ shows it.
    pub realname: String,
}

/// How a buddy shows in `&qq`: voiced when reachable, away when busy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flags {
    pub voice: bool,
    pub away: bool,
}

impl Flags {
    pub fn of(presence: Presence) -> Flags {
        let presence = presence.as_seen_by_others();
        Flags {
            voice: presence.is_available(),
            away: matches!(presence, Presence::Away | Presence::Busy),
        }
    }
}

/// The AWAY reason shown for a presence.
pub fn away_reason(presence: Presence) -> Option<&'static str> {
    match presence.as_seen_by_others() {
        Presence::Away => Some("Away"),
        Presence::Busy => Some("Busy"),
        _ => None,
    }
}

/// A QQ group as an IRC channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupChannel {
    pub name: String,
    /// The group's name as QQ shows it.
    pub topic: String,
    pub members: BTreeSet<Uin>,
    /// Group cards (群名片) of the members that have one: their realname in
    /// this channel's WHO.
    pub cards: BTreeMap<Uin, String>,
}

/// A group channel as the client has seen it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShownChannel {
    pub name: String,
    pub members: BTreeSet<Uin>,
}

/// What the attached client has seen.
#[derive(Debug, Default)]
pub struct Shown {
    /// The connection this state belongs to.
    pub client: Option<u64>,
    /// Members of `&qq` as shown; `None` when the client is not in it.
    pub control: Option<BTreeMap<Uin, Flags>>,
    /// The user left `&qq` on purpose: do not pull them back in.
    pub control_parted: bool,
    /// Joined group channels and the members shown in each.
    pub channels: BTreeMap<GroupNumber, ShownChannel>,
    /// Group channels the user left on purpose.
    pub parted: BTreeSet<GroupNumber>,
}

/// Everything the gateway knows about one bridge user's QQ side.
#[derive(Debug, Default)]
pub struct UserView {
    pub owner: Option<Uin>,
    pub buddies: BTreeMap<Uin, Presence>,
    pub people: HashMap<Uin, Person>,
    /// rfc1459-folded nick -> QQ number.
    pub by_nick: HashMap<String, Uin>,
    pub groups: BTreeMap<GroupNumber, GroupChannel>,
    /// The group a non-buddy last wrote to us from (temporary sessions).
    pub session_via: HashMap<Uin, GroupNumber>,
    pub shown: Shown,
    /// The user logged out themselves: the LoggedOut event that follows is
    /// already reflected and needs no notice.
    pub user_logged_out: Option<Uin>,
}

/// Where nicks are stored and which nicks a buddy may not have.
pub struct Naming<'a> {
    pub store: &'a dyn Store,
    /// The puppet naming scope, `gateway:<user>`.
    pub scope: &'a str,
    /// The user's own IRC nick.
    pub own_nick: &'a str,
}

impl Naming<'_> {
    fn reserved(&self, nick: &str) -> bool {
        let folded = irc_lowercase(nick);
        folded == irc_lowercase(BOT_NICK) || folded == irc_lowercase(self.own_nick)
    }
}

/// The result of `rename`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Renamed {
    Done { old: String },
    Invalid,
    Taken,
}

/// What `sync` needs to know about the client.
pub struct SyncCtx<'a> {
    pub numerics: &'a Numerics,
    /// The client's own `nick!ident@host`.
    pub me: Prefix,
    pub caps: Caps,
    /// Unix seconds for RPL_TOPICWHOTIME.
    pub since: u64,
}

pub fn person_prefix(nick: &str, uin: Uin) -> Prefix {
    Prefix::Nickname(nick.to_owned(), uin.to_string(), QQ_HOST.to_owned())
}

pub fn bot_prefix(server: &str) -> Prefix {
    Prefix::Nickname(BOT_NICK.to_owned(), BOT_NICK.to_owned(), server.to_owned())
}

fn with_prefix(prefix: Prefix, command: Command) -> Message {
    Message {
        tags: None,
        prefix: Some(prefix),
        command,
    }
}

impl UserView {
    /// Forgets everything QQ-related (after a logout).
    pub fn clear_session(&mut self) {
        self.owner = None;
        self.buddies.clear();
        self.groups.clear();
        self.session_via.clear();
    }

    /// Starts over for a newly attached client. `control_joined`: the client
    /// already sees `&qq` (with only the bot and itself).
    pub fn reset_for_client(&mut self, client: u64, control_joined: bool) {
        self.shown = Shown {
            client: Some(client),
            control: control_joined.then(BTreeMap::new),
            control_parted: false,
            channels: BTreeMap::new(),
            parted: BTreeSet::new(),
        };
    }

    pub fn nick_of(&self, uin: Uin) -> Option<&str> {
        self.people.get(&uin).map(|p| p.nick.as_str())
    }

    pub fn uin_of(&self, nick: &str) -> Option<Uin> {
        self.by_nick.get(&irc_lowercase(nick)).copied()
    }

    /// The group channel called `name`.
    pub fn group_by_channel(&self, name: &str) -> Option<GroupNumber> {
        let folded = irc_lowercase(name);
        self.groups
            .iter()
            .find(|(_, g)| irc_lowercase(&g.name) == folded)
            .map(|(n, _)| *n)
    }

    /// The chat a message to `uin` goes to: a buddy chat, or a temporary
    /// session through a group we share with them.
    pub fn chat_for(&self, uin: Uin) -> ChatId {
        if self.buddies.contains_key(&uin) {
            return ChatId::Buddy(uin);
        }
        if let Some(group) = self.session_via.get(&uin) {
            return ChatId::Session {
                via_group: *group,
                uin,
            };
        }
        match self.groups.iter().find(|(_, g)| g.members.contains(&uin)) {
            Some((group, _)) => ChatId::Session {
                via_group: *group,
                uin,
            },
            None => ChatId::Buddy(uin),
        }
    }

    /// The nick of `uin`, giving it one if it has none yet: its stored
    /// name, else the first free candidate derived from `qq_name`.
    /// `realname` is only used for someone new.
    pub async fn name(
        &mut self,
        naming: &Naming<'_>,
        uin: Uin,
        qq_name: &str,
        realname: &str,
    ) -> String {
        if let Some(person) = self.people.get(&uin) {
            return person.nick.clone();
        }
        let nick = self.pick_nick(naming, uin, qq_name).await;
        self.by_nick.insert(irc_lowercase(&nick), uin);
        self.people.insert(
            uin,
            Person {
                nick: nick.clone(),
                realname: if realname.is_empty() {
                    qq_name.to_owned()
                } else {
                    realname.to_owned()
                },
            },
        );
        nick
    }

    fn usable(&self, naming: &Naming<'_>, uin: Uin, nick: &str) -> bool {
        !naming.reserved(nick)
            && self
                .by_nick
                .get(&irc_lowercase(nick))
                .is_none_or(|u| *u == uin)
    }

    async fn pick_nick(&self, naming: &Naming<'_>, uin: Uin, qq_name: &str) -> String {
        let stored = match naming.store.puppet_name(naming.scope, uin).await {
            Ok(stored) => stored,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read a stored nick");
                None
            }
        };
        match stored {
            Some(name) if is_valid_irc_nick(&name, NICKLEN) && self.usable(naming, uin, &name) => {
                return name
            }
            Some(_) => {}
            None => {
                for candidate in nick_candidates(qq_name, uin, NICKLEN) {
                    if !self.usable(naming, uin, &candidate) {
                        continue;
                    }
                    match naming
                        .store
                        .claim_puppet_name(naming.scope, uin, &candidate)
                        .await
                    {
                        Ok(Some(name)) if self.usable(naming, uin, &name) => return name,
                        Ok(Some(_)) => break,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot store a nick");
                            break;
                        }
                    }
                }
            }
        }
        // The stored nick is the user's own or the bot's: use a free one
        // for now, without storing it.
        for candidate in nick_candidates(qq_name, uin, NICKLEN) {
            if !self.usable(naming, uin, &candidate) {
                continue;
            }
            match naming.store.puppet_by_name(naming.scope, &candidate).await {
                Ok(None) => return candidate,
                Ok(Some(holder)) if holder == uin => return candidate,
                _ => continue,
            }
        }
        sanitize_irc_nick(&format!("qq{uin}"), NICKLEN)
    }

    /// Gives `uin` the nick `new` (stored).
    pub async fn rename(&mut self, naming: &Naming<'_>, uin: Uin, new: &str) -> Renamed {
        if !is_valid_irc_nick(new, NICKLEN) {
            return Renamed::Invalid;
        }
        if !self.usable(naming, uin, new) {
            return Renamed::Taken;
        }
        match naming.store.rename_puppet(naming.scope, uin, new).await {
            Ok(true) => {}
            Ok(false) => return Renamed::Taken,
            Err(e) => {
                tracing::warn!(error = %e, "cannot store a nick");
                return Renamed::Taken;
            }
        }
        let old = match self.people.get_mut(&uin) {
            Some(person) => std::mem::replace(&mut person.nick, new.to_owned()),
            None => {
                self.people.insert(
                    uin,
                    Person {
                        nick: new.to_owned(),
                        realname: uin.to_string(),
                    },
                );
                uin.to_string()
            }
        };
        self.by_nick.remove(&irc_lowercase(&old));
        self.by_nick.insert(irc_lowercase(new), uin);
        Renamed::Done { old }
    }

    /// The wanted members of `&qq`.
    pub fn control_wanted(&self) -> BTreeMap<Uin, Flags> {
        self.buddies
            .iter()
            .filter(|(uin, _)| self.people.contains_key(uin))
            .map(|(uin, presence)| (*uin, Flags::of(*presence)))
            .collect()
    }

    /// NAMES entries of `&qq` for the client.
    pub fn control_names(&self, ctx: &SyncCtx<'_>, members: &BTreeMap<Uin, Flags>) -> Vec<String> {
        let mut names = vec![format!("@{BOT_NICK}"), ctx.numerics.nick.clone()];
        for (uin, flags) in members {
            if let Some(nick) = self.nick_of(*uin) {
                names.push(if flags.voice {
                    format!("+{nick}")
                } else {
                    nick.to_owned()
                });
            }
        }
        names
    }

    /// Brings the client's view of `&qq` and the group channels up to date.
    pub fn sync(&mut self, ctx: &SyncCtx<'_>) -> Vec<Message> {
        let mut out = Vec::new();
        let server = ctx.numerics.server.as_str();
        let mut left_control: Vec<Uin> = Vec::new();
        if !self.shown.control_parted {
            let wanted = self.control_wanted();
            match self.shown.control.take() {
                None => {
                    out.extend(join_channel(
                        ctx,
                        CONTROL_CHANNEL,
                        CONTROL_TOPIC,
                        self.control_names(ctx, &wanted),
                    ));
                }
                Some(shown) => {
                    let mut voice = Vec::new();
                    let mut devoice = Vec::new();
                    for (uin, flags) in &wanted {
                        let Some(nick) = self.nick_of(*uin) else {
                            continue;
                        };
                        let prefix = person_prefix(nick, *uin);
                        let before = shown.get(uin).copied();
                        if before.is_none() {
                            out.push(with_prefix(
                                prefix.clone(),
                                Command::JOIN(CONTROL_CHANNEL.to_owned(), None, None),
                            ));
                        }
                        let was_voiced = before.is_some_and(|f| f.voice);
                        if flags.voice && !was_voiced {
                            voice.push(nick.to_owned());
                        } else if !flags.voice && was_voiced {
                            devoice.push(nick.to_owned());
                        }
                        let was_away = before.is_some_and(|f| f.away);
                        if ctx.caps.away_notify && flags.away != was_away {
                            let reason = self.buddies.get(uin).and_then(|p| away_reason(*p));
                            out.push(with_prefix(
                                prefix,
                                Command::AWAY(reason.map(str::to_owned)),
                            ));
                        }
                    }
                    out.extend(mode_lines(server, CONTROL_CHANNEL, '+', &voice));
                    out.extend(mode_lines(server, CONTROL_CHANNEL, '-', &devoice));
                    left_control = shown
                        .keys()
                        .filter(|u| !wanted.contains_key(u))
                        .copied()
                        .collect();
                }
            }
            self.shown.control = Some(wanted);
        }

        // Group channels.
        let mut shown_channels = std::mem::take(&mut self.shown.channels);
        for (number, group) in &self.groups {
            if self.shown.parted.contains(number) {
                shown_channels.remove(number);
                continue;
            }
            let members: BTreeSet<Uin> = group
                .members
                .iter()
                .filter(|u| self.people.contains_key(u))
                .copied()
                .collect();
            match shown_channels.remove(number) {
                None => {
                    let mut names = vec![ctx.numerics.nick.clone()];
                    names.extend(
                        members
                            .iter()
                            .filter_map(|u| self.nick_of(*u).map(str::to_owned)),
                    );
                    out.extend(join_channel(ctx, &group.name, &group.topic, names));
                }
                Some(ShownChannel {
                    members: before, ..
                }) => {
                    for uin in members.difference(&before) {
                        if let Some(nick) = self.nick_of(*uin) {
                            out.push(with_prefix(
                                person_prefix(nick, *uin),
                                Command::JOIN(group.name.clone(), None, None),
                            ));
                        }
                    }
                    for uin in before.difference(&members) {
                        if let Some(nick) = self.nick_of(*uin) {
                            out.push(with_prefix(
                                person_prefix(nick, *uin),
                                Command::PART(
                                    group.name.clone(),
                                    Some("left the QQ group".to_owned()),
                                ),
                            ));
                        }
                    }
                }
            }
            self.shown.channels.insert(
                *number,
                ShownChannel {
                    name: group.name.clone(),
                    members,
                },
            );
        }
        // Groups that are gone (left, or logged out): the client leaves them.
        let gone_reason = if self.owner.is_some() {
            "no longer in this QQ group"
        } else {
            "logged out of QQ"
        };
        for gone in shown_channels.into_values() {
            out.push(with_prefix(
                ctx.me.clone(),
                Command::PART(gone.name, Some(gone_reason.to_owned())),
            ));
        }

        let leave_reason = if self.owner.is_some() {
            "no longer your QQ buddy"
        } else {
            "logged out of QQ"
        };
        for uin in left_control {
            let Some(nick) = self.nick_of(uin) else {
                continue;
            };
            let prefix = person_prefix(nick, uin);
            let elsewhere = self
                .shown
                .channels
                .values()
                .any(|c| c.members.contains(&uin));
            out.push(with_prefix(
                prefix,
                if elsewhere {
                    Command::PART(CONTROL_CHANNEL.to_owned(), Some(leave_reason.to_owned()))
                } else {
                    Command::QUIT(Some(leave_reason.to_owned()))
                },
            ));
        }
        out
    }
}

/// JOIN, topic and NAMES for the client itself joining `channel`.
pub fn join_channel(
    ctx: &SyncCtx<'_>,
    channel: &str,
    topic: &str,
    names: Vec<String>,
) -> Vec<Message> {
    let n = ctx.numerics;
    let mut out = vec![with_prefix(
        ctx.me.clone(),
        Command::JOIN(channel.to_owned(), None, None),
    )];
    out.push(n.reply(RPL_TOPIC, &[channel, topic]));
    out.push(n.reply(
        RPL_TOPICWHOTIME,
        &[channel, &n.server, &ctx.since.to_string()],
    ));
    out.extend(n.names(channel, &names));
    out
}

/// `MODE <channel> +vvvv a b c d`, as many lines as needed.
pub fn mode_lines(server: &str, channel: &str, sign: char, nicks: &[String]) -> Vec<Message> {
    nicks
        .chunks(MODES_PER_LINE)
        .map(|chunk| {
            let mut params = vec![
                channel.to_owned(),
                format!("{sign}{}", "v".repeat(chunk.len())),
            ];
            params.extend(chunk.iter().cloned());
            Message {
                tags: None,
                prefix: Some(Prefix::ServerName(server.to_owned())),
                command: Command::Raw("MODE".to_owned(), params),
            }
        })
        .collect()
}
