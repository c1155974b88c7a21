//! Per-session aliases (webqq.md §1.5): every friend `uin`, group `gid` and
//! group `code` a session sees is a number made up for that session, and
//! only `get_friend_uin2` maps it back. The own number is never aliased.
//!
//! An alias is a keyed hash of what it stands for, `1_000_000_000 +
//! H(secret, kind, real, attempt) mod 3_294_967_295`, so it fits the
//! 32-bit range of the captures. Collisions with another alias of the
//! session or with any real number are resolved by the next attempt, which
//! keeps the mapping a bijection; once issued an alias never changes for
//! the life of the `psessionid`.

use std::collections::HashMap;

use md5::{Digest, Md5};

/// Lowest alias (the captures' aliases are 10-digit numbers).
const ALIAS_BASE: u64 = 1_000_000_000;
/// Aliases span `ALIAS_BASE .. ALIAS_BASE + ALIAS_SPAN` (below 2^32).
const ALIAS_SPAN: u64 = 3_294_967_295;
/// Attempts before giving up on a free alias (never reached in practice:
/// the span is billions wide).
const MAX_ATTEMPTS: u32 = 1_000;

/// What an alias stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Aliased {
    /// A person, by real QQ number.
    Person(u64),
    /// A group's `gid` (used to send, and as `from_uin` of its messages).
    GroupId(u64),
    /// A group's `code` (used to query it and with `get_friend_uin2`).
    GroupCode(u64),
}

impl Aliased {
    fn tag(self) -> (u8, u64) {
        match self {
            Aliased::Person(n) => (1, n),
            Aliased::GroupId(n) => (2, n),
            Aliased::GroupCode(n) => (3, n),
        }
    }
}

/// One session's aliases.
#[derive(Debug)]
pub struct AliasBook {
    secret: [u8; 16],
    own_uin: u64,
    forward: HashMap<Aliased, u64>,
    backward: HashMap<u64, Aliased>,
}

impl AliasBook {
    /// A book for the session of `own_uin`, keyed by `secret`.
    pub fn new(secret: [u8; 16], own_uin: u64) -> Self {
        AliasBook {
            secret,
            own_uin,
            forward: HashMap::new(),
            backward: HashMap::new(),
        }
    }

    /// The alias of `what`, issuing one if needed; `is_real` says whether
    /// a number is some real account or group number (never used as an
    /// alias). A person who is the session's own account is its real
    /// number.
    pub fn alias(&mut self, what: Aliased, is_real: impl Fn(u64) -> bool) -> u64 {
        if what == Aliased::Person(self.own_uin) {
            return self.own_uin;
        }
        if let Some(alias) = self.forward.get(&what) {
            return *alias;
        }
        let (tag, real) = what.tag();
        for attempt in 0..MAX_ATTEMPTS {
            let mut hasher = Md5::new();
            hasher.update(self.secret);
            hasher.update([tag]);
            hasher.update(real.to_be_bytes());
            hasher.update(attempt.to_be_bytes());
            let digest = hasher.finalize();
            let mut first = [0u8; 8];
            first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
            let alias = ALIAS_BASE + u64::from_be_bytes(first) % ALIAS_SPAN;
            if alias != self.own_uin && !self.backward.contains_key(&alias) && !is_real(alias) {
                self.forward.insert(what, alias);
                self.backward.insert(alias, what);
                return alias;
            }
        }
        // Unreachable with a span this wide; the real number keeps things
        // working rather than failing the request.
        real
    }

    /// What an issued alias stands for (the own number stands for itself).
    pub fn resolve(&self, alias: u64) -> Option<Aliased> {
        if alias == self.own_uin {
            return Some(Aliased::Person(alias));
        }
        self.backward.get(&alias).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_are_stable_distinct_and_never_real() {
        let mut book = AliasBook::new([7; 16], 10001);
        let real = |n: u64| n == 10002 || n == 20001;
        let alice = book.alias(Aliased::Person(10002), real);
        assert!((ALIAS_BASE..ALIAS_BASE + ALIAS_SPAN).contains(&alice));
        assert_eq!(book.alias(Aliased::Person(10002), real), alice);
        let gid = book.alias(Aliased::GroupId(20001), real);
        let code = book.alias(Aliased::GroupCode(20001), real);
        assert!(gid != code && gid != alice && code != alice);
        assert_eq!(book.resolve(alice), Some(Aliased::Person(10002)));
        assert_eq!(book.resolve(code), Some(Aliased::GroupCode(20001)));
        assert_eq!(book.resolve(12345), None);
        assert_eq!(book.alias(Aliased::Person(10001), real), 10001);
        assert_eq!(book.resolve(10001), Some(Aliased::Person(10001)));
        // Another secret: another session, other aliases.
        let mut other = AliasBook::new([8; 16], 10001);
        assert_ne!(other.alias(Aliased::Person(10002), real), alice);
    }

    #[test]
    fn collisions_take_the_next_attempt() {
        let mut book = AliasBook::new([1; 16], 1);
        let first = book.alias(Aliased::Person(5), |_| false);
        let mut book = AliasBook::new([1; 16], 1);
        let taken = book.alias(Aliased::Person(5), |n| n == first);
        assert_ne!(taken, first);
        // Thousands of people still get distinct aliases.
        let mut book = AliasBook::new([2; 16], 1);
        let mut seen = std::collections::HashSet::new();
        for n in 0..5_000 {
            assert!(seen.insert(book.alias(Aliased::Person(100_000 + n), |_| false)));
        }
    }
}
