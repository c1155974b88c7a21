//! The session's event channel with its two guarantees: `SessionEnded` is
//! sent exactly once and nothing follows it, and an outage produces one
//! `Reconnecting` (however many attempts fail) and one `Reconnected`.
//!
//! Emission is serialised by one lock so that an event being sent by the
//! poller cannot overtake the `SessionEnded` sent by `logout`.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, Mutex};

use crate::qq::{EndReason, QqEvent};

#[derive(Debug, Default)]
struct SinkState {
    ended: bool,
    degraded: bool,
}

/// Where a session's events go.
#[derive(Debug)]
pub(crate) struct EventSink {
    tx: mpsc::Sender<QqEvent>,
    state: Mutex<SinkState>,
    /// Mirror of `state.ended`, readable without waiting for the lock.
    ended: AtomicBool,
}

impl EventSink {
    pub fn new(tx: mpsc::Sender<QqEvent>) -> Self {
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

    /// Sends an event unless the session has ended.
    pub async fn emit(&self, event: QqEvent) {
        let state = self.state.lock().await;
        if !state.ended {
            self.deliver(event).await;
        }
    }

    /// Notes trouble reaching the server; emits `Reconnecting` only for the
    /// first failure of an outage.
    pub async fn degraded(&self, reason: &str) {
        let mut state = self.state.lock().await;
        if state.ended || state.degraded {
            return;
        }
        state.degraded = true;
        tracing::info!(%reason, "QQ connection degraded");
        self.deliver(QqEvent::Reconnecting {
            reason: reason.to_owned(),
        })
        .await;
    }

    /// Notes that a request went through; emits `Reconnected` if an outage
    /// was in progress.
    pub async fn recovered(&self) {
        let mut state = self.state.lock().await;
        if state.ended || !state.degraded {
            return;
        }
        state.degraded = false;
        tracing::info!("QQ connection restored");
        self.deliver(QqEvent::Reconnected).await;
    }

    /// Sends `SessionEnded` if it was not sent yet; returns whether this
    /// call sent it.
    pub async fn end(&self, reason: EndReason) -> bool {
        let mut state = self.state.lock().await;
        if state.ended {
            return false;
        }
        state.ended = true;
        self.ended.store(true, Ordering::Release);
        tracing::info!(?reason, "QQ session ended");
        self.deliver(QqEvent::SessionEnded(reason)).await;
        true
    }

    async fn deliver(&self, event: QqEvent) {
        if self.tx.send(event).await.is_err() {
            tracing::debug!("nobody listens to this session's events any more");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            events.push(event);
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
