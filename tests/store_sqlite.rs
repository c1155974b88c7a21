//! Integration tests for the SQLite store: schema migrations, file
//! permissions, reopening, a round trip through every table, and corrupt
//! rows surfacing as errors instead of panics.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use qqbridge::core::model::{ChatId, GroupNumber, Presence, Uin};
use qqbridge::qq::Protocol;
use qqbridge::secret::Secret;
use qqbridge::store::{
    MatrixMember, MatrixRoom, MessageLink, NewOutboxItem, Portal, QqLogin, SqliteStore, Store,
    StoreError,
};
use tempfile::TempDir;

fn db_path(dir: &TempDir) -> PathBuf {
    dir.path().join("qqbridge.db")
}

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn user_version(path: &Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

fn raw_sql(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

fn login(user: &str, uin: u64, protocol: Protocol, password: &str, presence: Presence) -> QqLogin {
    QqLogin {
        user: user.into(),
        uin: Uin(uin),
        protocol,
        password: Secret::new(password),
        presence,
    }
}

fn portal(owner: u64, chat: ChatId, side: &str, target: &str) -> Portal {
    Portal {
        owner: Uin(owner),
        chat,
        side: side.into(),
        target: target.into(),
    }
}

fn link(side: &str, side_id: &str, chat: ChatId, message: &str) -> MessageLink {
    MessageLink {
        side: side.into(),
        side_id: side_id.into(),
        owner: Uin(10001),
        chat,
        message: message.into(),
    }
}

fn session(group: u64, uin: u64) -> ChatId {
    ChatId::Session {
        via_group: GroupNumber(group),
        uin: Uin(uin),
    }
}

// ---- opening and migrations

#[tokio::test]
async fn migrations_run_on_an_empty_file() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).unwrap();
    assert!(store.logins().await.unwrap().is_empty());
    drop(store);
    assert_eq!(
        user_version(&path),
        i64::from(SqliteStore::schema_version())
    );

    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap();
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for table in [
        "message_links",
        "outbox",
        "portals",
        "puppets",
        "qq_logins",
        "settings",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "missing table {table}: {tables:?}"
        );
    }
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn opening_twice_does_not_rerun_migrations() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    drop(SqliteStore::open(&path).unwrap());
    let store = SqliteStore::open(&path).unwrap();
    store.set_setting("k", "v").await.unwrap();
    assert_eq!(
        user_version(&path),
        i64::from(SqliteStore::schema_version())
    );
}

#[tokio::test]
async fn reopening_keeps_data() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    {
        let store = SqliteStore::open(&path).unwrap();
        store
            .save_login(&login("@a:x", 10001, Protocol::Webqq, "pw", Presence::Away))
            .await
            .unwrap();
        store.set_setting("as_token", "t0k").await.unwrap();
        store
            .save_portal(&portal(
                10001,
                ChatId::Group(GroupNumber(7)),
                "matrix",
                "!r:x",
            ))
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let logins = store.logins().await.unwrap();
    assert_eq!(
        logins,
        vec![login("@a:x", 10001, Protocol::Webqq, "pw", Presence::Away)]
    );
    assert_eq!(
        store.get_setting("as_token").await.unwrap().as_deref(),
        Some("t0k")
    );
    assert_eq!(store.portals("matrix").await.unwrap().len(), 1);
}

#[tokio::test]
async fn database_file_is_private() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).unwrap();
    store.set_setting("k", "v").await.unwrap();
    assert_eq!(mode_of(&path), 0o600);
    for suffix in ["-wal", "-shm"] {
        let sibling = PathBuf::from(format!("{}{suffix}", path.display()));
        // The store is still open, so WAL mode keeps both files around.
        assert!(sibling.exists(), "{suffix} missing");
        assert_eq!(mode_of(&sibling), 0o600, "{suffix}");
    }
}

#[tokio::test]
async fn an_existing_open_file_is_tightened() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    drop(SqliteStore::open(&path).unwrap());
    for file in std::fs::read_dir(dir.path()).unwrap() {
        let file = file.unwrap().path();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    std::fs::write(&wal, b"").unwrap();
    std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o666)).unwrap();

    let _store = SqliteStore::open(&path).unwrap();
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(&wal), 0o600);
}

#[tokio::test]
async fn dropping_the_store_closes_the_database() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).unwrap();
    let copy = store.clone();
    store.set_setting("k", "v").await.unwrap();
    drop(store);
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    assert!(wal.exists(), "a clone still has the database open");
    // The last connection to close folds the log in and deletes it; by the
    // time the drop returns, both the store's and the checkpointer's have.
    drop(copy);
    assert!(!wal.exists(), "the log outlived the store");
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(
        reopened.get_setting("k").await.unwrap().as_deref(),
        Some("v")
    );
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    drop(SqliteStore::open(&path).unwrap());
    let newer = SqliteStore::schema_version() + 1;
    raw_sql(&path, &format!("PRAGMA user_version = {newer}"));
    match SqliteStore::open(&path) {
        Err(StoreError::TooNew { found, known }) => {
            assert_eq!(found, newer);
            assert_eq!(known, SqliteStore::schema_version());
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    // Refusing must not have touched the version.
    assert_eq!(user_version(&path), i64::from(newer));
}

#[test]
fn a_missing_directory_is_an_open_error() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("nope").join("qqbridge.db");
    match SqliteStore::open(&path) {
        Err(StoreError::Open { path: p, .. }) => assert!(p.contains("nope")),
        other => panic!("expected Open error, got {other:?}"),
    }
}

// ---- logins

#[tokio::test]
async fn logins_round_trip() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a1 = login("@a:x", 10001, Protocol::Http11, "s3cret", Presence::Online);
    let a2 = login(
        "@a:x",
        4_000_000_000,
        Protocol::Webqq,
        "",
        Presence::Invisible,
    );
    let b = login(
        "gateway:bob",
        10002,
        Protocol::Webqq,
        "密码",
        Presence::Busy,
    );
    for l in [&b, &a2, &a1] {
        store.save_login(l).await.unwrap();
    }
    assert_eq!(
        store.logins().await.unwrap(),
        vec![a1.clone(), a2.clone(), b.clone()]
    );
    assert_eq!(
        store.logins_of("@a:x").await.unwrap(),
        vec![a1.clone(), a2.clone()]
    );
    assert!(store.logins_of("@nobody:x").await.unwrap().is_empty());

    // Saving again replaces protocol, password and presence.
    let a1b = login("@a:x", 10001, Protocol::Webqq, "new", Presence::Offline);
    store.save_login(&a1b).await.unwrap();
    let of_a = store.logins_of("@a:x").await.unwrap();
    assert_eq!(of_a[0], a1b);
    assert_eq!(of_a[0].password.expose(), "new");

    store.delete_login("@a:x", Uin(10001)).await.unwrap();
    assert_eq!(store.logins_of("@a:x").await.unwrap(), vec![a2]);
    // Deleting what is not there is not an error.
    store.delete_login("@a:x", Uin(10001)).await.unwrap();
}

#[tokio::test]
async fn every_presence_and_protocol_round_trips() {
    let store = SqliteStore::open_in_memory().unwrap();
    let presences = [
        Presence::Online,
        Presence::Away,
        Presence::Busy,
        Presence::Invisible,
        Presence::Offline,
    ];
    for (i, presence) in presences.into_iter().enumerate() {
        let protocol = if i % 2 == 0 {
            Protocol::Http11
        } else {
            Protocol::Webqq
        };
        let l = login("u", 10000 + i as u64, protocol, "p", presence);
        store.save_login(&l).await.unwrap();
        assert_eq!(store.logins_of("u").await.unwrap()[i], l);
    }
}

// ---- portals

#[tokio::test]
async fn portals_round_trip_every_chat_kind() {
    let store = SqliteStore::open_in_memory().unwrap();
    let chats = [
        ChatId::Buddy(Uin(10002)),
        ChatId::Group(GroupNumber(346_167_134)),
        session(346_167_134, 3_924_684_389),
    ];
    for (i, chat) in chats.iter().enumerate() {
        let p = portal(10001, *chat, "matrix", &format!("!room{i}:x"));
        store.save_portal(&p).await.unwrap();
        assert_eq!(
            store.portal(Uin(10001), chat, "matrix").await.unwrap(),
            Some(p)
        );
    }
    assert_eq!(store.portals("matrix").await.unwrap().len(), 3);
    assert!(store.portals("gateway").await.unwrap().is_empty());
    assert_eq!(
        store
            .portal(Uin(10001), &chats[0], "irc:libera")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.portal(Uin(10009), &chats[0], "matrix").await.unwrap(),
        None
    );
}

#[tokio::test]
async fn portal_save_replaces_target_and_lookup_by_target_finds_all_owners() {
    let store = SqliteStore::open_in_memory().unwrap();
    let group = ChatId::Group(GroupNumber(42));
    store
        .save_portal(&portal(10001, group, "irc:libera", "#old"))
        .await
        .unwrap();
    store
        .save_portal(&portal(10001, group, "irc:libera", "#qq"))
        .await
        .unwrap();
    store
        .save_portal(&portal(10002, group, "irc:libera", "#qq"))
        .await
        .unwrap();
    store
        .save_portal(&portal(10003, group, "matrix", "#qq"))
        .await
        .unwrap();

    let shared = store.portal_by_target("irc:libera", "#qq").await.unwrap();
    assert_eq!(
        shared,
        vec![
            portal(10001, group, "irc:libera", "#qq"),
            portal(10002, group, "irc:libera", "#qq"),
        ]
    );
    assert!(store
        .portal_by_target("irc:libera", "#old")
        .await
        .unwrap()
        .is_empty());

    store
        .delete_portal(Uin(10001), &group, "irc:libera")
        .await
        .unwrap();
    assert_eq!(
        store
            .portal(Uin(10001), &group, "irc:libera")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .portal_by_target("irc:libera", "#qq")
            .await
            .unwrap()
            .len(),
        1
    );
    // The same chat on another side is untouched.
    assert_eq!(store.portals("matrix").await.unwrap().len(), 1);
}

// ---- puppets

#[tokio::test]
async fn puppet_claims_are_idempotent_and_exclusive() {
    let store = SqliteStore::open_in_memory().unwrap();
    let s = "irc:libera";
    assert_eq!(
        store
            .claim_puppet_name(s, Uin(1), "alice")
            .await
            .unwrap()
            .as_deref(),
        Some("alice")
    );
    // A second claim for the same uin returns the stored name, whatever is
    // proposed.
    assert_eq!(
        store
            .claim_puppet_name(s, Uin(1), "other")
            .await
            .unwrap()
            .as_deref(),
        Some("alice")
    );
    // Another uin cannot take it.
    assert_eq!(
        store.claim_puppet_name(s, Uin(2), "alice").await.unwrap(),
        None
    );
    // But can in another scope.
    assert_eq!(
        store
            .claim_puppet_name("matrix", Uin(2), "alice")
            .await
            .unwrap()
            .as_deref(),
        Some("alice")
    );
    assert_eq!(
        store.puppet_name(s, Uin(1)).await.unwrap().as_deref(),
        Some("alice")
    );
    assert_eq!(store.puppet_name(s, Uin(2)).await.unwrap(), None);
    assert_eq!(
        store.puppet_by_name(s, "alice").await.unwrap(),
        Some(Uin(1))
    );
    assert_eq!(
        store.puppet_by_name("matrix", "alice").await.unwrap(),
        Some(Uin(2))
    );
    assert_eq!(store.puppet_by_name(s, "bob").await.unwrap(), None);
}

#[tokio::test]
async fn puppet_names_collide_case_insensitively() {
    let store = SqliteStore::open_in_memory().unwrap();
    let s = "irc:libera";
    assert_eq!(
        store
            .claim_puppet_name(s, Uin(1), "Foo")
            .await
            .unwrap()
            .as_deref(),
        Some("Foo")
    );
    assert_eq!(
        store.claim_puppet_name(s, Uin(2), "foo").await.unwrap(),
        None
    );
    assert_eq!(
        store.claim_puppet_name(s, Uin(2), "FOO").await.unwrap(),
        None
    );

    assert_eq!(
        store
            .claim_puppet_name(s, Uin(3), "[a]")
            .await
            .unwrap()
            .as_deref(),
        Some("[a]")
    );
    assert_eq!(
        store.claim_puppet_name(s, Uin(4), "{a}").await.unwrap(),
        None
    );
    assert_eq!(
        store.claim_puppet_name(s, Uin(4), "{A}").await.unwrap(),
        None
    );
    assert_eq!(
        store
            .claim_puppet_name(s, Uin(5), r"x\y~")
            .await
            .unwrap()
            .as_deref(),
        Some(r"x\y~")
    );
    assert_eq!(
        store.claim_puppet_name(s, Uin(6), "X|Y^").await.unwrap(),
        None
    );

    // Lookups fold too, and return the name as it was stored.
    assert_eq!(store.puppet_by_name(s, "FOO").await.unwrap(), Some(Uin(1)));
    assert_eq!(store.puppet_by_name(s, "{A}").await.unwrap(), Some(Uin(3)));
    assert_eq!(
        store.puppet_name(s, Uin(3)).await.unwrap().as_deref(),
        Some("[a]")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_give_a_name_to_exactly_one_uin() {
    // Two stores on one file stand in for two processes: the name must be
    // unique across connections, not just behind one mutex.
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let stores = [
        SqliteStore::open(&path).unwrap(),
        SqliteStore::open(&path).unwrap(),
    ];
    let mut tasks = Vec::new();
    for uin in 1..=20u64 {
        let store = stores[(uin % 2) as usize].clone();
        let name = if uin % 3 == 0 { "Popular" } else { "popular" };
        tasks.push(tokio::spawn(async move {
            store.claim_puppet_name("irc:libera", Uin(uin), name).await
        }));
    }
    let mut winners = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        if task.await.unwrap().unwrap().is_some() {
            winners.push(Uin(i as u64 + 1));
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(
        stores[0]
            .puppet_by_name("irc:libera", "POPULAR")
            .await
            .unwrap(),
        Some(winners[0])
    );
}

#[tokio::test]
async fn puppet_rename() {
    let store = SqliteStore::open_in_memory().unwrap();
    let s = "gateway:bob";
    store.claim_puppet_name(s, Uin(1), "alice").await.unwrap();
    store.claim_puppet_name(s, Uin(2), "carol").await.unwrap();

    assert!(store.rename_puppet(s, Uin(1), "Alicia").await.unwrap());
    assert_eq!(
        store.puppet_name(s, Uin(1)).await.unwrap().as_deref(),
        Some("Alicia")
    );
    assert_eq!(
        store.puppet_by_name(s, "alicia").await.unwrap(),
        Some(Uin(1))
    );
    // The old name is free again.
    assert_eq!(store.puppet_by_name(s, "alice").await.unwrap(), None);
    assert_eq!(
        store
            .claim_puppet_name(s, Uin(3), "alice")
            .await
            .unwrap()
            .as_deref(),
        Some("alice")
    );

    // Taken by another uin, in any case.
    assert!(!store.rename_puppet(s, Uin(1), "CAROL").await.unwrap());
    assert_eq!(
        store.puppet_name(s, Uin(1)).await.unwrap().as_deref(),
        Some("Alicia")
    );
    // Changing only the case of one's own name is fine.
    assert!(store.rename_puppet(s, Uin(1), "ALICIA").await.unwrap());
    assert_eq!(
        store.puppet_name(s, Uin(1)).await.unwrap().as_deref(),
        Some("ALICIA")
    );
    // A uin without a name yet gets one.
    assert!(store.rename_puppet(s, Uin(9), "dave").await.unwrap());
    assert_eq!(store.puppet_by_name(s, "Dave").await.unwrap(), Some(Uin(9)));
}

// ---- message links

#[tokio::test]
async fn message_links_round_trip_and_detect_duplicates() {
    let store = SqliteStore::open_in_memory().unwrap();
    let from_qq = link("qq:10001", "r-77", ChatId::Group(GroupNumber(5)), "m1");
    let to_matrix = link("matrix", "$ev:x", ChatId::Group(GroupNumber(5)), "m1");
    let to_irc = link("irc:libera", "g-1", session(5, 10002), "m1");
    let other = link("matrix", "$other:x", ChatId::Buddy(Uin(10002)), "m2");

    assert_eq!(
        store
            .insert_message_links(&[from_qq.clone(), to_matrix.clone()])
            .await
            .unwrap(),
        vec![true, true]
    );
    // Same (side, side_id) again, even with different contents: a duplicate,
    // reported per link beside new ones in the same call.
    let again = link("qq:10001", "r-77", ChatId::Buddy(Uin(1)), "m9");
    assert_eq!(
        store
            .insert_message_links(&[to_irc.clone(), again, other.clone()])
            .await
            .unwrap(),
        vec![true, false, true]
    );
    assert_eq!(
        store
            .insert_message_links(std::slice::from_ref(&from_qq))
            .await
            .unwrap(),
        vec![false]
    );

    assert_eq!(
        store.message_link("qq:10001", "r-77").await.unwrap(),
        Some(from_qq.clone())
    );
    assert_eq!(
        store.message_link("irc:libera", "g-1").await.unwrap(),
        Some(to_irc.clone())
    );
    assert_eq!(store.message_link("matrix", "r-77").await.unwrap(), None);

    assert_eq!(
        store.links_of_message("m1").await.unwrap(),
        vec![from_qq, to_matrix, to_irc]
    );
    assert_eq!(store.links_of_message("m2").await.unwrap(), vec![other]);
    assert!(store.links_of_message("m3").await.unwrap().is_empty());
}

// ---- outbox

#[tokio::test]
async fn outbox_delivers_in_order_per_destination() {
    let store = SqliteStore::open_in_memory().unwrap();
    let a = store
        .enqueue("matrix", "room1", r#"{"n":1}"#)
        .await
        .unwrap();
    let b = store
        .enqueue("qq:10001", "group:5", r#"{"n":2}"#)
        .await
        .unwrap();
    let c = store
        .enqueue("matrix", "room2", r#"{"n":3}"#)
        .await
        .unwrap();
    let d = store
        .enqueue("matrix", "room1", r#"{"n":4}"#)
        .await
        .unwrap();
    assert!(a < b && b < c && c < d);

    let pending = store.pending("matrix", 10).await.unwrap();
    assert_eq!(
        pending.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![a, c, d]
    );
    assert_eq!(pending[0].destination, "matrix");
    assert_eq!(pending[0].lane, "room1");
    assert_eq!(pending[0].payload, r#"{"n":1}"#);
    assert_eq!(pending[0].attempts, 0);
    assert_eq!(pending[0].last_error, None);

    let first_two = store.pending("matrix", 2).await.unwrap();
    assert_eq!(
        first_two.iter().map(|i| i.id).collect::<Vec<_>>(),
        vec![a, c]
    );
    assert!(store.pending("matrix", 0).await.unwrap().is_empty());
    assert_eq!(store.pending("qq:10001", 10).await.unwrap()[0].id, b);
    assert!(store.pending("irc:libera", 10).await.unwrap().is_empty());

    store
        .record_attempt(a, "503 from homeserver")
        .await
        .unwrap();
    store.record_attempt(a, "timed out").await.unwrap();
    let head = &store.pending("matrix", 1).await.unwrap()[0];
    assert_eq!(head.id, a);
    assert_eq!(head.attempts, 2);
    assert_eq!(head.last_error.as_deref(), Some("timed out"));

    store.complete(&[a]).await.unwrap();
    store.complete(&[a]).await.unwrap();
    assert_eq!(
        store
            .pending("matrix", 10)
            .await
            .unwrap()
            .iter()
            .map(|i| i.id)
            .collect::<Vec<_>>(),
        vec![c, d]
    );
    // Ids are never reused, even after the newest item is completed.
    store.complete(&[d]).await.unwrap();
    let e = store.enqueue("matrix", "room1", "{}").await.unwrap();
    assert!(e > d);
}

#[tokio::test]
async fn outbox_survives_reopen() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let (a, b);
    {
        let store = SqliteStore::open(&path).unwrap();
        a = store.enqueue("irc:libera", "#qq", "one").await.unwrap();
        b = store.enqueue("irc:libera", "#qq", "two").await.unwrap();
        store.record_attempt(a, "connection reset").await.unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let pending = store.pending("irc:libera", 10).await.unwrap();
    assert_eq!(pending.len(), 2);
    assert_eq!((pending[0].id, pending[0].payload.as_str()), (a, "one"));
    assert_eq!(pending[0].attempts, 1);
    assert_eq!(pending[0].last_error.as_deref(), Some("connection reset"));
    assert_eq!((pending[1].id, pending[1].payload.as_str()), (b, "two"));
    let c = store.enqueue("irc:libera", "#qq", "three").await.unwrap();
    assert!(c > b);
}

#[tokio::test]
async fn outbox_error_text_is_bounded() {
    let store = SqliteStore::open_in_memory().unwrap();
    let id = store.enqueue("matrix", "r", "{}").await.unwrap();
    store
        .record_attempt(id, &"é".repeat(100_000))
        .await
        .unwrap();
    let stored = store.pending("matrix", 1).await.unwrap()[0]
        .last_error
        .clone()
        .unwrap();
    assert!(stored.chars().count() < 10_000);
    assert!(stored.chars().all(|c| c == 'é'));
}

// ---- settings

#[tokio::test]
async fn settings_round_trip() {
    let store = SqliteStore::open_in_memory().unwrap();
    assert_eq!(store.get_setting("hs_token").await.unwrap(), None);
    store.set_setting("hs_token", "abc").await.unwrap();
    store.set_setting("other", "").await.unwrap();
    assert_eq!(
        store.get_setting("hs_token").await.unwrap().as_deref(),
        Some("abc")
    );
    store.set_setting("hs_token", "def").await.unwrap();
    assert_eq!(
        store.get_setting("hs_token").await.unwrap().as_deref(),
        Some("def")
    );
    assert_eq!(
        store.get_setting("other").await.unwrap().as_deref(),
        Some("")
    );
}

// ---- corruption

fn expect_corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>, needles: &[&str]) {
    match result {
        Err(StoreError::Corrupt(msg)) => {
            eprintln!("corrupt: {msg}");
            for needle in needles {
                assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
            }
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn corrupt_rows_are_errors_not_panics() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    drop(SqliteStore::open(&path).unwrap());
    raw_sql(
        &path,
        "INSERT INTO portals (owner, chat, side, target) VALUES (1, 'room:5', 'matrix', '!r');
         INSERT INTO portals (owner, chat, side, target) VALUES ('abc', 'group:5', 'gateway', '#g');
         INSERT INTO message_links (side, side_id, owner, chat, message)
             VALUES ('matrix', '$e', 1, 'sess:1', 'm');
         INSERT INTO qq_logins (user, uin, protocol, password, presence)
             VALUES ('u1', 1, 'oicq', 'do-not-leak', 'online');
         INSERT INTO qq_logins (user, uin, protocol, password, presence)
             VALUES ('u2', 1, 'webqq', 'do-not-leak', 'sleeping');
         INSERT INTO outbox (destination, lane, payload, attempts) VALUES ('d', 'l', 'p', -1);",
    );
    let store = SqliteStore::open(&path).unwrap();

    expect_corrupt(store.portals("matrix").await, &["portals", "chat"]);
    expect_corrupt(
        store.portal_by_target("matrix", "!r").await,
        &["portals", "chat"],
    );
    expect_corrupt(store.portals("gateway").await, &["portals.owner"]);
    expect_corrupt(
        store.message_link("matrix", "$e").await,
        &["message_links", "chat"],
    );
    expect_corrupt(
        store.links_of_message("m").await,
        &["message_links", "chat"],
    );
    expect_corrupt(store.logins_of("u1").await, &["qq_logins", "protocol"]);
    expect_corrupt(store.logins_of("u2").await, &["qq_logins", "presence"]);
    expect_corrupt(store.pending("d", 10).await, &["outbox", "attempts"]);

    // The message never carries the password.
    match store.logins().await {
        Err(e) => assert!(!e.to_string().contains("do-not-leak")),
        Ok(v) => panic!("expected an error, got {} logins", v.len()),
    }
    // Healthy rows elsewhere still work.
    store.set_setting("k", "v").await.unwrap();
}

/// A message link and the outbox item it names are written together or not
/// at all (closing the window where a crash kept the link, so the replayed
/// message looked like a duplicate, but lost the message). A failing outbox
/// insert, injected with a trigger, must leave no link behind.
#[tokio::test]
async fn a_link_and_its_queued_message_are_stored_together_or_not_at_all() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let event = link("matrix", "$event1", ChatId::Buddy(Uin(10002)), "m1");
    {
        let store = SqliteStore::open(&path).unwrap();
        raw_sql(
            &path,
            "CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox WHEN NEW.payload = 'boom'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        );
        let failed = store
            .enqueue_all("qq:@a:x", vec![queued(&event, "boom")], None)
            .await;
        assert!(failed.is_err(), "the injected failure surfaces");
        assert_eq!(store.message_link("matrix", "$event1").await.unwrap(), None);
        assert_eq!(waiting(&store, "qq:@a:x").await, 0);

        let ids = store
            .enqueue_all("qq:@a:x", vec![queued(&event, "hello")], None)
            .await
            .unwrap();
        assert!(ids[0].is_some(), "queued once the failure is gone");
        // The replay of the same event is a duplicate: nothing more queued.
        let again = store
            .enqueue_all("qq:@a:x", vec![queued(&event, "hello")], None)
            .await
            .unwrap();
        assert_eq!(again, vec![None]);
    }
    // Both survive a reopen (a restart after a crash).
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.message_link("matrix", "$event1").await.unwrap(),
        Some(event)
    );
    let pending = store.pending("qq:@a:x", 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].payload, "hello");
    assert_eq!(waiting(&store, "qq:@a:x").await, 1);
    assert_eq!(waiting(&store, "qq:@b:x").await, 0);
}

/// How many items wait for `destination`.
async fn waiting(store: &SqliteStore, destination: &str) -> usize {
    store.pending(destination, 100_000).await.unwrap().len()
}

fn queued(link: &MessageLink, payload: &str) -> NewOutboxItem {
    NewOutboxItem {
        link: Some(link.clone()),
        lane: "10002".into(),
        payload: payload.into(),
    }
}

/// Several messages with their links go in one transaction: a duplicate
/// among them is skipped alone, and one failure stores none of them (the
/// caller reports the whole burst, so nothing is half-written).
#[tokio::test]
async fn a_burst_of_linked_messages_is_stored_whole_with_duplicates_skipped() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).unwrap();
    let chat = ChatId::Buddy(Uin(10002));
    let (a, b, c) = (
        link("qq:1", "a", chat, "m-a"),
        link("qq:1", "b", chat, "m-b"),
        link("qq:1", "c", chat, "m-c"),
    );
    let ids = store
        .enqueue_all("to:x", vec![queued(&a, "A")], None)
        .await
        .unwrap();
    assert!(ids[0].is_some());

    raw_sql(
        &path,
        "CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox WHEN NEW.payload = 'boom'
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    );
    let failed = store
        .enqueue_all("to:x", vec![queued(&b, "B"), queued(&c, "boom")], None)
        .await;
    assert!(failed.is_err());
    assert_eq!(
        store.message_link("qq:1", "b").await.unwrap(),
        None,
        "b rolled back"
    );
    assert_eq!(waiting(&store, "to:x").await, 1);

    let ids = store
        .enqueue_all(
            "to:x",
            vec![queued(&b, "B"), queued(&a, "A again"), queued(&c, "C")],
            None,
        )
        .await
        .unwrap();
    assert!(ids[0].is_some() && ids[2].is_some());
    assert_eq!(ids[1], None, "a was known: a duplicate");
    assert!(ids[0] < ids[2], "ids grow in burst order");
    let payloads: Vec<String> = store
        .pending("to:x", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.payload)
        .collect();
    assert_eq!(payloads, vec!["A", "B", "C"]);
}

/// The per-user flood limit is counted in the queueing transaction: below
/// it a whole burst goes in (unlinked items too), at it nothing does and
/// the count comes back.
#[tokio::test]
async fn a_capped_queue_refuses_a_burst_whole_once_it_is_full() {
    let dir = TempDir::new().unwrap();
    let store = SqliteStore::open(&db_path(&dir)).unwrap();
    let plain = |payload: &str| NewOutboxItem {
        link: None,
        lane: "lane".into(),
        payload: payload.into(),
    };
    let ids = store
        .enqueue_all("qq:1", vec![plain("a"), plain("b"), plain("c")], Some(3))
        .await
        .unwrap();
    assert!(
        ids.iter().all(Option::is_some),
        "unlinked items are never duplicates"
    );
    let full = store.enqueue_all("qq:1", vec![plain("d")], Some(3)).await;
    assert!(
        matches!(full, Err(StoreError::QueueFull { waiting: 3 })),
        "{full:?}"
    );
    assert_eq!(
        waiting(&store, "qq:1").await,
        3,
        "nothing of the refused burst stored"
    );
    // Another destination has its own count; a higher cap lets a burst in.
    store
        .enqueue_all("qq:2", vec![plain("x")], Some(1))
        .await
        .unwrap();
    store
        .enqueue_all("qq:1", vec![plain("d"), plain("e")], Some(4))
        .await
        .unwrap();
    assert_eq!(
        waiting(&store, "qq:1").await,
        5,
        "checked once: a burst may pass the cap"
    );
}

/// Commits do not checkpoint the write-ahead log themselves any more (that
/// put a multi-millisecond stall on every few hundredth message); a
/// background thread folds it into the database file shortly after.
#[tokio::test]
async fn the_log_reaches_the_database_file_without_a_commit_checkpointing() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).unwrap();
    let before = std::fs::metadata(&path).unwrap().len();
    let payload = "x".repeat(1000);
    for _ in 0..2000 {
        store.enqueue("qq:1", "lane", &payload).await.unwrap();
    }
    // 2 MB of payloads in a few thousand log pages: below the commits' own
    // checkpoint threshold (10,000 pages), so only the background thread
    // can have moved them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let now = std::fs::metadata(&path).unwrap().len();
        if now > before + 1_500_000 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "database file still {now} bytes (was {before}): no checkpoint"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(waiting(&store, "qq:1").await, 2000);
}

/// Waiting items merged into one: the kept item carries the new payload,
/// the absorbed ones are gone, and when one of them is no longer queued
/// nothing changes at all.
#[tokio::test]
async fn merging_outbox_items_rewrites_one_and_removes_the_rest_or_nothing() {
    let dir = TempDir::new().unwrap();
    let store = SqliteStore::open(&db_path(&dir)).unwrap();
    let mut ids = Vec::new();
    for payload in ["a", "b", "c", "d"] {
        ids.push(store.enqueue("matrix:!r", "!r", payload).await.unwrap());
    }
    let payloads = |items: Vec<qqbridge::store::OutboxItem>| {
        items
            .into_iter()
            .map(|i| (i.id, i.payload))
            .collect::<Vec<_>>()
    };

    store
        .merge_outbox_items(ids[0], "a+b+c", &[ids[1], ids[2]])
        .await
        .unwrap();
    let pending = payloads(store.pending("matrix:!r", 10).await.unwrap());
    assert_eq!(
        pending,
        vec![(ids[0], "a+b+c".into()), (ids[3], "d".into())]
    );

    // ids[1] is gone: the whole merge is refused and rolled back.
    let refused = store
        .merge_outbox_items(ids[0], "changed", &[ids[3], ids[1]])
        .await;
    assert!(refused.is_err());
    let after = payloads(store.pending("matrix:!r", 10).await.unwrap());
    assert_eq!(after, pending, "nothing changed");
}

fn room(id: &str, user_left: bool) -> MatrixRoom {
    MatrixRoom {
        room_id: id.into(),
        kind: "group".into(),
        user: "@carol:x".into(),
        creator: "@bot:x".into(),
        user_left,
    }
}

fn member(room: &str, user: &str, displayname: Option<&str>) -> MatrixMember {
    MatrixMember {
        room_id: room.into(),
        user_id: user.into(),
        displayname: displayname.map(str::to_owned),
    }
}

/// Every lookup is made before each write too, so an answer kept from
/// before a write would show here.
#[tokio::test]
async fn lookups_follow_every_write_to_their_rows() {
    let store = SqliteStore::open_in_memory().unwrap();
    let group = ChatId::Group(GroupNumber(42));
    let p = |target: &str| portal(10001, group, "matrix", target);
    let look = || store.portal(Uin(10001), &group, "matrix");
    assert_eq!(look().await.unwrap(), None);
    store.save_portal(&p("!a:x")).await.unwrap();
    assert_eq!(look().await.unwrap(), Some(p("!a:x")));
    store.save_portal(&p("!b:x")).await.unwrap();
    assert_eq!(look().await.unwrap(), Some(p("!b:x")));
    store
        .delete_portal(Uin(10001), &group, "matrix")
        .await
        .unwrap();
    assert_eq!(look().await.unwrap(), None);

    let ghost = "@_qq_10002:x";
    assert_eq!(store.matrix_ghost(ghost).await.unwrap(), None);
    store.save_matrix_ghost(ghost, None).await.unwrap();
    assert_eq!(store.matrix_ghost(ghost).await.unwrap(), Some(None));
    store.save_matrix_ghost(ghost, Some("Bob")).await.unwrap();
    assert_eq!(
        store.matrix_ghost(ghost).await.unwrap(),
        Some(Some("Bob".into()))
    );

    assert_eq!(store.matrix_room("!a:x").await.unwrap(), None);
    store.save_matrix_room(&room("!a:x", false)).await.unwrap();
    assert_eq!(
        store.matrix_room("!a:x").await.unwrap(),
        Some(room("!a:x", false))
    );
    store.save_matrix_room(&room("!a:x", true)).await.unwrap();
    assert_eq!(
        store.matrix_room("!a:x").await.unwrap(),
        Some(room("!a:x", true))
    );

    for r in ["!a:x", "!b:x"] {
        assert_eq!(store.matrix_member(r, ghost).await.unwrap(), None);
        store
            .save_matrix_member(&member(r, ghost, None))
            .await
            .unwrap();
        assert_eq!(
            store.matrix_member(r, ghost).await.unwrap(),
            Some(member(r, ghost, None))
        );
    }
    store
        .save_matrix_member(&member("!a:x", ghost, Some("Bobby")))
        .await
        .unwrap();
    assert_eq!(
        store.matrix_member("!a:x", ghost).await.unwrap(),
        Some(member("!a:x", ghost, Some("Bobby")))
    );
    store
        .delete_matrix_members(Some("!a:x"), ghost)
        .await
        .unwrap();
    assert_eq!(store.matrix_member("!a:x", ghost).await.unwrap(), None);
    assert!(store.matrix_member("!b:x", ghost).await.unwrap().is_some());
    store
        .save_matrix_member(&member("!a:x", ghost, None))
        .await
        .unwrap();
    store
        .save_matrix_member(&member("!a:x", "@_qq_10003:x", None))
        .await
        .unwrap();
    store.delete_matrix_members(None, ghost).await.unwrap();
    for r in ["!a:x", "!b:x"] {
        assert_eq!(store.matrix_member(r, ghost).await.unwrap(), None, "{r}");
    }
    assert!(store
        .matrix_member("!a:x", "@_qq_10003:x")
        .await
        .unwrap()
        .is_some());
}

/// The rows a relayed message looks up are read from the file once: a
/// change made behind the store's back (which no supported setup does)
/// goes unseen until the store is opened again.
#[tokio::test]
async fn lookups_are_answered_from_memory_after_the_first() {
    let dir = TempDir::new().unwrap();
    let path = db_path(&dir);
    let store = SqliteStore::open(&path).unwrap();
    store.save_matrix_room(&room("!a:x", false)).await.unwrap();
    store
        .save_matrix_ghost("@_qq_10002:x", Some("Bob"))
        .await
        .unwrap();
    raw_sql(
        &path,
        "UPDATE matrix_rooms SET user_left = 1; UPDATE matrix_ghosts SET displayname = 'Eve';",
    );
    assert_eq!(
        store.matrix_room("!a:x").await.unwrap(),
        Some(room("!a:x", false))
    );
    assert_eq!(
        store.matrix_ghost("@_qq_10002:x").await.unwrap(),
        Some(Some("Bob".into()))
    );
    drop(store);
    let reopened = SqliteStore::open(&path).unwrap();
    assert_eq!(
        reopened.matrix_room("!a:x").await.unwrap(),
        Some(room("!a:x", true))
    );
    assert_eq!(
        reopened.matrix_ghost("@_qq_10002:x").await.unwrap(),
        Some(Some("Eve".into()))
    );
}
