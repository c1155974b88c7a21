//! Sessions for protocols that check the password in one step and open
//! the session in another (WebQQ: ptlogin2 checks, `login2` opens), and
//! that must tell their own session from a later one of the same account
//! (a WebQQ client is kicked when its account logs in again anywhere).
//!
//! Every session carries a serial; the world remembers why recent ones
//! ended, so a protocol holding an old serial learns whether it was
//! replaced, expired or logged out.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::World;
use crate::qq::sim::account::Presence;
use crate::qq::sim::events::Origin;
use crate::qq::sim::session::{Session, SessionEnd, SessionKey, SessionStatus};

/// Ended sessions remembered; older ones count as expired.
const MAX_ENDED_REMEMBERED: usize = 16 * 1024;

/// Why recent sessions ended, by serial, oldest forgotten first.
#[derive(Debug, Default)]
pub(crate) struct EndedSessions {
    reasons: HashMap<u64, SessionEnd>,
    order: VecDeque<u64>,
}

impl EndedSessions {
    pub(crate) fn remember(&mut self, serial: u64, why: SessionEnd) {
        if self.order.len() == MAX_ENDED_REMEMBERED {
            if let Some(oldest) = self.order.pop_front() {
                self.reasons.remove(&oldest);
            }
        }
        if self.reasons.insert(serial, why).is_none() {
            self.order.push_back(serial);
        }
    }

    /// Why `serial` ended; forgotten (or never seen) ones count as expired.
    fn reason(&self, serial: u64) -> SessionEnd {
        self.reasons
            .get(&serial)
            .copied()
            .unwrap_or(SessionEnd::Expired)
    }
}

impl World {
    /// Opens a session whose password was already checked, replacing any
    /// session of the account, and sets the presence it starts with.
    /// `None` for an unknown account.
    pub fn open_session(
        &self,
        key: SessionKey,
        protocol: Origin,
        presence: Presence,
        idle_timeout: Duration,
    ) -> Option<Session> {
        let now = Instant::now();
        let mut state = self.lock();
        if !state.accounts.contains_key(&key.uin) {
            return None;
        }
        let session = Session {
            ip: key.ip,
            protocol,
            started: now,
            last_seen: now,
            serial: state.take_session_serial(),
            idle_timeout,
        };
        state.install_session(key.uin, session);
        state.set_presence(self.started, key.uin, presence, protocol);
        Some(session)
    }

    /// What became of session `serial` of `uin`; with `touch`, a live one
    /// counts as active.
    pub fn session_status(&self, uin: u64, serial: u64, touch: bool) -> SessionStatus {
        let now = Instant::now();
        let mut state = self.lock();
        state.expire_if_idle(self.started, uin, now);
        match state.sessions.get_mut(&uin) {
            Some(session) if session.serial == serial => {
                if touch {
                    session.last_seen = now;
                }
                SessionStatus::Live
            }
            _ => SessionStatus::Ended(state.ended_sessions.reason(serial)),
        }
    }

    /// Logs session `serial` of `uin` out, if it is still the live one.
    pub fn end_session_by_serial(&self, uin: u64, serial: u64, via: Origin) -> bool {
        let mut state = self.lock();
        if state.sessions.get(&uin).is_none_or(|s| s.serial != serial) {
            return false;
        }
        state.end_session(self.started, uin, via, SessionEnd::LoggedOut);
        true
    }

    /// The signal a long-poll of `uin` waits on: it fires on every event
    /// and whenever the account's session is replaced or ends. Register
    /// interest (`Notified::enable`) before checking, then wait.
    pub fn events_signal(&self, uin: u64) -> Option<Arc<Notify>> {
        self.lock()
            .accounts
            .get(&uin)
            .map(|a| a.mailbox.notify_handle())
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;
    use crate::qq::http11::codec::PasswordHash;
    use crate::qq::sim::account::{Account, AddPolicy};
    use crate::qq::sim::session::ReloginPolicy;
    use crate::qq::sim::world::{AccountSeed, LoginOutcome};

    fn world() -> World {
        let seed = AccountSeed {
            account: Account {
                uin: 10001,
                nick: "n".into(),
                face: 0,
                add_policy: AddPolicy::Verify,
                profile: Default::default(),
                password_md5: PasswordHash::from_password("pw"),
            },
            presence: Presence::Offline,
            echo: false,
        };
        World::new(vec![seed], &[], Duration::from_secs(60))
    }

    #[test]
    fn replaced_expired_and_logged_out_sessions_are_told_apart() {
        let world = world();
        let key = SessionKey {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            uin: 10001,
        };
        let long = Duration::from_secs(60);
        let first = world.open_session(key, Origin::Webqq, Presence::Busy, long);
        let first = first.map(|s| s.serial).unwrap_or_default();
        assert_eq!(world.presence(10001), Some(Presence::Busy));
        assert_eq!(
            world.session_status(10001, first, true),
            SessionStatus::Live
        );
        let pw = PasswordHash::from_password("pw");
        assert_eq!(
            world.login(key, &pw, Origin::Http11, ReloginPolicy::Replace),
            LoginOutcome::LoggedIn
        );
        assert_eq!(
            world.session_status(10001, first, true),
            SessionStatus::Ended(SessionEnd::Replaced)
        );
        let second = world.open_session(key, Origin::Webqq, Presence::Online, Duration::ZERO);
        let second = second.map(|s| s.serial).unwrap_or_default();
        assert_eq!(
            world.session_status(10001, second, true),
            SessionStatus::Ended(SessionEnd::Expired)
        );
        let third = world.open_session(key, Origin::Webqq, Presence::Online, long);
        let third = third.map(|s| s.serial).unwrap_or_default();
        assert!(!world.end_session_by_serial(10001, second, Origin::Webqq));
        assert!(world.end_session_by_serial(10001, third, Origin::Webqq));
        assert_eq!(
            world.session_status(10001, third, false),
            SessionStatus::Ended(SessionEnd::LoggedOut)
        );
        assert_eq!(world.presence(10001), Some(Presence::Offline));
        assert!(world
            .open_session(
                SessionKey { uin: 1, ..key },
                Origin::Webqq,
                Presence::Online,
                long
            )
            .is_none());
    }
}
