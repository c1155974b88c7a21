//! The poll loop and the heartbeat of a session (webqq.md §6.3, §8).
//!
//! One `poll2` is outstanding at a time. Events arrive newest first and
//! are handled oldest first, de-duplicated on `(msg_id, msg_id2)`. 102 and
//! empty replies re-poll at once; 116 stores the new `ptwebqq`; 120/121
//! (and five failures in a row) relink with the current `psessionid`, and
//! if that fails, log in again from `check`; 100/103/108/109/110/114/122/
//! 100006 log in again directly. A recovery emits `Reconnecting` once and
//! `Reconnected` when it worked, or ends the session with `LoginFailed`.
//! A `kick_message` ends it with `Kicked`.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::api::{login2, ApiError, Tokens};
use super::json::{PollEvent, PollReply};
use super::login::{self, Progress};
use super::session::SessionCore;
use super::translate::Outcome;
use crate::backoff::Backoff;
use crate::qq::{EndReason, QqError};

/// Poll replies with fewer events than this are relayed before the next
/// poll goes out (see [`poll_loop`]).
const FEW_EVENTS: usize = 4;

/// How many recent `(msg_id, msg_id2)` pairs are remembered.
const DEDUP_WINDOW: usize = 4096;

/// Starts the poll loop and the heartbeat of a new session; the handle is
/// the poll loop's, which has emitted everything it took once it ends.
pub(super) fn spawn(core: Arc<SessionCore>) -> JoinHandle<()> {
    tokio::spawn(heartbeat_loop(core.clone(), core.stop.subscribe()));
    tokio::spawn(poll_loop(core.clone(), core.stop.subscribe()))
}

/// How to get the channel back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    /// login2 with the current psessionid, then a full login if refused.
    Relink,
    /// The whole login from `check`.
    FullLogin,
}

/// What the poll loop does after a recovery attempt.
enum Flow {
    Continue,
    Stop,
}

/// The recovery a poll retcode calls for; `None` for unknown retcodes,
/// which count as failures.
fn recovery_for(retcode: i64) -> Option<Recovery> {
    match retcode {
        120 | 121 => Some(Recovery::Relink),
        100 | 103 | 108 | 109 | 110 | 114 | 122 | 100_006 => Some(Recovery::FullLogin),
        _ => None,
    }
}

async fn poll_loop(core: Arc<SessionCore>, mut stop: watch::Receiver<bool>) {
    let mut failures = 0u32;
    let mut backoff = Backoff::new(core.options.retry_initial, core.options.retry_max);
    let mut seen = SeenMessages::default();
    loop {
        if *stop.borrow() || core.events.is_closed().await {
            break;
        }
        let poll = core.api.poll();
        tokio::pin!(poll);
        let reply = tokio::select! {
            _ = stop.changed() => {
                finish_poll_in_flight(&core, poll, &mut seen).await;
                break;
            }
            reply = &mut poll => reply,
        };
        let mut pause = false;
        let trouble = match reply {
            Ok(PollReply::Events(events)) => {
                failures = 0;
                backoff.reset();
                core.events.reconnected().await;
                let few = events.len() < FEW_EVENTS;
                if let Flow::Stop = deliver(&core, events, &mut seen).await {
                    break;
                }
                // A few events (a conversation): let the core take them
                // before this task issues the next poll, whose request would
                // wake the HTTP connection's task first and make the relay
                // wait behind that write (~70 µs of a ~1 ms QQ → IRC relay).
                // More (a flood): poll again at once, so the next reply is
                // on its way while these are relayed and the server's queue
                // stays short (yielding after every reply halved the
                // overlap, and a 256-event queue overflowed at 16,000/s).
                if few {
                    tokio::task::yield_now().await;
                }
                None
            }
            Ok(PollReply::Nothing) => {
                failures = 0;
                backoff.reset();
                core.events.reconnected().await;
                None
            }
            Ok(PollReply::NewPtwebqq(ptwebqq)) => {
                failures = 0;
                tracing::debug!(own = %core.own, "WebQQ rotated ptwebqq");
                core.api.rotate_ptwebqq(ptwebqq);
                None
            }
            Ok(PollReply::Failed(code)) | Err(ApiError::Retcode(code)) => {
                match recovery_for(code) {
                    Some(recovery) => Some((recovery, format!("retcode {code}"))),
                    None => {
                        failures += 1;
                        pause = true;
                        tracing::debug!(code, failures, "unexpected poll retcode");
                        (failures >= core.options.poll_failures_before_relink)
                            .then(|| (Recovery::Relink, format!("retcode {code}")))
                    }
                }
            }
            Err(e) => {
                failures += 1;
                pause = true;
                tracing::debug!(error = ?e, failures, "poll failed");
                (failures >= core.options.poll_failures_before_relink)
                    .then(|| (Recovery::Relink, QqError::from(e).to_string()))
            }
        };
        if pause && trouble.is_none() && !sleep_or_stop(&mut stop, &mut backoff).await {
            break;
        }
        if let Some((recovery, reason)) = trouble {
            match recover(&core, recovery, &reason, &mut stop).await {
                Flow::Continue => {
                    failures = 0;
                    backoff.reset();
                }
                Flow::Stop => break,
            }
        }
    }
    let _ = core.stop.send(true);
}

/// How long a stopping session waits for its poll in flight.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// Stopping with a poll in flight: its answer may already be on its way
/// with events the server no longer holds, so it is awaited for a moment
/// and its events emitted, rather than dropped with them. A poll still
/// held after that has taken nothing; dropping it closes its connection,
/// and the server keeps what comes next for the next poll.
async fn finish_poll_in_flight(
    core: &SessionCore,
    poll: impl std::future::Future<Output = Result<PollReply, ApiError>>,
    seen: &mut SeenMessages,
) {
    if let Ok(Ok(PollReply::Events(events))) = tokio::time::timeout(STOP_GRACE, poll).await {
        deliver(core, events, seen).await;
    }
}

/// Emits a batch oldest first. `Stop` after a kick or when nobody listens.
async fn deliver(core: &SessionCore, events: Vec<PollEvent>, seen: &mut SeenMessages) -> Flow {
    for event in events.into_iter().rev() {
        if let Some(key) = message_key(&event) {
            if !seen.insert(key) {
                tracing::debug!("skipped a duplicated WebQQ event");
                continue;
            }
        }
        match core.translate(event).await {
            Outcome::Emit(event) => {
                if !core.events.emit(event).await {
                    return Flow::Stop;
                }
            }
            Outcome::Kicked(reason) => {
                tracing::info!(own = %core.own, "WebQQ session kicked");
                core.end(EndReason::Kicked(reason)).await;
                return Flow::Stop;
            }
            Outcome::Nothing => {}
        }
    }
    Flow::Continue
}

/// `(msg_id, msg_id2)` of message-like events, for de-duplication.
fn message_key(event: &PollEvent) -> Option<(u64, u64)> {
    let key = match event {
        PollEvent::Message(m) => (m.msg_id, m.msg_id2),
        PollEvent::GroupMessage(m) => (m.msg_id, m.msg_id2),
        PollEvent::SessMessage(m) => (m.msg_id, m.msg_id2),
        PollEvent::DiscuMessage(m) => (m.msg_id, m.msg_id2),
        _ => return None,
    };
    (key != (0, 0)).then_some(key)
}

/// Relinks or logs in again until it works, the login is refused, or the
/// session is stopped.
async fn recover(
    core: &SessionCore,
    mut recovery: Recovery,
    reason: &str,
    stop: &mut watch::Receiver<bool>,
) -> Flow {
    tracing::info!(own = %core.own, reason, ?recovery, "WebQQ channel lost; recovering");
    core.events
        .reconnecting(&format!("WebQQ channel lost: {reason}"))
        .await;
    let mut backoff = Backoff::new(core.options.retry_initial, core.options.retry_max);
    loop {
        if *stop.borrow() {
            return Flow::Stop;
        }
        let attempt = match recovery {
            Recovery::Relink => relink(core).await.map_err(|e| match e {
                // Refused (103, 112, 113, 115, …): only a new login helps.
                ApiError::Retcode(_) | ApiError::Malformed(_) => None,
                ApiError::Transport(e) => Some(e),
            }),
            Recovery::FullLogin => relogin(core).await.map_err(Some),
        };
        match attempt {
            Ok(()) => {
                tracing::info!(own = %core.own, ?recovery, "WebQQ channel restored");
                core.events.reconnected().await;
                return Flow::Continue;
            }
            Err(None) => recovery = Recovery::FullLogin,
            Err(Some(
                e @ (QqError::Unreachable(_)
                | QqError::Protocol(_)
                | QqError::Throttled
                | QqError::NotLoggedIn),
            )) => {
                tracing::debug!(error = %e, "recovery attempt failed; retrying");
                if !sleep_or_stop(stop, &mut backoff).await {
                    return Flow::Stop;
                }
            }
            Err(Some(e)) => {
                tracing::warn!(own = %core.own, error = %e, "WebQQ re-login failed");
                core.end(EndReason::LoginFailed(e.to_string())).await;
                return Flow::Stop;
            }
        }
    }
}

/// login2 with the current psessionid and the newest ptwebqq.
async fn relink(core: &SessionCore) -> Result<(), ApiError> {
    let tokens = core.api.tokens();
    let status = core.credentials().status;
    let result = login2(
        core.api.transport(),
        status,
        &tokens.ptwebqq,
        &tokens.clientid,
        Some(&tokens.psessionid),
    )
    .await?;
    let same_session = result.psessionid == tokens.psessionid;
    core.api.set_tokens(Tokens {
        clientid: tokens.clientid,
        ptwebqq: tokens.ptwebqq,
        vfwebqq: result.vfwebqq,
        psessionid: result.psessionid,
    });
    if !same_session {
        core.forget_aliases();
    }
    Ok(())
}

/// The whole login again, with the stored password.
async fn relogin(core: &SessionCore) -> Result<(), QqError> {
    let creds = core.credentials();
    match login::start(core.api.transport(), &creds).await? {
        Progress::Done(logged_in) => {
            core.api.set_tokens(logged_in.tokens);
            core.forget_aliases();
            if let (Some(nick), Ok(mut own_nick)) = (logged_in.nick, core.own_nick.lock()) {
                *own_nick = Some(nick);
            }
            Ok(())
        }
        Progress::Captcha { .. } => Err(QqError::LoginRefused(
            "QQ asks for a captcha; log in again".to_owned(),
        )),
    }
}

/// Sleeps the next backoff delay; `false` if the session was stopped.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, backoff: &mut Backoff) -> bool {
    tokio::select! {
        _ = stop.changed() => false,
        _ = tokio::time::sleep(backoff.next_delay()) => !*stop.borrow(),
    }
}

/// The `get_msg_tip` heartbeat, every [`super::WebqqOptions::heartbeat_interval`].
async fn heartbeat_loop(core: Arc<SessionCore>, mut stop: watch::Receiver<bool>) {
    let mut counter = 0u64;
    let mut interval = tokio::time::interval(core.options.heartbeat_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    interval.tick().await;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            _ = interval.tick() => {}
        }
        if *stop.borrow() {
            break;
        }
        counter += 1;
        if let Err(e) = core.api.heartbeat(counter).await {
            tracing::debug!(error = ?e, "WebQQ heartbeat failed");
        }
    }
}

/// A bounded memory of recently seen message ids.
#[derive(Default)]
struct SeenMessages {
    order: VecDeque<(u64, u64)>,
    set: HashSet<(u64, u64)>,
}

impl SeenMessages {
    /// `false` if `key` was seen recently.
    fn insert(&mut self, key: (u64, u64)) -> bool {
        if !self.set.insert(key) {
            return false;
        }
        self.order.push_back(key);
        if self.order.len() > DEDUP_WINDOW {
            if let Some(old) = self.order.pop_front() {
                self.set.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retcodes_choose_the_documented_recovery() {
        assert_eq!(recovery_for(121), Some(Recovery::Relink));
        assert_eq!(recovery_for(120), Some(Recovery::Relink));
        for code in [100, 103, 108, 109, 110, 114, 122, 100_006] {
            assert_eq!(recovery_for(code), Some(Recovery::FullLogin), "{code}");
        }
        assert_eq!(recovery_for(102), None);
        assert_eq!(recovery_for(999), None);
    }

    #[test]
    fn seen_messages_forget_the_oldest() {
        let mut seen = SeenMessages::default();
        assert!(seen.insert((1, 2)));
        assert!(!seen.insert((1, 2)));
        for i in 0..DEDUP_WINDOW as u64 {
            seen.insert((10, i));
        }
        assert!(seen.insert((1, 2)));
        assert_eq!(seen.order.len(), DEDUP_WINDOW);
    }
}
