//! `d.web2.qq.com/channel/login2` (webqq.md §2.8, §5.13): the first
//! channel login, which redeems a ptlogin ticket and opens the world
//! session, and the relink, which re-validates a live session.

use std::net::IpAddr;
use std::sync::Arc;

use md5::{Digest, Md5};
use rand::Rng;
use serde_json::Value;

use super::aliases::AliasBook;
use super::reply::{error, ok, retcode};
use super::request::WebRequest;
use super::sessions::{Ending, SessionState, WebSession};
use super::status::{presence_of, status_string};
use super::tokens::new_channel_tokens;
use super::WebqqService;
use crate::qq::sim::account::Presence;
use crate::qq::sim::events::Origin;
use crate::qq::sim::session::SessionKey;
use crate::qq::webqq::json::Login2Result;
use crate::secret::Secret;

/// Longest `clientid` accepted (clients use 8 digits).
const MAX_CLIENTID_DIGITS: usize = 20;

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
}
