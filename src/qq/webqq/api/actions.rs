//! The session-phase calls that act rather than read: sending messages,
//! the temporary-session signature, status, signature text, friend
//! requests, logout and the heartbeat (webqq.md §5.6–§5.13).

use super::{now_millis, now_secs, Api, ApiError, CALL_TIMEOUT, D_PROXY, S_PROXY_WITH_ORIGIN};
use crate::qq::webqq::endpoints as ep;
use crate::qq::webqq::json::{
    parse_envelope, AllowAndAddResult, C2cSigResult, Envelope, LongNickResult,
};
use crate::qq::webqq::transport::Headers;
use crate::secret::Secret;
use serde_json::Map;

impl Api {
    /// Sends one message; succeeds only on `{"retcode":0,"result":"ok"}`.
    pub async fn send_message(
        &self,
        target: SendTarget<'_>,
        content: &str,
        msg_id: u64,
    ) -> Result<(), ApiError> {
        let mut r = Map::new();
        let (path, headers) = match target {
            SendTarget::Buddy { to } => {
                r.insert("to".into(), to.into());
                r.insert("face".into(), SEND_FACE.into());
                (ep::SEND_BUDDY_MSG2, S_PROXY_FROM_D)
            }
            SendTarget::Group { gid } => {
                r.insert("group_uin".into(), gid.into());
                (ep::SEND_QUN_MSG2, D_PROXY)
            }
            SendTarget::Session { to, group_sig } => {
                r.insert("to".into(), to.into());
                r.insert("group_sig".into(), group_sig.expose().into());
                r.insert("face".into(), SEND_FACE.into());
                (ep::SEND_SESS_MSG2, S_PROXY_FROM_D)
            }
        };
        r.insert("content".into(), content.into());
        r.insert("msg_id".into(), msg_id.into());
        if matches!(target, SendTarget::Session { .. }) {
            r.insert("service_type".into(), 0.into());
        }
        let body = self.d_post(path, r, headers, CALL_TIMEOUT).await?;
        let envelope = parse_envelope(&body)?;
        if envelope.is_ok_string() {
            return Ok(());
        }
        match envelope.retcode {
            Some(0) => Err(ApiError::Malformed("send was not answered \"ok\"".into())),
            Some(code) => Err(ApiError::Retcode(code)),
            None => Err(ApiError::Malformed("send reply has no retcode".into())),
        }
    }

    /// `get_c2cmsg_sig2`: the signature for a temporary session with
    /// `to_uin` through the group `gid`.
    pub async fn session_signature(&self, gid: u64, to_uin: u64) -> Result<Secret, ApiError> {
        let (gid, to_uin) = (gid.to_string(), to_uin.to_string());
        let result: C2cSigResult = self
            .d_get(
                ep::GET_C2CMSG_SIG2,
                &[("id", &gid), ("to_uin", &to_uin), ("service_type", "0")],
                ep::REFERER_D_PROXY_3,
                &now_secs(),
            )
            .await?
            .into_result("get_c2cmsg_sig2")?;
        if result.value.is_empty() {
            return Err(ApiError::Malformed(
                "get_c2cmsg_sig2 gave no signature".into(),
            ));
        }
        Ok(result.value)
    }

    /// `change_status2` with a status string.
    pub async fn change_status(&self, status: &str) -> Result<(), ApiError> {
        let envelope = self
            .d_get(
                ep::CHANGE_STATUS2,
                &[("newstatus", status)],
                ep::REFERER_D_PROXY_2,
                &now_millis(),
            )
            .await?;
        expect_ok(envelope)
    }

    /// `logout2`.
    pub async fn logout(&self) -> Result<(), ApiError> {
        let envelope = self
            .d_get(
                ep::LOGOUT2,
                &[("ids", "")],
                ep::REFERER_D_PROXY_2,
                &now_millis(),
            )
            .await?;
        expect_ok(envelope)
    }

    /// `set_long_nick2`: `result.result == 0` is success.
    pub async fn set_long_nick(&self, text: &str) -> Result<(), ApiError> {
        let mut r = Map::new();
        r.insert("nlk".into(), text.into());
        let headers = Headers {
            referer: Some(ep::REFERER_S_PROXY_1),
            origin: Some(ep::ORIGIN_S),
        };
        let result: LongNickResult = self
            .s_post(ep::SET_LONG_NICK2, r, headers)
            .await?
            .into_result("set_long_nick2")?;
        match result.result {
            0 => Ok(()),
            other => Err(ApiError::Retcode(other)),
        }
    }

    /// `allow_and_add2`: accept a request and add the requester back to the
    /// default category.
    pub async fn allow_and_add(&self, account: u64) -> Result<AllowAndAddResult, ApiError> {
        let mut r = Map::new();
        r.insert("account".into(), account.into());
        r.insert("gid".into(), 0.into());
        r.insert("mname".into(), "".into());
        let result: AllowAndAddResult = self
            .s_post(ep::ALLOW_AND_ADD2, r, S_PROXY_WITH_ORIGIN)
            .await?
            .into_result("allow_and_add2")?;
        match result.result1 {
            0 => Ok(result),
            other => Err(ApiError::Retcode(other)),
        }
    }

    /// `deny_added_request2` with a reason (reply shape undocumented: any
    /// `retcode 0` counts as success).
    pub async fn deny_request(&self, account: u64, reason: &str) -> Result<(), ApiError> {
        let mut r = Map::new();
        r.insert("account".into(), account.into());
        r.insert("msg".into(), reason.into());
        let envelope = self
            .s_post(ep::DENY_ADDED_REQUEST2, r, S_PROXY_WITH_ORIGIN)
            .await?;
        match envelope.retcode {
            Some(0) => Ok(()),
            Some(code) => Err(ApiError::Retcode(code)),
            None => Err(ApiError::Malformed(
                "deny_added_request2 has no retcode".into(),
            )),
        }
    }

    /// The `get_msg_tip` heartbeat; its reply is ignored (no source records
    /// it).
    pub async fn heartbeat(&self, counter: u64) -> Result<(), ApiError> {
        let rc = counter.to_string();
        let t = now_millis();
        let headers = Headers {
            referer: Some(ep::REFERER_WEB2),
            origin: None,
        };
        self.transport
            .get(
                ep::GET_MSG_TIP,
                &[
                    ("uin", ""),
                    ("tp", "1"),
                    ("id", "0"),
                    ("retype", "1"),
                    ("rc", &rc),
                    ("lv", "3"),
                    ("t", &t),
                ],
                headers,
                CALL_TIMEOUT,
                64 * 1024,
            )
            .await?
            .ensure_ok()?;
        Ok(())
    }
}

/// `face` of send requests: [004] says "fixed 564"; servers ignore it.
const SEND_FACE: u64 = 564;

/// Referer `s.web2 … id=3` with Origin `d.web2`: `send_buddy_msg2` and
/// `send_sess_msg2`.
const S_PROXY_FROM_D: Headers = Headers {
    referer: Some(ep::REFERER_S_PROXY_3),
    origin: Some(ep::ORIGIN_D),
};

/// Where a message goes, in session aliases.
#[derive(Debug, Clone, Copy)]
pub enum SendTarget<'a> {
    Buddy { to: u64 },
    Group { gid: u64 },
    Session { to: u64, group_sig: &'a Secret },
}

fn expect_ok(envelope: Envelope) -> Result<(), ApiError> {
    match envelope.retcode {
        Some(0) => Ok(()),
        Some(code) => Err(ApiError::Retcode(code)),
        None => Err(ApiError::Malformed("reply has no retcode".into())),
    }
}
