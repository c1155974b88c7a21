//! The sync loop. matrix-sdk decrypts what it can while processing a sync
//! response; the bridge then handles every event of the batch in order and
//! only then saves the batch token (store setting
//! [`SYNC_TOKEN_SETTING`]). A crash in between makes the next start sync
//! from the older token and see those events again: inbound handling is
//! idempotent (message links), so nothing is lost and nothing doubled.
//!
//! The very first sync (no saved token) only accepts invites: the bot's
//! old history is not relayed.

use std::time::Duration;

use matrix_sdk::config::SyncSettings;
use matrix_sdk::sync::SyncResponse;
use serde_json::Value;

use crate::backoff::Backoff;
use crate::config::MatrixBotConfig;

use super::{BotError, BotMode};

/// The store setting holding the token of the last fully handled batch.
pub const SYNC_TOKEN_SETTING: &str = "matrix_bot.sync_token";

/// How long one `/sync` may wait for news.
const SYNC_TIMEOUT: Duration = Duration::from_secs(30);

impl BotMode {
    pub(super) async fn run_sync(self: std::sync::Arc<Self>, config: MatrixBotConfig) {
        let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let mut token = loop {
            match self.store.get_setting(SYNC_TOKEN_SETTING).await {
                Ok(token) => break token,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the Matrix sync token; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        };
        let mut cross_signing_checked = false;
        loop {
            let mut settings = SyncSettings::default().timeout(if token.is_some() {
                SYNC_TIMEOUT
            } else {
                Duration::ZERO
            });
            if let Some(t) = &token {
                settings = settings.token(t.clone());
            }
            let response = match self.client.sync_once(settings).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "Matrix sync failed; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                    continue;
                }
            };
            backoff.reset();
            let first = token.is_none();
            self.handle_batch(&response, first).await;
            self.save_token(&response.next_batch).await;
            token = Some(response.next_batch);
            if !cross_signing_checked {
                // After the first sync: the device keys are uploaded.
                cross_signing_checked = true;
                super::session::bootstrap_cross_signing(&self.client, &config).await;
            }
        }
    }

    async fn save_token(&self, token: &str) {
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        while let Err(e) = self.store.set_setting(SYNC_TOKEN_SETTING, token).await {
            tracing::warn!(error = %e, "cannot save the Matrix sync token; retrying");
            tokio::time::sleep(backoff.next_delay()).await;
        }
    }

    /// Every event of one sync response, in order.
    async fn handle_batch(&self, response: &SyncResponse, first: bool) {
        for (room_id, invite) in &response.rooms.invited {
            let events: Vec<Value> = invite
                .invite_state
                .events
                .iter()
                .filter_map(|e| serde_json::from_str(e.json().get()).ok())
                .collect();
            self.retrying("invite", || self.on_invite(room_id, &events))
                .await;
        }
        if !first {
            for (room_id, joined) in &response.rooms.joined {
                for event in &joined.timeline.events {
                    let Ok(value) = serde_json::from_str::<Value>(event.raw().json().get()) else {
                        continue;
                    };
                    self.retrying("event", || self.on_timeline_event(room_id, &value))
                        .await;
                }
            }
        }
        for presence in &response.presence {
            if let Ok(value) = serde_json::from_str::<Value>(presence.json().get()) {
                self.on_presence(&value).await;
            }
        }
    }

    /// Runs `handle` until it succeeds or fails for good: a transient
    /// failure (QQ login being restored, store busy, homeserver down) keeps
    /// the batch (and its token) until it can be handled.
    async fn retrying<F, Fut>(&self, what: &str, mut handle: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<(), BotError>>,
    {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
        loop {
            match handle().await {
                Ok(()) => return,
                Err(BotError::Permanent(e)) => {
                    tracing::warn!(error = %e, "Matrix {what} not handled");
                    return;
                }
                Err(e) => {
                    tracing::info!(error = %e, "Matrix {what} postponed");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
    }
}
