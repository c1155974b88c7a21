//! Puppet name assignment for the SQLite store. Each operation is a check
//! followed by a write, so each runs in one IMMEDIATE transaction: another
//! process cannot take the name between the check and the write.

use rusqlite::{params, Connection, TransactionBehavior};

use super::fold_name;
use super::rows::{db, query_opt, same, single, uin_to_sql};
use crate::core::model::Uin;
use crate::store::StoreError;

pub(super) fn claim_name(
    conn: &mut Connection,
    scope: &str,
    uin: Uin,
    proposed: &str,
) -> Result<Option<String>, StoreError> {
    const OP: &str = "claim puppet name";
    // IMMEDIATE takes the write lock up front, so another process cannot
    // claim the same name between our check and our insert.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(OP))?;
    let existing = query_opt(
        &tx,
        OP,
        "puppets",
        "SELECT name FROM puppets WHERE scope = ?1 AND uin = ?2",
        params![scope, uin_to_sql(uin)],
        single::<String>,
        same,
    )?;
    if existing.is_some() {
        return Ok(existing);
    }
    let inserted = tx
        .execute(
            "INSERT INTO puppets (scope, uin, name, name_folded) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (scope, name_folded) DO NOTHING",
            params![scope, uin_to_sql(uin), proposed, fold_name(proposed)],
        )
        .map_err(db(OP))?;
    tx.commit().map_err(db(OP))?;
    Ok((inserted == 1).then(|| proposed.to_owned()))
}

pub(super) fn rename(
    conn: &mut Connection,
    scope: &str,
    uin: Uin,
    name: &str,
) -> Result<bool, StoreError> {
    const OP: &str = "rename puppet";
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db(OP))?;
    let holder = query_opt(
        &tx,
        OP,
        "puppets",
        "SELECT uin FROM puppets WHERE scope = ?1 AND name_folded = ?2",
        params![scope, fold_name(name)],
        single::<i64>,
        same,
    )?;
    if holder.is_some_and(|h| h != uin_to_sql(uin)) {
        return Ok(false);
    }
    // An upsert: renaming a uin that has no name yet simply gives it one, and
    // a uin may change the case of its own name.
    tx.execute(
        "INSERT INTO puppets (scope, uin, name, name_folded) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (scope, uin) DO UPDATE SET name = excluded.name, name_folded = excluded.name_folded",
        params![scope, uin_to_sql(uin), name, fold_name(name)],
    )
    .map_err(db(OP))?;
    tx.commit().map_err(db(OP))?;
    Ok(true)
}
