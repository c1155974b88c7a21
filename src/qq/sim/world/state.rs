//! The world's state behind its lock, and the operations that must happen
//! together inside one critical section: delivering an event, changing a
//! presence and telling the watchers, ending a session, linking friends.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::time::Instant;

use super::MAX_FRIENDS;
use super::MAX_TEXT_BYTES;
use crate::qq::sim::account::{Account, Contact, Presence};
use crate::qq::sim::events::{Event, EventKind, Mailbox, Origin};
use crate::qq::sim::session::Session;

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
    pub(super) fn deliver(
        &mut self,
        started: Instant,
        to: u64,
        from: u64,
        kind: EventKind,
        via: Origin,
    ) {
        let id = self.next_event_id;
        let Some(recipient) = self.accounts.get_mut(&to) else {
            return;
        };
        self.next_event_id += 1;
        let at_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        recipient.mailbox.deliver(Event {
            id,
            from,
            kind,
            via,
            at_ms,
        });
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

    pub(super) fn end_session(&mut self, started: Instant, uin: u64, via: Origin) {
        if self.sessions.remove(&uin).is_none() {
            return;
        }
        if let Some(account) = self.accounts.get_mut(&uin) {
            account.mailbox.clear_pending();
        }
        self.set_presence(started, uin, Presence::Offline, via);
    }

    pub(super) fn expire_if_idle(
        &mut self,
        started: Instant,
        uin: u64,
        now: Instant,
        timeout: Duration,
    ) {
        if self
            .sessions
            .get(&uin)
            .is_some_and(|s| s.is_idle(now, timeout))
        {
            self.end_session(started, uin, Origin::Server);
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
