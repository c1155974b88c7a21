//! The three send calls of `d.web2.qq.com/channel` (webqq.md §5.8-§5.10)
//! and `get_c2cmsg_sig2` (§5.7), whose signature a temporary-session
//! message needs. Sent content is double-encoded JSON (font last); a
//! repeated `msg_id` is acknowledged without being delivered twice.

use serde::Serialize;
use serde_json::{Map, Value};

use super::aliases::Aliased;
use super::content::world_text_of_sent;
use super::reply::{bare, error, ok, ok_string, retcode};
use super::request::WebRequest;
use super::sessions::{WebSession, MAX_GROUP_SIGS};
use super::tokens::random_hex;
use super::WebqqService;
use crate::qq::sim::events::Origin;
use crate::qq::sim::world::{GroupMessageOutcome, MessageOutcome};

type Object = Map<String, Value>;

/// `get_c2cmsg_sig2`'s result, keys in the captured order.
#[derive(Serialize)]
struct SessionSignature {
    #[serde(rename = "type")]
    kind: u8,
    value: String,
    flags: MediaFlags,
}

/// Which media a temporary session allows (all of them, here).
#[derive(Serialize)]
struct MediaFlags {
    text: u8,
    pic: u8,
    file: u8,
    audio: u8,
    video: u8,
}

impl WebqqService {
    /// The world text of a send call's `content`, and whether its `msg_id`
    /// is new; `Err` is the reply for a malformed request.
    fn sent_text(
        &self,
        req: &WebRequest,
        r: &Object,
        session: &WebSession,
    ) -> Result<(String, bool), String> {
        let msg_id = req
            .number(Some(r), "msg_id")
            .ok_or_else(|| bare(retcode::UNKNOWN))?;
        let content = r
            .get("content")
            .and_then(Value::as_str)
            .ok_or_else(|| bare(retcode::UNKNOWN))?;
        let text = world_text_of_sent(content).ok_or_else(|| bare(retcode::UNKNOWN))?;
        Ok((text, session.state().first_send(msg_id)))
    }

    /// What an alias stands for in this session.
    pub(super) fn resolve(&self, session: &WebSession, alias: u64) -> Option<Aliased> {
        session.state().aliases.resolve(alias)
    }

    /// `send_buddy_msg2`: a message to a person's alias.
    pub(super) fn send_buddy_msg2(&self, req: &WebRequest) -> String {
        let Some(r) = req.r() else {
            return bare(retcode::UNKNOWN);
        };
        let session = match self.live_channel_session(req, Some(&r)) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let Some(Aliased::Person(to)) = req
            .number(Some(&r), "to")
            .and_then(|alias| self.resolve(&session, alias))
        else {
            return bare(retcode::UNKNOWN);
        };
        let (text, first) = match self.sent_text(req, &r, &session) {
            Ok(sent) => sent,
            Err(reply) => return reply,
        };
        if first {
            match self
                .world
                .send_message(session.uin, to, &text, Origin::Webqq)
            {
                MessageOutcome::Delivered => {}
                _ => return bare(retcode::UNKNOWN),
            }
        }
        ok_string()
    }

    /// `send_qun_msg2`: a message to a group's gid.
    pub(super) fn send_qun_msg2(&self, req: &WebRequest) -> String {
        let Some(r) = req.r() else {
            return bare(retcode::UNKNOWN);
        };
        let session = match self.live_channel_session(req, Some(&r)) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let Some(Aliased::GroupId(group)) = req
            .number(Some(&r), "group_uin")
            .and_then(|alias| self.resolve(&session, alias))
        else {
            return bare(retcode::BAD_GROUP);
        };
        let (text, first) = match self.sent_text(req, &r, &session) {
            Ok(sent) => sent,
            Err(reply) => return reply,
        };
        if first {
            let outcome = self
                .world
                .send_group_message(group, session.uin, &text, Origin::Webqq);
            if outcome != GroupMessageOutcome::Delivered {
                return bare(retcode::BAD_GROUP);
            }
        }
        ok_string()
    }

    /// `send_sess_msg2`: a temporary-session message, which needs the
    /// signature `get_c2cmsg_sig2` gave for that peer.
    pub(super) fn send_sess_msg2(&self, req: &WebRequest) -> String {
        let Some(r) = req.r() else {
            return bare(retcode::UNKNOWN);
        };
        let session = match self.live_channel_session(req, Some(&r)) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let Some(Aliased::Person(to)) = req
            .number(Some(&r), "to")
            .and_then(|alias| self.resolve(&session, alias))
        else {
            return bare(retcode::UNKNOWN);
        };
        let sig = r
            .get("group_sig")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let group = session
            .state()
            .group_sigs
            .iter()
            .find(|((_, peer), value)| *peer == to && !sig.is_empty() && value.as_str() == sig)
            .map(|((group, _), _)| *group);
        let Some(group) = group else {
            return error(retcode::MISSING_COOKIE);
        };
        let (text, first) = match self.sent_text(req, &r, &session) {
            Ok(sent) => sent,
            Err(reply) => return reply,
        };
        if first
            && self
                .world
                .send_session_message(session.uin, to, group, &text, Origin::Webqq)
                .is_none()
        {
            return bare(retcode::BAD_GROUP);
        }
        ok_string()
    }

    /// `get_c2cmsg_sig2`: the signature for writing to a member of a group
    /// both belong to (`id` = gid, `service_type` 0; discussions are not
    /// simulated).
    pub(super) fn get_c2cmsg_sig2(&self, req: &WebRequest) -> String {
        let session = match self.live_channel_session(req, None) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let group = match req
            .number(None, "id")
            .and_then(|a| self.resolve(&session, a))
        {
            Some(Aliased::GroupId(group)) if req.param("service_type").unwrap_or("0") == "0" => {
                group
            }
            _ => return bare(retcode::BAD_GROUP),
        };
        let Some(Aliased::Person(peer)) = req
            .number(None, "to_uin")
            .and_then(|a| self.resolve(&session, a))
        else {
            return bare(retcode::UNKNOWN);
        };
        let shared = self
            .world
            .group(group)
            .is_some_and(|g| g.is_member(session.uin) && g.is_member(peer));
        if !shared {
            return bare(retcode::BAD_GROUP);
        }
        let value = {
            let mut state = session.state();
            if state.group_sigs.len() >= MAX_GROUP_SIGS {
                state.group_sigs.clear();
            }
            state
                .group_sigs
                .entry((group, peer))
                .or_insert_with(|| random_hex(48))
                .clone()
        };
        ok(&SessionSignature {
            kind: 0,
            value,
            flags: MediaFlags {
                text: 1,
                pic: 1,
                file: 1,
                audio: 1,
                video: 1,
            },
        })
    }
}
