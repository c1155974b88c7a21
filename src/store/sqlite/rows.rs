//! Row plumbing for the SQLite store: error mapping, the raw column shapes of
//! each table and their decoding into the store's types. Decoding never
//! panics; a value that does not parse is reported as
//! [`StoreError::Corrupt`] naming its table and column.

use std::fmt;

use rusqlite::{Connection, OptionalExtension, Params, Row};

use crate::core::model::Uin;
use crate::qq::Protocol;
use crate::secret::Secret;
use crate::store::{MessageLink, OutboxItem, Portal, QqLogin, StoreError};

/// Maps a rusqlite error to a [`StoreError`] naming the operation.
/// rusqlite messages never carry bound parameter values, so no password can
/// leak through here.
pub(super) fn db(op: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| StoreError::Database(format!("{op}: {e}"))
}

/// Like [`db`] for errors while reading rows of `table`: a value that does not
/// decode (wrong type, bad UTF-8, out of range) is corruption, not an I/O
/// problem, so callers can tell the two apart.
fn row_err(op: &'static str, table: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |e| match e {
        rusqlite::Error::InvalidColumnType(_, column, ty) => {
            StoreError::Corrupt(format!("{table}.{column} holds a {ty} value ({op})"))
        }
        rusqlite::Error::FromSqlConversionFailure(index, ty, err) => StoreError::Corrupt(format!(
            "{table}: column #{index} ({ty}) does not decode ({op}): {err}"
        )),
        rusqlite::Error::IntegralValueOutOfRange(index, value) => StoreError::Corrupt(format!(
            "{table}: column #{index} is out of range ({op}): {value}"
        )),
        e => db(op)(e),
    }
}

/// QQ numbers are `u64` but SQLite integers are `i64`. Storing the bit
/// pattern is lossless both ways; real QQ numbers stay far below 2^63, so
/// the stored values read naturally in the sqlite3 shell too.
pub(super) fn uin_to_sql(uin: Uin) -> i64 {
    uin.0 as i64
}

pub(super) fn uin_from_sql(value: i64) -> Uin {
    Uin(value as u64)
}

/// Parses a stored text column; failure names the table and column.
fn parse_col<T>(table: &str, column: &str, value: &str) -> Result<T, StoreError>
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    value
        .parse()
        .map_err(|e| StoreError::Corrupt(format!("{table}.{column}: {e}")))
}

pub(super) fn truncate_chars(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((end, _)) => &s[..end],
        None => s,
    }
}

/// Runs a query and decodes every row. `row` only extracts raw columns (so a
/// type mismatch is a rusqlite error); `decode` turns them into the model and
/// reports unparsable values as [`StoreError::Corrupt`].
pub(super) fn query_all<R, T>(
    conn: &Connection,
    op: &'static str,
    table: &'static str,
    sql: &str,
    params: impl Params,
    row: fn(&Row<'_>) -> rusqlite::Result<R>,
    decode: fn(R) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db(op))?;
    let rows = stmt.query_map(params, row).map_err(db(op))?;
    rows.map(|r| decode(r.map_err(row_err(op, table))?))
        .collect()
}

/// Like [`query_all`] for a query that matches at most one row.
pub(super) fn query_opt<R, T>(
    conn: &Connection,
    op: &'static str,
    table: &'static str,
    sql: &str,
    params: impl Params,
    row: fn(&Row<'_>) -> rusqlite::Result<R>,
    decode: fn(R) -> Result<T, StoreError>,
) -> Result<Option<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db(op))?;
    let raw = stmt
        .query_row(params, row)
        .optional()
        .map_err(row_err(op, table))?;
    raw.map(decode).transpose()
}

// ---- row shapes: raw columns in SELECT order, then decoding

pub(super) type LoginRow = (String, i64, String, String, String);
pub(super) const LOGIN_COLUMNS: &str = "user, uin, protocol, password, presence";

pub(super) fn login_row(r: &Row<'_>) -> rusqlite::Result<LoginRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

pub(super) fn decode_login(
    (user, uin, protocol, password, presence): LoginRow,
) -> Result<QqLogin, StoreError> {
    Ok(QqLogin {
        user,
        uin: uin_from_sql(uin),
        protocol: parse_col::<Protocol>("qq_logins", "protocol", &protocol)?,
        password: Secret::new(password),
        presence: parse_col("qq_logins", "presence", &presence)?,
    })
}

pub(super) type PortalRow = (i64, String, String, String);
pub(super) const PORTAL_COLUMNS: &str = "owner, chat, side, target";

pub(super) fn portal_row(r: &Row<'_>) -> rusqlite::Result<PortalRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
}

pub(super) fn decode_portal((owner, chat, side, target): PortalRow) -> Result<Portal, StoreError> {
    Ok(Portal {
        owner: uin_from_sql(owner),
        chat: parse_col("portals", "chat", &chat)?,
        side,
        target,
    })
}

pub(super) type LinkRow = (String, String, i64, String, String);
pub(super) const LINK_COLUMNS: &str = "side, side_id, owner, chat, message";

pub(super) fn link_row(r: &Row<'_>) -> rusqlite::Result<LinkRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

pub(super) fn decode_link(
    (side, side_id, owner, chat, message): LinkRow,
) -> Result<MessageLink, StoreError> {
    Ok(MessageLink {
        side,
        side_id,
        owner: uin_from_sql(owner),
        chat: parse_col("message_links", "chat", &chat)?,
        message,
    })
}

pub(super) type OutboxRow = (i64, String, String, String, i64, Option<String>);
pub(super) const OUTBOX_COLUMNS: &str = "id, destination, lane, payload, attempts, last_error";

pub(super) fn outbox_row(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

pub(super) fn decode_outbox(
    (id, destination, lane, payload, attempts, last_error): OutboxRow,
) -> Result<OutboxItem, StoreError> {
    Ok(OutboxItem {
        id,
        destination,
        lane,
        payload,
        attempts: u32::try_from(attempts).map_err(|_| {
            StoreError::Corrupt(format!("outbox.attempts: {attempts} for item {id}"))
        })?,
        last_error,
    })
}

pub(super) fn single<T>(r: &Row<'_>) -> rusqlite::Result<T>
where
    T: rusqlite::types::FromSql,
{
    r.get(0)
}

pub(super) fn same<T>(value: T) -> Result<T, StoreError> {
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate_chars("héllo", 2), "hé");
        assert_eq!(truncate_chars("短い", 5), "短い");
        assert_eq!(truncate_chars("", 0), "");
    }

    #[test]
    fn large_uins_round_trip_through_sql_integers() {
        for uin in [0, 10001, 3_924_684_389, u64::MAX] {
            assert_eq!(uin_from_sql(uin_to_sql(Uin(uin))), Uin(uin));
        }
    }
}
