//! The WebQQ channel sessions: the tokens `login2` handed out, the aliases
//! and the poll state of each, and the table that finds a session by
//! `psessionid` (d.web2), `vfwebqq` (s.web2) or account (the heartbeat).
//!
//! The world owns the session itself (presence, idle expiry, replacement);
//! this side remembers the world session's serial and, once the world says
//! it ended, walks the documented farewell: a kicked session's next poll
//! gets a `kick_message`, then every ended session's next poll gets 121
//! once, and everything after that gets 103 (webqq.md §6.3, §8).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::aliases::AliasBook;

/// Sent `msg_id`s remembered per session, to acknowledge a resent
/// message without delivering it twice.
const RECENT_SENT: usize = 64;
/// Temporary-session signatures kept per session.
pub const MAX_GROUP_SIGS: usize = 1024;
/// Events queued by the server itself per session (buddy list changes,
/// duplicates); older ones are dropped beyond this.
pub const MAX_LOCAL_EVENTS: usize = 256;

/// Where a session stands in its farewell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Live,
    /// Replaced by a login elsewhere; the next poll gets `kick_message`.
    KickPending,
    /// Ended; the next poll gets `{"retcode":121,"t":"0"}`.
    Report121,
    /// Logged out or fully reported: only 103 from now on.
    Dead,
}

/// What changes during a session's life.
#[derive(Debug)]
pub struct SessionState {
    pub ptwebqq: String,
    /// The value before the last rotation, still accepted so requests in
    /// flight when poll 116 went out do not fail.
    pub previous_ptwebqq: Option<String>,
    pub rotated_at: Instant,
    pub aliases: AliasBook,
    /// Encoded events the server queued for this session only.
    pub local: VecDeque<String>,
    pub ending: Ending,
    /// When this side noticed the session had ended.
    pub ended_at: Option<Instant>,
    /// Increases with every poll; an older poll seeing a newer one answers
    /// 102.
    pub poll_generation: u64,
    pub next_msg_id: u64,
    /// `get_c2cmsg_sig2` signatures by (group, peer), real numbers.
    pub group_sigs: HashMap<(u64, u64), String>,
    pub recent_sent: VecDeque<u64>,
}

impl SessionState {
    /// Whether a ptwebqq (from the cookie, `r`, or the hash input) is the
    /// current or the previous one.
    pub fn accepts_ptwebqq(&self, value: &str) -> bool {
        value == self.ptwebqq || self.previous_ptwebqq.as_deref() == Some(value)
    }

    /// Queues a server-made event for the next poll.
    pub fn push_local(&mut self, encoded: String) {
        if self.local.len() >= MAX_LOCAL_EVENTS {
            self.local.pop_front();
        }
        self.local.push_back(encoded);
    }

    /// Remembers a sent `msg_id`; false if it was already seen (a resend).
    pub fn first_send(&mut self, msg_id: u64) -> bool {
        if self.recent_sent.contains(&msg_id) {
            return false;
        }
        if self.recent_sent.len() >= RECENT_SENT {
            self.recent_sent.pop_front();
        }
        self.recent_sent.push_back(msg_id);
        true
    }

    pub fn take_msg_id(&mut self) -> u64 {
        self.next_msg_id += 1;
        self.next_msg_id
    }
}

/// One channel session. Tokens never change; see [`SessionState`].
#[derive(Debug)]
pub struct WebSession {
    pub uin: u64,
    /// The world session's serial.
    pub serial: u64,
    pub clientid: String,
    pub psessionid: String,
    pub vfwebqq: String,
    /// Wakes a held poll: a newer poll arrived, or the session ended here.
    pub wake: Notify,
    state: Mutex<SessionState>,
}

impl WebSession {
    pub fn new(
        uin: u64,
        serial: u64,
        clientid: String,
        tokens: (String, String),
        state: SessionState,
    ) -> Self {
        let (vfwebqq, psessionid) = tokens;
        WebSession {
            uin,
            serial,
            clientid,
            psessionid,
            vfwebqq,
            wake: Notify::new(),
            state: Mutex::new(state),
        }
    }

    /// The state; held only for short, non-async sections.
    pub fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Default)]
struct Table {
    by_psessionid: HashMap<String, Arc<WebSession>>,
    psessionid_by_vfwebqq: HashMap<String, String>,
    /// The latest session of each account.
    psessionid_by_uin: HashMap<u64, String>,
    /// Channel logins so far, by account (seeds reproducible aliases).
    logins: HashMap<u64, u64>,
}

/// All sessions of one simulator.
#[derive(Default)]
pub struct SessionTable {
    table: Mutex<Table>,
}

impl SessionTable {
    fn lock(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a session after dropping the ones `is_gone` says are over.
    pub fn insert(&self, session: Arc<WebSession>, is_gone: impl Fn(&WebSession) -> bool) {
        let mut table = self.lock();
        let gone: Vec<String> = table
            .by_psessionid
            .values()
            .filter(|s| is_gone(s))
            .map(|s| s.psessionid.clone())
            .collect();
        for psessionid in gone {
            remove_locked(&mut table, &psessionid);
        }
        table
            .psessionid_by_vfwebqq
            .insert(session.vfwebqq.clone(), session.psessionid.clone());
        table
            .psessionid_by_uin
            .insert(session.uin, session.psessionid.clone());
        table
            .by_psessionid
            .insert(session.psessionid.clone(), session);
    }

    pub fn by_psessionid(&self, psessionid: &str) -> Option<Arc<WebSession>> {
        self.lock().by_psessionid.get(psessionid).cloned()
    }

    pub fn by_vfwebqq(&self, vfwebqq: &str) -> Option<Arc<WebSession>> {
        let table = self.lock();
        let psessionid = table.psessionid_by_vfwebqq.get(vfwebqq)?;
        table.by_psessionid.get(psessionid).cloned()
    }

    pub fn latest_of(&self, uin: u64) -> Option<Arc<WebSession>> {
        let table = self.lock();
        let psessionid = table.psessionid_by_uin.get(&uin)?;
        table.by_psessionid.get(psessionid).cloned()
    }

    pub fn remove(&self, psessionid: &str) {
        remove_locked(&mut self.lock(), psessionid);
    }

    /// Counts a channel login of `uin` and returns its number (1, 2, …).
    pub fn count_login(&self, uin: u64) -> u64 {
        let mut table = self.lock();
        let count = table.logins.entry(uin).or_default();
        *count += 1;
        *count
    }
}

fn remove_locked(table: &mut Table, psessionid: &str) {
    let Some(session) = table.by_psessionid.remove(psessionid) else {
        return;
    };
    table.psessionid_by_vfwebqq.remove(&session.vfwebqq);
    if table
        .psessionid_by_uin
        .get(&session.uin)
        .map(String::as_str)
        == Some(psessionid)
    {
        table.psessionid_by_uin.remove(&session.uin);
    }
}
