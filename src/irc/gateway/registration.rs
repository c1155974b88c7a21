//! Connection registration: PASS, NICK, USER and CAP negotiation, the
//! welcome burst, and deciding whether the new connection gets its user's
//! deliveries at once or must first prove it owns the QQ session that nick
//! still has (`/OPER <qq number> <password>`).

use irc::proto::{CapSubCommand, Command, Message};

use crate::core::text::is_valid_irc_nick;
use crate::secret::Secret;

use super::caps::{self, CapAction};
use super::connection::Conn;
use super::control_channel::{bot_privmsg, join_pending};
use super::numerics::{
    motd_lines, ERR_ALREADYREGISTERED, ERR_ERRONEUSNICKNAME, ERR_INVALIDCAPCMD, ERR_NEEDMOREPARAMS,
    ERR_NICKNAMEINUSE, ERR_NONICKNAMEGIVEN, ERR_NOTREGISTERED, ERR_PASSWDMISMATCH,
    ERR_YOUREBANNEDCREEP,
};
use super::server_time::format_tag;
use super::sessions::{user_id_for, NickRefused};
use super::{CONTROL_CHANNEL, NICKLEN};

/// Longest ident kept from USER.
const IDENT_LEN: usize = 10;

/// What a client has sent before it is registered.
#[derive(Default)]
pub(crate) struct Registration {
    pub pass: Option<Secret>,
    pub nick: Option<String>,
    /// (ident, realname)
    pub user: Option<(String, String)>,
    /// CAP LS/REQ seen and no CAP END yet.
    pub cap_negotiating: bool,
}

/// The ident shown for the client: its USER name, cleaned up.
fn clean_ident(raw: &str) -> String {
    let ident: String = raw
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(IDENT_LEN)
        .collect();
    if ident.is_empty() {
        "user".to_owned()
    } else {
        ident
    }
}

impl Conn {
    pub async fn handle_unregistered(&mut self, message: Message) {
        match message.command {
            Command::PASS(pass) => self.reg.pass = Some(Secret::new(pass)),
            Command::NICK(nick) => {
                if self.set_nick(&nick) {
                    self.try_complete().await;
                }
            }
            Command::USER(user, _mode, realname) => {
                self.reg.user = Some((clean_ident(&user), realname));
                self.try_complete().await;
            }
            Command::CAP(_, sub, arg, _) => {
                if self.cap(&sub, arg.as_deref()) {
                    self.try_complete().await;
                }
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
            Command::Raw(verb, _)
                if ["NICK", "USER", "PASS"].contains(&verb.to_ascii_uppercase().as_str()) =>
            {
                if verb.eq_ignore_ascii_case("NICK") {
                    self.reply(ERR_NONICKNAMEGIVEN, &["No nickname given"]);
                } else {
                    self.reply(
                        ERR_NEEDMOREPARAMS,
                        &[&verb.to_ascii_uppercase(), "Not enough parameters"],
                    );
                }
            }
            _ => self.reply(ERR_NOTREGISTERED, &["You have not registered"]),
        }
    }

    /// Handles CAP (before or after registration). True on CAP END.
    pub fn cap(&mut self, sub: &CapSubCommand, arg: Option<&str>) -> bool {
        let mut info = self.link.info();
        let mut negotiating = self.reg.cap_negotiating;
        let action = caps::handle(&mut info.caps, &info.nick, sub, arg, &mut negotiating);
        if !info.registered {
            self.reg.cap_negotiating = negotiating;
        }
        self.link.update(|i| i.caps = info.caps);
        match action {
            CapAction::Reply(commands) => {
                for command in commands {
                    self.link.send(self.numerics().server_message(command));
                }
                false
            }
            CapAction::End => true,
            CapAction::Invalid(sub) => {
                self.reply(ERR_INVALIDCAPCMD, &[&sub, "Invalid CAP command"]);
                false
            }
        }
    }

    /// Takes `nick` for an unregistered client; false (with the error
    /// numeric sent) if it cannot have it.
    fn set_nick(&mut self, nick: &str) -> bool {
        if nick.is_empty() {
            self.reply(ERR_NONICKNAMEGIVEN, &["No nickname given"]);
            return false;
        }
        if !is_valid_irc_nick(nick, NICKLEN) {
            self.reply(ERR_ERRONEUSNICKNAME, &[nick, "Erroneous nickname"]);
            return false;
        }
        match self.gw.claim_nick(self.link.id, nick) {
            Ok(()) => {
                self.reg.nick = Some(nick.to_owned());
                self.link.update(|i| i.nick = nick.to_owned());
                true
            }
            Err(NickRefused::InUse) => {
                self.reply(ERR_NICKNAMEINUSE, &[nick, "Nickname is already in use"]);
                false
            }
        }
    }

    async fn try_complete(&mut self) {
        if self.reg.cap_negotiating || self.reg.nick.is_none() || self.reg.user.is_none() {
            return;
        }
        self.complete().await;
    }

    /// Registers the client: password check, identity, welcome, `&qq`.
    async fn complete(&mut self) {
        let (Some(nick), Some((ident, realname))) = (self.reg.nick.clone(), self.reg.user.clone())
        else {
            return;
        };
        if let Some(expected) = &self.gw.settings.password {
            if self.reg.pass.as_ref() != Some(expected) {
                self.reply(ERR_PASSWDMISMATCH, &["Password incorrect"]);
                self.link.close("Bad password");
                self.quit = true;
                return;
            }
        }
        let user = user_id_for(&nick);
        if self.gw.core.permission(&user).is_none() {
            self.reply(ERR_YOUREBANNEDCREEP, &["You may not use this bridge"]);
            self.link.close("Not allowed");
            self.quit = true;
            return;
        }
        if !self.gw.claim_identity(self.link.id, &user) {
            self.reg.nick = None;
            self.reply(ERR_NICKNAMEINUSE, &[&nick, "Nickname is already in use"]);
            return;
        }
        self.link.update(|i| {
            i.registered = true;
            i.ident = ident;
            i.realname = realname;
            i.user = Some(user.clone());
        });
        let prefix = self.link.prefix().to_string();
        let created = format_tag(self.gw.created);
        self.link
            .send_all(self.numerics().welcome(&prefix, &created, &motd_lines()));
        tracing::info!(client = self.link.id, %user, "IRC client registered");

        if self.gw.has_qq_session(&user).await {
            // Someone with this nick is logged in to QQ: only they may
            // resume that session.
            join_pending(&self.gw, &self.link);
            self.link.update(|i| i.pending_control = true);
            let server = self.gw.settings.server_name.clone();
            self.link.send_all(bot_privmsg(
                &server,
                CONTROL_CHANNEL,
                &[
                    "This nick has a QQ session on this bridge. To resume it, prove it is yours:"
                        .to_owned(),
                    "/OPER <qq number> <password>   (or type: login <qq number> <password>)"
                        .to_owned(),
                ],
            ));
        } else {
            self.gw.attach(&user, &self.link, false).await;
            let server = self.gw.settings.server_name.clone();
            self.link.send_all(bot_privmsg(
                &server,
                CONTROL_CHANNEL,
                &[
                    "Welcome to qqbridge! Log in to QQ with /OPER <qq number> <password> (keeps the password out of this window)".to_owned(),
                    "or type here: login <qq number> <password> [http11|webqq]. Type \"help\" for all commands.".to_owned(),
                ],
            ));
        }
    }

    /// 462 for PASS/USER after registration.
    pub fn already_registered(&self) {
        self.reply(ERR_ALREADYREGISTERED, &["You may not reregister"]);
    }
}
