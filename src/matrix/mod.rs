//! The Matrix side as an application service: every QQ buddy or group
//! member is a Matrix ghost, every QQ buddy chat a direct-message room and
//! every QQ group a room, and a bridge bot speaks the core's command
//! language.
//!
//! Module map:
//! - `mod.rs`: [`start`], [`MatrixHandle`], the shared `Matrix` state.
//! - `appservice/server.rs`: the HTTP listener the homeserver pushes to
//!   (transactions, user and alias queries, ping), hs_token checks, body
//!   limits; `appservice/txn_queue.rs`: transactions stored before the
//!   200 and processed exactly once from the store.
//! - `client.rs`: client-server API calls (ruma types, `?user_id=`).
//! - `room_queue.rs`: the durable per-room send queue (one event at a time
//!   per room, in order, retried while the homeserver is down).
//! - `ids.rs`: ghost, bot and alias ids.
//! - `ghosts.rs`: ghost registration, display names, room membership.
//! - `portals.rs`: DM, group and bot rooms; m.direct; leave and rejoin.
//! - `deliver.rs`: core events to Matrix (the [`crate::core::ChatSide`]).
//! - `inbound.rs`: Matrix events to the core.
//! - `content.rs`: message content both ways (through `core::text`).
//! - `bot.rs`: the bot's commands, password redaction, captcha images.
//! - `presence.rs`: presence both ways.
//! - `media.rs`: links that let QQ users open Matrix media.
//!
//! Bridge user ids on this side are plain Matrix user ids
//! (`@alice:example.org`); the core routes every id starting with `@` to
//! the side named [`SIDE_NAME`].

mod appservice;
mod backlog_merge;
mod bot;
pub mod botmode;
pub mod client;
pub(crate) mod content;
mod deliver;
mod ghosts;
pub mod ids;
mod inbound;
mod media;
mod portals;
pub(crate) mod presence;
mod room_queue;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::config::{Config, RelayConfig};
use crate::core::model::Presence;
use crate::core::outbox::{Courier, Outbox};
use crate::core::BridgeCore;
use crate::secret::Secret;
use crate::store::{Store, StoreError};

use client::{Homeserver, HsError};
use ids::Ids;

/// How often a down homeserver is asked whether it is back.
const HOMESERVER_WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// The side name: the core routes Matrix user ids here, and portals of
/// Matrix rooms are stored under it.
pub const SIDE_NAME: &str = "matrix";

#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("invalid Matrix id {0}")]
    BadId(String),
    #[error(transparent)]
    Homeserver(#[from] HsError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Not possible yet (a QQ login is being restored): try again soon.
    #[error("not ready: {0}")]
    NotReady(String),
    #[error("the appservice cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The appservice's settings, from the config.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub appservice_id: String,
    pub displayname_template: String,
    pub command_prefix: String,
    pub presence_from_qq: bool,
    pub presence_to_qq: bool,
    pub relay: Option<RelayConfig>,
    /// Base of media links given to QQ users.
    pub public_url: String,
    pub max_transaction_bytes: usize,
    /// Most lines of one ghost merged into one event when a room's queue
    /// is behind; below 2, never.
    pub merge_lines: usize,
    /// How long a room's queue waits after sending a merge before it reads
    /// again (see [`backlog_merge`]).
    pub merge_linger: std::time::Duration,
}

/// The shared state of the Matrix side.
pub(crate) struct Matrix {
    pub core: Arc<BridgeCore>,
    pub store: Arc<dyn Store>,
    pub hs: Homeserver,
    pub ids: Ids,
    pub settings: Settings,
    hs_token: Secret,
    /// Per-room send queues.
    rooms: Outbox,
    courier: Arc<dyn Courier>,
    /// Wakes the transaction worker when a transaction was stored.
    inbound_wake: Notify,
    /// Serialises portal creation, so one chat never gets two rooms.
    portal_lock: tokio::sync::Mutex<()>,
    /// The QQ status last set from each user's Matrix presence.
    presence_set: Mutex<HashMap<String, Presence>>,
    /// A task watches for the homeserver to come back.
    watching: AtomicBool,
    /// The first room-queue item this process queued: only items from
    /// here on can be known never to have reached the homeserver, so only
    /// they are merged (see [`backlog_merge`]).
    merge_floor: OnceLock<i64>,
    myself: Weak<Matrix>,
}

impl Matrix {
    /// The bridge user id of the relay account (the bot's Matrix id).
    pub fn relay_user(&self) -> &str {
        self.ids.bot.as_str()
    }
}

/// A running Matrix side.
pub struct MatrixHandle {
    local_addr: SocketAddr,
    matrix: Arc<Matrix>,
    tasks: Vec<JoinHandle<()>>,
}

impl MatrixHandle {
    /// Where the appservice listens (the real port when configured with 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bot's Matrix id, for the startup banner.
    pub fn bot_user_id(&self) -> String {
        self.matrix.ids.bot.to_string()
    }

    /// Stops listening and processing; everything queued stays stored.
    pub async fn shutdown(mut self) {
        self.matrix.rooms.stop();
        for task in self.tasks.drain(..) {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for MatrixHandle {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// The appservice tokens: from the config, or generated once and kept in
/// the store's settings (`appservice.as_token`, `appservice.hs_token`), the
/// same ones `qqbridge registration` prints.
pub async fn tokens(config: &Config, store: &dyn Store) -> Result<(Secret, Secret), StoreError> {
    let appservice = &config.matrix.appservice;
    let as_token =
        crate::app::appservice_token(store, "appservice.as_token", appservice.as_token.as_ref())
            .await?;
    let hs_token =
        crate::app::appservice_token(store, "appservice.hs_token", appservice.hs_token.as_ref())
            .await?;
    Ok((as_token, hs_token))
}

/// Starts the appservice: binds the listener, registers the `matrix` side
/// with the core, resumes the stored transaction queue and room queues,
/// pings the homeserver (so it delivers what it queued at once) and logs
/// the relay account in.
pub async fn start(
    core: Arc<BridgeCore>,
    store: Arc<dyn Store>,
    config: &Config,
) -> Result<MatrixHandle, MatrixError> {
    let matrix_config = &config.matrix;
    let appservice = &matrix_config.appservice;
    let (as_token, hs_token) = tokens(config, &*store).await?;
    let ids = Ids::new(
        &matrix_config.domain,
        &appservice.sender_localpart,
        &appservice.user_prefix,
        &appservice.alias_prefix,
    )?;
    let settings = Settings {
        appservice_id: appservice.id.clone(),
        displayname_template: matrix_config.displayname_template.clone(),
        command_prefix: matrix_config.command_prefix.trim().to_owned(),
        presence_from_qq: matrix_config.presence.from_qq,
        presence_to_qq: matrix_config.presence.to_qq,
        relay: matrix_config.relay.clone(),
        public_url: appservice
            .public_url
            .clone()
            .unwrap_or_else(|| appservice.url.clone())
            .trim_end_matches('/')
            .to_owned(),
        max_transaction_bytes: appservice.max_transaction_bytes,
        merge_lines: appservice.merge_backlog_lines,
        merge_linger: std::time::Duration::from_millis(appservice.merge_linger_ms),
    };
    let hs = Homeserver::new(&matrix_config.homeserver_url, as_token)?;
    let listener = tokio::net::TcpListener::bind(appservice.listen)
        .await
        .map_err(|source| MatrixError::Bind {
            addr: appservice.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| MatrixError::Bind {
        addr: appservice.listen,
        source,
    })?;
    let matrix = Arc::new_cyclic(|myself: &Weak<Matrix>| Matrix {
        core: core.clone(),
        store: store.clone(),
        hs,
        ids,
        settings,
        hs_token,
        rooms: Outbox::new(store.clone()),
        courier: Arc::new(room_queue::RoomCourier(myself.clone())),
        inbound_wake: Notify::new(),
        portal_lock: tokio::sync::Mutex::new(()),
        presence_set: Mutex::new(HashMap::new()),
        watching: AtomicBool::new(false),
        merge_floor: OnceLock::new(),
        myself: myself.clone(),
    });
    core.register_side(Arc::new(deliver::MatrixSide(Arc::downgrade(&matrix))));
    matrix.resume_room_queues().await;
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(appservice::server::serve(
        matrix.clone(),
        listener,
    )));
    tasks.push(tokio::spawn(appservice::txn_queue::run(matrix.clone())));
    {
        let matrix = matrix.clone();
        tasks.push(tokio::spawn(async move { matrix.start_up().await }));
    }
    tracing::info!(%local_addr, bot = %matrix.ids.bot, "Matrix appservice listening");
    Ok(MatrixHandle {
        local_addr,
        matrix,
        tasks,
    })
}

impl Matrix {
    /// Background start-up work that needs the homeserver: registers the
    /// bot's profile, pings (so queued transactions arrive now) and logs
    /// the relay account in.
    async fn start_up(self: Arc<Self>) {
        let mut backoff = crate::backoff::Backoff::new(
            std::time::Duration::from_millis(500),
            std::time::Duration::from_secs(30),
        );
        loop {
            match self.ping().await {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "homeserver ping failed; retrying");
                    tokio::time::sleep(backoff.next_delay()).await;
                }
            }
        }
        if let Err(e) = self.ensure_bot_profile().await {
            tracing::warn!(error = %e, "cannot set the bot's display name");
        }
        self.login_relay().await;
    }

    async fn ping(&self) -> Result<(), HsError> {
        use ruma::api::client::appservice::request_ping::v1::Request;
        let mut request = Request::new(self.settings.appservice_id.clone());
        request.transaction_id = Some(ruma::TransactionId::new());
        match self.hs.call(request, None).await {
            Ok(_) => Ok(()),
            // An older homeserver without the ping endpoint still works.
            Err(HsError::Refused { status: 404, .. }) => Ok(()),
            Err(e @ HsError::Refused { .. }) => {
                // The homeserver could not reach us (URL in the registration
                // wrong?): say so, but keep running.
                tracing::warn!(error = %e, "the homeserver cannot reach the appservice");
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn login_relay(&self) {
        let Some(relay) = self.settings.relay.clone() else {
            return;
        };
        let user = self.relay_user().to_owned();
        if self.core.login_of(&user).is_some() {
            return;
        }
        // A stored relay login is restored by the core itself.
        if self
            .store
            .logins_of(&user)
            .await
            .is_ok_and(|l| l.iter().any(|l| l.uin.0 == relay.uin))
        {
            return;
        }
        match self
            .core
            .login(
                &user,
                crate::core::model::Uin(relay.uin),
                relay.password.clone(),
                relay.protocol,
            )
            .await
        {
            Ok(reply) => tracing::info!(uin = relay.uin, %reply, "relay account"),
            Err(e) => {
                tracing::warn!(uin = relay.uin, error = %e, "cannot log the relay account in")
            }
        }
    }

    /// The homeserver did not answer: watch for it to come back, then
    /// resume every room queue and the core's deliveries to Matrix users at
    /// once instead of waiting for their backoff to run out.
    pub(crate) fn homeserver_down(&self) {
        if self.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        let myself = self.myself.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HOMESERVER_WATCH_INTERVAL).await;
                let Some(matrix) = myself.upgrade() else {
                    return;
                };
                if matrix.hs.is_up().await {
                    matrix.watching.store(false, Ordering::SeqCst);
                    tracing::info!("the homeserver is back; resuming Matrix deliveries");
                    matrix.resume_room_queues().await;
                    if let Ok(logins) = matrix.store.logins().await {
                        for login in logins.iter().filter(|l| l.user.starts_with('@')) {
                            matrix.core.user_reachable(&login.user);
                        }
                    }
                    return;
                }
            }
        });
    }

    /// Restarts the send queue of every room with something pending.
    async fn resume_room_queues(&self) {
        match self
            .store
            .outbox_destinations(room_queue::DESTINATION_PREFIX)
            .await
        {
            Ok(destinations) => {
                for destination in destinations {
                    self.rooms.wake(&self.courier, &destination);
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the pending Matrix sends"),
        }
    }
}
