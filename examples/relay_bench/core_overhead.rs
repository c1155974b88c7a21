//! The bridge's own processing time per message, without any server: the
//! real `BridgeCore` (SQLite store on disk, outbox, echo guard, de-dup)
//! between a QQ session that emits messages on demand and a chat side that
//! notes when each reaches it. A message's overhead runs from the moment its
//! `QqEvent` is handed to the core to the moment the core calls the side's
//! `deliver`, which is where a real side starts its network send.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use async_trait::async_trait;

use qqbridge::config::PermissionLevel;
use qqbridge::core::model::{
    ChatId, Contact, GroupInfo, GroupNumber, Presence, Profile, RichText, SearchCriteria, Uin,
};
use qqbridge::core::{BridgeCore, ChatSide, DeliveryError, SideEvent};
use qqbridge::qq::{
    AddOutcome, Capabilities, EventSender, LoginRequest, LoginStep, Protocol, QqConnector, QqError,
    QqEvent, QqSession,
};
use qqbridge::store::{SqliteStore, Store};

use crate::stats::{CpuSample, Percentiles};

/// A connector whose session hands its event sender to the benchmark.
struct InstantConnector {
    events: Mutex<Option<EventSender>>,
}

#[async_trait]
impl QqConnector for InstantConnector {
    fn protocol(&self) -> Protocol {
        Protocol::Webqq
    }

    async fn login(
        &self,
        request: LoginRequest,
        events: EventSender,
    ) -> Result<LoginStep, QqError> {
        if let Ok(mut slot) = self.events.lock() {
            *slot = Some(events);
        }
        Ok(LoginStep::Done(Arc::new(InstantSession(request.uin))))
    }
}

struct InstantSession(Uin);

#[async_trait]
impl QqSession for InstantSession {
    fn uin(&self) -> Uin {
        self.0
    }
    fn protocol(&self) -> Protocol {
        Protocol::Webqq
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            groups: true,
            temporary_sessions: false,
            search: false,
            signature: false,
        }
    }
    fn own_nick(&self) -> Option<String> {
        None
    }
    async fn contacts(&self) -> Result<Vec<Contact>, QqError> {
        Ok(Vec::new())
    }
    async fn groups(&self) -> Result<Vec<GroupInfo>, QqError> {
        Ok(Vec::new())
    }
    async fn send(&self, _: &ChatId, _: &RichText) -> Result<(), QqError> {
        Ok(())
    }
    async fn set_presence(&self, _: Presence) -> Result<(), QqError> {
        Ok(())
    }
    async fn profile(&self, _: Uin) -> Result<Profile, QqError> {
        Err(QqError::Unsupported("profile".into()))
    }
    async fn add_buddy(&self, _: Uin, _: &str) -> Result<AddOutcome, QqError> {
        Err(QqError::Unsupported("add".into()))
    }
    async fn answer_request(&self, _: Uin, _: bool, _: &str) -> Result<(), QqError> {
        Ok(())
    }
    async fn remove_buddy(&self, _: Uin) -> Result<(), QqError> {
        Ok(())
    }
    async fn search(&self, _: &SearchCriteria) -> Result<Vec<Profile>, QqError> {
        Ok(Vec::new())
    }
    async fn set_signature(&self, _: &str) -> Result<(), QqError> {
        Ok(())
    }
    async fn logout(&self) -> Result<(), QqError> {
        Ok(())
    }
}

/// A chat side that notes when each message reaches it.
#[derive(Default)]
pub(crate) struct ClockSide {
    reached: Mutex<HashMap<String, Instant>>,
}

impl ClockSide {
    pub(crate) fn reached_count(&self) -> usize {
        self.reached.lock().map(|r| r.len()).unwrap_or(0)
    }

    /// When each message (by its text) reached the side.
    pub(crate) fn reached(&self) -> HashMap<String, Instant> {
        self.reached.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl ChatSide for ClockSide {
    fn name(&self) -> &str {
        "bench"
    }
    async fn deliver(&self, _: &str, event: &SideEvent) -> Result<(), DeliveryError> {
        let now = Instant::now();
        if let SideEvent::Message { text, .. } = event {
            let plain =
                qqbridge::core::text::render_plain(text, qqbridge::core::text::FaceStyle::Name);
            if let Ok(mut r) = self.reached.lock() {
                r.insert(plain, now);
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CoreOverhead {
    pub offered_per_s: f64,
    pub messages: usize,
    pub delivered: usize,
    pub latency: Percentiles,
    pub cpu_percent: f64,
}

/// The real core with its SQLite store in `dir` and a [`ClockSide`], with
/// `bench:user` logging in to QQ 10001 through `connector`.
pub(crate) async fn bench_core(
    dir: &Path,
    connector: Arc<dyn QqConnector>,
    password: &str,
) -> Result<(Arc<BridgeCore>, Arc<ClockSide>)> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.join("bridge.db"))?);
    let protocol = connector.protocol();
    let core = BridgeCore::new(
        store,
        vec![connector],
        protocol,
        Arc::new(|_: &str| Some(PermissionLevel::User)),
    );
    let side = Arc::new(ClockSide::default());
    core.register_side(side.clone());
    // As `qqbridge run` starts: nothing to restore here, but it also
    // resumes the outbox, after which workers may start ahead of commits.
    core.restore_logins().await?;
    core.login(
        "bench:user",
        Uin(10001),
        qqbridge::secret::Secret::new(password),
        None,
    )
    .await?;
    Ok((core, side))
}

/// Feeds `messages` group messages at `rate` per second through the core.
pub async fn measure(rate: f64, messages: usize) -> Result<CoreOverhead> {
    let dir = tempfile::tempdir()?;
    let connector = Arc::new(InstantConnector {
        events: Mutex::new(None),
    });
    let (core, side) = bench_core(dir.path(), connector.clone(), "pw").await?;
    let Some(events) = connector.events.lock().ok().and_then(|mut e| e.take()) else {
        bail!("the core did not log in");
    };

    let period = Duration::from_secs_f64(1.0 / rate);
    let start = tokio::time::Instant::now();
    let cpu_before = CpuSample::take(&[std::process::id()]);
    let mut sent = Vec::with_capacity(messages);
    for i in 0..messages {
        tokio::time::sleep_until(start + period * i as u32).await;
        let text = format!("m{i}");
        let at = Instant::now();
        events
            .send(Box::new(QqEvent::Message {
                chat: ChatId::Group(GroupNumber(20001)),
                sender: Uin(10002),
                sender_name: Some("bench".into()),
                text: RichText::plain(text.clone()),
                remote_id: Some(format!("r{i}")),
            }))
            .await?;
        sent.push((text, at));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while side.reached_count() < messages && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu = CpuSample::take(&[std::process::id()]).percent_since(&cpu_before)[0];
    let reached = side.reached();
    let latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(text, at)| reached.get(text).map(|r| r.duration_since(*at)))
        .collect();
    core.shutdown().await;
    Ok(CoreOverhead {
        offered_per_s: rate,
        messages,
        delivered: latencies.len(),
        latency: Percentiles::of(&latencies),
        cpu_percent: cpu,
    })
}
