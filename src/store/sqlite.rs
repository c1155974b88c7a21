//! The default [`Store`] backend: one SQLite file, opened in WAL mode and
//! brought up to the current schema at open.
//!
//! The file holds QQ passwords, so it is created with mode 0600 (and an
//! existing, more open file is tightened). rusqlite is blocking, so every
//! operation runs on the connection's own thread (`connection_thread`),
//! except a light one (an outbox row or a few) made while that thread is
//! idle, which runs at once on the caller's. In WAL mode with
//! `synchronous=NORMAL` a commit only writes to the OS's cache (checkpoints
//! sync, on the checkpointer's thread; a commit syncs only when it starts
//! the log over, which the checkpointer keeps rare), so such a call costs
//! the runtime less than the two thread hand-offs it saves.

mod checkpointer;
mod connection_thread;
mod linked;
mod lookup_cache;
mod matrix;
mod migrations;
mod puppets;
mod rows;

use std::fmt;
use std::fs::{self, OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection};

use super::{
    MatrixInbound, MatrixMedia, MatrixMember, MatrixRoom, MessageLink, NewOutboxItem, OutboxItem,
    Portal, QqLogin, Store, StoreError,
};
use crate::core::model::{ChatId, Uin};

/// Puppet names are unique under IRC rfc1459 casemapping (`Foo`/`foo`,
/// `[a]`/`{a}`), the way IRC servers compare nicks.
pub(crate) use crate::core::text::irc_lowercase as fold_name;
use rows::{
    db, decode_link, decode_login, decode_outbox, decode_portal, link_row, login_row, outbox_row,
    portal_row, query_all, query_opt, same, single, truncate_chars, uin_from_sql, uin_to_sql,
    LINK_COLUMNS, LOGIN_COLUMNS, OUTBOX_COLUMNS, PORTAL_COLUMNS,
};

/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A `last_error` is diagnostic only; a destination that echoes a whole HTTP
/// body must not grow the outbox row without bound on every retry.
const MAX_ERROR_CHARS: usize = 2000;

/// Most rows a call may touch and still run on its caller's thread: one
/// outbox read of the outbox's default batch.
const LIGHT_ROWS: usize = 64;

/// The SQLite store. Cloning is cheap and shares the connection.
#[derive(Clone)]
pub struct SqliteStore {
    thread: Arc<connection_thread::ConnectionThread>,
    /// Portals, Matrix rooms, ghosts and members as last read or written
    /// (see [`lookup_cache`]).
    cache: Arc<lookup_cache::LookupCache>,
    /// Background WAL checkpoints for a database on disk (see
    /// [`checkpointer`]). Dropping the last clone waits for both threads to
    /// close their connections, the store's first (fields drop in order).
    _checkpointer: Option<Arc<checkpointer::Checkpointer>>,
    /// For `Debug` only; `None` for an in-memory database.
    path: Option<PathBuf>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field(
                "path",
                &self.path.as_deref().unwrap_or(Path::new(":memory:")),
            )
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The schema version this build writes and understands.
    pub fn schema_version() -> u32 {
        migrations::known_version()
    }

    /// Opens (creating if needed) the database at `path` and migrates it.
    ///
    /// Fails with [`StoreError::TooNew`] if a newer qqbridge already wrote
    /// it, rather than guessing at a schema this build does not know.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        let open_err = |reason: String| StoreError::Open {
            path: path.display().to_string(),
            reason,
        };
        // Create the file ourselves so that it never exists with the umask's
        // permissions, not even for the moment before a chmod.
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| open_err(format!("cannot create: {e}")))?;
        restrict_mode(path).map_err(|e| open_err(format!("cannot restrict permissions: {e}")))?;

        let as_open_err = |e: StoreError| match e {
            StoreError::Database(reason) => open_err(reason),
            other => other,
        };
        let conn = Connection::open(path).map_err(|e| open_err(e.to_string()))?;
        let conn = Self::prepare(conn, true).map_err(as_open_err)?;
        let checkpoints = checkpointer::Checkpointer::start(path);
        if checkpoints.is_some() {
            // The migrations above have created the WAL; from now on the
            // thread keeps it short and commits only checkpoint as a backstop.
            if let Err(e) =
                conn.pragma_update(None, "wal_autocheckpoint", checkpointer::BACKSTOP_PAGES)
            {
                tracing::warn!(error = %e, "cannot move checkpoints off the commits");
            }
        }
        let mut store = Self::serve(conn, Some(path.to_owned())).map_err(as_open_err)?;
        store._checkpointer = checkpoints.map(Arc::new);

        // SQLite gives -wal and -shm the main file's mode, but a file left by
        // an older build or created under another umask may be more open.
        for suffix in ["-wal", "-shm"] {
            let mut sibling = path.as_os_str().to_owned();
            sibling.push(suffix);
            let sibling = PathBuf::from(sibling);
            if sibling.exists() {
                restrict_mode(&sibling).map_err(|e| {
                    open_err(format!("cannot restrict permissions of {suffix} file: {e}"))
                })?;
            }
        }
        Ok(store)
    }

    /// A private database that lives as long as the store (for tests).
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        let conn = Connection::open_in_memory().map_err(|e| StoreError::Open {
            path: ":memory:".into(),
            reason: e.to_string(),
        })?;
        Self::serve(Self::prepare(conn, false)?, None)
    }

    /// Sets the connection up and brings the schema up to date.
    fn prepare(mut conn: Connection, on_disk: bool) -> Result<Connection, StoreError> {
        let setup = |what: &str, e: rusqlite::Error| StoreError::Database(format!("{what}: {e}"));
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| setup("set busy timeout", e))?;
        // WAL lets readers run while the outbox is being written; the pragma
        // answers with the mode actually in effect ("memory" in memory).
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(|e| setup("enable WAL", e))?;
        if on_disk && !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(journal_mode = %mode, "SQLite refused WAL mode; continuing without it");
        }
        // NORMAL is durable across application crashes in WAL mode; only a
        // power loss can drop the last commits, which the outbox tolerates.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(|e| setup("set synchronous", e))?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| setup("enable foreign keys", e))?;
        // A statement with a bound LIMIT (`pending`: `LIMIT ?2`) is marked by
        // SQLite to be compiled again whenever that parameter is bound, so
        // the planner can use the value: a full SQL parse on every outbox
        // read (perf: ~4 % of the bridge's CPU relaying IRC → Matrix). The
        // query planner stability guarantee keeps the first plan, and no
        // plan of ours depends on a bound value.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(|e| setup("enable the query planner stability guarantee", e))?;
        migrations::migrate(&mut conn)?;
        Ok(conn)
    }

    fn serve(conn: Connection, path: Option<PathBuf>) -> Result<SqliteStore, StoreError> {
        Ok(SqliteStore {
            thread: Arc::new(connection_thread::ConnectionThread::start(conn)?),
            cache: Arc::default(),
            _checkpointer: None,
            path,
        })
    }

    /// A lookup [`lookup_cache`] keeps: the answer `table` has for `key`,
    /// or else `read` run with the connection, its answer kept there.
    async fn cached<K, V>(
        &self,
        op: &'static str,
        table: fn(&lookup_cache::LookupCache) -> &lookup_cache::Table<K, V>,
        key: K,
        read: fn(&Connection, &K) -> Result<V, StoreError>,
    ) -> Result<V, StoreError>
    where
        K: Eq + std::hash::Hash + Send + 'static,
        V: Clone + Send + 'static,
    {
        if let Some(known) = table(&self.cache).get(&key) {
            return Ok(known);
        }
        let cache = self.cache.clone();
        self.run(op, move |c| {
            let found = read(c, &key)?;
            table(&cache).put(key, found.clone());
            Ok(found)
        })
        .await
    }

    /// Runs `f` with the connection on its thread.
    async fn run<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.thread.submit(op, f).await
    }

    /// [`SqliteStore::run`] for a call of at most `rows` rows: up to
    /// [`LIGHT_ROWS`] it may run at once on this thread (see
    /// [`connection_thread`]).
    async fn run_sized<T, F>(&self, op: &'static str, rows: usize, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        if rows <= LIGHT_ROWS {
            self.thread.submit_light(op, f).await
        } else {
            self.thread.submit(op, f).await
        }
    }
}

/// Tightens to 0600 only when group or others have access, so a file the
/// owner made stricter still (e.g. 0400) is left as it is.
fn restrict_mode(path: &Path) -> std::io::Result<()> {
    let mode = fs::metadata(path)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(path, Permissions::from_mode(0o600))?;
    }
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    // ---- bridge users and their QQ logins

    async fn save_login(&self, login: &QqLogin) -> Result<(), StoreError> {
        const OP: &str = "save login";
        let login = login.clone();
        self.run(OP, move |c| {
            c.prepare_cached(
                "INSERT INTO qq_logins (user, uin, protocol, password, presence)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (user, uin) DO UPDATE SET protocol = excluded.protocol,
                     password = excluded.password, presence = excluded.presence",
            )
            .and_then(|mut s| {
                s.execute(params![
                    login.user,
                    uin_to_sql(login.uin),
                    login.protocol.as_str(),
                    login.password.expose(),
                    login.presence.as_str(),
                ])
            })
            .map_err(db(OP))?;
            Ok(())
        })
        .await
    }

    async fn delete_login(&self, user: &str, uin: Uin) -> Result<(), StoreError> {
        const OP: &str = "delete login";
        let user = user.to_owned();
        self.run(OP, move |c| {
            c.execute(
                "DELETE FROM qq_logins WHERE user = ?1 AND uin = ?2",
                params![user, uin_to_sql(uin)],
            )
            .map_err(db(OP))?;
            Ok(())
        })
        .await
    }

    async fn logins(&self) -> Result<Vec<QqLogin>, StoreError> {
        const OP: &str = "list logins";
        self.run(OP, move |c| {
            let sql = format!("SELECT {LOGIN_COLUMNS} FROM qq_logins ORDER BY user, uin");
            query_all(c, OP, "qq_logins", &sql, [], login_row, decode_login)
        })
        .await
    }

    async fn logins_of(&self, user: &str) -> Result<Vec<QqLogin>, StoreError> {
        const OP: &str = "list logins of user";
        let user = user.to_owned();
        self.run(OP, move |c| {
            let sql = format!("SELECT {LOGIN_COLUMNS} FROM qq_logins WHERE user = ?1 ORDER BY uin");
            query_all(c, OP, "qq_logins", &sql, [user], login_row, decode_login)
        })
        .await
    }

    // ---- portals

    async fn save_portal(&self, portal: &Portal) -> Result<(), StoreError> {
        const OP: &str = "save portal";
        let portal = portal.clone();
        let cache = self.cache.clone();
        self.run(OP, move |c| {
            c.execute(
                "INSERT INTO portals (owner, chat, side, target) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (owner, chat, side) DO UPDATE SET target = excluded.target",
                params![
                    uin_to_sql(portal.owner),
                    portal.chat.to_string(),
                    portal.side,
                    portal.target
                ],
            )
            .map_err(db(OP))?;
            let key = (portal.owner, portal.chat.to_string(), portal.side.clone());
            cache.portals.put(key, Some(portal));
            Ok(())
        })
        .await
    }

    async fn portal(
        &self,
        owner: Uin,
        chat: &ChatId,
        side: &str,
    ) -> Result<Option<Portal>, StoreError> {
        const OP: &str = "look up portal";
        let key = (owner, chat.to_string(), side.to_owned());
        self.cached(
            OP,
            |c| &c.portals,
            key,
            |c, (owner, chat, side)| {
                let sql = format!(
                    "SELECT {PORTAL_COLUMNS} FROM portals \
                     WHERE owner = ?1 AND chat = ?2 AND side = ?3"
                );
                query_opt(
                    c,
                    OP,
                    "portals",
                    &sql,
                    params![uin_to_sql(*owner), chat, side],
                    portal_row,
                    decode_portal,
                )
            },
        )
        .await
    }

    async fn portal_by_target(&self, side: &str, target: &str) -> Result<Vec<Portal>, StoreError> {
        const OP: &str = "look up portals by target";
        let (side, target) = (side.to_owned(), target.to_owned());
        self.run(OP, move |c| {
            let sql = format!(
                "SELECT {PORTAL_COLUMNS} FROM portals WHERE side = ?1 AND target = ?2
                 ORDER BY owner, chat"
            );
            query_all(
                c,
                OP,
                "portals",
                &sql,
                [side, target],
                portal_row,
                decode_portal,
            )
        })
        .await
    }

    async fn delete_portal(&self, owner: Uin, chat: &ChatId, side: &str) -> Result<(), StoreError> {
        const OP: &str = "delete portal";
        let key = (owner, chat.to_string(), side.to_owned());
        let cache = self.cache.clone();
        self.run(OP, move |c| {
            c.execute(
                "DELETE FROM portals WHERE owner = ?1 AND chat = ?2 AND side = ?3",
                params![uin_to_sql(owner), key.1, key.2],
            )
            .map_err(db(OP))?;
            cache.portals.put(key, None);
            Ok(())
        })
        .await
    }

    async fn portals(&self, side: &str) -> Result<Vec<Portal>, StoreError> {
        const OP: &str = "list portals";
        let side = side.to_owned();
        self.run(OP, move |c| {
            let sql = format!(
                "SELECT {PORTAL_COLUMNS} FROM portals WHERE side = ?1 ORDER BY owner, chat"
            );
            query_all(c, OP, "portals", &sql, [side], portal_row, decode_portal)
        })
        .await
    }

    // ---- puppets

    async fn claim_puppet_name(
        &self,
        scope: &str,
        uin: Uin,
        proposed: &str,
    ) -> Result<Option<String>, StoreError> {
        let (scope, proposed) = (scope.to_owned(), proposed.to_owned());
        self.run("claim puppet name", move |c| {
            puppets::claim_name(c, &scope, uin, &proposed)
        })
        .await
    }

    async fn puppet_name(&self, scope: &str, uin: Uin) -> Result<Option<String>, StoreError> {
        const OP: &str = "look up puppet name";
        let scope = scope.to_owned();
        self.run(OP, move |c| {
            query_opt(
                c,
                OP,
                "puppets",
                "SELECT name FROM puppets WHERE scope = ?1 AND uin = ?2",
                params![scope, uin_to_sql(uin)],
                single::<String>,
                same,
            )
        })
        .await
    }

    async fn puppet_by_name(&self, scope: &str, name: &str) -> Result<Option<Uin>, StoreError> {
        const OP: &str = "look up puppet by name";
        let (scope, folded) = (scope.to_owned(), fold_name(name));
        self.run(OP, move |c| {
            let uin = query_opt(
                c,
                OP,
                "puppets",
                "SELECT uin FROM puppets WHERE scope = ?1 AND name_folded = ?2",
                [scope, folded],
                single::<i64>,
                same,
            )?;
            Ok(uin.map(uin_from_sql))
        })
        .await
    }

    async fn rename_puppet(&self, scope: &str, uin: Uin, name: &str) -> Result<bool, StoreError> {
        let (scope, name) = (scope.to_owned(), name.to_owned());
        self.run("rename puppet", move |c| {
            puppets::rename(c, &scope, uin, &name)
        })
        .await
    }

    // ---- message links

    async fn insert_message_links(&self, links: &[MessageLink]) -> Result<Vec<bool>, StoreError> {
        const OP: &str = "insert message links";
        let links = links.to_vec();
        self.run_sized(OP, links.len(), move |c| {
            let tx = c.transaction().map_err(db(OP))?;
            let inserted = links
                .iter()
                .map(|link| linked::insert_link(&tx, link).map(|n| n == 1))
                .collect::<rusqlite::Result<Vec<bool>>>()
                .map_err(db(OP))?;
            tx.commit().map_err(db(OP))?;
            Ok(inserted)
        })
        .await
    }

    async fn message_link(
        &self,
        side: &str,
        side_id: &str,
    ) -> Result<Option<MessageLink>, StoreError> {
        const OP: &str = "look up message link";
        let (side, side_id) = (side.to_owned(), side_id.to_owned());
        self.run_sized(OP, 1, move |c| {
            let sql = format!(
                "SELECT {LINK_COLUMNS} FROM message_links WHERE side = ?1 AND side_id = ?2"
            );
            query_opt(
                c,
                OP,
                "message_links",
                &sql,
                [side, side_id],
                link_row,
                decode_link,
            )
        })
        .await
    }

    async fn links_of_message(&self, message: &str) -> Result<Vec<MessageLink>, StoreError> {
        const OP: &str = "list links of message";
        let message = message.to_owned();
        self.run(OP, move |c| {
            // rowid order is insertion order: the copy the message started
            // from comes first.
            let sql = format!(
                "SELECT {LINK_COLUMNS} FROM message_links WHERE message = ?1 ORDER BY rowid"
            );
            query_all(
                c,
                OP,
                "message_links",
                &sql,
                [message],
                link_row,
                decode_link,
            )
        })
        .await
    }

    // ---- outbox

    async fn enqueue(
        &self,
        destination: &str,
        lane: &str,
        payload: &str,
    ) -> Result<i64, StoreError> {
        const OP: &str = "enqueue outbox item";
        let (destination, lane, payload) =
            (destination.to_owned(), lane.to_owned(), payload.to_owned());
        self.run_sized(OP, 1, move |c| {
            c.prepare_cached("INSERT INTO outbox (destination, lane, payload) VALUES (?1, ?2, ?3)")
                .and_then(|mut s| s.insert([destination, lane, payload]))
                .map_err(db(OP))
        })
        .await
    }

    async fn enqueue_all(
        &self,
        destination: &str,
        items: Vec<NewOutboxItem>,
        cap: Option<u64>,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let destination = destination.to_owned();
        self.run_sized(linked::OP, items.len(), move |c| {
            linked::enqueue_all(c, &destination, &items, cap)
        })
        .await
    }

    async fn pending(&self, destination: &str, limit: u32) -> Result<Vec<OutboxItem>, StoreError> {
        const OP: &str = "list pending outbox items";
        let destination = destination.to_owned();
        let rows = usize::try_from(limit).unwrap_or(usize::MAX);
        self.run_sized(OP, rows, move |c| {
            query_all(
                c,
                OP,
                "outbox",
                &pending_sql(),
                params![destination, i64::from(limit)],
                outbox_row,
                decode_outbox,
            )
        })
        .await
    }

    fn complete(&self, ids: &[i64]) -> BoxFuture<'static, Result<(), StoreError>> {
        const OP: &str = "complete outbox items";
        let ids = ids.to_vec();
        Box::pin(self.thread.submit(OP, move |c| {
            let tx = c.transaction().map_err(db(OP))?;
            {
                let mut delete = tx
                    .prepare_cached("DELETE FROM outbox WHERE id = ?1")
                    .map_err(db(OP))?;
                for id in ids {
                    delete.execute([id]).map_err(db(OP))?;
                }
            }
            tx.commit().map_err(db(OP))
        }))
    }

    async fn record_attempt(&self, id: i64, error: &str) -> Result<(), StoreError> {
        const OP: &str = "record outbox attempt";
        let error = truncate_chars(error, MAX_ERROR_CHARS).to_owned();
        self.run_sized(OP, 1, move |c| {
            c.prepare_cached(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
            )
            .and_then(|mut s| s.execute(params![id, error]))
            .map_err(db(OP))?;
            Ok(())
        })
        .await
    }

    async fn merge_outbox_items(
        &self,
        keep: i64,
        payload: &str,
        absorbed: &[i64],
    ) -> Result<(), StoreError> {
        const OP: &str = "merge outbox items";
        let payload = payload.to_owned();
        let absorbed = absorbed.to_vec();
        self.run(OP, move |c| {
            let tx = c.transaction().map_err(db(OP))?;
            let mut changed = tx
                .prepare_cached("UPDATE outbox SET payload = ?2 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![keep, payload]))
                .map_err(db(OP))?;
            {
                let mut delete = tx
                    .prepare_cached("DELETE FROM outbox WHERE id = ?1")
                    .map_err(db(OP))?;
                for id in &absorbed {
                    changed += delete.execute([id]).map_err(db(OP))?;
                }
            }
            if changed != 1 + absorbed.len() {
                // Dropping the transaction rolls it back.
                return Err(StoreError::Database(format!(
                    "{OP}: some of items {keep}, {absorbed:?} are no longer queued"
                )));
            }
            tx.commit().map_err(db(OP))
        })
        .await
    }

    async fn outbox_destinations(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let prefix = prefix.to_owned();
        self.run("list outbox destinations", move |c| {
            matrix::outbox_destinations(c, &prefix)
        })
        .await
    }

    // ---- Matrix appservice

    async fn matrix_accept_transaction(
        &self,
        txn_id: &str,
        events: &[(String, String)],
    ) -> Result<bool, StoreError> {
        let (txn_id, events) = (txn_id.to_owned(), events.to_vec());
        self.run("accept appservice transaction", move |c| {
            matrix::accept_transaction(c, &txn_id, &events)
        })
        .await
    }

    async fn matrix_inbound(&self, limit: u32) -> Result<Vec<MatrixInbound>, StoreError> {
        self.run("list appservice events", move |c| matrix::inbound(c, limit))
            .await
    }

    async fn matrix_inbound_done(&self, id: i64) -> Result<(), StoreError> {
        self.run("complete appservice event", move |c| {
            matrix::inbound_done(c, id)
        })
        .await
    }

    async fn matrix_ghost(&self, user_id: &str) -> Result<Option<Option<String>>, StoreError> {
        let key = user_id.to_owned();
        self.cached(
            "look up ghost",
            |c| &c.ghosts,
            key,
            |c, user_id| matrix::ghost(c, user_id),
        )
        .await
    }

    async fn save_matrix_ghost(
        &self,
        user_id: &str,
        displayname: Option<&str>,
    ) -> Result<(), StoreError> {
        let (user_id, displayname) = (user_id.to_owned(), displayname.map(str::to_owned));
        let cache = self.cache.clone();
        self.run("save ghost", move |c| {
            matrix::save_ghost(c, &user_id, displayname.as_deref())?;
            cache.ghosts.put(user_id, Some(displayname));
            Ok(())
        })
        .await
    }

    async fn matrix_room(&self, room_id: &str) -> Result<Option<MatrixRoom>, StoreError> {
        let key = room_id.to_owned();
        self.cached(
            "look up room",
            |c| &c.rooms,
            key,
            |c, room_id| matrix::room(c, room_id),
        )
        .await
    }

    async fn save_matrix_room(&self, room: &MatrixRoom) -> Result<(), StoreError> {
        let room = room.clone();
        let cache = self.cache.clone();
        self.run("save room", move |c| {
            matrix::save_room(c, &room)?;
            cache.rooms.put(room.room_id.clone(), Some(room));
            Ok(())
        })
        .await
    }

    async fn matrix_rooms_of(&self, user: &str, kind: &str) -> Result<Vec<MatrixRoom>, StoreError> {
        let (user, kind) = (user.to_owned(), kind.to_owned());
        self.run("list rooms of user", move |c| {
            matrix::rooms_of(c, &user, &kind)
        })
        .await
    }

    async fn matrix_rooms_by_creator(
        &self,
        creator: &str,
        kind: &str,
    ) -> Result<Vec<MatrixRoom>, StoreError> {
        let (creator, kind) = (creator.to_owned(), kind.to_owned());
        self.run("list rooms by creator", move |c| {
            matrix::rooms_by_creator(c, &creator, &kind)
        })
        .await
    }

    async fn matrix_member(
        &self,
        room_id: &str,
        user_id: &str,
    ) -> Result<Option<MatrixMember>, StoreError> {
        let key = (room_id.to_owned(), user_id.to_owned());
        self.cached(
            "look up room member",
            |c| &c.members,
            key,
            |c, (room, user)| matrix::member(c, room, user),
        )
        .await
    }

    async fn save_matrix_member(&self, member: &MatrixMember) -> Result<(), StoreError> {
        let member = member.clone();
        let cache = self.cache.clone();
        self.run("save room member", move |c| {
            matrix::save_member(c, &member)?;
            let key = (member.room_id.clone(), member.user_id.clone());
            cache.members.put(key, Some(member));
            Ok(())
        })
        .await
    }

    async fn delete_matrix_members(
        &self,
        room_id: Option<&str>,
        user_id: &str,
    ) -> Result<(), StoreError> {
        let (room_id, user_id) = (room_id.map(str::to_owned), user_id.to_owned());
        let cache = self.cache.clone();
        self.run("forget room members", move |c| {
            matrix::delete_members(c, room_id.as_deref(), &user_id)?;
            match room_id {
                Some(room) => cache.members.put((room, user_id), None),
                None => cache.members.forget(|(_, user)| *user == user_id),
            }
            Ok(())
        })
        .await
    }

    async fn save_matrix_media(&self, media: &MatrixMedia) -> Result<(), StoreError> {
        let media = media.clone();
        self.run("save media link", move |c| matrix::save_media(c, &media))
            .await
    }

    async fn matrix_media(&self, id: &str) -> Result<Option<MatrixMedia>, StoreError> {
        let id = id.to_owned();
        self.run("look up media link", move |c| matrix::media(c, &id))
            .await
    }

    // ---- settings

    async fn get_setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        const OP: &str = "read setting";
        let key = key.to_owned();
        self.run(OP, move |c| {
            query_opt(
                c,
                OP,
                "settings",
                "SELECT value FROM settings WHERE key = ?1",
                [key],
                single::<String>,
                same,
            )
        })
        .await
    }

    async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        const OP: &str = "write setting";
        let (key, value) = (key.to_owned(), value.to_owned());
        self.run(OP, move |c| {
            c.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map_err(db(OP))?;
            Ok(())
        })
        .await
    }
}

/// The outbox read of [`Store::pending`]: a destination's first items.
fn pending_sql() -> String {
    format!("SELECT {OUTBOX_COLUMNS} FROM outbox WHERE destination = ?1 ORDER BY id LIMIT ?2")
}

#[cfg(test)]
mod tests {
    use rusqlite::StatementStatus;

    use super::*;

    /// Outbox reads bind a different LIMIT per reader; SQLite must not
    /// compile the statement again for each (see `SqliteStore::prepare`).
    #[test]
    fn a_new_limit_does_not_recompile_the_outbox_read() {
        let conn = Connection::open_in_memory().unwrap();
        let conn = SqliteStore::prepare(conn, false).unwrap();
        let mut read = conn.prepare(&pending_sql()).unwrap();
        for limit in [32_i64, 256, 32, 1, 1000] {
            let mut rows = read.query(params!["to:someone", limit]).unwrap();
            while rows.next().unwrap().is_some() {}
        }
        assert_eq!(read.get_status(StatementStatus::RePrepare), 0);
    }
}
