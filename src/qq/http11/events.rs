//! The session's event channel with its two guarantees: `SessionEnded` is
//! sent exactly once and nothing follows it, and an outage produces one
//! `Reconnecting` (however many attempts fail) and one `Reconnected`.
//!
//! Each emission first reserves room in the channel (the only wait), then
//! decides and sends under a short synchronous lock. So an event being sent
//! by the poller cannot overtake the `SessionEnded` sent by `logout`, and no
//! lock is ever held while waiting for a slow consumer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::qq::{EndReason, EventSender, QqEvent};

#[derive(Debug, Default, Clone)]
struct SinkState {
    ended: bool,
    degraded: bool,
}

/// Where a session's events go.
#[derive(Debug)]
pub(crate) struct EventSink {
    tx: EventSender,
    state: Mutex<SinkState>,
    /// Mirror of `state.ended`, readable without the lock.
    ended: AtomicBool,
}

impl EventSink {
    pub fn new(tx: EventSender) -> Self {
        EventSink {
            tx,
            state: Mutex::new(SinkState::default()),
            ended: AtomicBool::new(false),
        }
    }

    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Whether nobody listens any more (the core dropped the receiver).
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    fn state(&self) -> MutexGuard<'_, SinkState> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends what `decide` returns, if anything. `decide` runs under the
    /// lock and may update the state; it is asked once before waiting for
    /// room (to skip the wait when there is nothing to send) and once again
    /// after, since another task may have changed the state meanwhile.
    async fn send_if(&self, decide: impl Fn(&mut SinkState) -> Option<QqEvent>) -> bool {
        let mut probe = self.state().clone();
        if decide(&mut probe).is_none() {
            return false;
        }
        let permit = self.tx.reserve().await.ok();
        let mut state = self.state();
        let Some(event) = decide(&mut state) else {
            return false;
        };
        self.ended.store(state.ended, Ordering::Release);
        match permit {
            Some(permit) => permit.send(Box::new(event)),
            None => tracing::debug!("nobody listens to this session's events any more"),
        }
        true
    }

    /// Sends an event unless the session has ended.
    pub async fn emit(&self, event: QqEvent) {
        self.send_if(|state| (!state.ended).then(|| event.clone()))
            .await;
    }

    /// Notes trouble reaching the server; emits `Reconnecting` only for the
    /// first failure of an outage.
    pub async fn degraded(&self, reason: &str) {
        let sent = self
            .send_if(|state| {
                if state.ended || state.degraded {
                    return None;
                }
                state.degraded = true;
                Some(QqEvent::Reconnecting {
                    reason: reason.to_owned(),
                })
            })
            .await;
        if sent {
            tracing::info!(%reason, "QQ connection degraded");
        }
    }

    /// Notes that a request went through; emits `Reconnected` if an outage
    /// was in progress.
    pub async fn recovered(&self) {
        let sent = self
            .send_if(|state| {
                if state.ended || !state.degraded {
                    return None;
                }
                state.degraded = false;
                Some(QqEvent::Reconnected)
            })
            .await;
        if sent {
            tracing::info!("QQ connection restored");
        }
    }

    /// Sends `SessionEnded` if it was not sent yet; returns whether this
    /// call sent it.
    pub async fn end(&self, reason: EndReason) -> bool {
        let sent = self
            .send_if(|state| {
                if state.ended {
                    return None;
                }
                state.ended = true;
                Some(QqEvent::SessionEnded(reason.clone()))
            })
            .await;
        if sent {
            tracing::info!(?reason, "QQ session ended");
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn one_reconnecting_per_outage_and_nothing_after_the_end() {
        let (tx, mut rx) = mpsc::channel(16);
        let sink = EventSink::new(tx);
        sink.recovered().await;
        sink.degraded("a").await;
        sink.degraded("b").await;
        sink.recovered().await;
        sink.recovered().await;
        assert!(sink.end(EndReason::LoggedOut).await);
        assert!(!sink.end(EndReason::LoggedOut).await);
        sink.emit(QqEvent::ContactsChanged).await;
        sink.degraded("c").await;
        drop(sink);
        let mut events = Vec::new();
        while let Some(event) = rx.recv().await {
            events.push(*event);
        }
        assert_eq!(
            events,
            vec![
                QqEvent::Reconnecting { reason: "a".into() },
                QqEvent::Reconnected,
                QqEvent::SessionEnded(EndReason::LoggedOut),
            ]
        );
    }
}
