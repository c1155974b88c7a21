//! The built-in IRC server ("IRC gateway", BitlBee-style): any IRC client
//! connects to the bridge itself, is joined to the control channel `&qq`
//! where the bot `qqbot` speaks the shared command language, and sees its QQ
//! buddies as users there and its QQ groups as `#channels`.
//!
//! Module map:
//! - `mod.rs`: [`start`], the listener (plain or TLS) and [`GatewayHandle`].
//! - `sessions`: shared state: clients, nicks, which connection is
//!   authenticated as which bridge user, grace-period timers.
//! - `connection`: per-client I/O: bounded write queue, writer task, read
//!   loop with flood control and PING/PONG.
//! - `wire`: line framing, limits, guarded parsing, safe encoding.
//! - `registration`: PASS/NICK/USER/CAP and the welcome.
//! - `caps`: IRCv3 capability negotiation.
//! - `commands`: what a registered client may send.
//! - `control_channel`: `&qq`, the bot and logging in / resuming.
//! - `buddies`: the per-user view: buddy nicks and channel membership.
//! - `groups`: QQ groups as channels.
//! - `deliver`: `SideEvent`s from the core as IRC lines.
//! - `numerics`, `flood`, `server_time`, `tls`: small helpers.
//!
//! Bridge users of the gateway are `gateway:<nick at registration>`
//! (rfc1459-lowercased); a connection that registers with the nick of a
//! user who still has a QQ session must authenticate (`/OPER <qq number>
//! <password>`) before it gets that user's messages.

mod buddies;
mod caps;
mod captcha;
mod commands;
mod connection;
mod control_channel;
mod deliver;
mod flood;
mod groups;
mod numerics;
mod registration;
mod server_time;
mod sessions;
mod tls;
pub mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::config::GatewayConfig;
use crate::core::BridgeCore;
use crate::secret::Secret;
use crate::store::Store;

use deliver::GatewaySide;
use sessions::Gateway;

/// The side name: prefix of the gateway's bridge user ids and its portals.
pub const SIDE_NAME: &str = "gateway";
/// The control channel.
pub const CONTROL_CHANNEL: &str = "&qq";
/// The bot in `&qq`.
pub const BOT_NICK: &str = "qqbot";
/// The host part of every QQ user (`nick!<qq number>@qq`).
pub const QQ_HOST: &str = "qq";
/// Longest nick (ISUPPORT NICKLEN).
pub const NICKLEN: usize = 30;
/// Longest channel name (ISUPPORT CHANNELLEN).
pub const CHANNELLEN: usize = 50;
/// Longest wait for a TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("the IRC gateway cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the IRC gateway's TLS certificate or key: {0}")]
    Tls(String),
}

/// The gateway's settings, from [`GatewayConfig`] with sane bounds.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub server_name: String,
    pub password: Option<Secret>,
    pub grace: Duration,
    pub max_clients: usize,
    pub max_clients_per_ip: usize,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub flood_burst: u32,
    pub flood_rate: f64,
    pub send_queue: usize,
}

impl Settings {
    fn from_config(config: &GatewayConfig) -> Settings {
        let name: String = config
            .server_name
            .chars()
            .filter(|c| c.is_ascii_graphic() && *c != ':' && *c != '!' && *c != '@')
            .take(63)
            .collect();
        Settings {
            server_name: if name.is_empty() {
                "qqbridge".to_owned()
            } else {
                name
            },
            password: config.password.clone().filter(|p| !p.is_empty()),
            grace: Duration::from_secs(config.grace_period_s),
            max_clients: config.max_clients.max(1),
            max_clients_per_ip: config.max_clients_per_ip.max(1),
            ping_interval: Duration::from_secs(config.ping_interval_s.max(1)),
            ping_timeout: Duration::from_secs(config.ping_timeout_s.max(1)),
            flood_burst: config.flood_burst,
            flood_rate: config.flood_lines_per_s,
            send_queue: config.send_queue_lines,
        }
    }
}

/// A running gateway.
pub struct GatewayHandle {
    local_addr: SocketAddr,
    tls: bool,
    gw: Arc<Gateway>,
    accept: JoinHandle<()>,
}

impl GatewayHandle {
    /// Where the gateway listens (the real port when configured with 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// How a person connects, for the startup banner.
    pub fn connect_hint(&self) -> String {
        let addr = self.local_addr;
        let client = if self.tls {
            format!("in irssi: /connect -tls {} {}", addr.ip(), addr.port())
        } else {
            format!("irssi -c {} -p {}", addr.ip(), addr.port())
        };
        format!(
            "IRC gateway listening on {addr}{}: connect an IRC client ({client}), \
             then /OPER <qq number> <password> (or type login <qq number> <password> in {CONTROL_CHANNEL})",
            if self.tls { " (TLS)" } else { "" },
        )
    }

    /// Connected clients right now.
    pub fn client_count(&self) -> usize {
        self.gw.client_count()
    }

    /// Stops listening and disconnects every client. QQ sessions stay
    /// logged in (and stored), and undelivered events stay queued.
    pub async fn shutdown(&self) {
        self.accept.abort();
        self.gw.close("Server shutting down");
        for _ in 0..50 {
            if self.gw.client_count() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Starts the gateway: binds the listener, registers the gateway with the
/// core as the `gateway` chat side, and arms the grace timers of logins
/// restored from the store.
pub async fn start(
    core: Arc<BridgeCore>,
    store: Arc<dyn Store>,
    config: &GatewayConfig,
) -> Result<GatewayHandle, GatewayError> {
    let acceptor = match &config.tls {
        Some(tls) => Some(tls::acceptor(tls)?),
        None => None,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| GatewayError::Bind {
            addr: config.listen,
            source,
        })?;
    let local_addr = listener.local_addr().map_err(|source| GatewayError::Bind {
        addr: config.listen,
        source,
    })?;
    let gw = Gateway::new(core.clone(), store, Settings::from_config(config));
    gw.captchas.set_addr(local_addr);
    core.register_side(Arc::new(GatewaySide(Arc::downgrade(&gw))));
    gw.schedule_restored_logins().await;
    let tls = acceptor.is_some();
    let accept = tokio::spawn(accept_loop(gw.clone(), listener, acceptor));
    tracing::info!(%local_addr, tls, "IRC gateway listening");
    Ok(GatewayHandle {
        local_addr,
        tls,
        gw,
        accept,
    })
}

async fn accept_loop(gw: Arc<Gateway>, listener: TcpListener, acceptor: Option<TlsAcceptor>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait, do not spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let gw = gw.clone();
        match &acceptor {
            None => {
                tokio::spawn(connection::serve(gw, stream, peer));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls_stream)) => connection::serve(gw, tls_stream, peer).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
}
