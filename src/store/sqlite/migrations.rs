//! The SQLite schema as an ordered list of migrations, and the code that
//! brings a database up to the newest one at open.
//!
//! The schema version lives in `PRAGMA user_version`: migration `i` (0-based)
//! takes a database from version `i` to `i + 1`. Steps are append-only; a
//! released step is never edited, because databases in the field already ran
//! it.

use rusqlite::{Connection, TransactionBehavior};

use crate::store::StoreError;

/// Migration steps in order. Version N means the first N steps have run.
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: initial schema.
    r#"
    CREATE TABLE qq_logins (
        user     TEXT    NOT NULL,
        uin      INTEGER NOT NULL,
        protocol TEXT    NOT NULL,
        password TEXT    NOT NULL,
        presence TEXT    NOT NULL,
        PRIMARY KEY (user, uin)
    );

    CREATE TABLE portals (
        owner  INTEGER NOT NULL,
        chat   TEXT    NOT NULL,
        side   TEXT    NOT NULL,
        target TEXT    NOT NULL,
        PRIMARY KEY (owner, chat, side)
    );
    CREATE INDEX portals_by_target ON portals (side, target);

    -- name_folded is name under IRC rfc1459 casemapping, so that `Foo` and
    -- `foo` (or `[a]` and `{a}`) cannot belong to two QQ users in one scope.
    CREATE TABLE puppets (
        scope       TEXT    NOT NULL,
        uin         INTEGER NOT NULL,
        name        TEXT    NOT NULL,
        name_folded TEXT    NOT NULL,
        PRIMARY KEY (scope, uin),
        UNIQUE (scope, name_folded)
    );

    CREATE TABLE message_links (
        side    TEXT    NOT NULL,
        side_id TEXT    NOT NULL,
        owner   INTEGER NOT NULL,
        chat    TEXT    NOT NULL,
        message TEXT    NOT NULL,
        PRIMARY KEY (side, side_id)
    );
    CREATE INDEX message_links_by_message ON message_links (message);

    -- AUTOINCREMENT so that an id is never reused after the newest item is
    -- completed: delivery order and de-duplication downstream rely on ids
    -- only ever growing.
    CREATE TABLE outbox (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        destination TEXT    NOT NULL,
        lane        TEXT    NOT NULL,
        payload     TEXT    NOT NULL,
        attempts    INTEGER NOT NULL DEFAULT 0,
        last_error  TEXT,
        created_at  INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
    );
    CREATE INDEX outbox_by_destination ON outbox (destination, id);

    CREATE TABLE settings (
        key   TEXT NOT NULL PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    // 2: the Matrix application service.
    r#"
    -- Every appservice transaction the homeserver pushed (its id and a
    -- digest of its event ids: Synapse on SQLite reuses ids after a
    -- restart), so a retried transaction is acknowledged without being
    -- processed again.
    CREATE TABLE matrix_txns (
        txn_id      TEXT    NOT NULL PRIMARY KEY,
        received_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
    );

    -- Events of accepted transactions not processed yet, in arrival order.
    -- Written in the same database transaction as their matrix_txns row,
    -- before the homeserver gets its 200.
    CREATE TABLE matrix_inbound (
        id     INTEGER PRIMARY KEY AUTOINCREMENT,
        txn_id TEXT    NOT NULL,
        kind   TEXT    NOT NULL,
        event  TEXT    NOT NULL
    );

    -- Ghost users registered on the homeserver, with the global display
    -- name last set (NULL: none set yet).
    CREATE TABLE matrix_ghosts (
        user_id     TEXT NOT NULL PRIMARY KEY,
        displayname TEXT
    );

    -- Rooms the bridge made or was invited to: portals (kind dm / group),
    -- bridge bot rooms (bot) and others (other).
    CREATE TABLE matrix_rooms (
        room_id  TEXT    NOT NULL PRIMARY KEY,
        kind     TEXT    NOT NULL,
        -- The Matrix user the room is for.
        user     TEXT    NOT NULL,
        -- Who speaks for the bridge in it (the DM ghost, or the bot).
        creator  TEXT    NOT NULL,
        -- The user left: nothing more is sent there until they are back.
        user_left INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX matrix_rooms_by_user ON matrix_rooms (user, kind);
    CREATE INDEX matrix_rooms_by_creator ON matrix_rooms (creator, kind);

    -- Ghosts known to be joined to a room, with their per-room name.
    CREATE TABLE matrix_members (
        room_id     TEXT NOT NULL,
        user_id     TEXT NOT NULL,
        displayname TEXT,
        PRIMARY KEY (room_id, user_id)
    );

    -- Matrix media made reachable to QQ users through the bridge's link.
    CREATE TABLE matrix_media (
        id         TEXT    NOT NULL PRIMARY KEY,
        mxc        TEXT    NOT NULL,
        name       TEXT    NOT NULL,
        mimetype   TEXT,
        created_at INTEGER NOT NULL DEFAULT (CAST(strftime('%s', 'now') AS INTEGER))
    );
    "#,
];

/// The schema version this build writes.
pub(super) fn known_version() -> u32 {
    // The list is a short compile-time constant; it cannot exceed u32.
    u32::try_from(MIGRATIONS.len()).unwrap_or(u32::MAX)
}

fn failed(step: &str, e: rusqlite::Error) -> StoreError {
    StoreError::Database(format!("schema migration ({step}): {e}"))
}

fn read_version(conn: &Connection) -> Result<u32, StoreError> {
    let raw: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| failed("read version", e))?;
    u32::try_from(raw)
        .map_err(|_| StoreError::Corrupt(format!("schema version (user_version) is {raw}")))
}

/// Brings the database up to [`known_version`], one transaction per step.
///
/// Each step re-reads the version inside an IMMEDIATE transaction, so two
/// processes opening the same fresh file cannot both run a step.
pub(super) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let known = known_version();
    let found = read_version(conn)?;
    if found > known {
        return Err(StoreError::TooNew { found, known });
    }
    if found == known {
        // The common case; skip taking the write lock at every start.
        return Ok(());
    }
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| failed("begin", e))?;
        let version = read_version(&tx)?;
        if version > known {
            return Err(StoreError::TooNew {
                found: version,
                known,
            });
        }
        let Some(step) = MIGRATIONS.get(version as usize) else {
            // Past the last step (possibly run by another process meanwhile).
            return Ok(());
        };
        let label = format!("to version {}", version + 1);
        tx.execute_batch(step).map_err(|e| failed(&label, e))?;
        // user_version is part of the database header and so is covered by
        // the transaction: a failed step leaves the version untouched.
        tx.pragma_update(None, "user_version", version + 1)
            .map_err(|e| failed(&label, e))?;
        tx.commit().map_err(|e| failed(&label, e))?;
    }
}
