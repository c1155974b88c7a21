//! The control channel `&qq` and its bot: running commands of the shared
//! command language (one worker per connection, so a slow QQ server never
//! stops the connection from reading), the gateway's own commands
//! (`rename`, `pm`), logging in and resuming a session with `login` or
//! `/OPER`, and the bot's replies. Passwords are never echoed or logged.

use std::sync::Arc;
use std::time::Duration;

use irc::proto::{Command as IrcCommand, Message};
use tokio::sync::mpsc;

use crate::core::bot::CommandContext;
use crate::core::command::{self, Command, Target};
use crate::core::model::{Presence, Uin};
use crate::core::text::{irc_lowercase, irc_payload_budget, split_irc_lines, strip_irc_formatting};
use crate::qq::Protocol;
use crate::secret::Secret;

use super::buddies::{bot_prefix, person_prefix, Naming, Renamed, SyncCtx, CONTROL_TOPIC};
use super::connection::ClientLink;
use super::numerics::{Numerics, RPL_TOPIC, RPL_TOPICWHOTIME};
use super::server_time::unix_seconds;
use super::sessions::Gateway;
use super::{BOT_NICK, CONTROL_CHANNEL, NICKLEN};

/// Failed authentications before a connection is dropped.
const MAX_AUTH_FAILURES: u32 = 5;
/// Longest wait for a profile in WHOIS.
const WHOIS_PROFILE_TIMEOUT: Duration = Duration::from_secs(5);

/// Work for a connection's bot worker.
pub(crate) enum BotJob {
    /// A command line typed in `&qq` or to the bot; replies go to `reply_to`.
    Line { text: String, reply_to: String },
    /// `/OPER <qq number> <password>`.
    Oper { uin: String, password: Secret },
    /// `/AWAY`: busy with a reason, online without.
    Away(Option<String>),
    /// `/WHOIS <nick>` (may ask QQ for the profile).
    Whois(String),
}

fn bot_lines(server: &str, target: &str, lines: &[String], notice: bool) -> Vec<Message> {
    let prefix = bot_prefix(server);
    let budget = irc_payload_budget(prefix.to_string().len(), target.len());
    lines
        .iter()
        .flat_map(|line| split_irc_lines(line, budget))
        .map(|line| Message {
            tags: None,
            prefix: Some(prefix.clone()),
            command: if notice {
                IrcCommand::NOTICE(target.to_owned(), line)
            } else {
                IrcCommand::PRIVMSG(target.to_owned(), line)
            },
        })
        .collect()
}

/// PRIVMSGs from the bot.
pub fn bot_privmsg(server: &str, target: &str, lines: &[String]) -> Vec<Message> {
    bot_lines(server, target, lines, false)
}

/// NOTICEs from the bot.
pub fn bot_notice(server: &str, target: &str, lines: &[String]) -> Vec<Message> {
    bot_lines(server, target, lines, true)
}

/// Joins a connection that is not (yet) authenticated to `&qq`, where it
/// sees only the bot and itself.
pub fn join_pending(gw: &Gateway, link: &ClientLink) {
    let info = link.info();
    let n = Numerics::new(&gw.settings.server_name, &info.nick);
    let mut out = vec![Message {
        tags: None,
        prefix: Some(link.prefix()),
        command: IrcCommand::JOIN(CONTROL_CHANNEL.to_owned(), None, None),
    }];
    out.push(n.reply(RPL_TOPIC, &[CONTROL_CHANNEL, CONTROL_TOPIC]));
    out.push(n.reply(
        RPL_TOPICWHOTIME,
        &[
            CONTROL_CHANNEL,
            &n.server,
            &unix_seconds(gw.created).to_string(),
        ],
    ));
    out.extend(n.names(
        CONTROL_CHANNEL,
        &[format!("@{BOT_NICK}"), info.nick.clone()],
    ));
    link.send_all(out);
}

/// A command addressed to the bot by name in the channel (`qqbot: list`).
fn strip_addressing(text: &str) -> &str {
    let trimmed = text.trim_start();
    if let Some(head) = trimmed.get(..BOT_NICK.len()) {
        if head.eq_ignore_ascii_case(BOT_NICK) {
            let rest = trimmed.get(BOT_NICK.len()..).unwrap_or("");
            if let Some(rest) = rest.strip_prefix([':', ',']) {
                return rest.trim_start();
            }
        }
    }
    trimmed
}

enum Auth {
    /// The password matches the session this nick has.
    Resumed(String),
    Denied(String),
    /// The nick has no session (any more): nothing to prove.
    Free,
}

struct Worker {
    gw: Arc<Gateway>,
    link: Arc<ClientLink>,
    auth_failures: u32,
}

/// Runs one connection's bot jobs in order until the connection closes.
pub(crate) async fn bot_worker(
    gw: Arc<Gateway>,
    link: Arc<ClientLink>,
    mut jobs: mpsc::Receiver<Box<BotJob>>,
) {
    let mut worker = Worker {
        gw,
        link,
        auth_failures: 0,
    };
    while let Some(job) = jobs.recv().await {
        if worker.link.is_closed() {
            break;
        }
        // Boxed: a job (a login above all) has a large state, held only
        // while it runs, not by every idle connection's worker.
        Box::pin(worker.job(*job)).await;
    }
}

impl Worker {
    async fn job(&mut self, job: BotJob) {
        match job {
            BotJob::Line { text, reply_to } => self.line(&text, &reply_to).await,
            BotJob::Oper { uin, password } => match uin.parse::<Uin>() {
                Ok(uin) => self.login(uin, password, None, CONTROL_CHANNEL).await,
                Err(_) => self.say(
                    CONTROL_CHANNEL,
                    &["/OPER <qq number> <password>: that is not a QQ number".to_owned()],
                ),
            },
            BotJob::Away(reason) => self.away(reason).await,
            BotJob::Whois(nick) => self.whois(&nick).await,
        }
    }

    fn server(&self) -> String {
        self.gw.settings.server_name.clone()
    }

    fn user(&self) -> Option<String> {
        self.link.info().user
    }

    fn say(&self, target: &str, lines: &[String]) {
        self.link
            .send_all(bot_privmsg(&self.server(), target, lines));
    }

    async fn line(&mut self, text: &str, reply_to: &str) {
        let text = strip_irc_formatting(strip_addressing(text));
        let text = text.trim();
        if text.is_empty() {
            return;
        }
        tracing::debug!(client = self.link.id, command = %command::redact(text), "bot command");
        let cmd = match command::parse(text) {
            Ok(cmd) => cmd,
            Err(e) => {
                self.say(reply_to, &[e.to_string()]);
                return;
            }
        };
        let Some(user) = self.user() else { return };
        match cmd {
            Command::Help => self.say(reply_to, &command::help_lines()),
            Command::Login {
                uin,
                password,
                protocol,
            } => self.login(uin, password, protocol, reply_to).await,
            other => {
                if !self.ensure_attached(&user).await {
                    self.say(reply_to, &[not_yours()]);
                    return;
                }
                self.run(&user, other, reply_to).await;
            }
        }
    }

    /// Whether this connection gets the user's deliveries, attaching it if
    /// the nick has no QQ session any more (nothing to prove).
    async fn ensure_attached(&self, user: &str) -> bool {
        if self.gw.is_attached(user, self.link.id) {
            return true;
        }
        if self.gw.has_qq_session(user).await {
            return false;
        }
        let in_control = self.link.info().pending_control;
        self.gw.attach(user, &self.link, in_control).await;
        true
    }

    async fn run(&self, user: &str, cmd: Command, reply_to: &str) {
        let ctx = CommandContext {
            user,
            name_scope: Some(user),
        };
        match cmd {
            Command::Rename { target, name } => self.rename(user, &target, &name, reply_to).await,
            Command::Pm(target) => self.pm(user, &target, reply_to).await,
            Command::Logout => {
                let owner = self.gw.core.login_of(user);
                let lines = self.gw.core.execute(&ctx, Command::Logout).await;
                if owner.is_some() && self.gw.core.login_of(user).is_none() {
                    let view = self.gw.view(user);
                    let mut v = view.lock().await;
                    v.user_logged_out = owner;
                    v.clear_session();
                    let (numerics, me, caps) = self.gw.sync_ctx_parts(&self.link);
                    let sync = SyncCtx {
                        numerics: &numerics,
                        me,
                        caps,
                        since: unix_seconds(self.gw.created),
                    };
                    self.link.send_all(v.sync(&sync));
                }
                self.say(reply_to, &lines);
            }
            other => {
                let lines = self.gw.core.execute(&ctx, other).await;
                self.say(reply_to, &lines);
                // A wrong captcha code brings a fresh image.
                self.offer_captcha(user, reply_to);
            }
        }
    }

    /// `login` and `/OPER`: a fresh login, or proof of ownership of the QQ
    /// session this nick already has.
    async fn login(
        &mut self,
        uin: Uin,
        password: Secret,
        protocol: Option<Protocol>,
        reply_to: &str,
    ) {
        let Some(user) = self.user() else { return };
        if !self.gw.is_attached(&user, self.link.id) {
            match self.authenticate(&user, uin, &password).await {
                Auth::Resumed(reply) => {
                    let in_control = self.link.info().pending_control;
                    self.gw.attach(&user, &self.link, in_control).await;
                    self.say(reply_to, &[reply]);
                    return;
                }
                Auth::Denied(reply) => {
                    self.auth_failures += 1;
                    tracing::warn!(client = self.link.id, %user, "failed to authenticate for a QQ session");
                    self.say(reply_to, &[reply]);
                    if self.auth_failures >= MAX_AUTH_FAILURES {
                        self.link.close("Too many failed logins");
                    }
                    return;
                }
                Auth::Free => {
                    let in_control = self.link.info().pending_control;
                    self.gw.attach(&user, &self.link, in_control).await;
                }
            }
        }
        let reply = match self.gw.core.login(&user, uin, password, protocol).await {
            Ok(reply) => reply,
            Err(e) => e.to_string(),
        };
        self.say(reply_to, &[reply]);
        self.offer_captcha(&user, reply_to);
    }

    /// WebQQ asked for a captcha: give the user a link to the image.
    fn offer_captcha(&self, user: &str, reply_to: &str) {
        if let Some(image) = self.gw.core.take_captcha_image(user) {
            let link = self.gw.captchas.offer(image);
            self.say(
                reply_to,
                &[format!("captcha image: {link} — then type: captcha <code>")],
            );
        }
    }

    async fn authenticate(&self, user: &str, uin: Uin, password: &Secret) -> Auth {
        let denied =
            || Auth::Denied("wrong QQ number or password for this nick's QQ session".to_owned());
        if let Some(current) = self.gw.core.login_of(user) {
            if current != uin {
                return denied();
            }
            return match self.gw.core.login(user, uin, password.clone(), None).await {
                Ok(reply) if reply.starts_with("resumed") => Auth::Resumed(reply),
                Ok(_) | Err(_) => denied(),
            };
        }
        match self.gw.store.logins_of(user).await {
            Ok(logins) if logins.is_empty() => Auth::Free,
            Ok(logins) => {
                if logins
                    .iter()
                    .any(|l| l.uin == uin && l.password == *password)
                {
                    Auth::Resumed(format!(
                        "resumed your QQ session {uin}; it is logging in again"
                    ))
                } else {
                    denied()
                }
            }
            Err(e) => Auth::Denied(format!("cannot check that now: {e}")),
        }
    }

    /// The QQ number behind a nick or number.
    async fn resolve(&self, user: &str, target: &Target) -> Option<Uin> {
        match target {
            Target::Uin(uin) => Some(*uin),
            Target::Name(name) => {
                let from_view = self.gw.view(user).lock().await.uin_of(name);
                match from_view {
                    Some(uin) => Some(uin),
                    None => self
                        .gw
                        .store
                        .puppet_by_name(user, name)
                        .await
                        .ok()
                        .flatten(),
                }
            }
        }
    }

    async fn rename(&self, user: &str, target: &Target, new: &str, reply_to: &str) {
        let Some(uin) = self.resolve(user, target).await else {
            self.say(reply_to, &[format!("nobody called {target} here")]);
            return;
        };
        let own_nick = self.link.nick();
        let naming = Naming {
            store: &*self.gw.store,
            scope: user,
            own_nick: &own_nick,
        };
        let view = self.gw.view(user);
        let mut v = view.lock().await;
        match v.rename(&naming, uin, new).await {
            Renamed::Done { old } => {
                if old != new {
                    self.link.send(Message {
                        tags: None,
                        prefix: Some(person_prefix(&old, uin)),
                        command: IrcCommand::NICK(new.to_owned()),
                    });
                }
                self.say(reply_to, &[format!("{uin} is now known as {new}")]);
            }
            Renamed::Invalid => self.say(
                reply_to,
                &[format!(
                    "{new:?} is not a valid nick: a letter or one of []\\`_^{{|}} first, then also digits and -, at most {NICKLEN} characters"
                )],
            ),
            Renamed::Taken => self.say(reply_to, &[format!("the nick {new} is taken")]),
        }
    }

    async fn pm(&self, user: &str, target: &Target, reply_to: &str) {
        let Some(uin) = self.resolve(user, target).await else {
            self.say(reply_to, &[format!("nobody called {target} here")]);
            return;
        };
        let own_nick = self.link.nick();
        let naming = Naming {
            store: &*self.gw.store,
            scope: user,
            own_nick: &own_nick,
        };
        let view = self.gw.view(user);
        let nick = view
            .lock()
            .await
            .name(&naming, uin, &uin.to_string(), &uin.to_string())
            .await;
        self.say(
            reply_to,
            &[format!("talk to {uin} with: /msg {nick} <text>")],
        );
    }

    async fn away(&self, reason: Option<String>) {
        let Some(user) = self.user() else { return };
        if !self.gw.is_attached(&user, self.link.id) || self.gw.core.login_of(&user).is_none() {
            return;
        }
        let presence = if reason.is_some() {
            Presence::Busy
        } else {
            Presence::Online
        };
        if let Err(e) = self.gw.core.set_presence(&user, presence).await {
            self.say(
                CONTROL_CHANNEL,
                &[format!("could not set your QQ status to {presence}: {e}")],
            );
        }
    }

    async fn whois(&self, nick: &str) {
        let info = self.link.info();
        let n = Numerics::new(&self.server(), &info.nick);
        let mut out = Vec::new();
        let folded = irc_lowercase(nick);
        let user = info
            .user
            .clone()
            .filter(|u| self.gw.is_attached(u, self.link.id));
        if folded == irc_lowercase(BOT_NICK) {
            out.extend(super::commands::whois_bot(&n));
        } else if folded == irc_lowercase(&info.nick) {
            out.extend(super::commands::whois_self(
                &n,
                &info,
                self.gw
                    .is_attached(user.as_deref().unwrap_or(""), self.link.id),
            ));
        } else if let Some(user) = user {
            let (entry, uin) = {
                let view = self.gw.view(&user);
                let v = view.lock().await;
                match v.uin_of(nick) {
                    Some(uin) => (super::commands::whois_person(&n, &v, uin), Some(uin)),
                    None => (Vec::new(), None),
                }
            };
            match uin {
                Some(uin) => {
                    out.extend(entry);
                    if self.gw.core.login_of(&user).is_some() {
                        let ctx = CommandContext {
                            user: &user,
                            name_scope: Some(&user),
                        };
                        let profile = tokio::time::timeout(
                            WHOIS_PROFILE_TIMEOUT,
                            self.gw.core.execute(&ctx, Command::Info(Target::Uin(uin))),
                        )
                        .await
                        .unwrap_or_else(|_| {
                            vec!["profile: the QQ server did not answer in time".to_owned()]
                        });
                        let nick_now = self
                            .gw
                            .view(&user)
                            .lock()
                            .await
                            .nick_of(uin)
                            .unwrap_or(nick)
                            .to_owned();
                        // The first line repeats "<uin>: <nick>", already in 311.
                        let heading = format!("{uin}: ");
                        for line in profile.iter().filter(|l| !l.starts_with(&heading)) {
                            out.push(n.reply(
                                super::numerics::RPL_WHOISSPECIAL,
                                &[&nick_now, line.trim()],
                            ));
                        }
                    }
                }
                None => out.push(n.reply(super::numerics::ERR_NOSUCHNICK, &[nick, "No such nick"])),
            }
        } else {
            out.push(n.reply(super::numerics::ERR_NOSUCHNICK, &[nick, "No such nick"]));
        }
        out.push(n.reply(
            super::numerics::RPL_ENDOFWHOIS,
            &[nick, "End of /WHOIS list."],
        ));
        self.link.send_all(out);
    }
}

fn not_yours() -> String {
    "This nick has a QQ session on this bridge; prove it is yours first: /OPER <qq number> <password>".to_owned()
}
