//! Queueing messages, and recording the links of those that have one, in
//! one database transaction, so a crash can never leave a link without its
//! message or the reverse: a link without its outbox item would make the
//! replayed message look like a duplicate and lose it; an item without its
//! link would send a replay twice.

use rusqlite::{params, Connection, TransactionBehavior};

use super::rows::{db, uin_to_sql};
use crate::store::{MessageLink, NewOutboxItem, StoreError};

pub(super) const OP: &str = "queue messages with their links";

/// Inserts each item's link, if it has one, and, only if that link was
/// new, the outbox item, all in one transaction; with `cap`, nothing when
/// `cap` items already wait. Returns each item's id, or `None` when its
/// link was already known (a duplicate).
pub(super) fn enqueue_all(
    conn: &mut Connection,
    destination: &str,
    items: &[NewOutboxItem],
    cap: Option<u64>,
) -> Result<Vec<Option<i64>>, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(OP))?;
    if let Some(cap) = cap {
        let waiting: i64 = tx
            .prepare_cached("SELECT COUNT(*) FROM outbox WHERE destination = ?1")
            .and_then(|mut s| s.query_row([destination], |r| r.get(0)))
            .map_err(db(OP))?;
        let waiting = u64::try_from(waiting).unwrap_or(0);
        if waiting >= cap {
            return Err(StoreError::QueueFull { waiting });
        }
    }
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let known = match &item.link {
            Some(link) => insert_link(&tx, link).map_err(db(OP))? == 0,
            None => false,
        };
        if known {
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
