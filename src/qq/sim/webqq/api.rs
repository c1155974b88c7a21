//! The `s.web2.qq.com/api` calls (webqq.md §5.1-§5.4, §5.11, §5.12): the
//! friend list (behind the friend-list hash), groups and their members,
//! alias → real number, the signature, and answering friend requests.
//! Results reuse the client's reply types, which serialise in the captured
//! key order; every other account and group appears under its alias.

use serde::Serialize;
use serde_json::Value;

use super::aliases::Aliased;
use super::hash::expected_hash;
use super::reply::{bare, error, ok, retcode};
use super::request::WebRequest;
use super::sessions::WebSession;
use super::status::{client_type, stat_code};
use super::WebqqService;
use crate::qq::http11::codec::Gender;
use crate::qq::sim::events::Origin;
use crate::qq::sim::world::{AnswerOutcome, Group};
use crate::qq::webqq::json::{
    AllowAndAddResult, Category as CategoryEntry, FriendEntry, FriendInfo, FriendUinResult,
    FriendsResult, GroupDetail, GroupInfoResult, GroupListResult, GroupMemberRef, GroupName,
    LongNickResult, MarkName, MemberCard, MemberInfo, MemberStat, VipInfo,
};

/// Opaque `flag` of every group (the captures').
const GROUP_FLAG: i64 = 1_090_519_041;
/// Opaque `flag` of friend profiles.
const INFO_FLAG: i64 = 8_389_126;
/// `class` of every group (the captures').
const GROUP_CLASS: i64 = 10_048;

/// `allow_added_request2`'s result.
#[derive(Serialize)]
struct AllowAddedResult {
    result: i64,
    client_type: i64,
    account: u64,
    tuin: u64,
    stat: i64,
}

fn no_vip(u: u64) -> VipInfo {
    VipInfo {
        vip_level: 0,
        u,
        is_vip: 0,
    }
}

fn gender_text(gender: Gender) -> &'static str {
    match gender {
        Gender::Male => "male",
        Gender::Female => "female",
    }
}

impl WebqqService {
    fn alias_of(&self, session: &WebSession, what: Aliased) -> u64 {
        session
            .state()
            .aliases
            .alias(what, |n| self.world.number_in_use(n))
    }

    /// Whether `hash` is what the configured variant expects of the
    /// current (or just rotated-out) ptwebqq.
    fn hash_ok(&self, session: &WebSession, hash: &str) -> bool {
        let (current, previous) = {
            let state = session.state();
            (state.ptwebqq.clone(), state.previous_ptwebqq.clone())
        };
        let variant = self.quirks.hash_variant;
        [Some(current), previous].into_iter().flatten().any(|pt| {
            expected_hash(variant, session.uin, &pt)
                .is_none_or(|expected| expected.eq_ignore_ascii_case(hash.trim()))
        })
    }

    /// `get_user_friends2`: friends, categories (index 0 not listed),
    /// marknames, VIP flags and profiles.
    pub(super) fn get_user_friends2(&self, req: &WebRequest) -> String {
        let r = req.r();
        let session = match self.service_session(req, r.as_ref()) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let hash = req.field(r.as_ref(), "hash").unwrap_or_default();
        if !self.hash_ok(&session, &hash) {
            tracing::debug!(uin = session.uin, "WebQQ friend list: wrong hash");
            return bare(retcode::WRONG_HASH);
        }
        let book = self.world.contact_book(session.uin);
        let mut result = FriendsResult {
            categories: book
                .categories
                .iter()
                .zip(1..)
                .map(|(c, sort)| CategoryEntry {
                    index: u64::from(c.index),
                    sort,
                    name: c.name.clone(),
                })
                .collect(),
            ..FriendsResult::default()
        };
        for contact in self.world.friend_contacts(session.uin) {
            let uin = self.alias_of(&session, Aliased::Person(contact.uin));
            let category = book.category(contact.uin);
            result.friends.push(FriendEntry {
                flag: i64::from(category) * 4,
                uin,
                categories: u64::from(category),
            });
            if let Some(markname) = book.marknames.get(&contact.uin) {
                result.marknames.push(MarkName {
                    uin,
                    markname: markname.clone(),
                });
            }
            result.vipinfo.push(no_vip(uin));
            result.info.push(FriendInfo {
                face: u64::from(contact.face),
                flag: INFO_FLAG,
                nick: contact.nick,
                uin,
            });
        }
        ok(&result)
    }

    /// `get_group_name_list_mask2`: the groups with their gid and code.
    pub(super) fn get_group_name_list_mask2(&self, req: &WebRequest) -> String {
        let r = req.r();
        let session = match self.service_session(req, r.as_ref()) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let gnamelist = self
            .world
            .groups_of(session.uin)
            .into_iter()
            .map(|g| GroupName {
                flag: GROUP_FLAG,
                gid: self.alias_of(&session, Aliased::GroupId(g.number)),
                code: self.alias_of(&session, Aliased::GroupCode(g.number)),
                name: g.name,
            })
            .collect();
        ok(&GroupListResult {
            gmasklist: Vec::new(),
            gnamelist,
            gmarklist: Vec::new(),
        })
    }

    /// The group behind a code alias, if the session's account is in it.
    fn group_by_code(&self, session: &WebSession, code: Option<u64>) -> Option<Group> {
        match self.resolve(session, code?)? {
            Aliased::GroupCode(number) => self
                .world
                .group(number)
                .filter(|g| g.is_member(session.uin)),
            _ => None,
        }
    }

    /// `get_group_info_ext2?gcode=`: members, online stats and cards.
    pub(super) fn get_group_info_ext2(&self, req: &WebRequest) -> String {
        let session = match self.service_session(req, None) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let Some(group) = self.group_by_code(&session, req.number(None, "gcode")) else {
            return bare(retcode::BAD_GROUP);
        };
        let mut result = GroupInfoResult::default();
        for member in &group.members {
            let Some(account) = self.world.account(*member) else {
                continue;
            };
            let uin = self.alias_of(&session, Aliased::Person(*member));
            let presence = self.world.presence(*member).unwrap_or_default();
            if presence.is_visible() {
                let protocol = self.world.session(*member).map(|s| s.protocol);
                result.stats.push(MemberStat {
                    client_type: client_type(protocol),
                    uin,
                    stat: stat_code(presence.seen_by_others()),
                });
            }
            let profile = &account.profile;
            result.minfo.push(MemberInfo {
                nick: account.nick.clone(),
                province: profile.province.clone(),
                gender: gender_text(profile.gender).to_owned(),
                uin,
                country: profile.country.clone(),
                city: profile.city.clone(),
            });
            result.ginfo.members.push(GroupMemberRef {
                muin: uin,
                mflag: if *member == group.owner { 20 } else { 0 },
            });
            if let Some(card) = group.cards.get(member) {
                result.cards.push(MemberCard {
                    muin: uin,
                    card: card.clone(),
                });
            }
            result.vipinfo.push(no_vip(uin));
        }
        result.ginfo = GroupDetail {
            face: 0,
            memo: group.memo.clone(),
            class: GROUP_CLASS,
            fingermemo: String::new(),
            code: self.alias_of(&session, Aliased::GroupCode(group.number)),
            createtime: i64::try_from(group.created).unwrap_or_default(),
            flag: GROUP_FLAG,
            level: 0,
            name: group.name.clone(),
            gid: self.alias_of(&session, Aliased::GroupId(group.number)),
            owner: self.alias_of(&session, Aliased::Person(group.owner)),
            members: std::mem::take(&mut result.ginfo.members),
            option: 2,
        };
        ok(&result)
    }

    /// `get_friend_uin2?tuin=&type=`: the real number behind a person's
    /// alias (type 1) or a group code (type 4; lwqq sent 1 for groups too,
    /// which is accepted).
    pub(super) fn get_friend_uin2(&self, req: &WebRequest) -> String {
        let session = match self.service_session(req, None) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let Some(tuin) = req.number(None, "tuin") else {
            return bare(retcode::UNKNOWN);
        };
        let kind = req.param("type").unwrap_or("1").trim().to_owned();
        let account = match (kind.as_str(), self.resolve(&session, tuin)) {
            ("1", Some(Aliased::Person(real) | Aliased::GroupCode(real))) => real,
            ("4", Some(Aliased::GroupCode(real))) => real,
            _ => return bare(retcode::UNKNOWN),
        };
        ok(&FriendUinResult {
            uiuin: String::new(),
            account,
            uin: tuin,
        })
    }

    /// `set_long_nick2`: the own signature.
    pub(super) fn set_long_nick2(&self, req: &WebRequest) -> String {
        let r = req.r();
        let session = match self.service_session(req, r.as_ref()) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let Some(text) = r
            .as_ref()
            .and_then(|r| r.get("nlk"))
            .and_then(Value::as_str)
        else {
            return bare(retcode::UNKNOWN);
        };
        self.world.set_long_nick(session.uin, text);
        ok(&LongNickResult { result: 0 })
    }

    /// `allow_and_add2` (`add_back`) and `allow_added_request2`: accept the
    /// pending request of `account`, filing them under category `gid` with
    /// markname `mname` when adding back.
    pub(super) fn allow_and_add2(&self, req: &WebRequest, add_back: bool) -> String {
        let r = req.r();
        let session = match self.service_session(req, r.as_ref()) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let Some(account) = req.number(r.as_ref(), "account") else {
            return bare(retcode::UNKNOWN);
        };
        let outcome =
            self.world
                .answer_friend_request(session.uin, account, true, "", Origin::Webqq);
        let accepted = outcome == AnswerOutcome::Done;
        let tuin = self.alias_of(&session, Aliased::Person(account));
        let presence = self.world.presence(account).unwrap_or_default();
        let stat = stat_code(presence.seen_by_others());
        if !add_back {
            if accepted {
                // The requester lists us; we do not list them.
                self.world.remove_friend(session.uin, account);
            }
            let protocol = self.world.session(account).map(|s| s.protocol);
            return ok(&AllowAddedResult {
                result: i64::from(!accepted),
                client_type: client_type(protocol),
                account,
                tuin,
                stat,
            });
        }
        if accepted {
            let category = req
                .number(r.as_ref(), "gid")
                .and_then(|g| u32::try_from(g).ok())
                .unwrap_or(0);
            let markname = req.field(r.as_ref(), "mname").unwrap_or_default();
            self.world
                .file_friend(session.uin, account, category, &markname);
            let category = self.world.contact_book(session.uin).category(account);
            let mut state = session.state();
            if let Some(event) = self.friend_added_event(&mut state, account, category) {
                state.push_local(event);
            }
        }
        ok(&AllowAndAddResult {
            result1: i64::from(!accepted),
            account,
            tuin,
            stat,
        })
    }

    /// `deny_added_request2`: refuse the pending request of `account` with
    /// `msg`. Its reply is undocumented: `{"result":0}` [SIM].
    pub(super) fn deny_added_request2(&self, req: &WebRequest) -> String {
        let r = req.r();
        let session = match self.service_session(req, r.as_ref()) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let Some(account) = req.number(r.as_ref(), "account") else {
            return bare(retcode::UNKNOWN);
        };
        let reason = req.field(r.as_ref(), "msg").unwrap_or_default();
        let outcome =
            self.world
                .answer_friend_request(session.uin, account, false, &reason, Origin::Webqq);
        if outcome == AnswerOutcome::NoPendingRequest {
            return error(retcode::UNKNOWN);
        }
        ok(&LongNickResult { result: 0 })
    }
}
