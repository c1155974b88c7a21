//! The simulator's test control API: small JSON over HTTP, served only on
//! its own loopback listener (never on the protocol port), so tests and
//! demos can drive the simulated users and observe what they received.
//!
//! Endpoints (bodies and answers are JSON; errors are
//! `{"ok":false,"error":"…"}` with 400 or 404):
//!
//! | Request | Effect / answer |
//! |---|---|
//! | `GET /health` | `{"ok":true,"accounts":N,"sessions":N,"uptime_ms":N}` |
//! | `POST /inject {"from":10002,"to":10001,"text":"hi"}` | `from` sends a user message to `to` (echo accounts answer) |
//! | `POST /status {"uin":10002,"status":"busy"}` | sets a presence: `online`, `away`, `busy`, `silent`, `callme`, `invisible`, `offline`; friends get a status event |
//! | `POST /friend_request {"from":..,"to":..,"message":".."}` | `from` asks `to` to add them (409 if `to` accepts nobody) |
//! | `POST /friend_response {"from":..,"to":..,"accept":true,"message":".."}` | `from` answers the pending request of `to` (409 if there is none) |
//! | `POST /group_message {"group":20001,"from":10002,"text":"hi"}` | member `from` writes to the group; every other member receives it (404 unknown group or account, 409 not a member) |
//! | `GET /received/<uin>` | everything delivered to `uin` recently, oldest first: `[{"id":..,"from":..,"kind":"message","text":"..","via":"http11","at_ms":..}, …]`; kinds `message`, `status` (with `"presence"`), `friend_request`, `friend_accepted`, `friend_refused`, `group_message` and `session_message` (both with `"group"`) |
//! | `POST /fault {"uin":10003,"null_replies":true}` | test-only fault switch: every HTTP QQ 1.1 request of `uin` is answered NULL (before it takes effect) until switched off with `false` |
//! | `GET /accounts/<uin>` | nick, face, presence, live session (ip, protocol), friends in order, pending event count, pending friend requests, groups, long nick |

use std::sync::Arc;

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::account::Presence;
use super::events::Origin;
use super::http::{HttpRequest, HttpResponse, Route};
use super::world::{AnswerOutcome, GroupMessageOutcome, MessageOutcome, RequestOutcome, World};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Inject {
    from: u64,
    to: u64,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fault {
    uin: u64,
    null_replies: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GroupMessage {
    group: u64,
    from: u64,
    text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetStatus {
    uin: u64,
    status: Presence,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FriendRequest {
    from: u64,
    to: u64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FriendResponse {
    from: u64,
    to: u64,
    accept: bool,
    #[serde(default)]
    message: String,
}

/// The control API route (it answers every request of its listener).
pub struct ControlService {
    world: Arc<World>,
}

fn ok(extra: Value) -> HttpResponse {
    let mut body = json!({ "ok": true });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    HttpResponse::json(200, &body)
}

fn error(status: u16, message: &str) -> HttpResponse {
    HttpResponse::json(status, &json!({ "ok": false, "error": message }))
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, HttpResponse> {
    serde_json::from_slice(body).map_err(|e| error(400, &format!("bad JSON body: {e}")))
}

fn unknown_account(uin: u64) -> HttpResponse {
    error(404, &format!("unknown account {uin}"))
}

impl ControlService {
    pub fn new(world: Arc<World>) -> Self {
        ControlService { world }
    }

    fn route(&self, method: &str, path: &str, body: &[u8]) -> Result<HttpResponse, HttpResponse> {
        let path = path.trim_end_matches('/');
        if let Some(uin) = path.strip_prefix("/received/") {
            let uin = uin.parse().map_err(|_| error(400, "not a QQ number"))?;
            let events = self
                .world
                .received(uin)
                .ok_or_else(|| unknown_account(uin))?;
            return Ok(HttpResponse::json(200, &json!(events)));
        }
        if let Some(uin) = path.strip_prefix("/accounts/") {
            let uin = uin.parse().map_err(|_| error(400, "not a QQ number"))?;
            let snapshot = self
                .world
                .snapshot(uin)
                .ok_or_else(|| unknown_account(uin))?;
            return Ok(HttpResponse::json(200, &json!(snapshot)));
        }
        Ok(match (method, path) {
            ("GET", "/health") => ok(json!({
                "accounts": self.world.account_count(),
                "sessions": self.world.session_count(),
                "uptime_ms": self.world.uptime_ms(),
            })),
            ("POST", "/inject") => {
                let inject: Inject = parse(body)?;
                match self
                    .world
                    .send_message(inject.from, inject.to, &inject.text, Origin::Control)
                {
                    MessageOutcome::Delivered => ok(json!({})),
                    MessageOutcome::UnknownSender => unknown_account(inject.from),
                    MessageOutcome::UnknownRecipient => unknown_account(inject.to),
                }
            }
            ("POST", "/fault") => {
                let fault: Fault = parse(body)?;
                if self.world.account(fault.uin).is_none() {
                    return Ok(unknown_account(fault.uin));
                }
                self.world.set_null_replies(fault.uin, fault.null_replies);
                ok(json!({}))
            }
            ("POST", "/group_message") => {
                let message: GroupMessage = parse(body)?;
                if self.world.account(message.from).is_none() {
                    return Ok(unknown_account(message.from));
                }
                match self.world.send_group_message(
                    message.group,
                    message.from,
                    &message.text,
                    Origin::Control,
                ) {
                    GroupMessageOutcome::Delivered => ok(json!({})),
                    GroupMessageOutcome::UnknownGroup => {
                        error(404, &format!("unknown group {}", message.group))
                    }
                    GroupMessageOutcome::NotMember => error(409, "not a member of the group"),
                }
            }
            ("POST", "/status") => {
                let status: SetStatus = parse(body)?;
                match self
                    .world
                    .set_presence(status.uin, status.status, Origin::Control)
                {
                    Some(changed) => ok(json!({ "changed": changed })),
                    None => unknown_account(status.uin),
                }
            }
            ("POST", "/friend_request") => {
                let request: FriendRequest = parse(body)?;
                match self.world.request_friend(
                    request.from,
                    request.to,
                    &request.message,
                    Origin::Control,
                ) {
                    RequestOutcome::Delivered => ok(json!({})),
                    RequestOutcome::Refused => error(409, "the target accepts nobody"),
                    RequestOutcome::UnknownAccount => error(404, "unknown account"),
                }
            }
            ("POST", "/friend_response") => {
                let response: FriendResponse = parse(body)?;
                match self.world.answer_friend_request(
                    response.from,
                    response.to,
                    response.accept,
                    &response.message,
                    Origin::Control,
                ) {
                    AnswerOutcome::Done => ok(json!({})),
                    AnswerOutcome::NoPendingRequest => error(409, "no pending request to answer"),
                }
            }
            _ => error(404, "no such control endpoint"),
        })
    }
}

#[async_trait]
impl Route for ControlService {
    fn matches(&self, _request: &HttpRequest) -> bool {
        true
    }

    async fn handle(&self, request: HttpRequest) -> HttpResponse {
        let path = request.path().to_owned();
        match self.route(&request.method, &path, &request.body) {
            Ok(response) | Err(response) => response,
        }
    }
}
