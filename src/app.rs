//! Wiring: builds the store, the QQ connectors, the core and the enabled
//! chat sides from a [`Config`], runs until SIGINT/SIGTERM, then shuts down
//! in order (chat sides stop taking input, sessions log out, the outbox stays
//! on disk).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;
use crate::core::BridgeCore;
use crate::qq::http11::Http11Connector;
use crate::qq::webqq::WebqqConnector;
use crate::qq::{sim, QqConnector};
use crate::secret::Secret;
use crate::store::{SqliteStore, Store};

/// Runs the bridge until a termination signal.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(&config.database)
            .with_context(|| format!("opening the database {}", config.database.display()))?,
    );

    let simulator = if config.qq.simulator.enabled {
        let handle = sim::start(sim_options(
            config.qq.simulator.listen,
            config.qq.simulator.scenario.clone(),
            config.qq.simulator.control_listen,
        )?)
        .await
        .context("starting the embedded QQ simulator")?;
        println!(
            "QQ simulator: serving HTTP QQ 1.1 and WebQQ on {} (demo accounts 10001-10004, password \"demo\")",
            handle.protocol_addr()
        );
        if config.qq.simulator.control_listen.is_some() {
            println!(
                "QQ simulator: control API on http://{}",
                handle.control_addr()
            );
        }
        Some(handle)
    } else {
        None
    };

    let connectors: Vec<Arc<dyn QqConnector>> = vec![
        Arc::new({
            let tuning = &config.qq.http11;
            let connector = Http11Connector::new(&config.qq.server).context("qq.server")?;
            let idle_max = connector.options().poll_idle_max;
            let fast = Duration::from_millis(tuning.poll_fast_ms);
            connector
                .with_send_pacing(Duration::from_millis(tuning.send_pacing_ms))
                .with_poll_interval(fast, idle_max.max(fast))
        }),
        Arc::new(WebqqConnector::new(&config.qq.server)),
    ];
    let permissions = {
        let config = config.clone();
        // The Matrix bot is the bridge user of the relay QQ account.
        let bot = format!(
            "@{}:{}",
            config.matrix.appservice.sender_localpart, config.matrix.domain
        );
        let relay = config.matrix.enabled && config.matrix.relay.is_some();
        Arc::new(move |user: &str| {
            if relay && user == bot {
                return Some(crate::config::PermissionLevel::User);
            }
            // IRC networks' relay logins are the bridge's own, like the
            // Matrix bot's.
            if crate::irc::networks::is_relay_user(&config.irc.networks, user) {
                return Some(crate::config::PermissionLevel::User);
            }
            config.permission_of(user)
        })
    };
    let core = BridgeCore::new(store.clone(), connectors, config.qq.protocol, permissions);
    core.set_qq_queue_limit(config.qq.max_queued_per_user);

    let gateway = if config.irc.gateway.enabled {
        let handle = crate::irc::gateway::start(core.clone(), store.clone(), &config.irc.gateway)
            .await
            .context("starting the IRC gateway")?;
        println!(
            "IRC gateway: connect your IRC client to {} (e.g. irssi -c {} -p {}), then type \"login 10001 demo\" in &qq",
            handle.local_addr(),
            handle.local_addr().ip(),
            handle.local_addr().port()
        );
        Some(handle)
    } else {
        None
    };

    #[cfg(feature = "matrix")]
    let matrix = if config.matrix.enabled && config.matrix.mode == crate::config::MatrixMode::Bot {
        let handle = crate::matrix::botmode::start(core.clone(), store.clone(), &config)
            .await
            .context("starting the Matrix bot")?;
        println!(
            "Matrix bot mode: logged in to {} as {}; invite it to a direct chat and send \"login <qq number> <password>\"",
            config.matrix.homeserver_url,
            handle.bot_user_id()
        );
        if let Some((device, key)) = handle.device_fingerprint().await {
            println!("Matrix bot device {device}, Ed25519 fingerprint {key}");
        }
        Some(MatrixSide::Bot(handle))
    } else if config.matrix.enabled {
        let handle = crate::matrix::start(core.clone(), store.clone(), &config)
            .await
            .context("starting the Matrix appservice")?;
        println!(
            "Matrix appservice: listening on {} for {}; open a direct chat with {} and send \"login <qq number> <password>\"",
            handle.local_addr(),
            config.matrix.homeserver_url,
            handle.bot_user_id()
        );
        Some(MatrixSide::Appservice(handle))
    } else {
        None
    };

    // Before restoring logins: the networks decide which relay logins the
    // store may restore.
    let networks = if config.irc.networks.is_empty() {
        None
    } else {
        let handle = crate::irc::networks::start(core.clone(), store.clone(), &config.irc.networks)
            .await
            .context("starting the IRC network connections")?;
        println!("IRC networks: connecting to {}", handle.names().join(", "));
        Some(handle)
    };

    let restored = core.restore_logins().await?;
    if restored > 0 {
        tracing::info!(restored, "restoring QQ logins from the database");
    }

    wait_for_termination().await;
    tracing::info!("shutting down");
    if let Some(gateway) = gateway {
        gateway.shutdown().await;
    }
    if let Some(networks) = networks {
        networks.shutdown().await;
    }
    #[cfg(feature = "matrix")]
    match matrix {
        Some(MatrixSide::Appservice(handle)) => handle.shutdown().await,
        Some(MatrixSide::Bot(handle)) => handle.shutdown().await,
        None => {}
    }
    core.shutdown().await;
    if let Some(sim) = simulator {
        sim.shutdown().await;
    }
    Ok(())
}

/// The running Matrix side: one mode at a time.
#[cfg(feature = "matrix")]
enum MatrixSide {
    Appservice(crate::matrix::MatrixHandle),
    Bot(crate::matrix::botmode::BotHandle),
}

/// Runs the simulator alone (`qqbridge sim`).
pub async fn run_simulator(
    listen: SocketAddr,
    scenario: Option<PathBuf>,
    control: Option<SocketAddr>,
) -> anyhow::Result<()> {
    let handle = sim::start(sim_options(listen, scenario, control)?)
        .await
        .context("starting the QQ simulator")?;
    println!(
        "QQ simulator: serving HTTP QQ 1.1 and WebQQ on {}",
        handle.protocol_addr()
    );
    if control.is_some() {
        println!(
            "QQ simulator: control API on http://{}",
            handle.control_addr()
        );
    }
    wait_for_termination().await;
    handle.shutdown().await;
    Ok(())
}

fn sim_options(
    listen: SocketAddr,
    scenario: Option<PathBuf>,
    control: Option<SocketAddr>,
) -> anyhow::Result<sim::SimConfig> {
    let scenario = match scenario {
        Some(path) => sim::Scenario::load(&path)
            .with_context(|| format!("reading the scenario {}", path.display()))?,
        None => sim::Scenario::demo(),
    };
    let mut config = sim::SimConfig::new(scenario);
    config.listen = listen;
    // Without an explicit address the control API still runs, on a random
    // loopback port nobody is told about: it is never reachable from
    // outside the machine.
    if let Some(control) = control {
        config.control_listen = control;
    }
    Ok(config)
}

/// Prints the appservice registration. Tokens come from the config, or are
/// generated once and kept in the database so that printing it again gives
/// the same file.
pub async fn registration(config: &Config) -> anyhow::Result<String> {
    if config.matrix.mode == crate::config::MatrixMode::Bot {
        anyhow::bail!(
            "matrix.mode is bot: the bridge logs in as the ordinary Matrix account \
             matrix.bot.user_id and needs no appservice registration file (nothing to give \
             the homeserver); use mode: appservice for a registration"
        );
    }
    let store = SqliteStore::open(&config.database)
        .with_context(|| format!("opening the database {}", config.database.display()))?;
    let appservice = &config.matrix.appservice;
    let as_token =
        appservice_token(&store, "appservice.as_token", appservice.as_token.as_ref()).await?;
    let hs_token =
        appservice_token(&store, "appservice.hs_token", appservice.hs_token.as_ref()).await?;
    let domain = regex_escape(&config.matrix.domain);
    let yaml = format!(
        "id: {id}\nurl: {url}\nas_token: {as_token}\nhs_token: {hs_token}\nsender_localpart: {sender}\n\
         rate_limited: false\nreceive_ephemeral: true\nnamespaces:\n  users:\n    - exclusive: true\n      regex: '@{user_prefix}.*:{domain}'\n  \
         aliases:\n    - exclusive: true\n      regex: '#{alias_prefix}.*:{domain}'\n  rooms: []\n",
        id = appservice.id,
        url = appservice.url,
        as_token = as_token.expose(),
        hs_token = hs_token.expose(),
        sender = appservice.sender_localpart,
        user_prefix = regex_escape(&appservice.user_prefix),
        alias_prefix = regex_escape(&appservice.alias_prefix),
    );
    Ok(yaml)
}

/// An appservice token: the configured one, else the one generated and
/// stored the first time (`generate` in the config means "generate").
/// `registration` and the running appservice share it, so the printed
/// registration always matches what the bridge checks.
pub(crate) async fn appservice_token(
    store: &dyn Store,
    key: &str,
    configured: Option<&Secret>,
) -> Result<Secret, crate::store::StoreError> {
    if let Some(secret) = configured.filter(|s| !s.is_empty() && s.expose() != "generate") {
        return Ok(secret.clone());
    }
    if let Some(stored) = store.get_setting(key).await? {
        return Ok(Secret::new(stored));
    }
    let fresh = format!(
        "{:032x}{:032x}",
        rand::random::<u128>(),
        rand::random::<u128>()
    );
    store.set_setting(key, &fresh).await?;
    Ok(Secret::new(fresh))
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

async fn wait_for_termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM; only Ctrl-C stops the bridge");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
