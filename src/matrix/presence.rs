//! Presence both ways. QQ status -> ghost presence: online stays online,
//! away and busy become `unavailable` (busy with the status message
//! "busy"), invisible and offline become `offline` (others cannot tell an
//! invisible user from an offline one). The Matrix user's own presence
//! (ephemeral `m.presence` events) -> their QQ status: `online` -> online,
//! `unavailable` -> away, `offline` -> away (closing every Matrix client
//! must not log the QQ account out or hide it). Both directions can be
//! switched off in the config (`matrix.presence`).

use ruma::api::client::presence::set_presence;
use ruma::presence::PresenceState;
use serde_json::Value;

use crate::core::model::{Presence, Uin};

use super::{Matrix, MatrixError};

/// A QQ status as Matrix presence and status message.
pub fn to_matrix(presence: Presence) -> (PresenceState, Option<&'static str>) {
    match presence.as_seen_by_others() {
        Presence::Online => (PresenceState::Online, None),
        Presence::Away => (PresenceState::Unavailable, Some("away")),
        Presence::Busy => (PresenceState::Unavailable, Some("busy")),
        Presence::Invisible | Presence::Offline => (PresenceState::Offline, None),
    }
}

/// A Matrix presence state as the QQ status to set.
pub fn from_matrix(state: &str) -> Option<Presence> {
    match state {
        "online" => Some(Presence::Online),
        "unavailable" | "offline" => Some(Presence::Away),
        _ => None,
    }
}

impl Matrix {
    /// Shows a QQ user's status on their ghost.
    pub(crate) async fn set_ghost_presence(
        &self,
        uin: Uin,
        presence: Presence,
        nick: Option<&str>,
    ) -> Result<(), MatrixError> {
        let ghost = self.ensure_ghost(uin, nick).await?;
        let (state, message) = to_matrix(presence);
        let make = || {
            let mut request = set_presence::v3::Request::new(ghost.clone(), state.clone());
            request.status_msg = message.map(str::to_owned);
            request
        };
        self.hs.call_retrying(make, Some(&ghost)).await?;
        Ok(())
    }

    /// An `m.presence` ephemeral event: a bridge user's presence becomes
    /// their QQ status (when they are logged in and it changed).
    pub(crate) async fn on_presence(&self, event: &Value) {
        if !self.settings.presence_to_qq {
            return;
        }
        let Some(sender) = event.get("sender").and_then(Value::as_str) else {
            return;
        };
        if self.ids.is_bridge_user(sender) || self.core.login_of(sender).is_none() {
            return;
        }
        let Some(state) = event
            .get("content")
            .and_then(|c| c.get("presence"))
            .and_then(Value::as_str)
        else {
            return;
        };
        let Some(wanted) = from_matrix(state) else {
            return;
        };
        let changed = match self.presence_set.lock() {
            Ok(mut set) => set.insert(sender.to_owned(), wanted) != Some(wanted),
            Err(_) => false,
        };
        if !changed {
            return;
        }
        match self.core.set_presence(sender, wanted).await {
            Ok(()) => {
                tracing::debug!(user = %sender, presence = %wanted, "QQ status from Matrix presence")
            }
            Err(e) => {
                tracing::warn!(user = %sender, error = %e, "cannot set the QQ status");
                if let Ok(mut set) = self.presence_set.lock() {
                    set.remove(sender);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_both_ways() {
        assert_eq!(to_matrix(Presence::Online).0, PresenceState::Online);
        assert_eq!(
            to_matrix(Presence::Busy),
            (PresenceState::Unavailable, Some("busy"))
        );
        assert_eq!(to_matrix(Presence::Invisible).0, PresenceState::Offline);
        assert_eq!(from_matrix("online"), Some(Presence::Online));
        assert_eq!(from_matrix("unavailable"), Some(Presence::Away));
        assert_eq!(from_matrix("weird"), None);
    }
}
