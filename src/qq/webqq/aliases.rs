//! Per-session aliases ↔ real numbers (webqq.md §1.5).
//!
//! Every friend `uin`, member `muin`, `from_uin`/`send_uin` and group
//! `code` is an alias that changes with each login. Only `get_friend_uin2`
//! (type 1 for a person, type 4 for a group code) tells the real number,
//! and a few events carry it directly (`sess_message.ruin`,
//! `group_message.info_seq`, `system_message.account`). This book caches
//! both directions so each alias is looked up once per session; everything
//! the session emits carries real numbers, so puppets keep the same
//! identity across logins. A new login (new aliases) clears it.

use std::collections::HashMap;
use std::sync::Mutex;

use super::api::{Api, ApiError, UinKind};
use crate::core::model::{GroupNumber, Uin};

/// Entries per direction before the book starts over (aliases of one
/// session are bounded by its contacts; this guards against a server that
/// invents endless ones).
const MAX_ENTRIES: usize = 65_536;

#[derive(Debug, Default)]
struct Book {
    people: HashMap<u64, Uin>,
    people_by_real: HashMap<Uin, u64>,
    groups: HashMap<u64, GroupNumber>,
    groups_by_real: HashMap<GroupNumber, u64>,
}

/// The alias cache of one session.
#[derive(Debug, Default)]
pub struct Aliases {
    book: Mutex<Book>,
}

impl Aliases {
    pub fn new() -> Self {
        Aliases::default()
    }

    /// Forgets everything (after a new login).
    pub fn clear(&self) {
        if let Ok(mut book) = self.book.lock() {
            *book = Book::default();
        }
    }

    /// Records that `alias` is the person `real`.
    pub fn learn_person(&self, alias: u64, real: Uin) {
        if alias == 0 || real.0 == 0 {
            return;
        }
        if let Ok(mut book) = self.book.lock() {
            if book.people.len() >= MAX_ENTRIES {
                book.people.clear();
                book.people_by_real.clear();
            }
            book.people.insert(alias, real);
            book.people_by_real.insert(real, alias);
        }
    }

    /// Records that the group `code` is the group `real`.
    pub fn learn_group(&self, code: u64, real: GroupNumber) {
        if code == 0 || real.0 == 0 {
            return;
        }
        if let Ok(mut book) = self.book.lock() {
            if book.groups.len() >= MAX_ENTRIES {
                book.groups.clear();
                book.groups_by_real.clear();
            }
            book.groups.insert(code, real);
            book.groups_by_real.insert(real, code);
        }
    }

    /// The cached real number of a person alias.
    pub fn cached_person(&self, alias: u64) -> Option<Uin> {
        self.book.lock().ok()?.people.get(&alias).copied()
    }

    /// The alias of a real number, if this session has seen it.
    pub fn alias_of(&self, real: Uin) -> Option<u64> {
        self.book.lock().ok()?.people_by_real.get(&real).copied()
    }

    /// The cached real number of a group code.
    pub fn cached_group(&self, code: u64) -> Option<GroupNumber> {
        self.book.lock().ok()?.groups.get(&code).copied()
    }

    /// The code of a real group number, if this session has seen it.
    pub fn code_of(&self, real: GroupNumber) -> Option<u64> {
        self.book.lock().ok()?.groups_by_real.get(&real).copied()
    }

    /// The real number of a person alias, asking `get_friend_uin2` type 1
    /// when it is not cached.
    pub async fn person(&self, api: &Api, alias: u64) -> Result<Uin, ApiError> {
        if let Some(real) = self.cached_person(alias) {
            return Ok(real);
        }
        let real = Uin(api.real_number(alias, UinKind::Person).await?);
        self.learn_person(alias, real);
        Ok(real)
    }

    /// The real number of a group code, asking `get_friend_uin2` type 4
    /// when it is not cached.
    pub async fn group(&self, api: &Api, code: u64) -> Result<GroupNumber, ApiError> {
        if let Some(real) = self.cached_group(code) {
            return Ok(real);
        }
        let real = GroupNumber(api.real_number(code, UinKind::Group).await?);
        self.learn_group(code, real);
        Ok(real)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_directions_are_cached_and_cleared() {
        let aliases = Aliases::new();
        aliases.learn_person(3_901_234_567, Uin(20_002_000));
        aliases.learn_group(3_344_556_677, GroupNumber(445_566));
        aliases.learn_person(0, Uin(1));
        assert_eq!(aliases.cached_person(3_901_234_567), Some(Uin(20_002_000)));
        assert_eq!(aliases.alias_of(Uin(20_002_000)), Some(3_901_234_567));
        assert_eq!(
            aliases.cached_group(3_344_556_677),
            Some(GroupNumber(445_566))
        );
        assert_eq!(aliases.code_of(GroupNumber(445_566)), Some(3_344_556_677));
        assert_eq!(aliases.alias_of(Uin(1)), None);
        aliases.clear();
        assert_eq!(aliases.cached_person(3_901_234_567), None);
        assert_eq!(aliases.code_of(GroupNumber(445_566)), None);
    }

    #[test]
    fn a_new_alias_for_the_same_person_wins() {
        let aliases = Aliases::new();
        aliases.learn_person(1, Uin(20_002_000));
        aliases.learn_person(2, Uin(20_002_000));
        assert_eq!(aliases.alias_of(Uin(20_002_000)), Some(2));
        assert_eq!(aliases.cached_person(1), Some(Uin(20_002_000)));
    }
}
