//! What ptlogin2 remembers between the login steps (webqq.md §2): each
//! `check` (by its `ptvfsession` cookie) with the verify code it expects,
//! each captcha image (by its `verifysession` cookie) with its code, and
//! each successful password check as a ticket (by the `ptwebqq` it set)
//! that one `login2` may redeem.
//!
//! Records are single-use and expire after `verify_code_ttl_s`; the maps
//! are bounded so a flood of `check` requests cannot grow them forever.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Records of each kind kept at most; beyond it old ones are dropped.
const MAX_RECORDS: usize = 50_000;

/// A `check`: whose, which verify code it expects, whether by captcha.
#[derive(Debug, Clone)]
pub struct CheckRecord {
    pub uin: u64,
    /// `!ABC` without captcha; the captcha's code with one.
    pub code: String,
    pub captcha: bool,
    pub issued: Instant,
}

/// A captcha image that was shown.
#[derive(Debug, Clone)]
pub struct CaptchaRecord {
    pub uin: u64,
    pub code: String,
    pub issued: Instant,
}

/// A passed password check, waiting for `login2`.
#[derive(Debug, Clone)]
pub struct Ticket {
    pub uin: u64,
    pub skey: String,
    /// The `ptsigx` of its `check_sig` URL.
    pub ptsigx: String,
    pub issued: Instant,
}

#[derive(Default)]
struct DeskState {
    checks: HashMap<String, CheckRecord>,
    /// The latest check of each account (for clients without cookies, in
    /// lenient mode, and the captcha image).
    latest_check: HashMap<u64, String>,
    captchas: HashMap<String, CaptchaRecord>,
    tickets: HashMap<String, Ticket>,
}

/// The ptlogin2 desk.
pub struct LoginDesk {
    ttl: Duration,
    state: Mutex<DeskState>,
}

/// Drops records older than `ttl`, then arbitrary ones, until there is
/// room for one more.
fn make_room<T>(map: &mut HashMap<String, T>, ttl: Duration, issued: impl Fn(&T) -> Instant) {
    if map.len() < MAX_RECORDS {
        return;
    }
    let now = Instant::now();
    map.retain(|_, v| now.saturating_duration_since(issued(v)) < ttl);
    while map.len() >= MAX_RECORDS {
        let Some(key) = map.keys().next().cloned() else {
            break;
        };
        map.remove(&key);
    }
}

impl LoginDesk {
    pub fn new(ttl: Duration) -> Self {
        LoginDesk {
            ttl,
            state: Mutex::new(DeskState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DeskState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether something issued at `issued` is too old to use.
    pub fn expired(&self, issued: Instant) -> bool {
        Instant::now().saturating_duration_since(issued) >= self.ttl
    }

    pub fn add_check(&self, ptvfsession: &str, record: CheckRecord) {
        let mut state = self.lock();
        make_room(&mut state.checks, self.ttl, |r| r.issued);
        if state.latest_check.len() >= MAX_RECORDS {
            state.latest_check.clear();
        }
        state
            .latest_check
            .insert(record.uin, ptvfsession.to_owned());
        state.checks.insert(ptvfsession.to_owned(), record);
    }

    /// The check behind a `ptvfsession` cookie, else (when `fallback_uin`
    /// is given) the account's latest one; it stays for the next step.
    pub fn peek_check(
        &self,
        ptvfsession: Option<&str>,
        fallback_uin: Option<u64>,
    ) -> Option<CheckRecord> {
        let state = self.lock();
        let key = match ptvfsession {
            Some(key) => key.to_owned(),
            None => state.latest_check.get(&fallback_uin?)?.clone(),
        };
        state.checks.get(&key).cloned()
    }

    /// Like [`LoginDesk::peek_check`], but uses the check up.
    pub fn take_check(
        &self,
        ptvfsession: Option<&str>,
        fallback_uin: Option<u64>,
    ) -> Option<CheckRecord> {
        let mut state = self.lock();
        let key = match ptvfsession {
            Some(key) => key.to_owned(),
            None => state.latest_check.get(&fallback_uin?)?.clone(),
        };
        let record = state.checks.remove(&key)?;
        if state.latest_check.get(&record.uin) == Some(&key) {
            state.latest_check.remove(&record.uin);
        }
        Some(record)
    }

    pub fn add_captcha(&self, verifysession: &str, record: CaptchaRecord) {
        let mut state = self.lock();
        make_room(&mut state.captchas, self.ttl, |r| r.issued);
        state.captchas.insert(verifysession.to_owned(), record);
    }

    pub fn take_captcha(&self, verifysession: &str) -> Option<CaptchaRecord> {
        self.lock().captchas.remove(verifysession)
    }

    pub fn add_ticket(&self, ptwebqq: &str, ticket: Ticket) {
        let mut state = self.lock();
        make_room(&mut state.tickets, self.ttl, |t| t.issued);
        state.tickets.insert(ptwebqq.to_owned(), ticket);
    }

    /// The ticket of a `check_sig` URL (left for `login2`).
    pub fn ticket_by_ptsigx(&self, uin: u64, ptsigx: &str) -> Option<Ticket> {
        self.lock()
            .tickets
            .values()
            .find(|t| t.uin == uin && t.ptsigx == ptsigx)
            .cloned()
    }

    /// The ticket of a `ptwebqq`, if it has not expired (left in place).
    pub fn ticket(&self, ptwebqq: &str) -> Option<Ticket> {
        let ticket = self.lock().tickets.get(ptwebqq).cloned()?;
        (!self.expired(ticket.issued)).then_some(ticket)
    }

    /// Redeems the ticket of a `ptwebqq`, if it has not expired.
    pub fn take_ticket(&self, ptwebqq: &str) -> Option<Ticket> {
        let ticket = self.lock().tickets.remove(ptwebqq)?;
        (!self.expired(ticket.issued)).then_some(ticket)
    }
}
