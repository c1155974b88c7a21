//! The `d.web2.qq.com/channel` calls except `poll2` (webqq.md §2.8, §5.7-
//! §5.10, §5.13) and the heartbeat (§5.6): login2 (first login and
//! relink), the three send calls, get_c2cmsg_sig2, change_status2 and
//! logout2.

use std::net::IpAddr;
use std::sync::Arc;

use md5::{Digest, Md5};
use rand::Rng;
use serde::Serialize;
use serde_json::{Map, Value};

use super::aliases::{AliasBook, Aliased};
use super::content::world_text_of_sent;
use super::reply::{bare, error, ok, ok_string, retcode};
use super::request::WebRequest;
use super::sessions::{Ending, SessionState, WebSession, MAX_GROUP_SIGS};
use super::status::{presence_of, status_string};
use super::tokens::{new_channel_tokens, random_hex};
use super::WebqqService;
use crate::qq::sim::account::Presence;
use crate::qq::sim::events::Origin;
use crate::qq::sim::session::SessionKey;
use crate::qq::sim::world::{GroupMessageOutcome, MessageOutcome};
use crate::qq::webqq::json::Login2Result;
use crate::secret::Secret;

/// Longest `clientid` accepted (clients use 8 digits).
const MAX_CLIENTID_DIGITS: usize = 20;

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

/// A client IP as login2's `cip` (IPv4 as a 32-bit integer).
fn cip(ip: IpAddr) -> u64 {
    match ip {
        IpAddr::V4(v4) => u64::from(u32::from(v4)),
        IpAddr::V6(_) => 0,
    }
}

impl WebqqService {
    /// `login2`: opens a channel session from a ptlogin ticket, or (with a
    /// `psessionid` in `r`) relinks a live one.
    pub(super) fn login2(&self, req: &WebRequest) -> String {
        let Some(r) = req.r() else {
            return error(retcode::LOGIN_REFUSED);
        };
        let status = r.get("status").and_then(Value::as_str).unwrap_or("online");
        let Some(presence) = presence_of(status) else {
            return error(retcode::LOGIN_REFUSED);
        };
        // A session that starts "offline" makes no sense: it starts hidden.
        let presence = match presence {
            Presence::Offline => Presence::Invisible,
            other => other,
        };
        let clientid = req.field(Some(&r), "clientid").unwrap_or_default();
        let clientid = clientid.trim();
        if clientid.is_empty()
            || clientid.len() > MAX_CLIENTID_DIGITS
            || !clientid.bytes().all(|b| b.is_ascii_digit())
        {
            return error(retcode::LOGIN_REFUSED);
        }
        let r_ptwebqq = r.get("ptwebqq").and_then(Value::as_str).unwrap_or_default();
        match r.get("psessionid").and_then(Value::as_str) {
            Some(psessionid) => self.relink(req, psessionid, clientid, r_ptwebqq, presence),
            None => self.first_login2(req, clientid, r_ptwebqq, presence),
        }
    }

    fn first_login2(
        &self,
        req: &WebRequest,
        clientid: &str,
        r_ptwebqq: &str,
        presence: Presence,
    ) -> String {
        let strict = self.quirks.strict_cookies;
        let cookie = req.cookie("ptwebqq");
        if strict && cookie.is_none() {
            return error(retcode::MISSING_COOKIE);
        }
        if cookie.is_some_and(|c| c != r_ptwebqq) {
            return error(retcode::BAD_SESSION);
        }
        let Some(ticket) = self.desk.ticket(r_ptwebqq) else {
            return error(retcode::BAD_SESSION);
        };
        let uin_cookie = format!("o{:010}", ticket.uin);
        if strict
            && (req.cookie("uin") != Some(uin_cookie.as_str())
                || req.cookie("skey") != Some(ticket.skey.as_str()))
        {
            return error(retcode::BAD_SESSION);
        }
        // Only now is the ticket used up: a request with bad cookies must
        // not cost the user the password step.
        if self.desk.take_ticket(r_ptwebqq).is_none() {
            return error(retcode::BAD_SESSION);
        }
        let key = SessionKey {
            ip: req.ip,
            uin: ticket.uin,
        };
        let idle = self.scale.secs(self.quirks.session_idle_s);
        let Some(world_session) = self.world.open_session(key, Origin::Webqq, presence, idle)
        else {
            return error(retcode::BAD_SESSION);
        };
        let tokens = new_channel_tokens(ticket.uin, &ticket.skey);
        let secret = self.alias_secret(ticket.uin);
        let state = SessionState {
            ptwebqq: r_ptwebqq.to_owned(),
            previous_ptwebqq: None,
            rotated_at: tokio::time::Instant::now(),
            aliases: AliasBook::new(secret, ticket.uin),
            local: Default::default(),
            ending: Ending::Live,
            ended_at: None,
            poll_generation: 0,
            next_msg_id: rand::thread_rng().gen_range(10_000..30_000),
            group_sigs: Default::default(),
            recent_sent: Default::default(),
        };
        let session = Arc::new(WebSession::new(
            ticket.uin,
            world_session.serial,
            clientid.to_owned(),
            (tokens.vfwebqq, tokens.psessionid),
            state,
        ));
        let reply = self.login2_result(req, &session, presence);
        self.sessions
            .insert(session, |old| self.is_forgettable(old));
        tracing::info!(
            uin = ticket.uin,
            status = status_string(presence),
            "WebQQ login2"
        );
        reply
    }

    /// The alias key of a new session: random, or derived from
    /// `alias_seed`, the account and its login count (reproducible runs,
    /// still different per session).
    fn alias_secret(&self, uin: u64) -> [u8; 16] {
        let login = self.sessions.count_login(uin);
        match self.quirks.alias_seed {
            Some(seed) => {
                let mut hasher = Md5::new();
                hasher.update(seed.to_be_bytes());
                hasher.update(uin.to_be_bytes());
                hasher.update(login.to_be_bytes());
                hasher.finalize().into()
            }
            None => rand::random(),
        }
    }

    fn relink(
        &self,
        req: &WebRequest,
        psessionid: &str,
        clientid: &str,
        r_ptwebqq: &str,
        presence: Presence,
    ) -> String {
        let Some(session) = self.sessions.by_psessionid(psessionid) else {
            return error(retcode::BAD_SESSION);
        };
        let accepted = session.clientid == clientid
            && session.state().accepts_ptwebqq(r_ptwebqq)
            && self.cookie_ok(req, &session);
        if !accepted || !self.refresh(&session, true) {
            return error(retcode::BAD_SESSION);
        }
        self.world
            .set_presence(session.uin, presence, Origin::Webqq);
        tracing::debug!(uin = session.uin, "WebQQ relink");
        self.login2_result(req, &session, presence)
    }

    fn login2_result(&self, req: &WebRequest, session: &WebSession, presence: Presence) -> String {
        ok(&Login2Result {
            uin: session.uin,
            cip: cip(req.ip),
            index: 1075,
            port: rand::thread_rng().gen_range(40_000..50_000),
            status: status_string(presence).to_owned(),
            vfwebqq: Secret::new(session.vfwebqq.clone()),
            psessionid: Secret::new(session.psessionid.clone()),
            user_state: 0,
            f: 0,
        })
    }

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

    /// `change_status2?newstatus=…`.
    pub(super) fn change_status2(&self, req: &WebRequest) -> String {
        let session = match self.live_channel_session(req, None) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        let Some(presence) = req.param("newstatus").and_then(presence_of) else {
            return bare(retcode::UNKNOWN);
        };
        self.world
            .set_presence(session.uin, presence, Origin::Webqq);
        ok_string()
    }

    /// `logout2`: ends the session; its tokens are forgotten (103 after).
    pub(super) fn logout2(&self, req: &WebRequest) -> String {
        let session = match self.live_channel_session(req, None) {
            Ok(session) => session,
            Err(reply) => return reply,
        };
        self.world
            .end_session_by_serial(session.uin, session.serial, Origin::Webqq);
        session.state().ending = Ending::Dead;
        session.wake.notify_waiters();
        self.sessions.remove(&session.psessionid);
        tracing::info!(uin = session.uin, "WebQQ logout2");
        ok_string()
    }

    /// The heartbeat: the session (found by the `uin` and `ptwebqq`
    /// cookies) counts as active. The body is arbitrary [SIM].
    pub(super) fn get_msg_tip(&self, req: &WebRequest) -> String {
        let session = req
            .cookie("uin")
            .and_then(|u| u.trim_start_matches('o').parse::<u64>().ok())
            .and_then(|uin| self.sessions.latest_of(uin));
        if let Some(session) = session {
            let ptwebqq_ok = req
                .cookie("ptwebqq")
                .is_some_and(|c| session.state().accepts_ptwebqq(c));
            if ptwebqq_ok {
                self.refresh(&session, true);
            }
        }
        r#"{"retcode":0,"result":{"c":0,"s":0}}"#.to_owned()
    }
}
