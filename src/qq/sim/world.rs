//! The simulated QQ world, shared by every protocol front end: accounts,
//! friend lists (in the order friends were added), presence, friend
//! requests, per-account mailboxes and login sessions.
//!
//! It knows no wire format. HTTP QQ 1.1 (and later WebQQ) translate their
//! requests into calls here and the resulting events into their replies.
//!
//! Concurrency: all state sits behind one `std::sync::Mutex` that is only
//! held for short, non-async critical sections (a lookup, a queue push, a
//! broadcast to at most [`MAX_FRIENDS`] mailboxes). Nothing awaits while
//! holding it, so thousands of polling sessions only contend for
//! microseconds. Waiting for events uses a per-account [`Notify`] outside
//! the lock.

use std::collections::HashSet;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::account::{Account, Contact, Presence, SearchCriteria};
use super::events::{Event, EventKind, Mailbox, Origin};
use super::session::{ReloginPolicy, Session, SessionEnd, SessionKey};
use crate::qq::http11::codec::PasswordHash;

mod contact_book;
mod faults;
mod friends;
mod groups;
mod sessions;
mod state;
#[cfg(test)]
mod tests;

pub use contact_book::{Category, ContactBook, MAX_CATEGORIES, MAX_LONG_NICK_BYTES};
pub use friends::{AddFriendOutcome, AnswerOutcome, RequestOutcome};
pub use groups::{Group, GroupMessageOutcome, MAX_GROUP_MEMBERS};
use state::{clip_text, AccountState, WorldState};

/// Most friends an account can have (the classic QQ limit).
pub const MAX_FRIENDS: usize = 500;
/// Longest message text kept; longer texts are cut at a character boundary.
pub const MAX_TEXT_BYTES: usize = 8 * 1024;

/// An account as the world is seeded with it.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountSeed {
    pub account: Account,
    /// Presence before any client logs in (simulated users can be online).
    pub presence: Presence,
    /// Whether the account answers every message with the same text.
    pub echo: bool,
}

/// The result of a login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    LoggedIn,
    UnknownAccount,
    WrongPassword,
    /// Strict re-login policy and the previous session is still alive.
    AlreadyOnline,
}

/// The result of sending a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageOutcome {
    Delivered,
    UnknownSender,
    UnknownRecipient,
}

/// Everything about one account, for the control API and tests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountSnapshot {
    pub uin: u64,
    pub nick: String,
    pub face: u32,
    pub presence: Presence,
    /// Source address and protocol of the live session, if any.
    pub session: Option<SessionSnapshot>,
    pub friends: Vec<u64>,
    pub pending_events: usize,
    /// Accounts whose friend request awaits an answer.
    pub friend_requests_from: Vec<u64>,
    /// Real numbers of the groups the account is a member of.
    pub groups: Vec<u64>,
    /// The personal signature set over WebQQ (`set_long_nick2`).
    pub long_nick: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionSnapshot {
    pub ip: String,
    pub protocol: Origin,
}

/// The world. Share it as `Arc<World>`.
pub struct World {
    state: Mutex<WorldState>,
    /// Test-only fault switches (see `faults.rs`); empty by default.
    faults: faults::Faults,
    started: Instant,
    idle_timeout: Duration,
}

impl World {
    /// Builds a world. Friendships are mutual, listed in the order given.
    pub fn new(seeds: Vec<AccountSeed>, friendships: &[[u64; 2]], idle_timeout: Duration) -> World {
        let mut state = WorldState::default();
        for seed in seeds {
            let uin = seed.account.uin;
            state.accounts.insert(
                uin,
                AccountState {
                    account: seed.account,
                    friends: Vec::new(),
                    listed_by: HashSet::new(),
                    presence: seed.presence,
                    mailbox: Mailbox::default(),
                    wrote_to: HashSet::new(),
                    requests_from: HashSet::new(),
                    echo: seed.echo,
                },
            );
        }
        for &[a, b] in friendships {
            state.link(a, b);
            state.link(b, a);
        }
        World {
            state: Mutex::new(state),
            started: Instant::now(),
            idle_timeout,
            faults: faults::Faults::default(),
        }
    }

    /// The lock; a panic elsewhere must not take the whole simulator down.
    fn lock(&self) -> MutexGuard<'_, WorldState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// How long an HTTP QQ 1.1 session may stay silent (already
    /// time-scaled); other protocols pass their own to `open_session`.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    pub fn account(&self, uin: u64) -> Option<Account> {
        self.lock().accounts.get(&uin).map(|a| a.account.clone())
    }

    pub fn account_count(&self) -> usize {
        self.lock().accounts.len()
    }

    /// An account as others see it.
    pub fn contact(&self, uin: u64) -> Option<Contact> {
        self.lock().contact(uin)
    }

    /// The friend list in the order friends were added.
    pub fn friends(&self, uin: u64) -> Vec<u64> {
        self.lock()
            .accounts
            .get(&uin)
            .map(|a| a.friends.clone())
            .unwrap_or_default()
    }

    /// The friend list as contacts, in list order.
    pub fn friend_contacts(&self, uin: u64) -> Vec<Contact> {
        let state = self.lock();
        let friends = state.accounts.get(&uin).map(|a| a.friends.as_slice());
        friends
            .unwrap_or_default()
            .iter()
            .filter_map(|f| state.contact(*f))
            .collect()
    }

    pub fn is_friend(&self, owner: u64, other: u64) -> bool {
        self.lock()
            .accounts
            .get(&owner)
            .is_some_and(|a| a.friends.contains(&other))
    }

    /// Whether `recipient` has `sender` as a friend or has written to them.
    pub fn knows(&self, recipient: u64, sender: u64) -> bool {
        self.lock()
            .accounts
            .get(&recipient)
            .is_some_and(|a| a.friends.contains(&sender) || a.wrote_to.contains(&sender))
    }

    /// The account's own presence (may be `Invisible`).
    pub fn presence(&self, uin: u64) -> Option<Presence> {
        self.lock().accounts.get(&uin).map(|a| a.presence)
    }

    /// Changes a presence; watchers get a status event when what they see
    /// changes. `None` for an unknown account, else whether it changed.
    pub fn set_presence(&self, uin: u64, presence: Presence, via: Origin) -> Option<bool> {
        let mut state = self.lock();
        if !state.accounts.contains_key(&uin) {
            return None;
        }
        Some(state.set_presence(self.started, uin, presence, via))
    }

    /// Checks the password and opens a session for `key`, going online.
    pub fn login(
        &self,
        key: SessionKey,
        password: &PasswordHash,
        protocol: Origin,
        policy: ReloginPolicy,
    ) -> LoginOutcome {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(account) = state.accounts.get(&key.uin) else {
            return LoginOutcome::UnknownAccount;
        };
        if !account.account.password_md5.matches(password) {
            return LoginOutcome::WrongPassword;
        }
        state.expire_if_idle(self.started, key.uin, now);
        if policy == ReloginPolicy::Strict && state.sessions.contains_key(&key.uin) {
            return LoginOutcome::AlreadyOnline;
        }
        let session = Session {
            ip: key.ip,
            protocol,
            started: now,
            last_seen: now,
            serial: state.take_session_serial(),
            idle_timeout: self.idle_timeout,
        };
        state.install_session(key.uin, session);
        state.set_presence(self.started, key.uin, Presence::Online, protocol);
        LoginOutcome::LoggedIn
    }

    /// Whether `key` has a live session; if so it counts as activity.
    pub fn touch(&self, key: SessionKey) -> bool {
        let now = Instant::now();
        let mut state = self.lock();
        state.expire_if_idle(self.started, key.uin, now);
        match state.sessions.get_mut(&key.uin) {
            Some(session) if session.ip == key.ip => {
                session.last_seen = now;
                true
            }
            _ => false,
        }
    }

    /// Ends the session of `key`, if it has one: offline, queue dropped.
    pub fn logout(&self, key: SessionKey) -> bool {
        let mut state = self.lock();
        let Some(session) = state.sessions.get(&key.uin).copied() else {
            return false;
        };
        if session.ip != key.ip {
            return false;
        }
        state.end_session(
            self.started,
            key.uin,
            session.protocol,
            SessionEnd::LoggedOut,
        );
        true
    }

    /// Ends every session silent for the idle timeout; returns how many.
    pub fn expire_idle_sessions(&self, now: Instant) -> usize {
        let mut state = self.lock();
        let idle: Vec<u64> = state
            .sessions
            .iter()
            .filter(|(_, s)| s.is_idle(now))
            .map(|(uin, _)| *uin)
            .collect();
        for uin in &idle {
            state.end_session(self.started, *uin, Origin::Server, SessionEnd::Expired);
        }
        idle.len()
    }

    pub fn session(&self, uin: u64) -> Option<Session> {
        self.lock().sessions.get(&uin).copied()
    }

    pub fn session_count(&self) -> usize {
        self.lock().sessions.len()
    }

    /// Remembers that `from` wrote to `to` without delivering anything (a
    /// message the recipient's client would not have shown).
    pub fn note_written(&self, from: u64, to: u64) {
        if let Some(sender) = self.lock().accounts.get_mut(&from) {
            sender.wrote_to.insert(to);
        }
    }

    /// Delivers a user message. An echo account answers at once.
    pub fn send_message(&self, from: u64, to: u64, text: &str, via: Origin) -> MessageOutcome {
        let text = clip_text(text);
        let echo = {
            let mut state = self.lock();
            let Some(sender) = state.accounts.get_mut(&from) else {
                return MessageOutcome::UnknownSender;
            };
            sender.wrote_to.insert(to);
            let Some(recipient) = state.accounts.get(&to) else {
                return MessageOutcome::UnknownRecipient;
            };
            // Scripts never answer scripts, so two echo accounts cannot loop.
            let echo = recipient.echo && via != Origin::Script && from != to;
            let kind = EventKind::Message { text: text.clone() };
            state.deliver(self.started, to, from, kind, via);
            echo
        };
        if echo {
            self.send_message(to, from, &text, Origin::Script);
        }
        MessageOutcome::Delivered
    }

    /// Removes pending events oldest-first while `keep` accepts them (a
    /// protocol stops when its reply would grow too large).
    pub fn take_events(&self, uin: u64, keep: impl FnMut(&Event) -> bool) -> Vec<Event> {
        self.lock()
            .accounts
            .get_mut(&uin)
            .map(|a| a.mailbox.take_while(keep))
            .unwrap_or_default()
    }

    pub fn has_pending(&self, uin: u64) -> bool {
        self.lock()
            .accounts
            .get(&uin)
            .is_some_and(|a| a.mailbox.has_pending())
    }

    /// Waits until `uin` has pending events or `timeout` passes; returns
    /// whether events are pending. For long-poll protocols.
    pub async fn wait_for_events(&self, uin: u64, timeout: Duration) -> bool {
        let notify: Option<std::sync::Arc<Notify>> = self
            .lock()
            .accounts
            .get(&uin)
            .map(|a| a.mailbox.notify_handle());
        let Some(notify) = notify else {
            return false;
        };
        let notified = notify.notified();
        tokio::pin!(notified);
        // Register before checking, so an event in between is not missed.
        notified.as_mut().enable();
        if self.has_pending(uin) {
            return true;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
        self.has_pending(uin)
    }

    /// Everything delivered to `uin` recently, oldest first.
    pub fn received(&self, uin: u64) -> Option<Vec<Event>> {
        self.lock().accounts.get(&uin).map(|a| a.mailbox.received())
    }

    /// Finger: matching accounts ordered by number, at most `limit`.
    pub fn search(&self, criteria: &SearchCriteria, limit: usize) -> Vec<Account> {
        let state = self.lock();
        let mut found: Vec<Account> = state
            .accounts
            .values()
            .filter(|a| criteria.matches(&a.account))
            .map(|a| a.account.clone())
            .collect();
        found.sort_by_key(|a| a.uin);
        found.truncate(limit);
        found
    }

    pub fn snapshot(&self, uin: u64) -> Option<AccountSnapshot> {
        let state = self.lock();
        let account = state.accounts.get(&uin)?;
        let mut requests: Vec<u64> = account.requests_from.iter().copied().collect();
        requests.sort_unstable();
        Some(AccountSnapshot {
            uin,
            nick: account.account.nick.clone(),
            face: account.account.face,
            presence: account.presence,
            session: state.sessions.get(&uin).map(|s| SessionSnapshot {
                ip: s.ip.to_string(),
                protocol: s.protocol,
            }),
            friends: account.friends.clone(),
            pending_events: account.mailbox.pending_len(),
            friend_requests_from: requests,
            groups: state
                .groups
                .values()
                .filter(|g| g.members.contains(&uin))
                .map(|g| g.number)
                .collect(),
            long_nick: state.long_nicks.get(&uin).cloned().unwrap_or_default(),
        })
    }

    /// Milliseconds since the world was created.
    pub fn uptime_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}
