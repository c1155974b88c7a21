//! Loop prevention: remembers what the bridge itself just sent to QQ, so that
//! when QQ shows it back (a group message from our own account, a relay
//! account's copy) it is not relayed to the chat side a second time.

use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::core::model::{ChatId, Uin};

/// How long an outgoing message is remembered. QQ echoes arrive within one
/// poll cycle; a minute is generous.
const ECHO_WINDOW: Duration = Duration::from_secs(60);
/// Bound on remembered entries per owner, so a flood cannot grow memory.
const MAX_ENTRIES_PER_OWNER: usize = 256;

#[derive(Default)]
pub struct EchoGuard {
    sent: Mutex<HashMap<Uin, VecDeque<(Instant, u64)>>>,
}

fn fingerprint(chat: &ChatId, text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    chat.hash(&mut h);
    text.trim().hash(&mut h);
    h.finish()
}

impl EchoGuard {
    /// Records a message `owner` sent to `chat` through the bridge.
    pub fn remember(&self, owner: Uin, chat: &ChatId, text: &str) {
        let Ok(mut sent) = self.sent.lock() else {
            return;
        };
        let queue = sent.entry(owner).or_default();
        let now = Instant::now();
        while queue
            .front()
            .is_some_and(|(t, _)| now.duration_since(*t) > ECHO_WINDOW)
        {
            queue.pop_front();
        }
        if queue.len() >= MAX_ENTRIES_PER_OWNER {
            queue.pop_front();
        }
        queue.push_back((now, fingerprint(chat, text)));
    }

    /// Whether an incoming message from `sender` is our own message coming
    /// back. Consumes the record, so a second identical message the user
    /// really sent again from another client is still relayed.
    pub fn is_echo(&self, owner: Uin, chat: &ChatId, sender: Uin, text: &str) -> bool {
        if sender != owner {
            return false;
        }
        let Ok(mut sent) = self.sent.lock() else {
            return false;
        };
        let Some(queue) = sent.get_mut(&owner) else {
            return false;
        };
        let fp = fingerprint(chat, text);
        let now = Instant::now();
        match queue
            .iter()
            .position(|(t, f)| *f == fp && now.duration_since(*t) <= ECHO_WINDOW)
        {
            Some(i) => {
                queue.remove(i);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::model::GroupNumber;

    #[test]
    fn own_message_coming_back_is_an_echo_once() {
        let g = EchoGuard::default();
        let chat = ChatId::Group(GroupNumber(5));
        g.remember(Uin(1), &chat, "hello");
        assert!(
            !g.is_echo(Uin(1), &chat, Uin(2), "hello"),
            "someone else saying the same is not an echo"
        );
        assert!(
            !g.is_echo(Uin(1), &ChatId::Buddy(Uin(2)), Uin(1), "hello"),
            "other chat"
        );
        assert!(
            g.is_echo(Uin(1), &chat, Uin(1), "hello "),
            "QQ's trailing space is ignored"
        );
        assert!(!g.is_echo(Uin(1), &chat, Uin(1), "hello"), "consumed");
    }

    #[test]
    fn memory_is_bounded() {
        let g = EchoGuard::default();
        let chat = ChatId::Buddy(Uin(2));
        for i in 0..1000 {
            g.remember(Uin(1), &chat, &i.to_string());
        }
        assert!(!g.is_echo(Uin(1), &chat, Uin(1), "0"));
        assert!(g.is_echo(Uin(1), &chat, Uin(1), "999"));
    }
}
