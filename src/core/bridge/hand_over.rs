//! QQ messages handed straight to a chat side that stores them itself
//! ([`crate::core::side::ChatSide::stores_deliveries`], the IRC networks).
//! Queued in the core's outbox first, a message to IRC would be committed
//! twice before it leaves (the core's queue, then the network's) and
//! removed once more afterwards. When nothing of the user's waits in the core's outbox, a
//! conversation's few messages go to the side at once instead: the side's
//! own commit is the one that keeps them across a crash (README,
//! Performance).
//!
//! Duplicates are still caught: a message whose link is known is skipped
//! before it is handed over, and the links of those handed over are
//! recorded right after. A crash between the two can show a message QQ
//! replays later once more, as a crash between a delivery and its removal
//! from the outbox always could; it cannot lose one.

use crate::core::side::{DeliveryError, SideEvent};
use crate::store::MessageLink;

use super::{side_destination, BridgeCore};

/// Most messages of one burst handed over. A longer burst is a flood,
/// which the outbox carries for less: one commit for the burst, and its
/// worker delivering in parallel with the next burst being read.
const MAX_HANDED_OVER: usize = 4;

impl BridgeCore {
    /// Hands `messages` over in order while the side takes them and the
    /// user's outbox stays idle; returns the ones left for the outbox, in
    /// order: all of them when the side does not store deliveries, or
    /// from the first one it postponed.
    pub(super) async fn hand_over(
        &self,
        user: &str,
        messages: Vec<(SideEvent, MessageLink)>,
    ) -> Vec<(SideEvent, MessageLink)> {
        let side = match self.side_of(user) {
            Some(side) if side.stores_deliveries() && messages.len() <= MAX_HANDED_OVER => side,
            _ => return messages,
        };
        let destination = side_destination(user);
        let mut handed = Vec::new();
        let mut messages = messages.into_iter();
        let mut left = Vec::new();
        for (event, link) in messages.by_ref() {
            // Something queued meanwhile (a login event, a notice) goes
            // first; so does a backlog the side postponed.
            if !self.outbox.is_idle(&destination) {
                left.push((event, link));
                break;
            }
            let repeated = handed
                .iter()
                .any(|h: &MessageLink| h.side == link.side && h.side_id == link.side_id);
            match self.store.message_link(&link.side, &link.side_id).await {
                Ok(_) if repeated => {
                    tracing::debug!("dropped a duplicate QQ message");
                    continue;
                }
                Ok(Some(_)) => {
                    tracing::debug!("dropped a duplicate QQ message");
                    continue;
                }
                Ok(None) => {}
                // The outbox's transaction checks it again.
                Err(_) => {
                    left.push((event, link));
                    break;
                }
            }
            match side.deliver(user, &event).await {
                Ok(()) => handed.push(link),
                Err(DeliveryError::Permanent(reason)) => {
                    tracing::warn!(%user, %reason, "a QQ message cannot be delivered");
                    handed.push(link);
                }
                Err(DeliveryError::Retry(reason)) => {
                    tracing::debug!(%user, %reason, "hand-over postponed; queueing");
                    left.push((event, link));
                    break;
                }
            }
        }
        left.extend(messages);
        if !handed.is_empty() {
            record_links(self, &handed).await;
        }
        left
    }
}

async fn record_links(core: &BridgeCore, links: &[MessageLink]) {
    match core.store.insert_message_links(links).await {
        Ok(new) if new.iter().all(|n| *n) => {}
        Ok(_) => tracing::debug!("a QQ message handed over was linked meanwhile"),
        Err(e) => tracing::error!(
            error = %e,
            "cannot record the links of QQ messages handed over; QQ replaying them may show them twice"
        ),
    }
}
