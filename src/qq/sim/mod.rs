//! A faithful simulator of Tencent's QQ servers, so the bridge can be run
//! and tested now that the real ones are gone.
//!
//! One protocol-neutral [`World`] (accounts, friends, groups, presence,
//! events, sessions) is served by protocol front ends on one TCP port (HTTP
//! QQ 1.1 at `POST /`, WebQQ at the paths of its hosts, see [`webqq`]) and
//! driven by tests through a JSON control API on a separate, loopback-only
//! port (see [`control`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), qqbridge::qq::sim::SimError> {
//! use qqbridge::qq::sim::{start, Scenario, SimConfig};
//! let mut config = SimConfig::new(Scenario::demo());
//! config.time_scale = Some(0.001); // 20 s penalties take 20 ms
//! let sim = start(config).await?;
//! println!("HTTP QQ at {}, control at {}", sim.protocol_addr(), sim.control_addr());
//! sim.shutdown().await;
//! # Ok(()) }
//! ```

pub mod account;
pub mod control;
mod demo;
pub mod events;
pub mod http;
pub mod http11;
pub mod quirks;
pub mod scenario;
pub mod scripts;
pub mod session;
mod shutdown;
mod throttle;
pub mod timing;
pub mod webqq;
pub mod world;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;

pub use account::{AddPolicy, Presence, Profile};
pub use events::{Event, EventKind, Origin};
pub use quirks::{NullMode, Quirks};
pub use scenario::{Scenario, ScenarioError};
pub use shutdown::ShutdownSignal;
pub use timing::TimeScale;
pub use world::World;

use self::control::ControlService;
use self::http::{HttpLimits, Router};
use self::http11::Http11Service;
use self::shutdown::Shutdown;
use self::webqq::WebqqService;

/// How to run a simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The protocol port (HTTP QQ 1.1 used `tqq.tencent.com:8000`).
    pub listen: SocketAddr,
    /// The control API; must be a loopback address.
    pub control_listen: SocketAddr,
    pub scenario: Scenario,
    /// Overrides the scenario's `time_scale` when set.
    pub time_scale: Option<f64>,
    pub http_limits: HttpLimits,
}

impl SimConfig {
    /// Both listeners on 127.0.0.1 with ports chosen by the system.
    pub fn new(scenario: Scenario) -> Self {
        let loopback = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0);
        SimConfig {
            listen: loopback,
            control_listen: loopback,
            scenario,
            time_scale: None,
            http_limits: HttpLimits::default(),
        }
    }
}

/// Why a simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the control API must listen on a loopback address, not {0}")]
    ControlNotLoopback(SocketAddr),
    #[error("time_scale must be a positive number, not {0}")]
    BadTimeScale(f64),
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    #[error("cannot listen on {addr} for the {what}: {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A running simulator. Dropping it stops it too (without waiting).
pub struct SimHandle {
    protocol_addr: SocketAddr,
    control_addr: SocketAddr,
    world: Arc<World>,
    scale: TimeScale,
    shutdown: Shutdown,
    tasks: Vec<JoinHandle<()>>,
}

impl SimHandle {
    /// Where HTTP QQ 1.1 and WebQQ clients connect (WebQQ's base URL is
    /// `http://<this address>`).
    pub fn protocol_addr(&self) -> SocketAddr {
        self.protocol_addr
    }

    /// Where the control API listens.
    pub fn control_addr(&self) -> SocketAddr {
        self.control_addr
    }

    /// The simulated world, for in-process tests.
    pub fn world(&self) -> &Arc<World> {
        &self.world
    }

    pub fn time_scale(&self) -> TimeScale {
        self.scale
    }

    /// Stops accepting, closes open connections and waits for the tasks.
    pub async fn shutdown(mut self) {
        self.shutdown.trigger();
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, SimError> {
    let bind_error = |source| SimError::Bind { what, addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind_error)?;
    socket.set_reuseaddr(true).map_err(bind_error)?;
    socket.bind(addr).map_err(bind_error)?;
    // A deep backlog: thousands of polling clients may connect at once.
    socket.listen(4096).map_err(bind_error)
}

/// Validates the configuration, builds the world and starts serving.
pub async fn start(config: SimConfig) -> Result<SimHandle, SimError> {
    if !config.control_listen.ip().is_loopback() {
        return Err(SimError::ControlNotLoopback(config.control_listen));
    }
    config.scenario.validate()?;
    let factor = config.time_scale.unwrap_or(config.scenario.time_scale);
    let scale = TimeScale::new(factor).ok_or(SimError::BadTimeScale(factor))?;
    let quirks = config.scenario.quirks.clone();
    let idle_timeout = scale.secs(f64::from(quirks.session_idle_timeout_s));
    let world = Arc::new(World::new(
        config.scenario.seeds(),
        &config.scenario.friendships,
        idle_timeout,
    ));
    for group in config.scenario.world_groups() {
        world.add_group(group);
    }
    for (uin, book) in config.scenario.contact_books() {
        world.set_contact_book(uin, book);
    }

    let protocol = bind("protocol port", config.listen).await?;
    let control = bind("control API", config.control_listen).await?;
    let local = |listener: &TcpListener, what, addr| {
        listener
            .local_addr()
            .map_err(|source| SimError::Bind { what, addr, source })
    };
    let protocol_addr = local(&protocol, "protocol port", config.listen)?;
    let control_addr = local(&control, "control API", config.control_listen)?;

    let (shutdown, signal) = Shutdown::new();
    let http11 = Arc::new(Http11Service::new(Arc::clone(&world), quirks, scale));
    let webqq = Arc::new(WebqqService::new(
        Arc::clone(&world),
        config.scenario.webqq.clone(),
        config.scenario.captchas(),
        scale,
    ));
    let protocol_router = Arc::new(Router::new().with(http11).with(webqq));
    let control_router =
        Arc::new(Router::new().with(Arc::new(ControlService::new(Arc::clone(&world)))));

    let mut tasks = vec![
        tokio::spawn(http::serve(
            protocol,
            protocol_router,
            config.http_limits.clone(),
            signal.clone(),
            |_| true,
        )),
        tokio::spawn(http::serve(
            control,
            control_router,
            config.http_limits,
            signal.clone(),
            |ip| ip.is_loopback(),
        )),
        session::spawn_sweeper(Arc::clone(&world), signal.clone()),
    ];
    tasks.extend(scripts::spawn_status_cycles(
        &world,
        config.scenario.status_cycles(),
        scale,
        &signal,
    ));
    tasks.extend(scripts::spawn_group_chatter(
        &world,
        config.scenario.group_chatter(),
        scale,
        &signal,
    ));
    tracing::info!(%protocol_addr, %control_addr, time_scale = scale.factor(), "QQ simulator started");
    Ok(SimHandle {
        protocol_addr,
        control_addr,
        world,
        scale,
        shutdown,
        tasks,
    })
}
