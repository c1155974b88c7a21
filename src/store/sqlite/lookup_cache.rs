//! The rows every message to Matrix looks up (its portal, the portal's
//! room, the speaking ghost and whether it is in the room), kept in memory.
//! Delivering one QQ line to a room read them six times, each a round trip
//! to the store's thread with two thread wake-ups; a profile at 1,500
//! lines a second had a quarter of the bridge's samples in the kernel's
//! task switching (README, Performance). They are small, written rarely
//! and read on every line.
//!
//! Coherent by construction: the cache is filled and changed only by the
//! call that read or wrote the row, right after its statement succeeded,
//! while that call holds the connection (on the store's thread, or on its
//! caller's for a light call). So it holds what the database held after
//! some call, in the order the calls ran, and a lookup that hits sees every
//! write whose call has completed. Only this process writes these tables.
//!
//! Each table holds at most [`MAX_ENTRIES`] answers (absent rows too) and
//! starts again empty when full: a bound, not an eviction policy, since one
//! busy room's rows are back after one miss each.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};

use crate::core::model::Uin;
use crate::store::{MatrixMember, MatrixRoom, Portal};

/// Answers kept per table.
pub const MAX_ENTRIES: usize = 16_384;

/// A portal's key: owner, chat (as stored) and side.
pub type PortalKey = (Uin, String, String);

#[derive(Default)]
pub struct LookupCache {
    pub portals: Table<PortalKey, Option<Portal>>,
    pub rooms: Table<String, Option<MatrixRoom>>,
    /// A ghost's global display name; `Some(None)` when it has none yet.
    pub ghosts: Table<String, Option<Option<String>>>,
    /// Keyed by (room, user).
    pub members: Table<(String, String), Option<MatrixMember>>,
}

pub struct Table<K, V> {
    entries: Mutex<HashMap<K, V>>,
}

impl<K, V> Default for Table<K, V> {
    fn default() -> Self {
        Table {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> Table<K, V> {
    pub fn get(&self, key: &K) -> Option<V> {
        self.lock().get(key).cloned()
    }

    /// Records the row as the database now has it (`None`: no row).
    pub fn put(&self, key: K, value: V) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
            entries.clear();
        }
        entries.insert(key, value);
    }

    /// Forgets every answer `forget` picks (after a write that changed an
    /// unknown number of rows).
    pub fn forget(&self, mut forget: impl FnMut(&K) -> bool) {
        self.lock().retain(|k, _| !forget(k));
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, V>> {
        // A panic while holding it left a whole map: still usable.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_table_starts_again_rather_than_grow() {
        let table: Table<u32, Option<u32>> = Table::default();
        for k in 0..MAX_ENTRIES as u32 {
            table.put(k, Some(k));
        }
        assert_eq!(table.len(), MAX_ENTRIES);
        // Updating a known key keeps everything.
        table.put(7, None);
        assert_eq!(table.len(), MAX_ENTRIES);
        assert_eq!(table.get(&7), Some(None));
        // A new key past the bound empties it first.
        table.put(u32::MAX, Some(1));
        assert_eq!(table.len(), 1);
        assert_eq!(table.get(&7), None);
        assert_eq!(table.get(&u32::MAX), Some(Some(1)));
    }

    #[test]
    fn forgetting_removes_only_the_picked_answers() {
        let table: Table<(String, String), Option<u8>> = Table::default();
        for (room, user) in [("!a", "@x"), ("!b", "@x"), ("!a", "@y")] {
            table.put((room.into(), user.into()), Some(1));
        }
        table.forget(|(_, user)| user == "@x");
        assert_eq!(table.len(), 1);
        assert_eq!(table.get(&("!a".into(), "@y".into())), Some(Some(1)));
    }
}
