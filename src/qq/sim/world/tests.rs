//! Unit tests of the world, including 10,000 concurrent sessions.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use super::*;
use crate::qq::sim::account::AddPolicy;

const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn seed(uin: u64, presence: Presence, echo: bool) -> AccountSeed {
    AccountSeed {
        account: Account {
            uin,
            nick: format!("n{uin}"),
            face: 0,
            add_policy: AddPolicy::Verify,
            profile: Default::default(),
            password_md5: PasswordHash::from_password("pw"),
        },
        presence,
        echo,
    }
}

fn key(uin: u64) -> SessionKey {
    SessionKey { ip: IP, uin }
}

fn kinds(world: &World, uin: u64) -> Vec<(u64, EventKind)> {
    world
        .take_events(uin, |_| true)
        .into_iter()
        .map(|e| (e.from, e.kind))
        .collect()
}

#[test]
fn status_reaches_only_watchers_who_can_hear_it() {
    let seeds = vec![
        seed(1, Presence::Offline, false),
        seed(2, Presence::Online, false),
        seed(3, Presence::Offline, false),
        seed(4, Presence::Online, false),
    ];
    let world = World::new(seeds, &[[1, 2], [1, 3]], Duration::from_secs(60));
    assert_eq!(world.friends(1), [2, 3]);
    let pw = PasswordHash::from_password("pw");
    assert_eq!(
        world.login(key(1), &pw, Origin::Http11, ReloginPolicy::Replace),
        LoginOutcome::LoggedIn
    );
    let online = EventKind::Status {
        presence: Presence::Online,
    };
    assert_eq!(kinds(&world, 2), [(1, online)]);
    assert_eq!(kinds(&world, 3), []); // offline, no client
    assert_eq!(kinds(&world, 4), []); // not a friend
    world.set_presence(1, Presence::Invisible, Origin::Http11);
    world.set_presence(1, Presence::Offline, Origin::Http11); // looks the same: no event
    assert_eq!(
        kinds(&world, 2),
        [(
            1,
            EventKind::Status {
                presence: Presence::Offline
            }
        )]
    );
}

#[test]
fn sessions_expire_lazily_and_by_sweep() {
    let world = World::new(
        vec![
            seed(1, Presence::Offline, false),
            seed(2, Presence::Online, false),
        ],
        &[[1, 2]],
        Duration::ZERO,
    );
    let pw = PasswordHash::from_password("pw");
    assert_eq!(
        world.login(key(1), &pw, Origin::Http11, ReloginPolicy::Strict),
        LoginOutcome::LoggedIn
    );
    // A zero timeout: the next request finds the session gone.
    assert!(!world.touch(key(1)));
    assert_eq!(world.presence(1), Some(Presence::Offline));
    assert_eq!(
        world.login(key(1), &pw, Origin::Http11, ReloginPolicy::Strict),
        LoginOutcome::LoggedIn
    );
    assert_eq!(world.expire_idle_sessions(Instant::now()), 1);
    assert_eq!(world.session_count(), 0);
    assert_eq!(
        world.login(
            key(1),
            &PasswordHash::from_password("no"),
            Origin::Http11,
            ReloginPolicy::Replace
        ),
        LoginOutcome::WrongPassword
    );
    assert_eq!(
        world.login(key(9), &pw, Origin::Http11, ReloginPolicy::Replace),
        LoginOutcome::UnknownAccount
    );
}

#[test]
fn echo_answers_once_and_texts_are_clipped() {
    let world = World::new(
        vec![
            seed(1, Presence::Online, true),
            seed(2, Presence::Online, true),
            seed(3, Presence::Online, false),
        ],
        &[],
        Duration::from_secs(60),
    );
    assert_eq!(
        world.send_message(3, 1, "hi", Origin::Http11),
        MessageOutcome::Delivered
    );
    assert_eq!(
        kinds(&world, 3),
        [(1, EventKind::Message { text: "hi".into() })]
    );
    // Two echo bots do not talk forever: 2 answers 1 once, 1 stays quiet.
    world.send_message(1, 2, "ping", Origin::Control);
    let message = |text: &str| EventKind::Message { text: text.into() };
    assert_eq!(kinds(&world, 1), [(3, message("hi")), (2, message("ping"))]);
    assert_eq!(kinds(&world, 2), [(1, message("ping"))]);
    let long = "好".repeat(MAX_TEXT_BYTES);
    world.send_message(3, 3, &long, Origin::Http11);
    let events = kinds(&world, 3);
    let Some((_, EventKind::Message { text })) = events.first() else {
        panic!("{events:?}")
    };
    assert!(text.len() <= MAX_TEXT_BYTES && text.chars().all(|c| c == '好'));
    assert_eq!(
        world.send_message(3, 99, "x", Origin::Http11),
        MessageOutcome::UnknownRecipient
    );
}

#[tokio::test]
async fn waiting_for_events_wakes_up_on_delivery() {
    let world = Arc::new(World::new(
        vec![
            seed(1, Presence::Online, false),
            seed(2, Presence::Online, false),
        ],
        &[],
        Duration::from_secs(60),
    ));
    let waiter = {
        let world = Arc::clone(&world);
        tokio::spawn(async move { world.wait_for_events(1, Duration::from_secs(30)).await })
    };
    tokio::task::yield_now().await;
    world.send_message(2, 1, "wake", Origin::Control);
    assert!(waiter.await.unwrap());
    assert!(!world.wait_for_events(2, Duration::from_millis(1)).await);
}

/// 10,000 sessions, each polling from its own task on two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_sessions_poll_concurrently() {
    const N: u64 = 10_000;
    let seeds = (0..N)
        .map(|i| seed(100_000 + i, Presence::Offline, false))
        .collect();
    let pairs: Vec<[u64; 2]> = (0..N)
        .step_by(2)
        .map(|i| [100_000 + i, 100_001 + i])
        .collect();
    let world = Arc::new(World::new(seeds, &pairs, Duration::from_secs(600)));
    let pw = PasswordHash::from_password("pw");
    let tasks: Vec<_> = (0..N)
        .map(|i| {
            let (world, pw) = (Arc::clone(&world), pw.clone());
            tokio::spawn(async move {
                let key = key(100_000 + i);
                assert_eq!(
                    world.login(key, &pw, Origin::Http11, ReloginPolicy::Replace),
                    LoginOutcome::LoggedIn
                );
                let mut seen = 0;
                for _ in 0..5 {
                    tokio::task::yield_now().await;
                    assert!(world.touch(key));
                    seen += world.take_events(key.uin, |_| true).len();
                }
                seen
            })
        })
        .collect();
    let mut events = 0;
    for task in tasks {
        events += task.await.unwrap();
    }
    assert_eq!(world.session_count(), 10_000);
    // Whoever of a pair logged in second told the first one, exactly once.
    let left: usize = (0..N)
        .map(|i| world.take_events(100_000 + i, |_| true).len())
        .sum();
    assert_eq!(events + left, 5_000);
}
