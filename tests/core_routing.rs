//! The core's routing with an in-memory fake QQ side and a fake chat side:
//! relaying both ways, loop prevention, de-duplication, replay after a side
//! outage, failure reporting, and the outbox surviving a restart.

#[path = "support/logs.rs"]
mod logs;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use qqbridge::config::PermissionLevel;
use qqbridge::core::bot::CommandContext;
use qqbridge::core::bridge::RESTORE_CONCURRENCY;
use qqbridge::core::model::*;
use qqbridge::core::{BridgeCore, ChatSide, CoreError, DeliveryError, SideEvent};
use qqbridge::qq::*;
use qqbridge::secret::Secret;
use qqbridge::store::{QqLogin, SqliteStore, Store};

// ---------------------------------------------------------------- fake QQ

/// What the fake QQ network records and how it misbehaves.
#[derive(Default)]
struct FakeNet {
    sent: Mutex<Vec<(Uin, ChatId, RichText)>>,
    /// Errors the next sends return, in order.
    send_errors: Mutex<VecDeque<QqError>>,
    events: Mutex<Option<EventSender>>,
    logins: Mutex<u32>,
    /// How long each login takes, and how many ran at once at most.
    login_delay: Mutex<Option<Duration>>,
    logins_running: Mutex<(usize, usize)>,
    /// Sessions logged out, by QQ number.
    logged_out: Mutex<Vec<Uin>>,
}

struct FakeConnector(Arc<FakeNet>);
struct FakeSession {
    uin: Uin,
    net: Arc<FakeNet>,
}

#[async_trait]
impl QqConnector for FakeConnector {
    fn protocol(&self) -> Protocol {
        Protocol::Http11
    }
    async fn login(
        &self,
        request: LoginRequest,
        events: EventSender,
    ) -> Result<LoginStep, QqError> {
        if request.password.expose() != "pw" {
            return Err(QqError::BadCredentials);
        }
        let delay = *self.0.login_delay.lock().unwrap();
        if let Some(delay) = delay {
            {
                let mut running = self.0.logins_running.lock().unwrap();
                running.0 += 1;
                running.1 = running.1.max(running.0);
            }
            tokio::time::sleep(delay).await;
            self.0.logins_running.lock().unwrap().0 -= 1;
        }
        *self.0.logins.lock().unwrap() += 1;
        *self.0.events.lock().unwrap() = Some(events);
        Ok(LoginStep::Done(Arc::new(FakeSession {
            uin: request.uin,
            net: self.0.clone(),
        })))
    }
}

#[async_trait]
impl QqSession for FakeSession {
    fn uin(&self) -> Uin {
        self.uin
    }
    fn protocol(&self) -> Protocol {
        Protocol::Http11
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
        Ok(vec![Contact {
            uin: Uin(10002),
            nick: "微程".into(),
            mark_name: None,
            presence: Presence::Online,
            face: 0,
            category: None,
        }])
    }
    async fn groups(&self) -> Result<Vec<GroupInfo>, QqError> {
        Ok(vec![])
    }
    async fn send(&self, chat: &ChatId, text: &RichText) -> Result<(), QqError> {
        if let Some(e) = self.net.send_errors.lock().unwrap().pop_front() {
            return Err(e);
        }
        self.net
            .sent
            .lock()
            .unwrap()
            .push((self.uin, *chat, text.clone()));
        Ok(())
    }
    async fn set_presence(&self, _: Presence) -> Result<(), QqError> {
        Ok(())
    }
    async fn profile(&self, uin: Uin) -> Result<Profile, QqError> {
        Ok(Profile {
            uin: Some(uin),
            nick: "微程".into(),
            ..Default::default()
        })
    }
    async fn add_buddy(&self, _: Uin, _: &str) -> Result<AddOutcome, QqError> {
        Ok(AddOutcome::RequestSent)
    }
    async fn answer_request(&self, _: Uin, _: bool, _: &str) -> Result<(), QqError> {
        Ok(())
    }
    async fn remove_buddy(&self, _: Uin) -> Result<(), QqError> {
        Ok(())
    }
    async fn search(&self, _: &SearchCriteria) -> Result<Vec<Profile>, QqError> {
        Err(QqError::Unsupported("search".into()))
    }
    async fn set_signature(&self, _: &str) -> Result<(), QqError> {
        Err(QqError::Unsupported("signature".into()))
    }
    async fn logout(&self) -> Result<(), QqError> {
        self.net.logged_out.lock().unwrap().push(self.uin);
        Ok(())
    }
}

impl FakeNet {
    /// The texts sent to QQ so far, in order.
    fn sent_texts(&self) -> Vec<RichText> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(_, _, t)| t.clone())
            .collect()
    }

    async fn emit(&self, event: QqEvent) {
        let tx = self
            .events
            .lock()
            .unwrap()
            .clone()
            .expect("a session is logged in");
        tx.send(Box::new(event)).await.expect("core listens");
    }
}

// ---------------------------------------------------------------- fake side

#[derive(Default)]
struct FakeSide {
    got: Mutex<Vec<SideEvent>>,
    away: Mutex<bool>,
    /// Refuses (once) the event that would be the n-th delivered.
    refuse_at: Mutex<Option<usize>>,
    notify: tokio::sync::Notify,
    /// Users whose QQ queue the core reported drained.
    drained: Mutex<Vec<String>>,
    /// Claims to store what it is given ([`ChatSide::stores_deliveries`])
    /// and notes, per message delivered, how many items waited in the
    /// core's outbox for it at that moment.
    stores: Option<Storing>,
}

/// See [`FakeSide::stores`]: the store to look into, and what it showed.
struct Storing(Arc<dyn Store>, Mutex<Vec<usize>>);

#[async_trait]
impl ChatSide for FakeSide {
    fn name(&self) -> &str {
        "fake"
    }
    async fn deliver(&self, _user: &str, event: &SideEvent) -> Result<(), DeliveryError> {
        if *self.away.lock().unwrap() {
            return Err(DeliveryError::Retry("client away".into()));
        }
        {
            let got = self.got.lock().unwrap();
            let mut refuse_at = self.refuse_at.lock().unwrap();
            if *refuse_at == Some(got.len()) {
                *refuse_at = None;
                return Err(DeliveryError::Retry("hiccup".into()));
            }
        }
        if let (Some(Storing(store, queued)), SideEvent::Message { .. }) = (&self.stores, event) {
            let waiting = store.pending(&format!("to:{USER}"), 100).await.unwrap();
            queued.lock().unwrap().push(waiting.len());
        }
        self.got.lock().unwrap().push(event.clone());
        self.notify.notify_waiters();
        Ok(())
    }
    fn stores_deliveries(&self) -> bool {
        self.stores.is_some()
    }
    fn qq_queue_drained(&self, user: &str) {
        self.drained.lock().unwrap().push(user.to_owned());
    }
}

impl FakeSide {
    fn messages(&self) -> Vec<String> {
        self.got.lock().unwrap().iter().filter_map(plain).collect()
    }

    async fn wait_for(&self, what: &str, pred: impl Fn(&[SideEvent]) -> bool) {
        let deadline = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let notified = self.notify.notified();
                let snapshot = self.got.lock().unwrap().clone();
                if pred(&snapshot) {
                    return;
                }
                let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
            }
        });
        if deadline.await.is_err() {
            panic!(
                "timed out waiting for {what}; got {:?}",
                self.got.lock().unwrap()
            );
        }
    }
}

/// A message event's text, as plain text.
fn plain(event: &SideEvent) -> Option<String> {
    match event {
        SideEvent::Message { text, .. } => Some(qqbridge::core::text::render_plain(
            text,
            qqbridge::core::text::FaceStyle::Name,
        )),
        _ => None,
    }
}

// ---------------------------------------------------------------- setup

const USER: &str = "fake:alice";

fn capture_logs() {
    logs::capture("trace");
}

struct Rig {
    core: Arc<BridgeCore>,
    net: Arc<FakeNet>,
    side: Arc<FakeSide>,
}

fn rig_with(store: Arc<dyn Store>, net: Arc<FakeNet>) -> Rig {
    rig_with_side(store, net, FakeSide::default())
}

fn rig_with_side(store: Arc<dyn Store>, net: Arc<FakeNet>, side: FakeSide) -> Rig {
    capture_logs();
    let side = Arc::new(side);
    let core = BridgeCore::new(
        store,
        vec![Arc::new(FakeConnector(net.clone()))],
        Protocol::Http11,
        Arc::new(|_: &str| Some(PermissionLevel::User)),
    );
    core.register_side(side.clone());
    Rig { core, net, side }
}

async fn logged_in() -> Rig {
    log_in(rig_with(
        Arc::new(SqliteStore::open_in_memory().unwrap()),
        Arc::default(),
    ))
    .await
}

/// Logged in, with a side that stores its deliveries itself.
async fn logged_in_to_a_storing_side() -> Rig {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let side = FakeSide {
        stores: Some(Storing(store.clone(), Mutex::default())),
        ..FakeSide::default()
    };
    let rig = log_in(rig_with_side(store, Arc::default(), side)).await;
    // The login event's outbox worker retires once it reads its queue
    // empty; until then new messages would queue behind it.
    tokio::time::sleep(Duration::from_millis(100)).await;
    rig
}

async fn log_in(rig: Rig) -> Rig {
    let ctx = CommandContext {
        user: USER,
        name_scope: None,
    };
    let reply = rig.core.run_command(&ctx, "login 10001 pw").await;
    assert_eq!(reply, vec!["logged in to QQ as 10001 (http11)".to_owned()]);
    rig.side
        .wait_for("login event", |g| {
            g.iter().any(|e| matches!(e, SideEvent::LoggedIn { .. }))
        })
        .await;
    rig
}

fn buddy_message(text: &str, remote_id: Option<&str>) -> QqEvent {
    QqEvent::Message {
        chat: ChatId::Buddy(Uin(10002)),
        sender: Uin(10002),
        sender_name: None,
        text: RichText::plain(text),
        remote_id: remote_id.map(str::to_owned),
    }
}

// ---------------------------------------------------------------- tests

#[tokio::test]
async fn qq_message_reaches_the_side_with_the_buddy_name() {
    let rig = logged_in().await;
    rig.net.emit(buddy_message("你好", Some("r1"))).await;
    rig.side
        .wait_for("message", |g| {
            g.iter().any(|e| matches!(e, SideEvent::Message { .. }))
        })
        .await;
    let got = rig.side.got.lock().unwrap().clone();
    let Some(SideEvent::Message {
        sender_name,
        owner,
        chat,
        ..
    }) = got.iter().find(|e| matches!(e, SideEvent::Message { .. }))
    else {
        unreachable!()
    };
    assert_eq!(sender_name, "微程");
    assert_eq!(*owner, Uin(10001));
    assert_eq!(*chat, ChatId::Buddy(Uin(10002)));
    let ctx = CommandContext {
        user: USER,
        name_scope: None,
    };
    let list = rig.core.run_command(&ctx, "list").await;
    assert_eq!(
        list,
        vec!["1 buddies:".to_owned(), "10002 微程 — online".to_owned()]
    );
}

/// Events waiting together are relayed together (one store transaction for
/// the messages); order, de-duplication and other events in between must
/// come out as if they had been handled one at a time.
#[tokio::test]
async fn a_burst_of_events_keeps_its_order_and_drops_repeats() {
    let rig = logged_in().await;
    emit_numbered(&rig, 0..5).await;
    rig.net.emit(buddy_message("m2", Some("id2"))).await;
    rig.net
        .emit(QqEvent::Reconnecting {
            reason: "in the middle".into(),
        })
        .await;
    emit_numbered(&rig, 5..8).await;
    rig.net.emit(buddy_message("m7", Some("id7"))).await;
    rig.side
        .wait_for("eight messages", |_| rig.side.messages().len() >= 8)
        .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen: Vec<String> = rig
        .side
        .got
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            SideEvent::Notice { text } if text.contains("in the middle") => {
                Some("notice".to_owned())
            }
            other => plain(other),
        })
        .collect();
    assert_eq!(
        seen,
        vec!["m0", "m1", "m2", "m3", "m4", "notice", "m5", "m6", "m7"]
    );
}

#[tokio::test]
async fn the_same_remote_message_twice_is_relayed_once() {
    let rig = logged_in().await;
    say_one_twice_then_two(&rig).await;
    assert_eq!(rig.side.messages(), vec!["one", "two"]);
}

/// Emits "one" (remote id r1) twice and "two" (r2) in one burst (nothing
/// yields between the sends), then waits until "two" is delivered.
async fn say_one_twice_then_two(rig: &Rig) {
    rig.net.emit(buddy_message("one", Some("r1"))).await;
    rig.net.emit(buddy_message("one", Some("r1"))).await;
    rig.net.emit(buddy_message("two", Some("r2"))).await;
    rig.side
        .wait_for("two", |_| rig.side.messages().contains(&"two".to_owned()))
        .await;
}

#[tokio::test]
async fn our_own_message_coming_back_is_not_relayed() {
    let rig = logged_in().await;
    let group = ChatId::Group(GroupNumber(777));
    rig.core
        .send_to_qq(
            USER,
            group,
            RichText::plain("from irc"),
            Some("irc-1".into()),
        )
        .await
        .unwrap();
    rig.side
        .wait_for("sent ack", |g| {
            g.iter().any(|e| matches!(e, SideEvent::Sent { .. }))
        })
        .await;
    assert_eq!(rig.net.sent.lock().unwrap().len(), 1);
    // QQ shows the group message from our own account back to us.
    for text in ["from irc ", "typed on the phone"] {
        rig.net
            .emit(QqEvent::Message {
                chat: group,
                sender: Uin(10001),
                sender_name: None,
                text: RichText::plain(text),
                remote_id: None,
            })
            .await;
    }
    rig.side
        .wait_for("phone message", |_| !rig.side.messages().is_empty())
        .await;
    assert_eq!(rig.side.messages(), vec!["typed on the phone"]);
}

/// A side that stores what it is given gets a conversation straight from
/// the session, not through the core's outbox; duplicates are still
/// dropped, also across a burst and after the hand-over.
#[tokio::test]
async fn a_side_that_stores_deliveries_gets_messages_without_the_outbox() {
    let rig = logged_in_to_a_storing_side().await;
    // In one burst: the repeat is caught before its original's link is
    // stored.
    say_one_twice_then_two(&rig).await;
    // Later: caught by the link stored after the hand-over.
    rig.net.emit(buddy_message("one", Some("r1"))).await;
    rig.net.emit(buddy_message("three", Some("r3"))).await;
    rig.side
        .wait_for("three", |_| {
            rig.side.messages().contains(&"three".to_owned())
        })
        .await;
    assert_eq!(rig.side.messages(), vec!["one", "two", "three"]);
    let queued = rig.side.stores.as_ref().unwrap().1.lock().unwrap().clone();
    assert_eq!(queued, vec![0, 0, 0], "handed over, not queued first");
}

/// While a backlog for a storing side waits in the core's outbox, new
/// messages queue behind it instead of being handed over ahead of it, even
/// when the side could take them.
#[tokio::test]
async fn a_backlog_keeps_new_messages_behind_it_for_a_storing_side() {
    let rig = logged_in_to_a_storing_side().await;
    queue_while_away(&rig, 3).await;
    // The side is back, but its backlog's worker still waits out its retry
    // delay: m3 must not pass m0..m2.
    *rig.side.away.lock().unwrap() = false;
    emit_numbered(&rig, 3..4).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    rig.core.user_reachable(USER);
    rig.side
        .wait_for("all four", |_| rig.side.messages().len() == 4)
        .await;
    assert_eq!(rig.side.messages(), vec!["m0", "m1", "m2", "m3"]);
    // Carried by the outbox, the last one still waited there when delivered.
    let queued = rig.side.stores.as_ref().unwrap().1.lock().unwrap().clone();
    assert!(queued.iter().all(|n| *n > 0), "{queued:?}");
}

/// Emits messages `m<i>` with remote ids `id<i>`.
async fn emit_numbered(rig: &Rig, numbers: std::ops::Range<usize>) {
    for i in numbers {
        rig.net
            .emit(buddy_message(&format!("m{i}"), Some(&format!("id{i}"))))
            .await;
    }
}

/// Sends `m0`.. (remote ids `id0`..) while the side is away.
async fn queue_while_away(rig: &Rig, n: usize) {
    *rig.side.away.lock().unwrap() = true;
    emit_numbered(rig, 0..n).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn side_outage_keeps_events_and_replays_them_in_order() {
    let rig = logged_in().await;
    queue_while_away(&rig, 5).await;
    assert!(rig.side.messages().is_empty());
    *rig.side.away.lock().unwrap() = false;
    rig.core.user_reachable(USER);
    rig.side
        .wait_for("replay", |_| rig.side.messages().len() == 5)
        .await;
    assert_eq!(rig.side.messages(), vec!["m0", "m1", "m2", "m3", "m4"]);
}

#[tokio::test]
async fn a_refusal_in_the_middle_of_a_run_repeats_nothing_and_loses_nothing() {
    let rig = logged_in().await;
    // Queued while the side is away, so they go out as one run.
    queue_while_away(&rig, 10).await;
    *rig.side.refuse_at.lock().unwrap() = Some(3);
    *rig.side.away.lock().unwrap() = false;
    rig.core.user_reachable(USER);
    rig.side
        .wait_for("all ten", |_| rig.side.messages().len() >= 10)
        .await;
    // A repeat would show up after a short wait.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let expected: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
    assert_eq!(rig.side.messages(), expected);
    assert_eq!(
        *rig.side.refuse_at.lock().unwrap(),
        None,
        "the refusal happened"
    );
}

#[tokio::test]
async fn transient_send_errors_retry_and_final_ones_are_reported() {
    let rig = logged_in().await;
    rig.net
        .send_errors
        .lock()
        .unwrap()
        .extend([QqError::Throttled, QqError::Unreachable("reset".into())]);
    rig.core
        .send_to_qq(
            USER,
            ChatId::Buddy(Uin(10002)),
            RichText::plain("retry me"),
            None,
        )
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), async {
        while rig.net.sent.lock().unwrap().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("retried until sent");
    rig.net
        .send_errors
        .lock()
        .unwrap()
        .push_back(QqError::Refused("RES=3".into()));
    rig.core
        .send_to_qq(
            USER,
            ChatId::Buddy(Uin(10002)),
            RichText::plain("doomed"),
            Some("m-9".into()),
        )
        .await
        .unwrap();
    rig.side
        .wait_for("failure notice", |g| {
            g.iter().any(|e| matches!(e, SideEvent::SendFailed { .. }))
        })
        .await;
    let got = rig.side.got.lock().unwrap().clone();
    let failure = got.iter().find_map(|e| match e {
        SideEvent::SendFailed {
            preview,
            reason,
            origin_id,
            ..
        } => Some((preview.clone(), reason.clone(), origin_id.clone())),
        _ => None,
    });
    assert_eq!(
        failure,
        Some((
            "doomed".into(),
            "the QQ server refused the request (RES=3)".into(),
            Some("m-9".into())
        ))
    );
    assert_eq!(rig.net.sent.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn not_logged_in_and_wrong_password_are_clear() {
    let rig = rig_with(
        Arc::new(SqliteStore::open_in_memory().unwrap()),
        Arc::default(),
    );
    let ctx = CommandContext {
        user: USER,
        name_scope: None,
    };
    assert_eq!(
        rig.core.run_command(&ctx, "list").await,
        vec!["you are not logged in to QQ; use: login <qq number> <password>".to_owned()]
    );
    assert_eq!(
        rig.core
            .run_command(&ctx, "login 10001 wrong-secret-xyz")
            .await,
        vec!["wrong QQ number or password".to_owned()]
    );
    assert!(rig
        .core
        .send_to_qq(USER, ChatId::Buddy(Uin(1)), RichText::plain("x"), None)
        .await
        .is_err());
    let logs = logs::text();
    assert!(
        !logs.contains("wrong-secret-xyz"),
        "a password reached the logs"
    );
}

#[tokio::test]
async fn outgoing_messages_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bridge.db");
    {
        let net = Arc::new(FakeNet::default());
        // QQ is down for the whole life of the first process.
        net.send_errors.lock().unwrap().extend(std::iter::repeat_n(
            QqError::Unreachable("down".into()),
            100,
        ));
        let rig = rig_with(Arc::new(SqliteStore::open(&path).unwrap()), net);
        let ctx = CommandContext {
            user: USER,
            name_scope: None,
        };
        rig.core.run_command(&ctx, "login 10001 pw").await;
        for text in ["a", "b", "c"] {
            rig.core
                .send_to_qq(USER, ChatId::Buddy(Uin(10002)), RichText::plain(text), None)
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        rig.core.shutdown().await;
        assert!(rig.net.sent.lock().unwrap().is_empty());
    }
    let rig = rig_with(Arc::new(SqliteStore::open(&path).unwrap()), Arc::default());
    assert_eq!(rig.core.restore_logins().await.unwrap(), 1);
    tokio::time::timeout(Duration::from_secs(10), async {
        while rig.net.sent.lock().unwrap().len() < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("delivered after restart");
    let texts = rig.net.sent_texts();
    assert_eq!(
        texts,
        vec![
            RichText::plain("a"),
            RichText::plain("b"),
            RichText::plain("c")
        ]
    );
    assert_eq!(
        *rig.net.logins.lock().unwrap(),
        1,
        "restored with the stored password"
    );
}

/// A restart with many stored logins re-establishes them all, but only a
/// bounded number at a time, so thousands of users do not hit the QQ server
/// in the same instant.
#[tokio::test]
async fn stored_logins_are_restored_a_bounded_number_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&dir.path().join("b.db")).unwrap());
    let users = RESTORE_CONCURRENCY * 3;
    for i in 0..users {
        save_login(&store, &format!("fake:user{i}"), 20_000 + i as u64).await;
    }
    let net = Arc::new(FakeNet::default());
    *net.login_delay.lock().unwrap() = Some(Duration::from_millis(30));
    let rig = rig_with(store, net);
    assert_eq!(rig.core.restore_logins().await.unwrap(), users);
    tokio::time::timeout(Duration::from_secs(20), async {
        while (*rig.net.logins.lock().unwrap() as usize) < users {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("every stored login is restored");
    let most_at_once = rig.net.logins_running.lock().unwrap().1;
    assert!(
        most_at_once <= RESTORE_CONCURRENCY,
        "{most_at_once} logins ran at once"
    );
    assert!(most_at_once > 1, "restored one at a time");
}

/// A stored login for `USER` as 10001, restored with logins taking `delay`.
async fn restoring(delay: Duration) -> (Rig, Arc<dyn Store>) {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    save_login(&store, USER, 10001).await;
    let net = Arc::new(FakeNet::default());
    *net.login_delay.lock().unwrap() = Some(delay);
    let rig = rig_with(store.clone(), net);
    assert_eq!(rig.core.restore_logins().await.unwrap(), 1);
    (rig, store)
}

/// `login <uin> <password>` as `USER` types it.
async fn type_login(rig: &Rig, uin: u64, password: &str) -> Result<String, CoreError> {
    rig.core
        .login(USER, Uin(uin), Secret::new(password), None)
        .await
}

async fn settle_logins(rig: &Rig, n: u32) {
    tokio::time::timeout(Duration::from_secs(10), async {
        while *rig.net.logins.lock().unwrap() < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("logins finished");
    // Let the attach that follows the last login run.
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// `login` typed for the account whose stored login is still being
/// restored does not start a second session that would fight the first
/// for the account: the user is told, and one session results.
#[tokio::test]
async fn login_during_the_restore_of_the_same_account_makes_one_session() {
    let (rig, _) = restoring(Duration::from_millis(300)).await;
    let reply = type_login(&rig, 10001, "pw").await.unwrap();
    assert!(reply.contains("being restored"), "{reply}");
    let wrong = type_login(&rig, 10001, "nope").await;
    assert!(wrong.is_err(), "a wrong password is refused: {wrong:?}");
    settle_logins(&rig, 1).await;
    assert_eq!(*rig.net.logins.lock().unwrap(), 1, "one login exchange");
    assert_eq!(rig.core.login_of(USER), Some(Uin(10001)));
    assert!(rig.net.logged_out.lock().unwrap().is_empty());
    // Once restored, `login` again resumes it.
    let again = type_login(&rig, 10001, "pw").await.unwrap();
    assert!(again.contains("resumed"), "{again}");
}

/// `login` to another account while the stored one is being restored wins:
/// the restore ends its session instead of replacing the user's choice.
#[tokio::test]
async fn login_to_another_account_during_a_restore_supersedes_it() {
    let (rig, _) = restoring(Duration::from_millis(300)).await;
    let reply = type_login(&rig, 10003, "pw").await.unwrap();
    assert!(reply.contains("logged in to QQ as 10003"), "{reply}");
    settle_logins(&rig, 2).await;
    assert_eq!(rig.core.login_of(USER), Some(Uin(10003)));
    assert_eq!(*rig.net.logged_out.lock().unwrap(), vec![Uin(10001)]);
}

/// `logout` while a stored login is being restored stops it and forgets it.
#[tokio::test]
async fn logout_during_a_restore_stops_it_and_forgets_the_login() {
    let (rig, store) = restoring(Duration::from_millis(300)).await;
    let reply = rig.core.logout(USER).await.unwrap();
    assert!(reply.contains("stopped logging in to QQ 10001"), "{reply}");
    settle_logins(&rig, 1).await;
    assert_eq!(rig.core.login_of(USER), None);
    assert_eq!(*rig.net.logged_out.lock().unwrap(), vec![Uin(10001)]);
    assert!(store.logins_of(USER).await.unwrap().is_empty());
}

/// Stores a login with the fake network's password, as `login` leaves it.
async fn save_login(store: &Arc<dyn Store>, user: &str, uin: u64) {
    store
        .save_login(&QqLogin {
            user: user.to_owned(),
            uin: Uin(uin),
            protocol: Protocol::Http11,
            password: Secret::new("pw"),
            presence: Presence::Online,
        })
        .await
        .unwrap();
}

/// A user's queue for QQ is bounded: while QQ is down, messages wait up to
/// the cap; the next one is refused with an error that says so (the side
/// shows it to the sender), nothing is dropped silently, and once the queue
/// drains the user can send again.
#[tokio::test]
async fn a_full_qq_queue_refuses_new_messages_with_a_reason() {
    let rig = logged_in().await;
    rig.core.set_qq_queue_limit(3);
    rig.net
        .send_errors
        .lock()
        .unwrap()
        .extend(std::iter::repeat_n(QqError::Unreachable("down".into()), 3));
    let buddy = ChatId::Buddy(Uin(10002));
    for text in ["a", "b", "c"] {
        rig.core
            .send_to_qq(USER, buddy, RichText::plain(text), None)
            .await
            .unwrap();
    }
    let refused = rig
        .core
        .send_to_qq(USER, buddy, RichText::plain("d"), None)
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("3 of your messages are still waiting"),
        "{refused}"
    );
    // QQ comes back: the three go out in order, then there is room again.
    tokio::time::timeout(Duration::from_secs(15), async {
        while rig.net.sent.lock().unwrap().len() < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("queued messages delivered");
    tokio::time::timeout(Duration::from_secs(5), async {
        while rig
            .core
            .send_to_qq(USER, buddy, RichText::plain("e"), None)
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("room again once delivered");
    let texts = rig.net.sent_texts();
    assert_eq!(
        texts[..3],
        [
            RichText::plain("a"),
            RichText::plain("b"),
            RichText::plain("c")
        ]
    );
    // Once the queue ran empty the side heard of it, so what it held back
    // at the limit can follow at once.
    tokio::time::timeout(Duration::from_secs(5), async {
        while !rig.side.drained.lock().unwrap().iter().any(|u| u == USER) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the side is told the QQ queue drained");
}

/// One QQ login per bridge user: a second account is refused until the
/// first is logged out, and no second session is opened.
#[tokio::test]
async fn a_user_has_at_most_one_qq_login() {
    let rig = logged_in().await;
    let ctx = CommandContext {
        user: USER,
        name_scope: None,
    };
    let reply = rig.core.run_command(&ctx, "login 10003 pw").await;
    assert_eq!(
        reply,
        vec!["already logged in as 10001; logout first".to_owned()]
    );
    assert_eq!(*rig.net.logins.lock().unwrap(), 1);
    assert_eq!(rig.core.login_of(USER), Some(Uin(10001)));
}
