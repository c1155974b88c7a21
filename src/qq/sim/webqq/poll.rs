//! `poll2`, the long-poll (webqq.md §5.5, §6.3): answers at once with
//! everything queued (newest first), else holds the request until an
//! event arrives or `poll_hold_s` passes (102). A newer poll of the same
//! session makes the held one answer 102; a due ptwebqq rotation answers
//! 116; a session that ended walks its farewell (kick_message, then 121
//! once, then 103).

use tokio::time::Instant;

use super::reply::{connection_lost, error, events, new_ptwebqq, retcode};
use super::request::WebRequest;
use super::sessions::{Ending, SessionState, WebSession};
use super::tokens::new_ptwebqq as fresh_ptwebqq;
use super::WebqqService;
use crate::qq::sim::events::{Event, EventKind};

/// Most events in one poll reply; the rest wait for the next poll.
const MAX_BATCH: usize = 64;
/// Text bytes (roughly) of one poll reply before the rest wait.
const MAX_BATCH_TEXT: usize = 256 * 1024;

impl WebqqService {
    pub(super) async fn poll2(&self, req: &WebRequest) -> String {
        let r = req.r();
        let session = match self.channel_session(req, r.as_ref()) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let Some(signal) = self.world.events_signal(session.uin) else {
            return error(retcode::BAD_SESSION);
        };
        let generation = {
            let mut state = session.state();
            state.poll_generation += 1;
            state.poll_generation
        };
        // An older poll of this session still held now answers 102.
        session.wake.notify_waiters();
        let deadline = Instant::now() + self.scale.secs(self.quirks.poll_hold_s);
        loop {
            // Register for both wake-ups before looking, so nothing that
            // happens between the look and the wait is missed.
            let world_signal = signal.notified();
            tokio::pin!(world_signal);
            world_signal.as_mut().enable();
            let own_signal = session.wake.notified();
            tokio::pin!(own_signal);
            own_signal.as_mut().enable();

            if !self.refresh(&session, true) {
                return self.farewell(&session);
            }
            let rotate_at = {
                let mut state = session.state();
                if state.poll_generation != generation {
                    return error(retcode::NOTHING_NEW);
                }
                if let Some(p) = self.rotate_if_due(&mut state) {
                    tracing::debug!(uin = session.uin, "WebQQ ptwebqq rotated");
                    return new_ptwebqq(&p);
                }
                let batch = self.collect(&session, &mut state);
                if !batch.is_empty() {
                    return events(&batch);
                }
                self.rotation_due_at(&state)
            };
            if Instant::now() >= deadline {
                return error(retcode::NOTHING_NEW);
            }
            let wake_at = rotate_at.map_or(deadline, |at| at.min(deadline));
            tokio::select! {
                _ = &mut world_signal => {}
                _ = &mut own_signal => {}
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
    }

    /// The reply of a poll on an ended session, one step of the farewell.
    fn farewell(&self, session: &WebSession) -> String {
        let mut state = session.state();
        match state.ending {
            Ending::KickPending => {
                state.ending = Ending::Report121;
                match self.kick_event(&mut state, session.uin) {
                    Some(kick) => events(&[kick]),
                    None => connection_lost(),
                }
            }
            Ending::Report121 => {
                state.ending = Ending::Dead;
                drop(state);
                self.sessions.remove(&session.psessionid);
                connection_lost()
            }
            Ending::Live | Ending::Dead => error(retcode::BAD_SESSION),
        }
    }

    /// When the next ptwebqq rotation is due, if rotation is on.
    fn rotation_due_at(&self, state: &SessionState) -> Option<Instant> {
        let period = self.quirks.ptwebqq_rotate_s?;
        Some(state.rotated_at + self.scale.secs(period))
    }

    /// Rotates ptwebqq if it is due, returning the new value.
    fn rotate_if_due(&self, state: &mut SessionState) -> Option<String> {
        if Instant::now() < self.rotation_due_at(state)? {
            return None;
        }
        let fresh = fresh_ptwebqq();
        state.previous_ptwebqq = Some(std::mem::replace(&mut state.ptwebqq, fresh.clone()));
        state.rotated_at = Instant::now();
        Some(fresh)
    }

    /// Everything queued for the session as encoded events, newest first
    /// (unless configured otherwise). Some may be queued again as
    /// duplicates (`duplicate_event_rate`).
    fn collect(&self, session: &WebSession, state: &mut SessionState) -> Vec<String> {
        let mut batch: Vec<String> = state.local.drain(..).collect();
        let mut budget = MAX_BATCH_TEXT;
        let mut count = batch.len();
        let taken = self.world.take_events(session.uin, |event| {
            // Escaping can make a text byte six (`\uXXXX` per character).
            let size = 512 + 6 * event_text_len(event);
            if count > 0 && (count >= MAX_BATCH || size > budget) {
                return false;
            }
            count += 1;
            budget = budget.saturating_sub(size);
            true
        });
        batch.extend(
            taken
                .iter()
                .filter_map(|event| self.translate(state, session.uin, event)),
        );
        let rate = self.quirks.duplicate_event_rate;
        if rate > 0.0 {
            for encoded in &batch {
                if rand::random::<f64>() < rate {
                    state.push_local(encoded.clone());
                }
            }
        }
        if self.quirks.reverse_poll_batches {
            batch.reverse();
        }
        batch
    }
}

/// The text length of an event, for the batch budget.
fn event_text_len(event: &Event) -> usize {
    match &event.kind {
        EventKind::Message { text }
        | EventKind::FriendRequest { text }
        | EventKind::FriendAccepted { text }
        | EventKind::FriendRefused { text }
        | EventKind::GroupMessage { text, .. }
        | EventKind::SessionMessage { text, .. } => text.len(),
        EventKind::Status { .. } => 0,
    }
}
