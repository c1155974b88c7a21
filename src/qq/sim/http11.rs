//! The HTTP QQ 1.1 front end of the simulator: turns each decoded request
//! into world calls and the outcome into the exact reply bytes of
//! http11.md, quirks included.
//!
//! Order of checks, as the spec requires: malformed input (every documented
//! NULL trigger, via the codec, and the optional lowercase-`h` quirk) gives
//! NULL first; then Login and Logout, which need no session; then the
//! (client IP, UIN) session check (`RES=20`); then the command. `RES=3`
//! answers are held for the scaled delay inside this connection's own task,
//! so they never block other requests.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use super::account::{Account, Contact, Presence, SearchCriteria};
use super::events::{Event, EventKind, Origin};
use super::http::{HttpRequest, HttpResponse, Route};
use super::quirks::{NullMode, Quirks};
use super::scenario::MIN_UIN;
use super::session::SessionKey;
use super::throttle::{Throttle, ThrottleLimits};
use super::timing::TimeScale;
use super::world::{AddFriendOutcome, AnswerOutcome, LoginOutcome, RequestOutcome, World};
use crate::qq::http11::codec::{
    http_reply, AckCode, AddToListCode, AddToListReply, FingerEntry, InfoExtras, InfoReply,
    ListReply, LoginReply, MsgEntry, OnlineFriend, Params, PasswordHash, QueryStatReply, Reply,
    ReplyBody, ReplyStyle, Request, Status, UserInfo, MAX_LIST_ITEMS, MAX_REPLY_BODY,
};

/// Most accounts one Finger search returns.
const FINGER_LIMIT: usize = 50;
/// `RA` texts: \[001\] for a wrong password, \[003\] for any other failure.
const WRONG_PASSWORD: &str = "密码错误";
const LOGIN_FAILED: &str = "登录失败";
const ALREADY_ONLINE: &str = "重复登录";

/// What to send back, before it is encoded.
enum Answer {
    /// No reply at all.
    Null,
    Now(ReplyBody),
    /// `RES=3`, after the given delay.
    Late(Duration),
    /// Two replies on one connection (Query_Stat without TN).
    Double(ReplyBody, ReplyBody),
}

/// The handler; one per simulator.
pub struct Http11Service {
    world: Arc<World>,
    quirks: Quirks,
    style: ReplyStyle,
    scale: TimeScale,
    throttle: Throttle,
}

/// The HTTP QQ status code others see for a presence (invisible is 20;
/// WebQQ's extra states fold into the nearest 1.1 code).
pub fn seen_status(presence: Presence) -> Status {
    match presence.seen_by_others() {
        Presence::Online | Presence::CallMe => Status::Online,
        Presence::Away | Presence::Busy | Presence::Silent => Status::Busy,
        Presence::Invisible | Presence::Offline => Status::Offline,
    }
}

fn presence_for(status: Status) -> Presence {
    match status {
        Status::Online => Presence::Online,
        Status::Offline => Presence::Offline,
        Status::Busy => Presence::Busy,
        Status::Invisible => Presence::Invisible,
    }
}

fn online_friend(contact: Contact) -> OnlineFriend {
    OnlineFriend {
        face: contact.face,
        status: seen_status(contact.presence),
        uin: contact.uin,
        nick: contact.nick,
    }
}

fn user_info(account: &Account) -> UserInfo {
    let p = &account.profile;
    UserInfo {
        uin: account.uin,
        nick: account.nick.clone(),
        address: p.address.clone(),
        age: p.age,
        email: p.email.clone(),
        face: account.face,
        homepage: p.homepage.clone(),
        occupation: p.occupation.clone(),
        postcode: p.postcode.clone(),
        phone: p.phone.clone(),
        intro: p.intro.clone(),
        province: p.province.clone(),
        real_name: p.real_name.clone(),
        school: p.school.clone(),
        gender: p.gender,
    }
}

fn info_extras(account: &Account) -> InfoExtras {
    let p = &account.profile;
    InfoExtras {
        blood_type: p.blood_type,
        constellation: p.constellation,
        city: p.city.clone(),
        cv: p.cv.clone(),
        country: p.country.clone(),
        id: p.id.clone(),
        mobile: p.mobile.clone(),
        mt: p.mt.clone(),
        mv: p.mv.clone(),
        zodiac: p.zodiac,
    }
}

/// The GetMsgEx entry of an event; `None` for group messages, which HTTP
/// QQ 1.1 has no way to show (a temporary-session message is just a
/// message here).
fn msg_entry(event: Event) -> Option<MsgEntry> {
    let from = event.from;
    Some(match event.kind {
        EventKind::Message { text } | EventKind::SessionMessage { text, .. } => {
            MsgEntry::User { from, text }
        }
        EventKind::Status { presence } => MsgEntry::Status {
            from,
            status: seen_status(presence),
        },
        EventKind::FriendRequest { text } => MsgEntry::FriendRequest { from, text },
        EventKind::FriendAccepted { text } => MsgEntry::Accepted { from, text },
        EventKind::FriendRefused { text } => MsgEntry::Refused { from, text },
        EventKind::GroupMessage { .. } => return None,
    })
}

/// An upper bound of an event's size in a GetMsgEx reply (escaping can
/// make a byte five).
fn encoded_size_bound(event: &Event) -> usize {
    let text_len = match &event.kind {
        EventKind::Message { text }
        | EventKind::FriendRequest { text }
        | EventKind::FriendAccepted { text }
        | EventKind::FriendRefused { text }
        | EventKind::GroupMessage { text, .. }
        | EventKind::SessionMessage { text, .. } => text.len(),
        EventKind::Status { .. } => 3,
    };
    32 + 5 * text_len
}

impl Http11Service {
    pub fn new(world: Arc<World>, quirks: Quirks, scale: TimeScale) -> Self {
        let throttle = Throttle::new(ThrottleLimits {
            message_interval: scale.secs(quirks.cltmsg_min_interval_s),
            status_limit: usize::try_from(quirks.change_stat_limit).unwrap_or(usize::MAX),
            status_window: scale.secs(quirks.change_stat_window_s),
            ack_window: scale.secs(quirks.ack_double_send_window_s),
        });
        Http11Service {
            world,
            style: quirks.reply_style(),
            quirks,
            scale,
            throttle,
        }
    }

    /// Answers one request body from `ip` with the exact bytes to write.
    pub async fn answer(&self, ip: IpAddr, body: &[u8]) -> HttpResponse {
        let request = match Request::decode(body) {
            Ok(request) => request,
            Err(error) => {
                tracing::debug!(%ip, %error, "NULL for a malformed request");
                return self.null_response();
            }
        };
        tracing::debug!(%ip, uin = request.uin, cmd = %request.cmd(), "request");
        let answer = if self.world.answers_null(request.uin) || self.lowercase_h_strikes(&request) {
            Answer::Null
        } else {
            self.decide(ip, &request)
        };
        let encode = |body: ReplyBody| {
            let reply = Reply::new(request.cmd(), request.seq.clone(), request.uin, body);
            http_reply(&reply.encode(&self.style))
        };
        let data = match answer {
            Answer::Null => return self.null_response(),
            Answer::Now(body) => encode(body),
            Answer::Late(delay) => {
                tokio::time::sleep(delay).await;
                encode(ReplyBody::Refused)
            }
            Answer::Double(first, second) => {
                let mut data = encode(first);
                data.extend_from_slice(self.quirks.double_reply_separator.as_bytes());
                data.extend(encode(second));
                data
            }
        };
        HttpResponse::Bytes {
            data,
            keep_alive: false,
        }
    }

    fn null_response(&self) -> HttpResponse {
        match self.quirks.null_mode {
            NullMode::Close => HttpResponse::Close,
            NullMode::Empty200 => HttpResponse::Bytes {
                data: http_reply(""),
                keep_alive: false,
            },
        }
    }

    /// \[001\]: a CLTMSG containing a lowercase `h` "may" get NULL.
    fn lowercase_h_strikes(&self, request: &Request) -> bool {
        let p = self.quirks.null_on_lowercase_h;
        matches!(&request.params, Params::CltMsg { text, .. } if text.contains('h'))
            && p > 0.0
            && rand::random::<f64>() < p
    }

    fn res3(&self) -> Answer {
        Answer::Late(self.scale.secs(self.quirks.res3_delay_s))
    }

    fn decide(&self, ip: IpAddr, request: &Request) -> Answer {
        let uin = request.uin;
        let key = SessionKey { ip, uin };
        match &request.params {
            Params::Login { password, .. } => return self.login(key, password),
            Params::Logout => {
                if self.owns_session(uin) {
                    self.world.logout(key);
                }
                return Answer::Now(ReplyBody::Done);
            }
            _ => {}
        }
        // A WebQQ session of the same account from the same address is
        // not an HTTP QQ 1.1 login.
        if !self.owns_session(uin) || !self.world.touch(key) {
            return Answer::Now(ReplyBody::NotLoggedIn);
        }
        match &request.params {
            // Both were answered above, before the session check.
            Params::Login { .. } | Params::Logout => Answer::Now(ReplyBody::Done),
            Params::List { tn, .. } => {
                let friends = self.world.friends(uin);
                Answer::Now(ReplyBody::List(match tn {
                    None | Some(0) => {
                        ListReply::Count(u32::try_from(friends.len()).unwrap_or(u32::MAX))
                    }
                    Some(_) => ListReply::Friends(friends),
                }))
            }
            Params::QueryStat { tn, .. } => self.query_stat(uin, *tn),
            Params::GetInfo { level, target } => self.get_info(*level, *target),
            Params::AddToList { target } => {
                let code = match self.world.add_friend(uin, *target) {
                    AddFriendOutcome::Added | AddFriendOutcome::AlreadyFriend => {
                        AddToListCode::Added
                    }
                    AddFriendOutcome::NeedsVerification => AddToListCode::NeedsVerification,
                    AddFriendOutcome::Refused | AddFriendOutcome::UnknownTarget => {
                        AddToListCode::Refused(self.quirks.addtolist_deny_code)
                    }
                };
                Answer::Now(ReplyBody::AddToList(AddToListReply {
                    code,
                    target: *target,
                }))
            }
            Params::AckAddToList { target, code, text } => self.ack(uin, *target, *code, text),
            Params::DelFromList { target } => {
                if self.world.remove_friend(uin, *target) {
                    Answer::Now(ReplyBody::Done)
                } else {
                    Answer::Late(self.scale.secs(self.quirks.delfromlist_res3_delay_s))
                }
            }
            Params::ChangeStat { status } => {
                if !self.throttle.allow_status_change(uin) {
                    return self.res3();
                }
                self.world
                    .set_presence(uin, presence_for(*status), Origin::Http11);
                Answer::Now(ReplyBody::Done)
            }
            Params::GetMsgEx => Answer::Now(ReplyBody::Messages(self.take_messages(uin))),
            Params::CltMsg { to, text } => self.send(uin, *to, text),
            Params::Finger {
                age,
                gender,
                province,
            } => {
                let criteria = SearchCriteria {
                    age: *age,
                    gender: *gender,
                    province: province.clone(),
                };
                let found = self.world.search(&criteria, FINGER_LIMIT);
                let entries = found
                    .into_iter()
                    .map(|a| FingerEntry {
                        age: a.profile.age,
                        face: a.face,
                        province: a.profile.province,
                        gender: a.profile.gender,
                        uin: a.uin,
                        nick: a.nick,
                    })
                    .collect();
                Answer::Now(ReplyBody::Finger(entries))
            }
        }
    }

    /// Whether the account's session (if any) is an HTTP QQ 1.1 one.
    fn owns_session(&self, uin: u64) -> bool {
        self.world
            .session(uin)
            .is_some_and(|s| s.protocol == Origin::Http11)
    }

    fn login(&self, key: SessionKey, password: &PasswordHash) -> Answer {
        if key.uin < MIN_UIN {
            return Answer::Now(ReplyBody::IllegalUin);
        }
        let outcome = self.world.login(
            key,
            password,
            Origin::Http11,
            self.quirks.relogin_while_online,
        );
        tracing::debug!(uin = key.uin, ip = %key.ip, ?outcome, "HTTP QQ login");
        let reply = match outcome {
            LoginOutcome::LoggedIn => LoginReply::Success {
                heartbeat_s: self.quirks.heartbeat_interval_s,
                idle_timeout_s: self.quirks.session_idle_timeout_s,
                comp: self
                    .quirks
                    .emit_comp
                    .then(|| self.quirks.comp_value.clone()),
            },
            LoginOutcome::WrongPassword => LoginReply::Failure {
                reason: WRONG_PASSWORD.to_owned(),
            },
            LoginOutcome::UnknownAccount => LoginReply::Failure {
                reason: LOGIN_FAILED.to_owned(),
            },
            LoginOutcome::AlreadyOnline => LoginReply::Failure {
                reason: ALREADY_ONLINE.to_owned(),
            },
        };
        Answer::Now(ReplyBody::Login(reply))
    }

    /// Visible friends (online or busy), then the requester if visible.
    fn query_stat(&self, uin: u64, tn: Option<u32>) -> Answer {
        let mut online: Vec<OnlineFriend> = self
            .world
            .friend_contacts(uin)
            .into_iter()
            .filter(|c| c.presence.is_visible())
            .map(online_friend)
            .collect();
        if self.quirks.query_stat_include_self {
            if let Some(me) = self.world.contact(uin).filter(|c| c.presence.is_visible()) {
                online.push(online_friend(me));
            }
        }
        match tn {
            None | Some(0) => Answer::Double(
                ReplyBody::QueryStat(QueryStatReply::Count(
                    u32::try_from(online.len()).unwrap_or(u32::MAX),
                )),
                ReplyBody::QueryStat(QueryStatReply::Online(Vec::new())),
            ),
            Some(_) => Answer::Now(ReplyBody::QueryStat(QueryStatReply::Online(online))),
        }
    }

    /// Unknown accounts get NULL: there is nothing to show \[SIM\].
    fn get_info(&self, level: u32, target: u64) -> Answer {
        let Some(account) = self.world.account(target) else {
            return Answer::Null;
        };
        let info = match level {
            0 | 1 => InfoReply::Brief {
                level,
                uin: target,
                nick: account.nick,
            },
            2 => InfoReply::Normal {
                level,
                info: user_info(&account),
            },
            _ => InfoReply::Detailed {
                level,
                info: user_info(&account),
                extras: info_extras(&account),
            },
        };
        Answer::Now(ReplyBody::GetInfo(Box::new(info)))
    }

    fn ack(&self, uin: u64, target: u64, code: AckCode, text: &str) -> Answer {
        match code {
            AckCode::Other(_) => self.res3(),
            AckCode::Request => {
                if self.quirks.ack_double_send && self.throttle.is_first_half(uin, target) {
                    return self.res3();
                }
                match self.world.request_friend(uin, target, text, Origin::Http11) {
                    RequestOutcome::Delivered => Answer::Now(ReplyBody::Done),
                    RequestOutcome::Refused | RequestOutcome::UnknownAccount => self.res3(),
                }
            }
            AckCode::Accept | AckCode::Reject => {
                let accept = code == AckCode::Accept;
                match self
                    .world
                    .answer_friend_request(uin, target, accept, text, Origin::Http11)
                {
                    AnswerOutcome::Done => Answer::Now(ReplyBody::Done),
                    AnswerOutcome::NoPendingRequest => self.res3(),
                }
            }
        }
    }

    /// Pending events oldest-first, as many as fit one reply.
    fn take_messages(&self, uin: u64) -> Vec<MsgEntry> {
        let mut budget = MAX_REPLY_BODY - 1024;
        let mut count = 0;
        let events = self.world.take_events(uin, |event| {
            let size = encoded_size_bound(event);
            if count > 0 && (size > budget || count >= MAX_LIST_ITEMS) {
                return false;
            }
            budget = budget.saturating_sub(size);
            count += 1;
            true
        });
        events.into_iter().filter_map(msg_entry).collect()
    }

    fn send(&self, uin: u64, to: u64, text: &str) -> Answer {
        if !self.throttle.allow_message(uin) {
            return self.res3();
        }
        // [001]: between strangers, a message is received but never shown
        // unless the recipient wrote first.
        if self.quirks.hide_stranger_messages && !self.world.knows(to, uin) {
            tracing::debug!(from = uin, to, "message to a stranger hidden");
            self.world.note_written(uin, to);
            return Answer::Now(ReplyBody::Done);
        }
        // RES=0 does not promise delivery: unknown recipients are dropped.
        self.world.send_message(uin, to, text, Origin::Http11);
        Answer::Now(ReplyBody::Done)
    }
}

#[async_trait]
impl Route for Http11Service {
    /// HTTP QQ is served at `/` or with no target at all (the probe).
    fn matches(&self, request: &HttpRequest) -> bool {
        request.target.is_none() || request.path() == "/"
    }

    async fn handle(&self, request: HttpRequest) -> HttpResponse {
        if request.method != "POST" {
            // [003]: GET is not supported; it gets what malformed input gets.
            return self.null_response();
        }
        self.answer(request.peer.ip(), &request.body).await
    }
}
