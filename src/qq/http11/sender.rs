//! Outgoing messages of one session: rendered to plain text, split into
//! parts, and sent one CLTMSG at a time with pacing.
//!
//! The server answers a second CLTMSG less than 1 s after the previous one
//! with a 20 s-late `RES=3` (http11.md §6.10). All sends of a session
//! therefore wait their turn on one fair (FIFO) lock, which is the
//! session's queue, and each CLTMSG starts at least `send_pacing` after the
//! previous one finished. A send resolves only when every part got
//! `RES=0`; `RES=3` waits and retries a bounded number of times before
//! `Throttled`.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use super::codec::{Params, ReplyBody};
use super::link::{unexpected, SessionLink};
use crate::backoff::Backoff;
use crate::core::model::{RichText, Uin};
use crate::core::text::{render_plain, split_message_for_limit, FaceStyle};
use crate::qq::QqError;

/// The paced CLTMSG queue of one session.
#[derive(Debug, Default)]
pub(crate) struct MessageSender {
    /// When the previous CLTMSG finished; the lock is the queue.
    last_sent: Mutex<Option<Instant>>,
}

/// The CLTMSG texts for a message. HTTP QQ 1.1 has no face elements, so
/// faces become their `[name]` codes, which QQ users recognise; an action
/// (`/me`) keeps its marker; line breaks are CR LF as the Windows client
/// sent them.
pub(crate) fn message_parts(text: &RichText, max_bytes: usize) -> Vec<String> {
    let mut plain = render_plain(text, FaceStyle::Name);
    if text.action {
        plain.insert_str(0, "/me ");
    }
    split_message_for_limit(&plain, max_bytes)
        .into_iter()
        .map(|part| part.replace("\r\n", "\n").replace('\n', "\r\n"))
        .collect()
}

impl MessageSender {
    pub fn new() -> Self {
        MessageSender::default()
    }

    /// Sends every part of `text` to `to`, in order.
    pub async fn send(&self, link: &SessionLink, to: Uin, text: &RichText) -> Result<(), QqError> {
        let parts = message_parts(text, link.options.max_message_bytes);
        if parts.is_empty() {
            return Err(QqError::Unsupported(
                "an empty message cannot be sent".into(),
            ));
        }
        let mut last_sent = self.last_sent.lock().await;
        let total = parts.len();
        for (index, part) in parts.into_iter().enumerate() {
            self.send_part(link, &mut last_sent, to, part).await?;
            tracing::debug!(%to, part = index + 1, total, "message part accepted");
        }
        // A reply is likely soon: poll quickly for a while.
        link.activity.notify_one();
        Ok(())
    }

    async fn send_part(
        &self,
        link: &SessionLink,
        last_sent: &mut Option<Instant>,
        to: Uin,
        text: String,
    ) -> Result<(), QqError> {
        let pacing = link.options.send_pacing;
        let params = Params::CltMsg { to: to.0, text };
        let mut throttle = Backoff::new(
            pacing.max(link.options.retry_initial),
            link.options.retry_max.max(pacing),
        );
        loop {
            wait_for_turn(link, *last_sent, pacing).await?;
            let answer = link.request_paced(params.clone(), pacing).await;
            *last_sent = Some(Instant::now());
            match answer? {
                ReplyBody::Done => return Ok(()),
                ReplyBody::Refused => {
                    tracing::info!(%to, "CLTMSG throttled (RES=3)");
                    if throttle.failures() + 1 >= link.options.throttle_attempts.max(1) {
                        return Err(QqError::Throttled);
                    }
                    if !link.pause(throttle.next_delay()).await {
                        return Err(QqError::SessionEnded);
                    }
                }
                other => return Err(unexpected("CLTMSG", &other)),
            }
        }
    }
}

/// Waits until `pacing` has passed since the previous CLTMSG.
async fn wait_for_turn(
    link: &SessionLink,
    last_sent: Option<Instant>,
    pacing: Duration,
) -> Result<(), QqError> {
    let Some(last) = last_sent else {
        return Ok(());
    };
    let wait = (last + pacing).saturating_duration_since(Instant::now());
    if wait.is_zero() || link.pause(wait).await {
        Ok(())
    } else {
        Err(QqError::SessionEnded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::Segment;

    #[test]
    fn faces_become_codes_and_long_text_is_split() {
        let text = RichText {
            segments: vec![
                Segment::Text {
                    text: "你好".into(),
                },
                Segment::Face { id: 14 },
            ],
            action: false,
        };
        let parts = message_parts(&text, 900);
        assert_eq!(parts.len(), 1);
        assert!(
            parts[0].starts_with("你好[") && parts[0].ends_with(']'),
            "{parts:?}"
        );

        let long = RichText::plain("一二三四五六七八九十".repeat(40));
        let parts = message_parts(&long, 300);
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.len() <= 300));
        assert_eq!(parts.concat(), "一二三四五六七八九十".repeat(40));
    }

    #[test]
    fn line_breaks_are_crlf_and_actions_keep_their_marker() {
        let parts = message_parts(&RichText::plain("a\nb\r\nc"), 900);
        assert_eq!(parts, vec!["a\r\nb\r\nc".to_owned()]);
        let mut action = RichText::plain("waves");
        action.action = true;
        assert_eq!(message_parts(&action, 900), vec!["/me waves".to_owned()]);
    }
}
