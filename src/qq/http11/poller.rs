//! The session's GetMsgEx loop: it fetches messages and events, keeps the
//! session alive, and notices outages and expired sessions.
//!
//! Schedule: `poll_fast` right after activity (a message arrived or was
//! sent), then doubling with jitter while nothing happens, up to a cap that
//! is below half the server's `HI` (so the session never looks silent; `LI`
//! is five times `HI`). `RES=3` and NULL back off on their own schedules;
//! NULL emits one `Reconnecting` per outage and `Reconnected` when a poll
//! gets through again. `RES=20` logs in again; a refused re-login ends the
//! session.

use std::sync::Arc;
use std::time::Duration;

use super::codec::{MsgEntry, Params, ReplyBody, Version};
use super::contacts::ContactBook;
use super::link::{presence_for, SessionLink};
use super::wire::CallError;
use crate::backoff::Backoff;
use crate::core::model::{ChatId, Uin};
use crate::core::text::{clean_qq_wire_text, parse_plain};
use crate::qq::{QqError, QqEvent};

/// Runs until the session closes or nobody listens to its events.
pub(crate) async fn run(link: Arc<SessionLink>, book: Arc<ContactBook>) {
    let options = &link.options;
    let mut cap = idle_cap(&link);
    let mut idle = Backoff::new(options.poll_fast, cap);
    let mut outage = Backoff::new(options.retry_initial, options.outage_backoff_max);
    let mut throttled = Backoff::new(
        options.poll_fast.max(options.retry_initial),
        options.outage_backoff_max,
    );
    let mut delay = options.poll_fast;
    loop {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            () = link.activity.notified() => idle.reset(),
            () = link.closed() => break,
        }
        if link.is_closing() || link.events.is_closed() {
            break;
        }
        // Boxed: the exchange's state lives only during a poll, not in
        // every idle session's task between polls.
        delay = match Box::pin(poll_once(&link, &book)).await {
            Polled::Messages(0) => {
                outage.reset();
                throttled.reset();
                idle.next_delay()
            }
            Polled::Messages(_) => {
                outage.reset();
                throttled.reset();
                idle.reset();
                options.poll_fast
            }
            Polled::Throttled => throttled.next_delay(),
            Polled::Failed => outage.next_delay(),
            Polled::Ended => break,
        };
        // A re-login may have announced a different HI.
        if idle_cap(&link) != cap {
            cap = idle_cap(&link);
            idle = Backoff::new(options.poll_fast, cap);
        }
    }
    tracing::debug!("poller stopped");
}

/// The longest idle poll interval for the current login.
fn idle_cap(link: &SessionLink) -> Duration {
    link.options.poll_cap(link.timing().heartbeat)
}

/// What one poll achieved.
enum Polled {
    Messages(usize),
    Throttled,
    Failed,
    Ended,
}

async fn poll_once(link: &SessionLink, book: &ContactBook) -> Polled {
    let generation = link.generation();
    match link.wire.call(Version::V1_1, &Params::GetMsgEx).await {
        Ok(ReplyBody::Messages(entries)) => {
            link.events.recovered().await;
            let count = entries.len();
            for entry in entries {
                deliver(link, book, entry).await;
            }
            Polled::Messages(count)
        }
        Ok(ReplyBody::NotLoggedIn) => match link.relogin(generation).await {
            Ok(()) => Polled::Messages(0),
            Err(QqError::SessionEnded) => Polled::Ended,
            Err(e) => {
                tracing::info!(error = %e, "re-login did not work yet");
                Polled::Failed
            }
        },
        Ok(ReplyBody::Refused) => {
            tracing::info!("GetMsgEx refused (RES=3); backing off");
            Polled::Throttled
        }
        Ok(other) => {
            tracing::warn!(res = other.result_code(), "unexpected GetMsgEx answer");
            Polled::Failed
        }
        Err(CallError::Null(cause)) => {
            link.events.degraded(&cause.to_string()).await;
            Polled::Failed
        }
        // Already logged by the wire; the server is up, so no Reconnecting.
        Err(CallError::Malformed(_)) => Polled::Failed,
    }
}

/// Turns one GetMsgEx entry into events.
async fn deliver(link: &SessionLink, book: &ContactBook, entry: MsgEntry) {
    let event = match entry {
        MsgEntry::User { from, text } => {
            let sender = Uin(from);
            // The codec already removed the server's trailing space; put it
            // back so the core's one wire clean-up sees the text exactly as
            // sent and strips just that space (and CR, and the Q+ ad).
            let text = clean_qq_wire_text(&format!("{text} "));
            QqEvent::Message {
                chat: ChatId::Buddy(sender),
                sender,
                sender_name: book.nick_of(sender),
                text: parse_plain(&text),
                remote_id: None,
            }
        }
        MsgEntry::Status { from, status } => {
            let presence = presence_for(status);
            book.set_presence(Uin(from), presence);
            QqEvent::Presence {
                uin: Uin(from),
                presence,
            }
        }
        MsgEntry::FriendRequest { from, text } => QqEvent::FriendRequest {
            uin: Uin(from),
            message: text,
        },
        MsgEntry::Accepted { from, .. } => {
            book.mark_stale();
            link.events
                .emit(QqEvent::FriendAccepted { uin: Uin(from) })
                .await;
            QqEvent::ContactsChanged
        }
        MsgEntry::Refused { from, text } => QqEvent::FriendRefused {
            uin: Uin(from),
            reason: text,
        },
        MsgEntry::Other { kind, from, .. } => {
            tracing::debug!(kind, from, "ignoring a message of unknown type");
            return;
        }
    };
    link.events.emit(event).await;
}
