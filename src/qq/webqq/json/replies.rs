//! The `result` objects of the WebQQ API calls (webqq.md §2.8, §5): login2,
//! the friend list, the group list and group detail, get_friend_uin2,
//! get_c2cmsg_sig2, set_long_nick2 and allow_and_add2.
//!
//! Every struct reads leniently (missing fields default, numbers may be
//! strings, malformed list items are skipped) and serialises with the keys
//! in the captured order, so the simulator can answer with these types.
//! Session tokens are [`Secret`]s and never show in `Debug` output.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lenient::{
    i64_or_zero, or_default, secret_or_empty, string_or_empty, u64_or_zero, vec_skipping_bad,
};
use crate::secret::Secret;

/// `channel/login2` (and relink) result.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Login2Result {
    /// The account's own, real QQ number.
    #[serde(deserialize_with = "u64_or_zero")]
    pub uin: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub cip: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub index: i64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub port: i64,
    #[serde(deserialize_with = "string_or_empty")]
    pub status: String,
    #[serde(deserialize_with = "secret_or_empty")]
    pub vfwebqq: Secret,
    #[serde(deserialize_with = "secret_or_empty")]
    pub psessionid: Secret,
    #[serde(deserialize_with = "i64_or_zero")]
    pub user_state: i64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub f: i64,
}

/// `api/get_user_friends2` result (§5.1). The lists join on `uin`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FriendsResult {
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub friends: Vec<FriendEntry>,
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub marknames: Vec<MarkName>,
    /// Index 0 (the default "我的好友" group) is never listed.
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub categories: Vec<Category>,
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub vipinfo: Vec<VipInfo>,
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub info: Vec<FriendInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FriendEntry {
    #[serde(deserialize_with = "i64_or_zero")]
    pub flag: i64,
    /// Per-session alias.
    #[serde(deserialize_with = "u64_or_zero")]
    pub uin: u64,
    /// The index of the friend's category.
    #[serde(deserialize_with = "u64_or_zero")]
    pub categories: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MarkName {
    #[serde(deserialize_with = "u64_or_zero")]
    pub uin: u64,
    #[serde(deserialize_with = "string_or_empty")]
    pub markname: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Category {
    #[serde(deserialize_with = "u64_or_zero")]
    pub index: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub sort: i64,
    #[serde(deserialize_with = "string_or_empty")]
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct VipInfo {
    #[serde(deserialize_with = "i64_or_zero")]
    pub vip_level: i64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub u: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub is_vip: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FriendInfo {
    /// Avatar id.
    #[serde(deserialize_with = "u64_or_zero")]
    pub face: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub flag: i64,
    #[serde(deserialize_with = "string_or_empty")]
    pub nick: String,
    #[serde(deserialize_with = "u64_or_zero")]
    pub uin: u64,
}

/// `api/get_group_name_list_mask2` result (§5.2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupListResult {
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub gmasklist: Vec<Value>,
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub gnamelist: Vec<GroupName>,
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub gmarklist: Vec<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupName {
    #[serde(deserialize_with = "i64_or_zero")]
    pub flag: i64,
    #[serde(deserialize_with = "string_or_empty")]
    pub name: String,
    /// Per-session id used to send (`group_uin`) and seen as `from_uin`.
    #[serde(deserialize_with = "u64_or_zero")]
    pub gid: u64,
    /// Per-session code used to query members and with get_friend_uin2.
    #[serde(deserialize_with = "u64_or_zero")]
    pub code: u64,
}

/// `api/get_group_info_ext2` result (§5.3).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupInfoResult {
    /// Online members only.
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub stats: Vec<MemberStat>,
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub minfo: Vec<MemberInfo>,
    #[serde(deserialize_with = "or_default")]
    pub ginfo: GroupDetail,
    /// Group cards; may be absent.
    #[serde(
        deserialize_with = "vec_skipping_bad",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub cards: Vec<MemberCard>,
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub vipinfo: Vec<VipInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberStat {
    #[serde(deserialize_with = "i64_or_zero")]
    pub client_type: i64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub uin: u64,
    /// Numeric status (webqq.md §7).
    #[serde(deserialize_with = "i64_or_zero")]
    pub stat: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberInfo {
    #[serde(deserialize_with = "string_or_empty")]
    pub nick: String,
    #[serde(deserialize_with = "string_or_empty")]
    pub province: String,
    #[serde(deserialize_with = "string_or_empty")]
    pub gender: String,
    #[serde(deserialize_with = "u64_or_zero")]
    pub uin: u64,
    #[serde(deserialize_with = "string_or_empty")]
    pub country: String,
    #[serde(deserialize_with = "string_or_empty")]
    pub city: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupDetail {
    #[serde(deserialize_with = "u64_or_zero")]
    pub face: u64,
    #[serde(deserialize_with = "string_or_empty")]
    pub memo: String,
    #[serde(deserialize_with = "i64_or_zero")]
    pub class: i64,
    #[serde(deserialize_with = "string_or_empty")]
    pub fingermemo: String,
    #[serde(deserialize_with = "u64_or_zero")]
    pub code: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub createtime: i64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub flag: i64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub level: i64,
    #[serde(deserialize_with = "string_or_empty")]
    pub name: String,
    #[serde(deserialize_with = "u64_or_zero")]
    pub gid: u64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub owner: u64,
    #[serde(deserialize_with = "vec_skipping_bad")]
    pub members: Vec<GroupMemberRef>,
    #[serde(deserialize_with = "i64_or_zero")]
    pub option: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct GroupMemberRef {
    /// Member alias (the own number appears as the real number).
    #[serde(deserialize_with = "u64_or_zero")]
    pub muin: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub mflag: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MemberCard {
    #[serde(deserialize_with = "u64_or_zero")]
    pub muin: u64,
    #[serde(deserialize_with = "string_or_empty")]
    pub card: String,
}

/// `api/get_friend_uin2` result (§5.4): `account` is the real number.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FriendUinResult {
    #[serde(deserialize_with = "string_or_empty")]
    pub uiuin: String,
    #[serde(deserialize_with = "u64_or_zero")]
    pub account: u64,
    /// Echo of `tuin`.
    #[serde(deserialize_with = "u64_or_zero")]
    pub uin: u64,
}

/// `channel/get_c2cmsg_sig2` result (§5.7).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct C2cSigResult {
    #[serde(rename = "type", deserialize_with = "i64_or_zero")]
    pub kind: i64,
    /// The group signature for `send_sess_msg2`.
    #[serde(deserialize_with = "secret_or_empty")]
    pub value: Secret,
    pub flags: Value,
}

/// `api/set_long_nick2` result (§5.11): `result == 0` is success.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LongNickResult {
    #[serde(deserialize_with = "i64_or_zero")]
    pub result: i64,
}

/// `api/allow_and_add2` result (§5.12): `result1 == 0` is success.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AllowAndAddResult {
    #[serde(deserialize_with = "i64_or_zero")]
    pub result1: i64,
    #[serde(deserialize_with = "u64_or_zero")]
    pub account: u64,
    /// The new friend's alias in this session.
    #[serde(deserialize_with = "u64_or_zero")]
    pub tuin: u64,
    #[serde(deserialize_with = "i64_or_zero")]
    pub stat: i64,
}
