//! Events the world delivers to an account, and the per-account mailbox
//! that holds them: a bounded queue of pending events (drained by whatever
//! protocol polls, e.g. GetMsgEx), a bounded log of everything received
//! (read by the control API), and a [`Notify`] a long-poll can wait on.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::Notify;

use super::account::Presence;

/// Pending events kept per account; the oldest is dropped beyond this. The
/// documents keep events until they are fetched or the session ends
/// (http11.md §6.9, webqq.md §6.3); this is only a memory guard, seconds of
/// a flood at thousands of messages a second into one account. (It was
/// 256, which a relay polling through a 40 ms stall at 8,000 messages a
/// second overflowed.)
pub const MAX_PENDING: usize = 65_536;
/// Received events remembered per account for the control API.
pub const MAX_RECEIVED_LOG: usize = 256;

/// Who caused an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// An HTTP QQ 1.1 client.
    Http11,
    /// A WebQQ client.
    Webqq,
    /// The test control API.
    Control,
    /// A scripted account (echo, status cycle).
    Script,
    /// The server itself (login, logout, session expiry).
    Server,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventKind {
    /// A user message.
    Message { text: String },
    /// The sender's presence changed, as others see it (never invisible).
    Status { presence: Presence },
    /// The sender asks to be added as a friend.
    FriendRequest { text: String },
    /// The sender accepted our friend request.
    FriendAccepted { text: String },
    /// The sender refused our friend request.
    FriendRefused { text: String },
    /// The sender wrote to `group`, of which the recipient is a member.
    /// Only WebQQ shows these: HTTP QQ 1.1 has no groups.
    GroupMessage { group: u64, text: String },
    /// A temporary-session message from someone who shares `group` with
    /// the recipient (WebQQ's `sess_message`; a plain message elsewhere).
    SessionMessage { group: u64, text: String },
}

/// One delivered event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Increases with every event the world delivers.
    pub id: u64,
    pub from: u64,
    #[serde(flatten)]
    pub kind: EventKind,
    pub via: Origin,
    /// Milliseconds since the world started.
    pub at_ms: u64,
}

/// One account's queue, log and wake-up signal.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    pending: VecDeque<Event>,
    received: VecDeque<Event>,
    notify: Arc<Notify>,
    /// Events dropped since the queue last had room, so an overflow is
    /// reported once, not once per event.
    overflowed: u64,
}

impl Mailbox {
    /// Queues and logs an event and wakes anyone waiting for one. Returns
    /// true when this makes the full queue start dropping its oldest
    /// events (the caller says so in the log).
    pub fn deliver(&mut self, event: Event) -> bool {
        self.log_only(event.clone());
        let mut started_dropping = false;
        if self.pending.len() >= MAX_PENDING {
            self.pending.pop_front();
            started_dropping = self.overflowed == 0;
            self.overflowed += 1;
        } else {
            self.overflowed = 0;
        }
        self.pending.push_back(event);
        self.notify.notify_waiters();
        started_dropping
    }

    /// Logs an event as received without queueing it: it happened, but no
    /// client of the account can be shown it (a group message while the
    /// account has no WebQQ session).
    pub fn log_only(&mut self, event: Event) {
        if self.received.len() == MAX_RECEIVED_LOG {
            self.received.pop_front();
        }
        self.received.push_back(event);
    }

    /// Wakes whoever waits for events without delivering one, so a
    /// long-poll re-checks its session (replaced, logged out, expired).
    pub fn wake(&self) {
        self.notify.notify_waiters();
    }

    /// Removes pending events oldest-first while `keep` accepts them.
    pub fn take_while(&mut self, mut keep: impl FnMut(&Event) -> bool) -> Vec<Event> {
        let mut taken = Vec::new();
        while let Some(event) = self.pending.front() {
            if !keep(event) {
                break;
            }
            if let Some(event) = self.pending.pop_front() {
                taken.push(event);
            }
        }
        taken
    }

    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub fn clear_pending(&mut self) {
        self.pending.clear();
    }

    pub fn received(&self) -> Vec<Event> {
        self.received.iter().cloned().collect()
    }

    pub fn notify_handle(&self) -> Arc<Notify> {
        Arc::clone(&self.notify)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(id: u64) -> Event {
        Event {
            id,
            from: 10002,
            kind: EventKind::Message {
                text: format!("m{id}"),
            },
            via: Origin::Control,
            at_ms: 0,
        }
    }

    #[test]
    fn a_full_queue_drops_its_oldest_and_reports_the_overflow_once() {
        let mut mailbox = Mailbox::default();
        let total = MAX_PENDING as u64 + 3;
        let reports = (0..total)
            .filter(|&id| mailbox.deliver(message(id)))
            .count();
        assert_eq!(reports, 1);
        assert_eq!(mailbox.pending_len(), MAX_PENDING);
        let first = mailbox.take_while(|_| true).first().map(|e| e.id);
        assert_eq!(first, Some(3));
        // Room again: a later overflow is reported again.
        let reports = (0..total)
            .filter(|&id| mailbox.deliver(message(id)))
            .count();
        assert_eq!(reports, 1);
    }

    #[test]
    fn events_wait_until_fetched_below_the_guard() {
        let mut mailbox = Mailbox::default();
        for id in 0..10_000 {
            assert!(!mailbox.deliver(message(id)));
        }
        let ids: Vec<u64> = mailbox.take_while(|_| true).iter().map(|e| e.id).collect();
        assert_eq!(ids, (0..10_000).collect::<Vec<_>>());
    }
}
