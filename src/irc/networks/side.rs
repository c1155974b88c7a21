//! The networks as one chat side (`irc`): what the core delivers to a relay
//! login or to an IRC user who logged in becomes queued IRC messages (see
//! `courier`), AWAY states and notices. Delivering only queues, durably, so
//! one slow puppet never holds up the core.

use std::collections::HashMap;
use std::sync::Weak;

use async_trait::async_trait;

use crate::core::bot::friend_request_lines;
use crate::core::model::{ChatId, RichText, Uin};
use crate::core::side::{ChatSide, DeliveryError, SideEvent};
use crate::store::StoreError;

use super::courier::{ToIrc, Voice};
use super::ids::{parse_user_id, Who, SIDE_NAME};
use super::network::Network;

/// What the core holds: weak links, so the core and the networks do not
/// keep each other alive.
pub(crate) struct NetworksSide {
    pub networks: HashMap<String, Weak<Network>>,
}

#[async_trait]
impl ChatSide for NetworksSide {
    fn name(&self) -> &str {
        SIDE_NAME
    }

    /// A QQ message becomes items of the network's own outbox (see
    /// `courier`), stored before `deliver` returns.
    fn stores_deliveries(&self) -> bool {
        true
    }

    async fn deliver(&self, user: &str, event: &SideEvent) -> Result<(), DeliveryError> {
        let Some((network, who)) = parse_user_id(user) else {
            return Err(DeliveryError::Permanent(format!(
                "{user} is not an IRC network user"
            )));
        };
        let Some(net) = self.networks.get(network) else {
            return Err(DeliveryError::Permanent(format!(
                "the IRC network {network} is not configured"
            )));
        };
        // Shutting down: the event waits in the core's outbox for the next
        // start instead of being dropped.
        let Some(net) = net.upgrade().filter(|n| !n.is_stopping()) else {
            return Err(DeliveryError::Retry(format!(
                "the IRC network {network} is stopping"
            )));
        };
        net.deliver(user, &who, event)
            .await
            .map_err(|e| DeliveryError::Retry(e.to_string()))
    }

    /// A relay's QQ queue ran empty: the channel lines that waited in the
    /// network's own queues while it was full go on now, not when their
    /// retry delay (up to 30 s after a long outage) ends.
    fn qq_queue_drained(&self, user: &str) {
        let Some((network, Who::Relay(_))) = parse_user_id(user) else {
            return;
        };
        let Some(net) = self.networks.get(network).and_then(Weak::upgrade) else {
            return;
        };
        // Most drains follow an ordinary send: nothing waits, no task.
        if !net.release_held_back(user) {
            return;
        }
        tokio::spawn(async move {
            if let Err(e) = net.wake_queues().await {
                tracing::warn!(error = %e, "cannot wake the network's queues");
            }
        });
    }
}

impl Network {
    async fn deliver(&self, user: &str, who: &Who, event: &SideEvent) -> Result<(), StoreError> {
        match (event, who) {
            (
                SideEvent::Message {
                    owner,
                    chat,
                    sender,
                    sender_name,
                    text,
                    ..
                },
                _,
            ) => {
                self.deliver_message(who, *owner, chat, *sender, sender_name, text)
                    .await
            }
            (SideEvent::Presence { uin, presence, .. }, _) => {
                self.set_presence(*uin, *presence).await;
                Ok(())
            }
            (SideEvent::LoggedIn { owner }, Who::Relay(_)) => {
                self.relay_up(user, *owner).await;
                Ok(())
            }
            (SideEvent::LoggedIn { .. }, Who::Person(_)) => {
                for contact in self.core.contacts(user) {
                    self.learn_qq_nick(contact.uin, &contact.nick);
                }
                Ok(())
            }
            (
                SideEvent::SendFailed {
                    owner,
                    chat,
                    preview,
                    reason,
                    ..
                },
                Who::Relay(_),
            ) => {
                for channel in self.mappings.channels_for(*owner, chat) {
                    self.tell(
                        &channel,
                        &format!("not delivered to QQ ({reason}): {preview}"),
                    )
                    .await;
                }
                Ok(())
            }
            (SideEvent::LoggedOut { owner, reason }, Who::Relay(_)) => {
                tracing::warn!(network = %self.name(), %owner, %reason, "a relay QQ login ended");
                Ok(())
            }
            (SideEvent::Notice { text }, Who::Relay(_)) => {
                tracing::info!(network = %self.name(), %user, %text, "relay login notice");
                Ok(())
            }
            (_, Who::Relay(_)) => Ok(()),
            (event, Who::Person(nick)) => {
                if let Some(text) = person_notice(event) {
                    self.tell(nick, &text).await;
                }
                Ok(())
            }
        }
    }

    async fn deliver_message(
        &self,
        who: &Who,
        owner: Uin,
        chat: &ChatId,
        sender: Uin,
        sender_name: &str,
        text: &RichText,
    ) -> Result<(), StoreError> {
        let voice = Voice::Puppet {
            uin: sender,
            name: sender_name.to_owned(),
        };
        match (who, chat) {
            (Who::Relay(_), _) => {
                for channel in self.mappings.channels_for(owner, chat) {
                    self.queue_to_irc(&ToIrc {
                        target: channel,
                        voice: voice.clone(),
                        text: text.clone(),
                        notice: false,
                    })
                    .await?;
                }
                Ok(())
            }
            (Who::Person(nick), ChatId::Buddy(_) | ChatId::Session { .. }) => {
                self.queue_to_irc(&ToIrc {
                    target: nick.clone(),
                    voice,
                    text: text.clone(),
                    notice: false,
                })
                .await
            }
            // A group the user is in: its bridged channel shows it already;
            // otherwise the bot passes it on, tagged with the group.
            (Who::Person(nick), ChatId::Group(group)) => {
                if self.mappings.is_bridged(chat) {
                    return Ok(());
                }
                self.queue_to_irc(&ToIrc {
                    target: nick.clone(),
                    voice: Voice::Bot {
                        prefix: format!("[QQ group {group}] <{sender_name}> "),
                    },
                    text: text.clone(),
                    notice: false,
                })
                .await
            }
        }
    }
}

/// What the bot tells an IRC user about their own QQ login.
fn person_notice(event: &SideEvent) -> Option<String> {
    Some(match event {
        SideEvent::LoggedOut { owner, reason } => format!("QQ {owner}: {reason}"),
        SideEvent::SendFailed {
            chat,
            preview,
            reason,
            ..
        } => format!("not delivered to QQ {chat} ({reason}): {preview}"),
        SideEvent::Notice { text } => text.clone(),
        SideEvent::FriendRequest { uin, message, .. } => {
            friend_request_lines(*uin, message).join(" — ")
        }
        SideEvent::FriendAccepted { uin, .. } => format!("{uin} accepted your buddy request"),
        SideEvent::FriendRefused { uin, reason, .. } => {
            format!("{uin} refused your buddy request: {reason}")
        }
        _ => return None,
    })
}
