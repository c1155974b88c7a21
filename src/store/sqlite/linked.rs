//! Recording a message link and queueing the message it names in one
//! database transaction, so a crash can never leave one without the other:
//! a link without its outbox item would make the replayed message look like
//! a duplicate and lose it; an item without its link would send a replay
//! twice.

use rusqlite::{params, Connection, TransactionBehavior};

use super::rows::{db, uin_to_sql};
use crate::store::{MessageLink, StoreError};

/// Inserts `link` and, only if it was new, the outbox item. Returns the
/// item's id, or `None` when the link was already known (a duplicate).
pub(super) fn enqueue_linked(
    conn: &mut Connection,
    link: &MessageLink,
    destination: &str,
    lane: &str,
    payload: &str,
) -> Result<Option<i64>, StoreError> {
    const OP: &str = "record a message link and queue its message";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(OP))?;
    let inserted = insert_link(&tx, link).map_err(db(OP))?;
    if inserted == 0 {
        return Ok(None);
    }
    let id = tx
        .prepare_cached("INSERT INTO outbox (destination, lane, payload) VALUES (?1, ?2, ?3)")
        .and_then(|mut s| s.insert(params![destination, lane, payload]))
        .map_err(db(OP))?;
    tx.commit().map_err(db(OP))?;
    Ok(Some(id))
}

/// Inserts `link` unless its (side, side_id) is known; the number of rows
/// inserted (0 for a duplicate). `DO NOTHING` on the key only (not `INSERT
/// OR IGNORE`), so any other constraint failure still surfaces as an error
/// instead of being mistaken for a duplicate.
pub(super) fn insert_link(conn: &Connection, link: &MessageLink) -> rusqlite::Result<usize> {
    conn.prepare_cached(
        "INSERT INTO message_links (side, side_id, owner, chat, message)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (side, side_id) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            link.side,
            link.side_id,
            uin_to_sql(link.owner),
            link.chat.to_string(),
            link.message,
        ])
    })
}
