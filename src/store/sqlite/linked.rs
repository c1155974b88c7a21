//! Recording a message link and queueing the message it names in one
//! database transaction, so a crash can never leave one without the other:
//! a link without its outbox item would make the replayed message look like
//! a duplicate and lose it; an item without its link would send a replay
//! twice.

use rusqlite::{params, Connection, TransactionBehavior};

use super::rows::{db, uin_to_sql};
use crate::store::{LinkedItem, MessageLink, StoreError};

/// Inserts each item's link and, only if it was new, the outbox item, all
/// in one transaction. Returns each item's id, or `None` when its link was
/// already known (a duplicate).
pub(super) fn enqueue_linked(
    conn: &mut Connection,
    destination: &str,
    items: &[LinkedItem],
) -> Result<Vec<Option<i64>>, StoreError> {
    const OP: &str = "record message links and queue their messages";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(OP))?;
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        if insert_link(&tx, &item.link).map_err(db(OP))? == 0 {
            ids.push(None);
            continue;
        }
        let id = tx
            .prepare_cached("INSERT INTO outbox (destination, lane, payload) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.insert(params![destination, item.lane, item.payload]))
            .map_err(db(OP))?;
        ids.push(Some(id));
    }
    tx.commit().map_err(db(OP))?;
    Ok(ids)
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
