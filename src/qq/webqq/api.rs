//! The session-phase WebQQ calls (webqq.md §5), and login2: each builds its request
//! exactly as documented (`r=<JSON>` forms, `clientid`/`psessionid`
//! repeated next to `r` on `d.web2`, `vfwebqq` on `s.web2`, the documented
//! Referer and Origin) and decodes its reply into a [`super::json`] type.
//!
//! The session tokens live here. They rotate (poll retcode 116) and are
//! replaced by relink and re-login, so calls read them at the moment they
//! are made.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};

use super::crypto::friend_hash;
use super::endpoints as ep;
use super::json::{
    parse_envelope, parse_poll, Envelope, FriendUinResult, FriendsResult, GroupInfoResult,
    GroupListResult, JsonError, Login2Result, PollReply,
};
use super::transport::{Headers, Transport, CALL_TIMEOUT, MAX_TEXT_BODY};
use crate::qq::QqError;
use crate::secret::Secret;

mod actions;

pub use actions::SendTarget;

/// Longer than the server's ~60 s hold (lwqq's "official" 90 s).
pub const POLL_TIMEOUT: Duration = Duration::from_secs(90);

/// `get_friend_uin2` `type`: a person's alias, or a group's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UinKind {
    Person = 1,
    Group = 4,
}

/// The tokens of one channel session. `Debug` shows none of them.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    /// Random 8 digits chosen before login2, kept for the session.
    pub clientid: String,
    pub ptwebqq: Secret,
    pub vfwebqq: Secret,
    pub psessionid: Secret,
}

/// How a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No usable HTTP exchange.
    Transport(QqError),
    /// The server answered a non-zero retcode.
    Retcode(i64),
    /// The reply could not be decoded.
    Malformed(String),
}

impl From<JsonError> for ApiError {
    fn from(e: JsonError) -> Self {
        match e {
            JsonError::Retcode(code) => ApiError::Retcode(code),
            other => ApiError::Malformed(other.to_string()),
        }
    }
}

impl From<QqError> for ApiError {
    fn from(e: QqError) -> Self {
        ApiError::Transport(e)
    }
}

/// Retcodes after which the session is gone and only relink or a new login
/// helps (webqq.md §8).
pub fn retcode_ends_session(code: i64) -> bool {
    matches!(
        code,
        100 | 103 | 108 | 109 | 110 | 114 | 120 | 121 | 122 | 100_006
    )
}

impl From<ApiError> for QqError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Transport(e) => e,
            ApiError::Retcode(code) if retcode_ends_session(code) => QqError::NotLoggedIn,
            ApiError::Retcode(code) => QqError::Refused(format!("retcode {code}")),
            ApiError::Malformed(what) => QqError::Protocol(what),
        }
    }
}

/// Milliseconds since the epoch, the `t` cache buster.
pub fn now_millis() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
        .to_string()
}

fn now_secs() -> String {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
        .to_string()
}

const S_PROXY: Headers = Headers {
    referer: Some(ep::REFERER_S_PROXY_3),
    origin: None,
};
const S_PROXY_WITH_ORIGIN: Headers = Headers {
    referer: Some(ep::REFERER_S_PROXY_3),
    origin: Some(ep::ORIGIN_S),
};
const D_PROXY: Headers = Headers {
    referer: Some(ep::REFERER_D_PROXY_2),
    origin: Some(ep::ORIGIN_D),
};

/// `channel/login2`: the first login (`psessionid` `None`) or a relink.
pub async fn login2(
    transport: &Transport,
    status: &str,
    ptwebqq: &Secret,
    clientid: &str,
    psessionid: Option<&Secret>,
) -> Result<Login2Result, ApiError> {
    let r = json!({
        "status": status,
        "ptwebqq": ptwebqq.expose(),
        "passwd_sig": "",
        "clientid": clientid,
        "psessionid": psessionid.map(|p| Value::String(p.expose().to_owned())).unwrap_or(Value::Null),
    });
    let r = r.to_string();
    let psid = psessionid.map_or("null", |p| p.expose());
    let reply = transport
        .post_form(
            ep::LOGIN2,
            &[("r", &r), ("clientid", clientid), ("psessionid", psid)],
            D_PROXY,
            CALL_TIMEOUT,
        )
        .await?
        .ensure_ok()?;
    let result: Login2Result = parse_envelope(&reply.text())?.into_result("login2")?;
    if result.vfwebqq.is_empty() || result.psessionid.is_empty() {
        return Err(ApiError::Malformed(
            "login2 gave no session tokens".to_owned(),
        ));
    }
    Ok(result)
}

/// The calls of a logged-in session.
#[derive(Debug)]
pub struct Api {
    transport: Arc<Transport>,
    tokens: RwLock<Tokens>,
}

impl Api {
    pub fn new(transport: Arc<Transport>, tokens: Tokens) -> Self {
        Api {
            transport,
            tokens: RwLock::new(tokens),
        }
    }

    pub fn transport(&self) -> &Arc<Transport> {
        &self.transport
    }

    /// A copy of the current tokens.
    pub fn tokens(&self) -> Tokens {
        self.tokens.read().map(|t| t.clone()).unwrap_or_default()
    }

    /// Replaces the tokens after relink or re-login.
    pub fn set_tokens(&self, tokens: Tokens) {
        if let Ok(mut current) = self.tokens.write() {
            *current = tokens;
        }
    }

    /// Stores a `ptwebqq` handed out by poll retcode 116, in the tokens and
    /// in the cookie jar.
    pub fn rotate_ptwebqq(&self, ptwebqq: Secret) {
        self.transport.jar().set("ptwebqq", ptwebqq.expose());
        if let Ok(mut current) = self.tokens.write() {
            current.ptwebqq = ptwebqq;
        }
    }

    /// POST to `s.web2` with `r={…,"vfwebqq":…}`.
    async fn s_post(
        &self,
        path: &str,
        mut r: Map<String, Value>,
        headers: Headers,
    ) -> Result<Envelope, ApiError> {
        r.insert("vfwebqq".into(), self.tokens().vfwebqq.expose().into());
        let r = Value::Object(r).to_string();
        let reply = self
            .transport
            .post_form(path, &[("r", &r)], headers, CALL_TIMEOUT)
            .await?
            .ensure_ok()?;
        Ok(parse_envelope(&reply.text())?)
    }

    /// GET from `s.web2` with `vfwebqq` and `t` appended to `query`.
    async fn s_get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, &str)],
        what: &'static str,
    ) -> Result<T, ApiError> {
        let vfwebqq = self.tokens().vfwebqq;
        let t = now_millis();
        let mut query = query.to_vec();
        query.push(("vfwebqq", vfwebqq.expose()));
        query.push(("t", &t));
        let reply = self
            .transport
            .get(path, &query, S_PROXY, CALL_TIMEOUT, MAX_TEXT_BODY)
            .await?
            .ensure_ok()?;
        Ok(parse_envelope(&reply.text())?.into_result(what)?)
    }

    /// POST to `d.web2` with `clientid`/`psessionid` inside `r` and next to it.
    async fn d_post(
        &self,
        path: &str,
        mut r: Map<String, Value>,
        headers: Headers,
        timeout: Duration,
    ) -> Result<String, ApiError> {
        let tokens = self.tokens();
        r.insert("clientid".into(), tokens.clientid.clone().into());
        r.insert("psessionid".into(), tokens.psessionid.expose().into());
        let r = Value::Object(r).to_string();
        let reply = self
            .transport
            .post_form(
                path,
                &[
                    ("r", &r),
                    ("clientid", &tokens.clientid),
                    ("psessionid", tokens.psessionid.expose()),
                ],
                headers,
                timeout,
            )
            .await?
            .ensure_ok()?;
        Ok(reply.text())
    }

    /// GET from `d.web2` with `clientid`, `psessionid` and `t` appended.
    async fn d_get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        referer: &'static str,
        t: &str,
    ) -> Result<Envelope, ApiError> {
        let tokens = self.tokens();
        let mut query = query.to_vec();
        query.push(("clientid", &tokens.clientid));
        query.push(("psessionid", tokens.psessionid.expose()));
        query.push(("t", t));
        let headers = Headers {
            referer: Some(referer),
            origin: None,
        };
        let reply = self
            .transport
            .get(path, &query, headers, CALL_TIMEOUT, MAX_TEXT_BODY)
            .await?
            .ensure_ok()?;
        Ok(parse_envelope(&reply.text())?)
    }

    /// `get_user_friends2` with the EC/OK hash of the own number.
    pub async fn friends(&self, own_uin: u64) -> Result<FriendsResult, ApiError> {
        let hash = friend_hash(own_uin, self.tokens().ptwebqq.expose());
        let mut r = Map::new();
        r.insert("h".into(), "hello".into());
        r.insert("hash".into(), hash.into());
        Ok(self
            .s_post(ep::GET_USER_FRIENDS2, r, S_PROXY)
            .await?
            .into_result("friend list")?)
    }

    /// `get_group_name_list_mask2`.
    pub async fn groups(&self) -> Result<GroupListResult, ApiError> {
        Ok(self
            .s_post(
                ep::GET_GROUP_NAME_LIST_MASK2,
                Map::new(),
                S_PROXY_WITH_ORIGIN,
            )
            .await?
            .into_result("group list")?)
    }

    /// `get_group_info_ext2` for a group code.
    pub async fn group_info(&self, code: u64) -> Result<GroupInfoResult, ApiError> {
        let code = code.to_string();
        self.s_get(
            ep::GET_GROUP_INFO_EXT2,
            &[("gcode", &code), ("cb", "undefined")],
            "group info",
        )
        .await
    }

    /// `get_friend_uin2`: the real number behind an alias or group code.
    pub async fn real_number(&self, tuin: u64, kind: UinKind) -> Result<u64, ApiError> {
        let tuin = tuin.to_string();
        let kind = (kind as u8).to_string();
        let result: FriendUinResult = self
            .s_get(
                ep::GET_FRIEND_UIN2,
                &[
                    ("tuin", &tuin),
                    ("verifysession", ""),
                    ("type", &kind),
                    ("code", ""),
                ],
                "get_friend_uin2",
            )
            .await?;
        match result.account {
            0 => Err(ApiError::Malformed(
                "get_friend_uin2 gave no account".into(),
            )),
            account => Ok(account),
        }
    }

    /// One `poll2` long-poll.
    pub async fn poll(&self) -> Result<PollReply, ApiError> {
        let mut r = Map::new();
        r.insert("key".into(), 0.into());
        r.insert("ids".into(), Value::Array(Vec::new()));
        let body = self.d_post(ep::POLL2, r, D_PROXY, POLL_TIMEOUT).await?;
        Ok(parse_poll(&body)?)
    }
}
