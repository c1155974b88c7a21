//! The session's event channel with its two promises: `Reconnecting` is
//! sent once per outage and answered by one `Reconnected`, and
//! `SessionEnded` is sent exactly once and is the last event.

use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Mutex;

use crate::qq::{EndReason, EventSender, QqEvent};

#[derive(Debug)]
pub struct EventSink {
    /// `None` once the session ended; the lock orders every send before or
    /// after `SessionEnded`.
    tx: Mutex<Option<EventSender>>,
    ended: AtomicBool,
    reconnecting: AtomicBool,
}

impl EventSink {
    pub fn new(tx: EventSender) -> Self {
        EventSink {
            tx: Mutex::new(Some(tx)),
            ended: AtomicBool::new(false),
            reconnecting: AtomicBool::new(false),
        }
    }

    /// Sends an event unless the session ended. Returns whether anyone can
    /// still receive events.
    pub async fn emit(&self, event: QqEvent) -> bool {
        let tx = self.tx.lock().await;
        match tx.as_ref() {
            Some(tx) => tx.send(Box::new(event)).await.is_ok(),
            None => false,
        }
    }

    /// `Reconnecting`, once per outage.
    pub async fn reconnecting(&self, reason: &str) {
        if !self.reconnecting.swap(true, Ordering::SeqCst) {
            self.emit(QqEvent::Reconnecting {
                reason: reason.to_owned(),
            })
            .await;
        }
    }

    /// `Reconnected`, only after a `Reconnecting`.
    pub async fn reconnected(&self) {
        if self.reconnecting.swap(false, Ordering::SeqCst) {
            self.emit(QqEvent::Reconnected).await;
        }
    }

    /// Sends `SessionEnded` (the first call only) and closes the channel.
    pub async fn end(&self, reason: EndReason) {
        let mut tx = self.tx.lock().await;
        if self.ended.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Some(tx) = tx.take() {
            let _ = tx.send(Box::new(QqEvent::SessionEnded(reason))).await;
        }
    }

    pub fn is_ended(&self) -> bool {
        self.ended.load(Ordering::SeqCst)
    }

    /// Whether nobody can receive events any more (ended, or the receiver
    /// was dropped).
    pub async fn is_closed(&self) -> bool {
        self.tx
            .lock()
            .await
            .as_ref()
            .is_none_or(|tx| tx.is_closed())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::mpsc;

    #[tokio::test]
    async fn session_ended_is_sent_once_and_last() {
        let (tx, mut rx) = mpsc::channel(16);
        let sink = EventSink::new(tx);
        sink.reconnecting("x").await;
        sink.reconnecting("y").await;
        sink.reconnected().await;
        sink.reconnected().await;
        sink.end(EndReason::LoggedOut).await;
        sink.end(EndReason::Kicked("again".into())).await;
        assert!(!sink.emit(QqEvent::ContactsChanged).await);
        drop(sink);
        let mut got = Vec::new();
        while let Some(e) = rx.recv().await {
            got.push(*e);
        }
        assert_eq!(
            got,
            vec![
                QqEvent::Reconnecting { reason: "x".into() },
                QqEvent::Reconnected,
                QqEvent::SessionEnded(EndReason::LoggedOut)
            ]
        );
    }
}
