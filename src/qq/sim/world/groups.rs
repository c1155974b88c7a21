//! Groups (QQ 群): real number, name, members with their group cards, and
//! group and temporary-session messages.
//!
//! Only WebQQ shows groups; HTTP QQ 1.1 has none. So a group message is
//! logged as received by every other member (the control API shows it) but
//! queued only for members whose live session is a WebQQ one: nobody else
//! has a client that could show it, and WebQQ never delivered group
//! messages that arrived while one was offline [SIM].

use std::collections::BTreeMap;

use serde::Serialize;

use super::state::clip_text;
use super::{MessageOutcome, World};
use crate::qq::sim::events::{EventKind, Origin};

/// Most members one group may have (classic QQ groups held 100-500).
pub const MAX_GROUP_MEMBERS: usize = 500;

/// A group as the world knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    /// The real group number (WebQQ's `info_seq` / `account`).
    pub number: u64,
    pub name: String,
    /// The announcement (`memo`).
    pub memo: String,
    pub owner: u64,
    /// Members in the order they joined.
    pub members: Vec<u64>,
    /// Group business cards, by member.
    pub cards: BTreeMap<u64, String>,
    /// Creation time, unix seconds.
    pub created: u64,
}

impl Group {
    pub fn is_member(&self, uin: u64) -> bool {
        self.members.contains(&uin)
    }
}

/// The result of sending a group message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupMessageOutcome {
    Delivered,
    UnknownGroup,
    /// The sender is not a member (or not an account).
    NotMember,
}

impl World {
    /// Adds (or replaces) a group. Members that are not accounts, and
    /// members beyond [`MAX_GROUP_MEMBERS`], are left out.
    pub fn add_group(&self, mut group: Group) {
        let mut state = self.lock();
        group.members.retain(|m| state.accounts.contains_key(m));
        group.members.dedup();
        group.members.truncate(MAX_GROUP_MEMBERS);
        group.cards.retain(|m, _| group.members.contains(m));
        state.groups.insert(group.number, group);
    }

    pub fn group(&self, number: u64) -> Option<Group> {
        self.lock().groups.get(&number).cloned()
    }

    /// Whether `n` is a real account or group number (a protocol's made-up
    /// aliases must never equal one).
    pub fn number_in_use(&self, n: u64) -> bool {
        let state = self.lock();
        state.accounts.contains_key(&n) || state.groups.contains_key(&n)
    }

    /// The groups `uin` is a member of, by number.
    pub fn groups_of(&self, uin: u64) -> Vec<Group> {
        self.lock()
            .groups
            .values()
            .filter(|g| g.is_member(uin))
            .cloned()
            .collect()
    }

    /// `from` writes to a group: every other member receives it (see the
    /// module documentation for who gets it queued).
    pub fn send_group_message(
        &self,
        group: u64,
        from: u64,
        text: &str,
        via: Origin,
    ) -> GroupMessageOutcome {
        let text = clip_text(text);
        let mut state = self.lock();
        let Some(members) = state.groups.get(&group).map(|g| g.members.clone()) else {
            return GroupMessageOutcome::UnknownGroup;
        };
        if !members.contains(&from) {
            return GroupMessageOutcome::NotMember;
        }
        for member in members.into_iter().filter(|m| *m != from) {
            let on_webqq = state
                .sessions
                .get(&member)
                .is_some_and(|s| s.protocol == Origin::Webqq);
            let kind = EventKind::GroupMessage {
                group,
                text: text.clone(),
            };
            state.record(self.started, member, from, kind, via, on_webqq);
        }
        GroupMessageOutcome::Delivered
    }

    /// A temporary-session message from `from` to `to`, who share `group`.
    /// An echo account answers the same way. `None` when they do not both
    /// belong to the group.
    pub fn send_session_message(
        &self,
        from: u64,
        to: u64,
        group: u64,
        text: &str,
        via: Origin,
    ) -> Option<MessageOutcome> {
        let text = clip_text(text);
        let echo = {
            let mut state = self.lock();
            let shared = state
                .groups
                .get(&group)
                .is_some_and(|g| g.is_member(from) && g.is_member(to));
            if !shared {
                return None;
            }
            let Some(sender) = state.accounts.get_mut(&from) else {
                return Some(MessageOutcome::UnknownSender);
            };
            sender.wrote_to.insert(to);
            let Some(recipient) = state.accounts.get(&to) else {
                return Some(MessageOutcome::UnknownRecipient);
            };
            let echo = recipient.echo && via != Origin::Script && from != to;
            let kind = EventKind::SessionMessage {
                group,
                text: text.clone(),
            };
            state.deliver(self.started, to, from, kind, via);
            echo
        };
        if echo {
            self.send_session_message(to, from, group, &text, Origin::Script);
        }
        Some(MessageOutcome::Delivered)
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Duration;

    use super::*;
    use crate::qq::http11::codec::PasswordHash;
    use crate::qq::sim::account::{Account, AddPolicy, Presence};
    use crate::qq::sim::session::SessionKey;
    use crate::qq::sim::world::AccountSeed;

    fn seed(uin: u64, echo: bool) -> AccountSeed {
        AccountSeed {
            account: Account {
                uin,
                nick: format!("n{uin}"),
                face: 0,
                add_policy: AddPolicy::Verify,
                profile: Default::default(),
                password_md5: PasswordHash::from_password("pw"),
            },
            presence: Presence::Online,
            echo,
        }
    }

    fn group(members: Vec<u64>) -> Group {
        Group {
            number: 20001,
            name: "g".into(),
            memo: String::new(),
            owner: 1,
            members,
            cards: BTreeMap::from([(2, "card".to_owned()), (9, "gone".to_owned())]),
            created: 0,
        }
    }

    #[test]
    fn group_messages_are_queued_only_for_webqq_sessions() {
        let world = World::new(
            vec![seed(1, false), seed(2, false), seed(3, true)],
            &[],
            Duration::from_secs(60),
        );
        world.add_group(group(vec![1, 2, 3, 9]));
        assert_eq!(world.group(20001).map(|g| g.members), Some(vec![1, 2, 3]));
        assert_eq!(
            world.group(20001).map(|g| g.cards.len()),
            Some(1),
            "cards of non-members are dropped"
        );
        let key = SessionKey {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            uin: 2,
        };
        world.open_session(
            key,
            Origin::Webqq,
            Presence::Online,
            Duration::from_secs(60),
        );
        assert_eq!(
            world.send_group_message(20001, 1, "hi", Origin::Control),
            GroupMessageOutcome::Delivered
        );
        let queued = world.take_events(2, |_| true);
        assert_eq!(
            queued.iter().map(|e| e.kind.clone()).collect::<Vec<_>>(),
            [EventKind::GroupMessage {
                group: 20001,
                text: "hi".into()
            }]
        );
        assert!(!world.has_pending(3));
        assert_eq!(world.received(3).map(|r| r.len()), Some(1));
        assert_eq!(world.received(1).map(|r| r.len()), Some(0));
        assert_eq!(
            world.send_group_message(20001, 9, "x", Origin::Control),
            GroupMessageOutcome::NotMember
        );
        assert_eq!(
            world.send_group_message(1, 1, "x", Origin::Control),
            GroupMessageOutcome::UnknownGroup
        );
        assert_eq!(world.groups_of(3).len(), 1);
        assert!(world.groups_of(9).is_empty());
    }

    #[test]
    fn session_messages_need_a_shared_group_and_echo_back() {
        let world = World::new(
            vec![seed(1, false), seed(3, true), seed(4, false)],
            &[],
            Duration::from_secs(60),
        );
        world.add_group(group(vec![1, 3]));
        assert_eq!(
            world.send_session_message(1, 3, 20001, "hey", Origin::Webqq),
            Some(MessageOutcome::Delivered)
        );
        let back = world.take_events(1, |_| true);
        assert_eq!(
            back.iter()
                .map(|e| (e.from, e.kind.clone()))
                .collect::<Vec<_>>(),
            [(
                3,
                EventKind::SessionMessage {
                    group: 20001,
                    text: "hey".into()
                }
            )]
        );
        assert_eq!(
            world.send_session_message(1, 4, 20001, "x", Origin::Webqq),
            None
        );
    }
}
