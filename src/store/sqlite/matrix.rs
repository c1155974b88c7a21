//! The Matrix appservice's tables in the SQLite store: accepted transaction
//! ids and their queued events (written together, in one database
//! transaction), ghosts, rooms, ghost memberships and media links.

use rusqlite::{params, Connection, Row, TransactionBehavior};

use super::rows::{db, query_all, query_opt, same, single};
use crate::store::{MatrixInbound, MatrixMedia, MatrixMember, MatrixRoom, StoreError};

/// Transaction ids older than this are forgotten: the homeserver gives up
/// on a transaction long before (its backoff tops out at minutes).
const TXN_ID_RETENTION_S: i64 = 30 * 24 * 3600;

pub(super) fn accept_transaction(
    conn: &mut Connection,
    txn_id: &str,
    events: &[(String, String)],
) -> Result<bool, StoreError> {
    const OP: &str = "accept appservice transaction";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(OP))?;
    let inserted = tx
        .execute(
            "INSERT INTO matrix_txns (txn_id) VALUES (?1) ON CONFLICT (txn_id) DO NOTHING",
            [txn_id],
        )
        .map_err(db(OP))?;
    if inserted == 0 {
        return Ok(false);
    }
    {
        let mut stmt = tx
            .prepare_cached("INSERT INTO matrix_inbound (txn_id, kind, event) VALUES (?1, ?2, ?3)")
            .map_err(db(OP))?;
        for (kind, event) in events {
            stmt.execute(params![txn_id, kind, event]).map_err(db(OP))?;
        }
    }
    tx.execute(
        "DELETE FROM matrix_txns
         WHERE received_at < CAST(strftime('%s', 'now') AS INTEGER) - ?1",
        [TXN_ID_RETENTION_S],
    )
    .map_err(db(OP))?;
    tx.commit().map_err(db(OP))?;
    Ok(true)
}

type InboundRow = (i64, String, String, String);

fn inbound_row(r: &Row<'_>) -> rusqlite::Result<InboundRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn decode_inbound((id, txn_id, kind, event): InboundRow) -> Result<MatrixInbound, StoreError> {
    Ok(MatrixInbound {
        id,
        txn_id,
        kind,
        event,
    })
}

pub(super) fn inbound(conn: &Connection, limit: u32) -> Result<Vec<MatrixInbound>, StoreError> {
    query_all(
        conn,
        "list appservice events",
        "matrix_inbound",
        "SELECT id, txn_id, kind, event FROM matrix_inbound ORDER BY id LIMIT ?1",
        [i64::from(limit)],
        inbound_row,
        decode_inbound,
    )
}

pub(super) fn inbound_done(conn: &Connection, id: i64) -> Result<(), StoreError> {
    const OP: &str = "complete appservice event";
    conn.execute("DELETE FROM matrix_inbound WHERE id = ?1", [id])
        .map_err(db(OP))?;
    Ok(())
}

pub(super) fn ghost(
    conn: &Connection,
    user_id: &str,
) -> Result<Option<Option<String>>, StoreError> {
    query_opt(
        conn,
        "look up ghost",
        "matrix_ghosts",
        "SELECT displayname FROM matrix_ghosts WHERE user_id = ?1",
        [user_id],
        single::<Option<String>>,
        same,
    )
}

pub(super) fn save_ghost(
    conn: &Connection,
    user_id: &str,
    displayname: Option<&str>,
) -> Result<(), StoreError> {
    const OP: &str = "save ghost";
    conn.execute(
        "INSERT INTO matrix_ghosts (user_id, displayname) VALUES (?1, ?2)
         ON CONFLICT (user_id) DO UPDATE SET displayname = excluded.displayname",
        params![user_id, displayname],
    )
    .map_err(db(OP))?;
    Ok(())
}

const ROOM_COLUMNS: &str = "room_id, kind, user, creator, user_left";
type RoomRow = (String, String, String, String, i64);

fn room_row(r: &Row<'_>) -> rusqlite::Result<RoomRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn decode_room((room_id, kind, user, creator, left): RoomRow) -> Result<MatrixRoom, StoreError> {
    Ok(MatrixRoom {
        room_id,
        kind,
        user,
        creator,
        user_left: left != 0,
    })
}

pub(super) fn room(conn: &Connection, room_id: &str) -> Result<Option<MatrixRoom>, StoreError> {
    let sql = format!("SELECT {ROOM_COLUMNS} FROM matrix_rooms WHERE room_id = ?1");
    query_opt(
        conn,
        "look up room",
        "matrix_rooms",
        &sql,
        [room_id],
        room_row,
        decode_room,
    )
}

pub(super) fn save_room(conn: &Connection, room: &MatrixRoom) -> Result<(), StoreError> {
    const OP: &str = "save room";
    conn.execute(
        "INSERT INTO matrix_rooms (room_id, kind, user, creator, user_left)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (room_id) DO UPDATE SET kind = excluded.kind, user = excluded.user,
             creator = excluded.creator, user_left = excluded.user_left",
        params![
            room.room_id,
            room.kind,
            room.user,
            room.creator,
            i64::from(room.user_left)
        ],
    )
    .map_err(db(OP))?;
    Ok(())
}

pub(super) fn rooms_of(
    conn: &Connection,
    user: &str,
    kind: &str,
) -> Result<Vec<MatrixRoom>, StoreError> {
    let sql = format!(
        "SELECT {ROOM_COLUMNS} FROM matrix_rooms WHERE user = ?1 AND kind = ?2 ORDER BY rowid"
    );
    query_all(
        conn,
        "list rooms of user",
        "matrix_rooms",
        &sql,
        [user, kind],
        room_row,
        decode_room,
    )
}

pub(super) fn rooms_by_creator(
    conn: &Connection,
    creator: &str,
    kind: &str,
) -> Result<Vec<MatrixRoom>, StoreError> {
    let sql = format!(
        "SELECT {ROOM_COLUMNS} FROM matrix_rooms WHERE creator = ?1 AND kind = ?2 ORDER BY rowid"
    );
    query_all(
        conn,
        "list rooms by creator",
        "matrix_rooms",
        &sql,
        [creator, kind],
        room_row,
        decode_room,
    )
}

type MemberRow = (String, String, Option<String>);

fn member_row(r: &Row<'_>) -> rusqlite::Result<MemberRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
}

fn decode_member((room_id, user_id, displayname): MemberRow) -> Result<MatrixMember, StoreError> {
    Ok(MatrixMember {
        room_id,
        user_id,
        displayname,
    })
}

pub(super) fn member(
    conn: &Connection,
    room_id: &str,
    user_id: &str,
) -> Result<Option<MatrixMember>, StoreError> {
    query_opt(
        conn,
        "look up room member",
        "matrix_members",
        "SELECT room_id, user_id, displayname FROM matrix_members
         WHERE room_id = ?1 AND user_id = ?2",
        [room_id, user_id],
        member_row,
        decode_member,
    )
}

pub(super) fn save_member(conn: &Connection, member: &MatrixMember) -> Result<(), StoreError> {
    const OP: &str = "save room member";
    conn.execute(
        "INSERT INTO matrix_members (room_id, user_id, displayname) VALUES (?1, ?2, ?3)
         ON CONFLICT (room_id, user_id) DO UPDATE SET displayname = excluded.displayname",
        params![member.room_id, member.user_id, member.displayname],
    )
    .map_err(db(OP))?;
    Ok(())
}

pub(super) fn delete_members(
    conn: &Connection,
    room_id: Option<&str>,
    user_id: &str,
) -> Result<(), StoreError> {
    const OP: &str = "forget room members";
    match room_id {
        Some(room) => conn.execute(
            "DELETE FROM matrix_members WHERE room_id = ?1 AND user_id = ?2",
            [room, user_id],
        ),
        None => conn.execute("DELETE FROM matrix_members WHERE user_id = ?1", [user_id]),
    }
    .map_err(db(OP))?;
    Ok(())
}

pub(super) fn save_media(conn: &Connection, media: &MatrixMedia) -> Result<(), StoreError> {
    const OP: &str = "save media link";
    conn.execute(
        "INSERT INTO matrix_media (id, mxc, name, mimetype) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (id) DO NOTHING",
        params![media.id, media.mxc, media.name, media.mimetype],
    )
    .map_err(db(OP))?;
    Ok(())
}

type MediaRow = (String, String, String, Option<String>);

fn media_row(r: &Row<'_>) -> rusqlite::Result<MediaRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

fn decode_media((id, mxc, name, mimetype): MediaRow) -> Result<MatrixMedia, StoreError> {
    Ok(MatrixMedia {
        id,
        mxc,
        name,
        mimetype,
    })
}

pub(super) fn media(conn: &Connection, id: &str) -> Result<Option<MatrixMedia>, StoreError> {
    query_opt(
        conn,
        "look up media link",
        "matrix_media",
        "SELECT id, mxc, name, mimetype FROM matrix_media WHERE id = ?1",
        [id],
        media_row,
        decode_media,
    )
}

pub(super) fn outbox_destinations(
    conn: &Connection,
    prefix: &str,
) -> Result<Vec<String>, StoreError> {
    // Compared with substr, not LIKE, so `_` and `%` in a prefix are literal.
    query_all(
        conn,
        "list outbox destinations",
        "outbox",
        "SELECT DISTINCT destination FROM outbox
         WHERE substr(destination, 1, length(?1)) = ?1 ORDER BY destination",
        [prefix],
        single::<String>,
        same,
    )
}

#[cfg(test)]
mod tests {
    use crate::store::{MatrixRoom, SqliteStore, Store};

    #[tokio::test]
    async fn a_transaction_is_queued_once_and_drained_in_order() {
        let store = SqliteStore::open_in_memory().unwrap();
        let events = vec![
            ("timeline".to_owned(), "{\"n\":1}".to_owned()),
            ("ephemeral".to_owned(), "{\"n\":2}".to_owned()),
        ];
        assert!(store
            .matrix_accept_transaction("t1", &events)
            .await
            .unwrap());
        assert!(!store
            .matrix_accept_transaction("t1", &events)
            .await
            .unwrap());
        let queued = store.matrix_inbound(10).await.unwrap();
        assert_eq!(queued.len(), 2, "the replay queued nothing");
        assert_eq!(queued[0].event, "{\"n\":1}");
        assert_eq!(queued[1].kind, "ephemeral");
        store.matrix_inbound_done(queued[0].id).await.unwrap();
        let left = store.matrix_inbound(10).await.unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].id, queued[1].id);
    }

    #[tokio::test]
    async fn rooms_ghosts_and_destinations() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert_eq!(store.matrix_ghost("@_qq_1:x").await.unwrap(), None);
        store.save_matrix_ghost("@_qq_1:x", None).await.unwrap();
        assert_eq!(store.matrix_ghost("@_qq_1:x").await.unwrap(), Some(None));
        let room = MatrixRoom {
            room_id: "!r:x".into(),
            kind: "dm".into(),
            user: "@a:x".into(),
            creator: "@_qq_1:x".into(),
            user_left: true,
        };
        store.save_matrix_room(&room).await.unwrap();
        assert_eq!(store.matrix_room("!r:x").await.unwrap(), Some(room.clone()));
        assert_eq!(
            store.matrix_rooms_of("@a:x", "dm").await.unwrap(),
            vec![room]
        );
        store.enqueue("matrix:!r:x", "l", "{}").await.unwrap();
        store.enqueue("matrixx", "l", "{}").await.unwrap();
        store.enqueue("to:@a:x", "l", "{}").await.unwrap();
        assert_eq!(
            store.outbox_destinations("matrix:").await.unwrap(),
            vec!["matrix:!r:x".to_owned()]
        );
        assert!(store
            .outbox_destinations("matri_:")
            .await
            .unwrap()
            .is_empty());
    }
}
