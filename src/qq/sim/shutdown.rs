//! One shutdown signal for all of a simulator's tasks: listeners, open
//! connections, the session sweeper and scripted accounts.

use tokio::sync::watch;

/// The sending side, owned by the simulator handle.
#[derive(Debug)]
pub(crate) struct Shutdown {
    sender: watch::Sender<bool>,
}

/// A receiving side; clone one into every task.
#[derive(Debug, Clone)]
pub struct ShutdownSignal {
    receiver: watch::Receiver<bool>,
}

impl Shutdown {
    pub fn new() -> (Shutdown, ShutdownSignal) {
        let (sender, receiver) = watch::channel(false);
        (Shutdown { sender }, ShutdownSignal { receiver })
    }

    pub fn trigger(&self) {
        self.sender.send_replace(true);
    }
}

impl ShutdownSignal {
    /// Resolves once shutdown was triggered (or its sender is gone).
    pub async fn triggered(&mut self) {
        while !*self.receiver.borrow_and_update() {
            if self.receiver.changed().await.is_err() {
                return;
            }
        }
    }
}
