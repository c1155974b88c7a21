//! The remaining `d.web2.qq.com/channel` calls, change_status2 and
//! logout2 (webqq.md §5.13), and the `get_msg_tip` heartbeat (§5.6).

use super::reply::{bare, ok_string, retcode};
use super::request::WebRequest;
use super::sessions::Ending;
use super::status::presence_of;
use super::WebqqService;
use crate::qq::sim::events::Origin;

impl WebqqService {
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
