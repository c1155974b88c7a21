//! The WebQQ (2013) front end of the simulator
//! (`/work/shared/protocol/webqq.md`), serving the same world as HTTP QQ
//! 1.1 on the same port. Every host is served by path, as the client asks
//! for them off one base URL:
//!
//! | Path | Real host | Answer |
//! |---|---|---|
//! | `GET /cgi-bin/login` | ui.ptlogin2 | page with `g_login_sig` |
//! | `GET /check` | ssl.ptlogin2 | `ptui_checkVC(…)`, cookie `ptvfsession` |
//! | `GET /getimage` | ssl.captcha | captcha PNG, cookie `verifysession` |
//! | `GET /login` | ssl.ptlogin2 | `ptuiCB(…)`, session cookies |
//! | `GET /check_sig` | ptlogin4.web2 | 302, `p_skey`/`p_uin`/`pt4_token` |
//! | `/channel/login2`, `poll2`, `send_buddy_msg2`, `send_qun_msg2`, `send_sess_msg2`, `get_c2cmsg_sig2`, `change_status2`, `logout2` | d.web2 | JSON, `\uXXXX` style |
//! | `/api/get_user_friends2`, `get_group_name_list_mask2`, `get_group_info_ext2`, `get_friend_uin2`, `set_long_nick2`, `allow_and_add2`, `allow_added_request2`, `deny_added_request2` | s.web2 | JSON, raw UTF-8 |
//! | `GET /web2/get_msg_tip` | web2 | `{"retcode":0,"result":{"c":0,"s":0}}` |
//!
//! Every API call accepts GET or POST, parameters in the query or the
//! form, and `r=<JSON>`; `d.web2` calls authenticate with `clientid` +
//! `psessionid`, `s.web2` calls with `vfwebqq`, and (strict mode) all need
//! the `ptwebqq` cookie and a `*.qq.com` Referer, else 103. Secrets
//! (passwords, ptwebqq, skey, vfwebqq, psessionid) are never logged.

mod aliases;
mod api;
mod captcha;
mod channel;
mod content;
mod desk;
mod hash;
mod login;
mod login2;
mod poll;
mod quirks;
mod reply;
mod request;
mod send;
mod sessions;
mod status;
mod tokens;
mod translate;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;

pub use quirks::{CaptchaPolicy, HashVariant, JsonUnicodeEscape, WebqqQuirks};

use self::desk::LoginDesk;
use self::reply::{error, json_response, retcode, styled, Host};
use self::request::WebRequest;
use self::sessions::{Ending, SessionTable, WebSession};
use super::http::{HttpRequest, HttpResponse, Route};
use super::session::{SessionEnd, SessionStatus};
use super::timing::TimeScale;
use super::world::World;
use crate::qq::webqq::endpoints as ep;

/// `s.web2.qq.com/api/allow_added_request2` (accept without adding back;
/// the client does not use it).
const ALLOW_ADDED_REQUEST2: &str = "/api/allow_added_request2";

/// Every path this front end answers.
const PATHS: [&str; 22] = [
    ep::LOGIN_PAGE,
    ep::CHECK,
    ep::CAPTCHA_IMAGE,
    ep::LOGIN,
    ep::CHECK_SIG,
    ep::LOGIN2,
    ep::POLL2,
    ep::SEND_BUDDY_MSG2,
    ep::SEND_QUN_MSG2,
    ep::SEND_SESS_MSG2,
    ep::GET_C2CMSG_SIG2,
    ep::CHANGE_STATUS2,
    ep::LOGOUT2,
    ep::GET_USER_FRIENDS2,
    ep::GET_GROUP_NAME_LIST_MASK2,
    ep::GET_GROUP_INFO_EXT2,
    ep::GET_FRIEND_UIN2,
    ep::SET_LONG_NICK2,
    ep::ALLOW_AND_ADD2,
    ALLOW_ADDED_REQUEST2,
    ep::DENY_ADDED_REQUEST2,
    ep::GET_MSG_TIP,
];

/// The handler; one per simulator.
pub struct WebqqService {
    world: Arc<World>,
    quirks: WebqqQuirks,
    scale: TimeScale,
    /// Scenario captcha codes by account.
    captchas: HashMap<u64, String>,
    desk: LoginDesk,
    sessions: SessionTable,
    /// Server message ids (`msg_id2`), shared by all sessions.
    next_msg_id2: AtomicU64,
    /// Message sequence numbers per group (`seq`).
    group_seq: Mutex<HashMap<u64, u64>>,
}

impl WebqqService {
    pub fn new(
        world: Arc<World>,
        quirks: WebqqQuirks,
        captchas: HashMap<u64, String>,
        scale: TimeScale,
    ) -> Self {
        let ttl = scale.secs(quirks.verify_code_ttl_s);
        WebqqService {
            world,
            quirks,
            scale,
            captchas,
            desk: LoginDesk::new(ttl),
            sessions: SessionTable::default(),
            next_msg_id2: AtomicU64::new(rand::random::<u64>() % 500_000 + 500_000),
            group_seq: Mutex::new(HashMap::new()),
        }
    }

    fn take_msg_id2(&self) -> u64 {
        self.next_msg_id2.fetch_add(1, Ordering::Relaxed)
    }

    fn take_group_seq(&self, group: u64) -> u64 {
        let mut seqs = self
            .group_seq
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let seq = seqs.entry(group).or_default();
        *seq += 1;
        *seq
    }

    /// Brings a session's farewell up to date with the world; true while
    /// it is live (a live one counts as active when `touch`).
    fn refresh(&self, session: &WebSession, touch: bool) -> bool {
        let status = self
            .world
            .session_status(session.uin, session.serial, touch);
        let mut state = session.state();
        match status {
            SessionStatus::Live => state.ending == Ending::Live,
            SessionStatus::Ended(why) => {
                if state.ending == Ending::Live {
                    state.ended_at = Some(tokio::time::Instant::now());
                    state.ending = match why {
                        SessionEnd::Replaced => Ending::KickPending,
                        SessionEnd::Expired | SessionEnd::LoggedOut => Ending::Report121,
                    };
                    tracing::debug!(uin = session.uin, ?why, "WebQQ session ended");
                }
                false
            }
        }
    }

    /// Whether a session is over and its farewell window (one idle
    /// timeout) has passed, so the table may forget it.
    fn is_forgettable(&self, session: &WebSession) -> bool {
        if self.refresh(session, false) {
            return false;
        }
        let window = self.scale.secs(self.quirks.session_idle_s);
        let state = session.state();
        state.ending == Ending::Dead || state.ended_at.is_some_and(|at| at.elapsed() >= window)
    }

    /// Whether the `ptwebqq` cookie is the session's (always, when cookies
    /// are not checked).
    fn cookie_ok(&self, req: &WebRequest, session: &WebSession) -> bool {
        !self.quirks.strict_cookies
            || req
                .cookie("ptwebqq")
                .is_some_and(|c| session.state().accepts_ptwebqq(c))
    }

    /// The session of a `d.web2` call: `psessionid` and `clientid` (in `r`
    /// or next to it) and the cookie must match, else the 103 reply.
    fn channel_session(
        &self,
        req: &WebRequest,
        r: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Arc<WebSession>, String> {
        let session = req
            .field(r, "psessionid")
            .and_then(|p| self.sessions.by_psessionid(&p))
            .ok_or_else(|| error(retcode::BAD_SESSION))?;
        let clientid = req.field(r, "clientid");
        if clientid.as_deref().map(str::trim) != Some(session.clientid.as_str())
            || !self.cookie_ok(req, &session)
        {
            return Err(error(retcode::BAD_SESSION));
        }
        Ok(session)
    }

    /// The live session of a `d.web2` call other than poll2. Only poll2
    /// and the heartbeat keep a session alive (webqq.md §8).
    fn live_channel_session(
        &self,
        req: &WebRequest,
        r: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Arc<WebSession>, String> {
        let session = self.channel_session(req, r)?;
        if !self.refresh(&session, false) {
            return Err(error(retcode::BAD_SESSION));
        }
        Ok(session)
    }

    /// The live session of an `s.web2` call, by `vfwebqq`.
    fn service_session(
        &self,
        req: &WebRequest,
        r: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> Result<Arc<WebSession>, String> {
        let session = req
            .field(r, "vfwebqq")
            .and_then(|vf| self.sessions.by_vfwebqq(&vf))
            .ok_or_else(|| error(retcode::BAD_SESSION))?;
        if !self.cookie_ok(req, &session) || !self.refresh(&session, false) {
            return Err(error(retcode::BAD_SESSION));
        }
        Ok(session)
    }

    /// Any JSON API call: the Referer rule, then the call.
    async fn api(&self, req: &WebRequest) -> HttpResponse {
        let path = req.path.as_str();
        let host = if path.starts_with("/channel/") {
            Host::Channel
        } else {
            Host::Service
        };
        let body = if self.quirks.strict_referer && !req.referer_on_qq_com() {
            tracing::debug!(path, "WebQQ call without a qq.com Referer");
            error(retcode::BAD_SESSION)
        } else {
            self.call(path, req).await
        };
        json_response(&styled(&body, host, self.quirks.json_unicode_escape))
    }

    async fn call(&self, path: &str, req: &WebRequest) -> String {
        match path {
            ep::LOGIN2 => self.login2(req),
            ep::POLL2 => self.poll2(req).await,
            ep::SEND_BUDDY_MSG2 => self.send_buddy_msg2(req),
            ep::SEND_QUN_MSG2 => self.send_qun_msg2(req),
            ep::SEND_SESS_MSG2 => self.send_sess_msg2(req),
            ep::GET_C2CMSG_SIG2 => self.get_c2cmsg_sig2(req),
            ep::CHANGE_STATUS2 => self.change_status2(req),
            ep::LOGOUT2 => self.logout2(req),
            ep::GET_USER_FRIENDS2 => self.get_user_friends2(req),
            ep::GET_GROUP_NAME_LIST_MASK2 => self.get_group_name_list_mask2(req),
            ep::GET_GROUP_INFO_EXT2 => self.get_group_info_ext2(req),
            ep::GET_FRIEND_UIN2 => self.get_friend_uin2(req),
            ep::SET_LONG_NICK2 => self.set_long_nick2(req),
            ep::ALLOW_AND_ADD2 => self.allow_and_add2(req, true),
            ALLOW_ADDED_REQUEST2 => self.allow_and_add2(req, false),
            ep::DENY_ADDED_REQUEST2 => self.deny_added_request2(req),
            ep::GET_MSG_TIP => self.get_msg_tip(req),
            _ => error(retcode::BAD_SESSION),
        }
    }
}

#[async_trait]
impl Route for WebqqService {
    fn matches(&self, request: &HttpRequest) -> bool {
        request.target.is_some() && PATHS.contains(&request.path())
    }

    async fn handle(&self, request: HttpRequest) -> HttpResponse {
        let req = WebRequest::parse(&request);
        tracing::trace!(path = %req.path, ip = %req.ip, "WebQQ request");
        match req.path.as_str() {
            ep::LOGIN_PAGE => self.login_page(),
            ep::CHECK => self.check(&req),
            ep::CAPTCHA_IMAGE => self.captcha_image(&req),
            ep::LOGIN => self.password_login(&req),
            ep::CHECK_SIG => self.check_sig(&req),
            _ => self.api(&req).await,
        }
    }

    /// `poll2` holds until an event arrives (up to `poll_hold_s`).
    fn holds(&self, request: &HttpRequest) -> bool {
        request.path() == ep::POLL2
    }
}
