//! Persistence: everything that must survive a restart, behind the [`Store`]
//! trait so that a PostgreSQL backend can be added for deployments that
//! outgrow one machine. [`sqlite::SqliteStore`] is the default backend.

pub mod sqlite;

use async_trait::async_trait;
use futures::future::BoxFuture;

use crate::core::model::{ChatId, Presence, Uin};
use crate::qq::Protocol;
use crate::secret::Secret;

pub use sqlite::SqliteStore;

/// A person using the bridge, identified the way their chat side knows them:
/// `@alice:example.org` for Matrix, `gateway:<account>` for the IRC gateway,
/// `irc:<network>:<nick>` for IRC network users.
pub type UserId = String;

/// A QQ account a bridge user logged in with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QqLogin {
    pub user: UserId,
    pub uin: Uin,
    pub protocol: Protocol,
    /// Kept so the bridge can log in again after a restart. Stored in a file
    /// created with mode 0600; never logged.
    pub password: Secret,
    /// The status the user chose; restored after a restart.
    pub presence: Presence,
}

/// Where a QQ chat appears on a chat side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Portal {
    /// The QQ account through which this chat is seen.
    pub owner: Uin,
    pub chat: ChatId,
    /// `matrix`, `gateway`, or `irc:<network>`.
    pub side: String,
    /// Matrix room id, or IRC channel / query target.
    pub target: String,
}

/// A message waiting to be delivered to one side. It enters the outbox before
/// the sender is acknowledged and leaves only when the destination accepted
/// it, so a crash in between re-delivers instead of losing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    /// Which delivery worker owns it, e.g. `qq:10001`, `matrix`, `irc:libera`.
    pub destination: String,
    /// Delivery order key: items with the same `lane` are delivered in `id`
    /// order (usually one lane per chat).
    pub lane: String,
    /// Opaque, destination-defined JSON.
    pub payload: String,
    pub attempts: u32,
    pub last_error: Option<String>,
}

/// A message the bridge has seen, on either side, for de-duplication, loop
/// prevention and reply mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageLink {
    /// `qq:<owner>`, `matrix`, `irc:<network>`, `gateway`.
    pub side: String,
    /// The id on that side (Matrix event id, QQ remote id, generated id).
    pub side_id: String,
    pub owner: Uin,
    pub chat: ChatId,
    /// The bridge-wide id that links the copies of one message.
    pub message: String,
}

/// A message to queue ([`Store::enqueue_all`]), with the link that names
/// it for good when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutboxItem {
    pub link: Option<MessageLink>,
    pub lane: String,
    pub payload: String,
}

/// One event of an accepted appservice transaction, waiting to be processed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixInbound {
    pub id: i64,
    pub txn_id: String,
    /// `timeline` or `ephemeral`.
    pub kind: String,
    /// The event as the homeserver sent it (JSON).
    pub event: String,
}

/// A Matrix room the bridge knows (see `src/matrix/portals.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixRoom {
    pub room_id: String,
    /// `dm`, `group`, `bot` or `other`.
    pub kind: String,
    /// The Matrix user the room is for.
    pub user: UserId,
    /// The bridge's voice in the room: the DM ghost, or the bridge bot.
    pub creator: String,
    /// The user left; nothing is sent there until they come back.
    pub user_left: bool,
}

/// A ghost (or the bot) known to be joined to a room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixMember {
    pub room_id: String,
    pub user_id: String,
    /// The per-room display name set, if any.
    pub displayname: Option<String>,
}

/// A Matrix file a QQ user can fetch through the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MatrixMedia {
    /// Random, unguessable id used in the link.
    pub id: String,
    pub mxc: String,
    pub name: String,
    pub mimetype: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(String),
    #[error("database file {path}: {reason}")]
    Open { path: String, reason: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error(
        "the database was written by a newer qqbridge (schema {found}, this build knows {known})"
    )]
    TooNew { found: u32, known: u32 },
    /// [`Store::enqueue_all`] with a cap found it reached: nothing queued.
    #[error("{waiting} messages already wait in this queue")]
    QueueFull { waiting: u64 },
}

#[async_trait]
pub trait Store: Send + Sync {
    // ---- bridge users and their QQ logins
    async fn save_login(&self, login: &QqLogin) -> Result<(), StoreError>;
    async fn delete_login(&self, user: &str, uin: Uin) -> Result<(), StoreError>;
    async fn logins(&self) -> Result<Vec<QqLogin>, StoreError>;
    async fn logins_of(&self, user: &str) -> Result<Vec<QqLogin>, StoreError>;

    // ---- portals
    /// Inserts or replaces the portal for (owner, chat, side).
    async fn save_portal(&self, portal: &Portal) -> Result<(), StoreError>;
    async fn portal(
        &self,
        owner: Uin,
        chat: &ChatId,
        side: &str,
    ) -> Result<Option<Portal>, StoreError>;
    async fn portal_by_target(&self, side: &str, target: &str) -> Result<Vec<Portal>, StoreError>;
    async fn delete_portal(&self, owner: Uin, chat: &ChatId, side: &str) -> Result<(), StoreError>;
    async fn portals(&self, side: &str) -> Result<Vec<Portal>, StoreError>;

    // ---- puppets / ghosts: the name a QQ user has in one naming scope
    // (`matrix`, `gateway:<user>`, `irc:<network>`), unique within the scope.
    /// Returns the stored name for `uin`, or stores `proposed` if the name is
    /// free in the scope; if taken by another uin returns `None` so the
    /// caller can propose another.
    async fn claim_puppet_name(
        &self,
        scope: &str,
        uin: Uin,
        proposed: &str,
    ) -> Result<Option<String>, StoreError>;
    async fn puppet_name(&self, scope: &str, uin: Uin) -> Result<Option<String>, StoreError>;
    async fn puppet_by_name(&self, scope: &str, name: &str) -> Result<Option<Uin>, StoreError>;
    /// Renames (user-chosen nick); fails with `Ok(false)` if taken.
    async fn rename_puppet(&self, scope: &str, uin: Uin, name: &str) -> Result<bool, StoreError>;

    // ---- message links (de-duplication and reply mapping)
    /// Records links, in one transaction; one entry per link, false when
    /// its (side, side_id) was already known, which is how duplicates are
    /// detected.
    async fn insert_message_links(&self, links: &[MessageLink]) -> Result<Vec<bool>, StoreError>;
    async fn message_link(
        &self,
        side: &str,
        side_id: &str,
    ) -> Result<Option<MessageLink>, StoreError>;
    async fn links_of_message(&self, message: &str) -> Result<Vec<MessageLink>, StoreError>;

    // ---- outbox
    async fn enqueue(
        &self,
        destination: &str,
        lane: &str,
        payload: &str,
    ) -> Result<i64, StoreError>;
    /// Pending items of a destination in id order.
    async fn pending(&self, destination: &str, limit: u32) -> Result<Vec<OutboxItem>, StoreError>;
    /// Queues the items for `destination`, recording the links of those
    /// that have one, all in one database transaction. Returns one entry
    /// per item, in order: its id, or `None` (and nothing queued for it)
    /// when its link was already known: the message is a duplicate. A
    /// crash can never keep a link but lose its message, or the reverse.
    /// Several at once is how a burst of messages costs one commit instead
    /// of one each.
    ///
    /// With `cap`, nothing is queued when `cap` or more items already wait
    /// ([`StoreError::QueueFull`]): the per-user flood limit, counted in
    /// the same transaction, so it costs no round trip of its own. It is
    /// checked once for all the items, so a queue may end up to one burst
    /// over it.
    async fn enqueue_all(
        &self,
        destination: &str,
        items: Vec<NewOutboxItem>,
        cap: Option<u64>,
    ) -> Result<Vec<Option<i64>>, StoreError>;
    /// Removes delivered (or failed) items, all of them in one transaction.
    /// The removal is queued by the call itself, ahead of every store call
    /// made after it returns (a later [`Store::pending`] never sees the
    /// items), so a caller may drop the future instead of waiting: a
    /// failure is then logged by the store.
    fn complete(&self, ids: &[i64]) -> BoxFuture<'static, Result<(), StoreError>>;
    async fn record_attempt(&self, id: i64, error: &str) -> Result<(), StoreError>;
    /// Rewrites item `keep` with `payload` and removes `absorbed`, in one
    /// transaction: several waiting items carried as one (Matrix lines
    /// merged into one event). Fails, changing nothing, when any of them
    /// is no longer queued.
    async fn merge_outbox_items(
        &self,
        keep: i64,
        payload: &str,
        absorbed: &[i64],
    ) -> Result<(), StoreError>;

    /// Destinations with pending items whose name starts with `prefix`
    /// (so a side can restart its own delivery workers after a restart).
    async fn outbox_destinations(&self, prefix: &str) -> Result<Vec<String>, StoreError>;

    // ---- Matrix appservice
    /// Accepts an appservice transaction: records `txn_id` and queues its
    /// events `(kind, json)` in one database transaction. Returns false (and
    /// queues nothing) when the transaction id was accepted before.
    async fn matrix_accept_transaction(
        &self,
        txn_id: &str,
        events: &[(String, String)],
    ) -> Result<bool, StoreError>;
    /// The oldest unprocessed transaction events, in arrival order.
    async fn matrix_inbound(&self, limit: u32) -> Result<Vec<MatrixInbound>, StoreError>;
    /// Removes a processed event from the queue.
    async fn matrix_inbound_done(&self, id: i64) -> Result<(), StoreError>;
    /// The global display name of a registered ghost (`Some(None)`:
    /// registered without one); `None` if not registered yet.
    async fn matrix_ghost(&self, user_id: &str) -> Result<Option<Option<String>>, StoreError>;
    async fn save_matrix_ghost(
        &self,
        user_id: &str,
        displayname: Option<&str>,
    ) -> Result<(), StoreError>;
    async fn matrix_room(&self, room_id: &str) -> Result<Option<MatrixRoom>, StoreError>;
    async fn save_matrix_room(&self, room: &MatrixRoom) -> Result<(), StoreError>;
    /// Rooms of `user` of one kind, oldest first.
    async fn matrix_rooms_of(&self, user: &str, kind: &str) -> Result<Vec<MatrixRoom>, StoreError>;
    /// Rooms whose bridge voice is `creator`, of one kind.
    async fn matrix_rooms_by_creator(
        &self,
        creator: &str,
        kind: &str,
    ) -> Result<Vec<MatrixRoom>, StoreError>;
    async fn matrix_member(
        &self,
        room_id: &str,
        user_id: &str,
    ) -> Result<Option<MatrixMember>, StoreError>;
    async fn save_matrix_member(&self, member: &MatrixMember) -> Result<(), StoreError>;
    /// Forgets memberships: of one user in one room, or (room `None`) of
    /// the user everywhere (after a global profile change).
    async fn delete_matrix_members(
        &self,
        room_id: Option<&str>,
        user_id: &str,
    ) -> Result<(), StoreError>;
    async fn save_matrix_media(&self, media: &MatrixMedia) -> Result<(), StoreError>;
    async fn matrix_media(&self, id: &str) -> Result<Option<MatrixMedia>, StoreError>;

    // ---- small settings (generated tokens, schema facts)
    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError>;
    async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError>;
}
