//! Friend lists: adding directly (AddToList), the verification handshake
//! (request, accept, refuse) and removing.

use super::state::clip_text;
use super::World;
use crate::qq::sim::account::AddPolicy;
use crate::qq::sim::events::{EventKind, Origin};

/// The result of adding a friend directly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddFriendOutcome {
    /// The target's policy is open: it is now in the list.
    Added,
    AlreadyFriend,
    /// The target's policy requires a verification request.
    NeedsVerification,
    /// The target accepts nobody (or a list is full, or it is oneself).
    Refused,
    UnknownTarget,
}

/// The result of sending a friend request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestOutcome {
    Delivered,
    /// The target accepts nobody.
    Refused,
    UnknownAccount,
}

/// The result of answering a friend request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerOutcome {
    Done,
    /// There is no request from that account to answer.
    NoPendingRequest,
}

impl World {
    /// AddToList: applies the target's policy.
    pub fn add_friend(&self, owner: u64, target: u64) -> AddFriendOutcome {
        let mut state = self.lock();
        let Some(policy) = state.accounts.get(&target).map(|t| t.account.add_policy) else {
            return AddFriendOutcome::UnknownTarget;
        };
        if owner == target {
            return AddFriendOutcome::Refused;
        }
        if state
            .accounts
            .get(&owner)
            .is_some_and(|o| o.friends.contains(&target))
        {
            return AddFriendOutcome::AlreadyFriend;
        }
        match policy {
            AddPolicy::Open if state.link(owner, target) => AddFriendOutcome::Added,
            AddPolicy::Verify => AddFriendOutcome::NeedsVerification,
            AddPolicy::Open | AddPolicy::Deny => AddFriendOutcome::Refused,
        }
    }

    /// Sends `to` a request from `from` to be added as a friend.
    pub fn request_friend(&self, from: u64, to: u64, text: &str, via: Origin) -> RequestOutcome {
        let mut state = self.lock();
        if !state.accounts.contains_key(&from) {
            return RequestOutcome::UnknownAccount;
        }
        let Some(target) = state.accounts.get_mut(&to) else {
            return RequestOutcome::UnknownAccount;
        };
        if target.account.add_policy == AddPolicy::Deny || from == to {
            return RequestOutcome::Refused;
        }
        target.requests_from.insert(from);
        let kind = EventKind::FriendRequest {
            text: clip_text(text),
        };
        state.deliver(self.started, to, from, kind, via);
        RequestOutcome::Delivered
    }

    /// `responder` accepts or refuses the pending request of `requester`.
    /// Accepting makes them friends of each other.
    pub fn answer_friend_request(
        &self,
        responder: u64,
        requester: u64,
        accept: bool,
        text: &str,
        via: Origin,
    ) -> AnswerOutcome {
        let mut state = self.lock();
        let had_request = state
            .accounts
            .get_mut(&responder)
            .is_some_and(|r| r.requests_from.remove(&requester));
        if !had_request {
            return AnswerOutcome::NoPendingRequest;
        }
        let text = clip_text(text);
        let kind = if accept {
            state.link(requester, responder);
            state.link(responder, requester);
            EventKind::FriendAccepted { text }
        } else {
            EventKind::FriendRefused { text }
        };
        state.deliver(self.started, requester, responder, kind, via);
        AnswerOutcome::Done
    }

    /// DelFromList: removes `target` from `owner`'s list only.
    pub fn remove_friend(&self, owner: u64, target: u64) -> bool {
        self.lock().unlink(owner, target)
    }
}
