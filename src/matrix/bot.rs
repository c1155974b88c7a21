//! The bridge bot: the core's command language in the user's direct chat
//! with the bot (and, with the `!qq` prefix, in any other room). The
//! Matrix-only command `pm` opens (or re-opens) a portal; `login` messages
//! are redacted right away because they hold a password; a WebQQ captcha
//! is posted as an image.

use crate::core::bot::CommandContext;
use crate::core::command::{self, Command, Target};
use crate::core::model::{ChatId, GroupNumber, Uin};
use crate::core::CoreError;

use super::room_queue::RoomOp;
use super::{content, Matrix, MatrixError, SIDE_NAME};

impl Matrix {
    /// Runs one command line from `user` in `room` and answers there as
    /// `voice` (the bot, or the DM ghost in a portal).
    pub(crate) async fn run_bot_command(
        &self,
        room: &str,
        voice: &str,
        user: &str,
        event_id: &str,
        line: &str,
    ) -> Result<(), MatrixError> {
        tracing::debug!(%user, command = %command::redact(line), "Matrix bot command");
        let parsed = command::parse(line);
        if matches!(parsed, Ok(Command::Login { .. })) {
            // Queued before the login runs: the password leaves the room
            // as soon as possible.
            self.enqueue(
                room,
                &RoomOp::Redact {
                    user: voice.to_owned(),
                    event_id: event_id.to_owned(),
                    reason: "contains a password".to_owned(),
                },
            )
            .await?;
        }
        let ctx = CommandContext {
            user,
            name_scope: None,
        };
        let lines = match parsed {
            Err(e) => vec![e.to_string()],
            Ok(Command::Help) => {
                let mut lines = vec![format!(
                    "Commands (in rooms other than this chat, start them with {}):",
                    self.settings.command_prefix
                )];
                lines.extend(command::help_lines().into_iter().filter(|l| {
                    !l.starts_with("rename")
                        && !l.starts_with("bridge")
                        && !l.starts_with("unbridge")
                }));
                lines
            }
            Ok(Command::Pm(target)) => vec![self.open_chat(&ctx, target).await],
            Ok(cmd) => {
                let captcha_possible = matches!(cmd, Command::Login { .. } | Command::Captcha(_));
                let lines = self.core.execute(&ctx, cmd).await;
                if captcha_possible {
                    if let Some(image) = self.core.take_captcha_image(user) {
                        self.post_captcha(room, voice, image).await?;
                    }
                }
                lines
            }
        };
        self.enqueue_notice(room, voice, &lines.join("\n")).await
    }

    /// `pm <qq number|nick|group number>`: the portal, with the user
    /// invited (again).
    async fn open_chat(&self, ctx: &CommandContext<'_>, target: Target) -> String {
        let Some(owner) = self.core.login_of(ctx.user) else {
            return CoreError::NotLoggedIn.to_string();
        };
        if self.core.permission(ctx.user).is_none() {
            return CoreError::Forbidden.to_string();
        }
        let uin = match self.core.resolve(ctx, &target).await {
            Ok(uin) => uin,
            Err(e) => return e.to_string(),
        };
        let group = ChatId::Group(GroupNumber(uin.0));
        let is_group = matches!(
            self.store.portal(owner, &group, SIDE_NAME).await,
            Ok(Some(_))
        );
        let chat = if is_group { group } else { ChatId::Buddy(uin) };
        let nick = self.core.contact(ctx.user, uin).map(|c| c.nick);
        match self
            .portal(ctx.user, owner, chat, nick.as_deref(), true)
            .await
        {
            Ok(Some(_)) => match chat {
                ChatId::Group(g) => format!("invited you to the room of QQ group {g}"),
                _ => format!(
                    "invited you to a chat with {}",
                    describe(uin, nick.as_deref())
                ),
            },
            Ok(None) => "that chat cannot be opened".to_owned(),
            Err(e) => format!("cannot open that chat now: {e}"),
        }
    }

    /// Uploads a captcha image and posts it.
    async fn post_captcha(
        &self,
        room: &str,
        voice: &str,
        image: Vec<u8>,
    ) -> Result<(), MatrixError> {
        use ruma::api::client::media::create_content::v3::Request;
        let mimetype = if image.starts_with(&[0x89, b'P', b'N', b'G']) {
            "image/png"
        } else {
            "image/jpeg"
        };
        let size = image.len();
        let make = || {
            let mut request = Request::new(image.clone());
            request.content_type = Some(mimetype.to_owned());
            request.filename = Some("captcha".to_owned());
            request
        };
        let response = self.hs.call_retrying(make, None).await?;
        let body = content::image("captcha", response.content_uri.as_str(), mimetype, size);
        self.enqueue(
            room,
            &RoomOp::Send {
                sender: voice.to_owned(),
                event_type: "m.room.message".to_owned(),
                content: body,
            },
        )
        .await
    }
}

fn describe(uin: Uin, nick: Option<&str>) -> String {
    match nick {
        Some(n) => format!("{n} ({uin})"),
        None => uin.to_string(),
    }
}
