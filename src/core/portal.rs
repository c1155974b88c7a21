//! Portal routing: which room or channel a QQ chat appears in on each chat
//! side, and back. Portals are stored, so a restart reuses the same Matrix
//! rooms and IRC channels instead of creating new ones.

use std::sync::Arc;

use crate::core::model::{ChatId, Uin};
use crate::store::{Portal, Store, StoreError};

pub struct PortalRouter {
    store: Arc<dyn Store>,
}

impl PortalRouter {
    pub fn new(store: Arc<dyn Store>) -> Self {
        PortalRouter { store }
    }

    /// Where `owner`'s chat appears on `side`, if it has a portal yet.
    pub async fn target(
        &self,
        owner: Uin,
        chat: &ChatId,
        side: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .store
            .portal(owner, chat, side)
            .await?
            .map(|p| p.target))
    }

    /// The portal's target, creating it with `create` the first time. The
    /// creator runs outside any lock; if two callers race, the first stored
    /// target wins on the next lookup.
    pub async fn ensure<F, Fut, E>(
        &self,
        owner: Uin,
        chat: &ChatId,
        side: &str,
        create: F,
    ) -> Result<String, E>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<String, E>>,
        E: From<StoreError>,
    {
        if let Some(existing) = self.target(owner, chat, side).await? {
            return Ok(existing);
        }
        let target = create().await?;
        self.store
            .save_portal(&Portal {
                owner,
                chat: *chat,
                side: side.to_owned(),
                target: target.clone(),
            })
            .await?;
        Ok(target)
    }

    /// The QQ chats (with the account that sees each) behind a room or
    /// channel. Usually one; a bridged group seen by several bridge users
    /// has one portal per user.
    pub async fn chats(&self, side: &str, target: &str) -> Result<Vec<(Uin, ChatId)>, StoreError> {
        Ok(self
            .store
            .portal_by_target(side, target)
            .await?
            .into_iter()
            .map(|p| (p.owner, p.chat))
            .collect())
    }

    pub async fn remove(&self, owner: Uin, chat: &ChatId, side: &str) -> Result<(), StoreError> {
        self.store.delete_portal(owner, chat, side).await
    }
}
