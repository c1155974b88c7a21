//! HTTP QQ 1.1 receives by polling (GetMsgEx): a message sits on the server
//! until the session's next poll, so its latency is mostly that wait and
//! says little about the bridge. This splits each message into the two:
//! the **poll wait**, from the simulator queueing the message to the real
//! `Http11Session` handing the parsed event over, and the **bridge
//! processing**, from that event to the chat side's `deliver` (the real
//! `BridgeCore` with its SQLite store on disk, as in `core_overhead.rs`).
//! The connector below only stamps the session's events on their way to the
//! core (one channel hop, counted in the poll wait).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use async_trait::async_trait;
use tokio::sync::mpsc;

use qqbridge::core::text::{render_plain, FaceStyle};
use qqbridge::qq::http11::Http11Connector;
use qqbridge::qq::sim::{self, Origin, Scenario, SimConfig};
use qqbridge::qq::{EventSender, LoginRequest, LoginStep, Protocol, QqConnector, QqError, QqEvent};

use crate::core_overhead::bench_core;
use crate::stats::Percentiles;

const SCENARIO: &str = r#"
time_scale: 1.0
account_ranges:
  - { first_uin: 10001, count: 2, password: demo, nick_prefix: "bench", presence: online }
friendships:
  - [10001, 10002]
"#;

/// The real HTTP QQ 1.1 connector, noting when each message event leaves
/// its session.
struct StampingConnector {
    inner: Http11Connector,
    handed_over: Arc<Mutex<HashMap<String, Instant>>>,
}

#[async_trait]
impl QqConnector for StampingConnector {
    fn protocol(&self) -> Protocol {
        Protocol::Http11
    }

    async fn login(
        &self,
        request: LoginRequest,
        events: EventSender,
    ) -> Result<LoginStep, QqError> {
        let (stamped, mut from_session) = mpsc::channel::<Box<QqEvent>>(1024);
        let handed_over = self.handed_over.clone();
        tokio::spawn(async move {
            while let Some(event) = from_session.recv().await {
                if let QqEvent::Message { text, .. } = &*event {
                    let now = Instant::now();
                    if let Ok(mut h) = handed_over.lock() {
                        h.insert(render_plain(text, FaceStyle::Name), now);
                    }
                }
                if events.send(event).await.is_err() {
                    break;
                }
            }
        });
        self.inner.login(request, stamped).await
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Http11Split {
    pub messages: usize,
    pub delivered: usize,
    /// The session's GetMsgEx schedule: this often after activity, backing
    /// off to `poll_idle_max_ms` when idle.
    pub poll_fast_ms: u64,
    pub poll_idle_max_ms: u64,
    pub poll_wait: Percentiles,
    pub processing: Percentiles,
    pub total: Percentiles,
}

/// Sends `messages` buddy messages from 10002 to the bridge user's 10001,
/// one at a time with random gaps of up to twice the fast poll interval
/// (so they land at every phase of the poll cycle).
pub async fn measure(
    messages: usize,
    poll_fast: Duration,
    poll_idle_max: Duration,
) -> Result<Http11Split> {
    let sim = sim::start(SimConfig::new(Scenario::from_yaml(SCENARIO)?)).await?;
    let dir = tempfile::tempdir()?;
    let handed_over = Arc::new(Mutex::new(HashMap::new()));
    let connector = StampingConnector {
        inner: Http11Connector::new(&format!("http://{}", sim.protocol_addr()))?
            .with_poll_interval(poll_fast, poll_idle_max),
        handed_over: handed_over.clone(),
    };
    let (core, side) = bench_core(dir.path(), Arc::new(connector), "demo").await?;
    let logged_in = Instant::now() + Duration::from_secs(10);
    while core.login_of("bench:user").is_none() {
        if Instant::now() > logged_in {
            bail!("the HTTP QQ 1.1 login did not complete");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut sent = Vec::with_capacity(messages);
    for i in 0..messages {
        let gap = poll_fast.mul_f64(2.0 * rand::random::<f64>());
        tokio::time::sleep(gap).await;
        let text = format!("h{i}");
        sent.push((text.clone(), Instant::now()));
        sim.world()
            .send_message(10002, 10001, &text, Origin::Control);
    }
    let deadline = Instant::now() + poll_idle_max + Duration::from_secs(10);
    while side.reached_count() < messages && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let reached = side.reached();
    let handed_over = handed_over.lock().map(|h| h.clone()).unwrap_or_default();
    let (mut wait, mut work, mut total) = (Vec::new(), Vec::new(), Vec::new());
    for (text, at) in &sent {
        if let (Some(h), Some(r)) = (handed_over.get(text), reached.get(text)) {
            wait.push(h.duration_since(*at));
            work.push(r.duration_since(*h));
            total.push(r.duration_since(*at));
        }
    }
    core.shutdown().await;
    Ok(Http11Split {
        messages,
        delivered: total.len(),
        poll_fast_ms: poll_fast.as_millis() as u64,
        poll_idle_max_ms: poll_idle_max.as_millis() as u64,
        poll_wait: Percentiles::of(&wait),
        processing: Percentiles::of(&work),
        total: Percentiles::of(&total),
    })
}
