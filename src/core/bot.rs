//! The bridge bot: runs the commands of the shared command language for one
//! user and words the replies, identically on every chat side. Commands that
//! only make sense on one side (`pm`, `rename`, `bridge`) are handled by that
//! side before it calls [`BridgeCore::execute`].

use crate::core::bridge::{BridgeCore, CoreError};
use crate::core::command::{self, Command, Target};
use crate::core::model::{Profile, Uin};
use crate::qq::AddOutcome;

/// Who is asking, and how names are resolved for them.
pub struct CommandContext<'a> {
    pub user: &'a str,
    /// Puppet naming scope used to resolve nicks (e.g. `gateway:alice`).
    pub name_scope: Option<&'a str>,
}

impl BridgeCore {
    /// Parses and runs one command line; always returns at least one line.
    pub async fn run_command(&self, ctx: &CommandContext<'_>, line: &str) -> Vec<String> {
        match command::parse(line) {
            Ok(cmd) => self.execute(ctx, cmd).await,
            Err(e) => vec![e.to_string()],
        }
    }

    /// Runs a parsed command. Errors become one clear reply line.
    pub async fn execute(&self, ctx: &CommandContext<'_>, cmd: Command) -> Vec<String> {
        tracing::debug!(user = ctx.user, command = ?cmd, "bot command");
        if self.permission(ctx.user).is_none() {
            return vec![CoreError::Forbidden.to_string()];
        }
        match self.execute_inner(ctx, cmd).await {
            Ok(lines) if lines.is_empty() => vec!["ok".to_owned()],
            Ok(lines) => lines,
            Err(e) => vec![e.to_string()],
        }
    }

    async fn execute_inner(
        &self,
        ctx: &CommandContext<'_>,
        cmd: Command,
    ) -> Result<Vec<String>, CoreError> {
        let user = ctx.user;
        Ok(match cmd {
            Command::Help => command::help_lines(),
            Command::Login {
                uin,
                password,
                protocol,
            } => vec![self.login(user, uin, password, protocol).await?],
            Command::Logout => vec![self.logout(user).await?],
            Command::Captcha(code) => vec![self.submit_captcha(user, code).await?],
            Command::List => {
                let contacts = self.contacts(user);
                if self.login_of(user).is_none() {
                    return Err(CoreError::NotLoggedIn);
                }
                if contacts.is_empty() {
                    vec!["you have no buddies yet".to_owned()]
                } else {
                    let mut lines = vec![format!("{} buddies:", contacts.len())];
                    lines.extend(contacts.iter().map(|c| {
                        format!(
                            "{} {} — {}",
                            c.uin,
                            c.display_name(),
                            c.presence.as_seen_by_others()
                        )
                    }));
                    lines
                }
            }
            Command::Info(target) => {
                let uin = self.resolve(ctx, &target).await?;
                let profile = self.session_of(user)?.profile(uin).await?;
                describe_profile(uin, &profile)
            }
            Command::Add { uin, message } => {
                let outcome = self.session_of(user)?.add_buddy(uin, &message).await?;
                vec![match outcome {
                    AddOutcome::Added => format!("{uin} is now your buddy"),
                    AddOutcome::RequestSent => format!("{uin} must approve you; request sent"),
                    AddOutcome::Refused => format!("{uin} does not accept buddy requests"),
                }]
            }
            Command::Accept(uin) => {
                self.session_of(user)?.answer_request(uin, true, "").await?;
                vec![format!("accepted {uin} as a buddy")]
            }
            Command::Reject { uin, reason } => {
                self.session_of(user)?
                    .answer_request(uin, false, &reason)
                    .await?;
                vec![format!("refused {uin}")]
            }
            Command::Remove(target) => {
                let uin = self.resolve(ctx, &target).await?;
                self.session_of(user)?.remove_buddy(uin).await?;
                vec![format!("removed {uin} from your buddies")]
            }
            Command::Search(criteria) => {
                let found = self.session_of(user)?.search(&criteria).await?;
                if found.is_empty() {
                    vec!["nobody matches".to_owned()]
                } else {
                    found
                        .iter()
                        .map(|p| {
                            let uin = p.uin.map_or_else(|| "?".to_owned(), |u| u.to_string());
                            let mut line = format!("{uin} {}", p.nick);
                            for (label, v) in [
                                ("age", p.age.map(|a| a.to_string())),
                                ("sex", p.gender.clone()),
                                ("province", p.province.clone()),
                            ] {
                                if let Some(v) = v.filter(|v| !v.is_empty()) {
                                    line.push_str(&format!(", {label} {v}"));
                                }
                            }
                            line
                        })
                        .collect()
                }
            }
            Command::Status(presence) => {
                self.set_presence(user, presence).await?;
                vec![format!("your QQ status is now {presence}")]
            }
            Command::Signature(text) => {
                self.session_of(user)?.set_signature(&text).await?;
                vec!["signature set".to_owned()]
            }
            Command::Pm(_)
            | Command::Rename { .. }
            | Command::Bridge { .. }
            | Command::Unbridge { .. } => {
                vec!["that command is not available here".to_owned()]
            }
            Command::BridgeRoom(_) | Command::UnbridgeRoom => vec![
                "that command binds a Matrix room to a QQ chat: type it in that room, with the \
                 bridge bot (Matrix bot mode) in it"
                    .to_owned(),
            ],
        })
    }

    /// Resolves a nick or QQ number to a QQ number for this user.
    pub async fn resolve(
        &self,
        ctx: &CommandContext<'_>,
        target: &Target,
    ) -> Result<Uin, CoreError> {
        match target {
            Target::Uin(u) => Ok(*u),
            Target::Name(name) => {
                if let Some(scope) = ctx.name_scope {
                    if let Some(uin) = self.store.puppet_by_name(scope, name).await? {
                        return Ok(uin);
                    }
                }
                let folded = name.to_lowercase();
                self.contacts(ctx.user)
                    .into_iter()
                    .find(|c| {
                        c.nick.to_lowercase() == folded || c.display_name().to_lowercase() == folded
                    })
                    .map(|c| c.uin)
                    .ok_or_else(|| crate::qq::QqError::UnknownContact(name.clone()).into())
            }
        }
    }
}

/// How every side words an incoming friend request: who asks, then the
/// exact commands that answer it.
pub fn friend_request_lines(uin: Uin, message: &str) -> [String; 2] {
    let asked = if message.trim().is_empty() {
        format!("{uin} wants to add you as a QQ buddy.")
    } else {
        format!(
            "{uin} wants to add you as a QQ buddy: \u{201c}{}\u{201d}",
            message.trim()
        )
    };
    let how = format!("To accept, type: accept {uin}    To refuse, type: reject {uin} [reason]");
    [asked, how]
}

fn describe_profile(uin: Uin, p: &Profile) -> Vec<String> {
    let mut lines = vec![format!("{uin}: {}", p.nick)];
    if let Some(g) = &p.gender {
        lines.push(format!("  gender: {g}"));
    }
    if let Some(a) = p.age {
        lines.push(format!("  age: {a}"));
    }
    if let Some(pv) = &p.province {
        lines.push(format!("  province: {pv}"));
    }
    for (label, value) in &p.details {
        if !value.is_empty() {
            lines.push(format!("  {label}: {value}"));
        }
    }
    lines
}
