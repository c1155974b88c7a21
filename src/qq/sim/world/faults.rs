//! Test-only fault switches of the simulated world, set through the
//! control API (`POST /fault`): they make one account's server side broken
//! so tests can check that the bridge survives it and that other accounts
//! are not affected. Nothing is switched on by default, so the simulator's
//! faithful behaviour is unchanged unless a test asks.

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use super::World;

#[derive(Debug, Default)]
pub(super) struct Faults {
    /// Accounts whose every HTTP QQ 1.1 request is answered NULL.
    null_replies: Mutex<HashSet<u64>>,
}

impl World {
    /// Makes every HTTP QQ 1.1 request of `uin` get NULL (`on`), or ends
    /// that fault. Requests are answered NULL before they take effect.
    pub fn set_null_replies(&self, uin: u64, on: bool) {
        let mut set = self
            .faults
            .null_replies
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if on {
            set.insert(uin);
        } else {
            set.remove(&uin);
        }
    }

    /// Whether `uin`'s HTTP QQ 1.1 requests are to be answered NULL.
    pub fn answers_null(&self, uin: u64) -> bool {
        self.faults
            .null_replies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&uin)
    }
}
