//! Serde types for every WebQQ JSON reply (webqq.md §1.4, §2.8, §5, §6):
//! the `retcode` envelope, the API results, and `poll2` with each
//! `poll_type`. Decoding is liberal and never panics; the types also
//! serialise in the captured key order, for the simulator.

mod envelope;
mod lenient;
mod poll;
mod replies;

#[cfg(test)]
mod tests;

pub use envelope::{ok_body, parse_envelope, parse_result, Envelope, JsonError};
pub use lenient::{value_to_i64, value_to_u64};
pub use poll::{
    parse_poll, AddedFriend, BuddyListChange, BuddyMessage, DiscuMessage, GroupMessage,
    GroupSystemMessage, KickMessage, Notice, PollEvent, PollReply, RemovedFriend, SessMessage,
    StatusChange, SystemMessage, RETCODE_NEW_PTWEBQQ, RETCODE_NOTHING_NEW,
};
pub use replies::{
    AllowAndAddResult, C2cSigResult, Category, FriendEntry, FriendInfo, FriendUinResult,
    FriendsResult, GroupDetail, GroupInfoResult, GroupListResult, GroupMemberRef, GroupName,
    Login2Result, LongNickResult, MarkName, MemberCard, MemberInfo, MemberStat, VipInfo,
};
