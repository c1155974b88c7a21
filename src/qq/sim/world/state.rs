//! The world's state behind its lock, and the operations that must happen
//! together inside one critical section: delivering an event, changing a
//! presence and telling the watchers, ending a session, linking friends.

use std::collections::{BTreeMap, HashMap, HashSet};

use tokio::time::Instant;

use super::contact_book::ContactBook;
use super::groups::Group;
use super::sessions::EndedSessions;
use super::MAX_FRIENDS;
use super::MAX_TEXT_BYTES;
use crate::qq::sim::account::{Account, Contact, Presence};
use crate::qq::sim::events::{Event, EventKind, Mailbox, Origin, MAX_PENDING};
use crate::qq::sim::session::{Session, SessionEnd};

pub(super) struct AccountState {
    pub(super) account: Account,
    pub(super) friends: Vec<u64>,
    /// Accounts whose friend list contains this one: they get its status.
    pub(super) listed_by: HashSet<u64>,
    pub(super) presence: Presence,
    pub(super) mailbox: Mailbox,
    /// Accounts this one has written to (for `hide_stranger_messages`).
    pub(super) wrote_to: HashSet<u64>,
    /// Pending friend requests addressed to this account.
    pub(super) requests_from: HashSet<u64>,
    pub(super) echo: bool,
}

#[derive(Default)]
pub(super) struct WorldState {
    pub(super) accounts: HashMap<u64, AccountState>,
    pub(super) sessions: HashMap<u64, Session>,
    pub(super) next_event_id: u64,
    pub(super) next_session_serial: u64,
    /// Why recent sessions ended, by serial.
    pub(super) ended_sessions: EndedSessions,
    /// Groups by their real number.
    pub(super) groups: BTreeMap<u64, Group>,
    /// Friend categories and marknames, for accounts that have any.
    pub(super) contact_books: HashMap<u64, ContactBook>,
    /// Personal signatures ("long nicks"), for accounts that set one.
    pub(super) long_nicks: HashMap<u64, String>,
}

/// Cuts `text` to at most [`MAX_TEXT_BYTES`] without splitting a character.
pub(super) fn clip_text(text: &str) -> String {
    let mut end = text.len().min(MAX_TEXT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default().to_owned()
}

impl WorldState {
    /// Queues an event for `to` (and logs it as received).
    pub(super) fn deliver(
        &mut self,
        started: Instant,
        to: u64,
        from: u64,
        kind: EventKind,
        via: Origin,
    ) {
        self.record(started, to, from, kind, via, true);
    }

    /// Logs an event as received by `to`, and queues it if `queue`.
    pub(super) fn record(
        &mut self,
        started: Instant,
        to: u64,
        from: u64,
        kind: EventKind,
        via: Origin,
        queue: bool,
    ) {
        let id = self.next_event_id;
        let Some(recipient) = self.accounts.get_mut(&to) else {
            return;
        };
        self.next_event_id += 1;
        let at_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let event = Event {
            id,
            from,
            kind,
            via,
            at_ms,
        };
        if queue {
            if recipient.mailbox.deliver(event) {
                tracing::warn!(
                    uin = to,
                    kept = MAX_PENDING,
                    "simulator: an account's event queue is full; its oldest events are dropped"
                );
            }
        } else {
            recipient.mailbox.log_only(event);
        }
    }

    /// Sets a presence and tells watchers if what they see changed.
    pub(super) fn set_presence(
        &mut self,
        started: Instant,
        uin: u64,
        presence: Presence,
        via: Origin,
    ) -> bool {
        let Some(account) = self.accounts.get_mut(&uin) else {
            return false;
        };
        let before = account.presence;
        account.presence = presence;
        let seen = presence.seen_by_others();
        if seen != before.seen_by_others() {
            let watchers: Vec<u64> = account.listed_by.iter().copied().collect();
            for watcher in watchers {
                if self.is_reachable(watcher) {
                    self.deliver(
                        started,
                        watcher,
                        uin,
                        EventKind::Status { presence: seen },
                        via,
                    );
                }
            }
        }
        before != presence
    }

    /// Status news only goes to accounts that are online or have a client.
    pub(super) fn is_reachable(&self, uin: u64) -> bool {
        self.sessions.contains_key(&uin)
            || self
                .accounts
                .get(&uin)
                .is_some_and(|a| a.presence != Presence::Offline)
    }

    /// Ends the account's session: offline, queue dropped, the reason
    /// remembered, and any long-poll woken to notice.
    pub(super) fn end_session(&mut self, started: Instant, uin: u64, via: Origin, why: SessionEnd) {
        let Some(session) = self.sessions.remove(&uin) else {
            return;
        };
        self.ended_sessions.remember(session.serial, why);
        if let Some(account) = self.accounts.get_mut(&uin) {
            account.mailbox.clear_pending();
            account.mailbox.wake();
        }
        self.set_presence(started, uin, Presence::Offline, via);
    }

    /// Makes `session` the account's session. A session it replaces ends
    /// as [`SessionEnd::Replaced`] (its pending events stay for the new
    /// one) and its long-poll is woken to notice.
    pub(super) fn install_session(&mut self, uin: u64, session: Session) {
        if let Some(old) = self.sessions.insert(uin, session) {
            self.ended_sessions
                .remember(old.serial, SessionEnd::Replaced);
            if let Some(account) = self.accounts.get(&uin) {
                account.mailbox.wake();
            }
        }
    }

    /// A serial for a new session.
    pub(super) fn take_session_serial(&mut self) -> u64 {
        self.next_session_serial += 1;
        self.next_session_serial
    }

    pub(super) fn expire_if_idle(&mut self, started: Instant, uin: u64, now: Instant) {
        if self.sessions.get(&uin).is_some_and(|s| s.is_idle(now)) {
            self.end_session(started, uin, Origin::Server, SessionEnd::Expired);
        }
    }

    /// Appends `target` to `owner`'s list if both exist, they differ and
    /// the list has room. Returns whether it was added.
    pub(super) fn link(&mut self, owner: u64, target: u64) -> bool {
        let has_room = self
            .accounts
            .get(&owner)
            .is_some_and(|o| !o.friends.contains(&target) && o.friends.len() < MAX_FRIENDS);
        if owner == target || !has_room || !self.accounts.contains_key(&target) {
            return false;
        }
        if let Some(owner_state) = self.accounts.get_mut(&owner) {
            owner_state.friends.push(target);
        }
        if let Some(target_state) = self.accounts.get_mut(&target) {
            target_state.listed_by.insert(owner);
        }
        true
    }

    pub(super) fn unlink(&mut self, owner: u64, target: u64) -> bool {
        let Some(list) = self.accounts.get_mut(&owner) else {
            return false;
        };
        let before = list.friends.len();
        list.friends.retain(|f| *f != target);
        if list.friends.len() == before {
            return false;
        }
        if let Some(target) = self.accounts.get_mut(&target) {
            target.listed_by.remove(&owner);
        }
        true
    }

    pub(super) fn contact(&self, uin: u64) -> Option<Contact> {
        self.accounts.get(&uin).map(|a| Contact {
            uin,
            nick: a.account.nick.clone(),
            face: a.account.face,
            presence: a.presence.seen_by_others(),
        })
    }
}
