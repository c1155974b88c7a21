//! Typed HTTP QQ 1.1 replies (http11.md §5, §6): the
//! `VER=1.1&CMD=<echo>&SEQ=<echo>&UIN=<echo>&RES=<n>` envelope, the Login
//! reply, the payload-less `RES=0` replies, and the spelling choices in
//! which the two seeds disagree ([`ReplyStyle`]).
//!
//! NULL is not a reply: it is the absence of one (see [`decode_answer`]).

use serde::{Deserialize, Serialize};

use super::body::{BodyWriter, RawBody, ReplyFields, MAX_REPLY_BODY};
use super::command::{Command, LoginEcho, REPLY_VERSION};
use super::contacts::{
    decode_finger, encode_finger, AddToListReply, FingerEntry, ListReply, QueryStatReply,
};
use super::error::CodecError;
use super::info::InfoReply;
use super::messages::{decode_messages, encode_messages, MsgEntry};

/// One non-NULL reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub cmd: Command,
    pub seq: String,
    pub uin: u64,
    pub body: ReplyBody,
}

/// The `RES` code and what follows it. Which `RES=0` variant goes with
/// which command: `Login`, `List`, `QueryStat`, `GetInfo`, `AddToList`,
/// `Messages` (GetMsgEx) and `Finger` with their namesakes, `Done` with
/// Ack_AddToList, DelFromList, Change_Stat, CLTMSG and Logout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplyBody {
    /// `RES=0` and nothing more.
    Done,
    /// `RES=3`: refused or throttled (it arrives 20 s or 30 s late).
    Refused,
    /// `RES=5`: illegal QQ number (Login).
    IllegalUin,
    /// `RES=20`: not logged in or the session expired.
    NotLoggedIn,
    Login(LoginReply),
    List(ListReply),
    QueryStat(QueryStatReply),
    /// Boxed: a detailed profile is much larger than any other variant.
    GetInfo(Box<InfoReply>),
    AddToList(AddToListReply),
    Messages(Vec<MsgEntry>),
    Finger(Vec<FingerEntry>),
}

/// The `RES=0` part of a Login reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginReply {
    /// `RS=0&HI=60&LI=300`, in 2010 followed by `&COMP=…`.
    Success {
        /// `HI`: poll at least this often, in seconds.
        heartbeat_s: u32,
        /// `LI`: the session expires after this many silent seconds.
        idle_timeout_s: u32,
        comp: Option<String>,
    },
    /// `RS=1&RA=<reason>` (`密码错误` or `登录失败`).
    Failure { reason: String },
}

/// Which seed's trailing-`&` habits to follow (http11.md §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum AmpProfile {
    #[default]
    #[serde(rename = "001")]
    Seed001,
    #[serde(rename = "003")]
    Seed003,
}

/// The server's spelling choices where the sources disagree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplyStyle {
    pub login_echo: LoginEcho,
    pub trailing_amp: AmpProfile,
    /// `MG=30 ` instead of `MG=30` in `MT=99` entries (\[003\]).
    pub sysmsg_trailing_space: bool,
}

impl ReplyBody {
    /// The `RES` code.
    pub fn result_code(&self) -> u32 {
        match self {
            ReplyBody::Refused => 3,
            ReplyBody::IllegalUin => 5,
            ReplyBody::NotLoggedIn => 20,
            _ => 0,
        }
    }
}

/// Whether this reply ends with a bare `&` in the given profile (§4.3).
fn ends_with_amp(cmd: Command, body: &ReplyBody, profile: AmpProfile) -> bool {
    use AmpProfile::{Seed001, Seed003};
    match body {
        ReplyBody::Done => matches!(
            (cmd, profile),
            (Command::DelFromList | Command::ChangeStat, _)
                | (Command::CltMsg, Seed001)
                | (Command::AckAddToList, Seed003)
        ),
        ReplyBody::Messages(entries) => profile == Seed003 && !entries.is_empty(),
        ReplyBody::QueryStat(QueryStatReply::Online(_)) => profile == Seed003,
        _ => false,
    }
}

impl Reply {
    pub fn new(cmd: Command, seq: impl Into<String>, uin: u64, body: ReplyBody) -> Self {
        Reply {
            cmd,
            seq: seq.into(),
            uin,
            body,
        }
    }

    /// The reply body text, exactly as the server sends it.
    pub fn encode(&self, style: &ReplyStyle) -> String {
        let mut out = BodyWriter::new();
        out.number("VER", REPLY_VERSION)
            .number("CMD", self.cmd.echo_name(style.login_echo))
            .reply_text("SEQ", &self.seq)
            .number("UIN", self.uin)
            .number("RES", self.body.result_code());
        match &self.body {
            ReplyBody::Done
            | ReplyBody::Refused
            | ReplyBody::IllegalUin
            | ReplyBody::NotLoggedIn => {}
            ReplyBody::Login(login) => encode_login(login, &mut out),
            ReplyBody::List(list) => list.encode(&mut out),
            ReplyBody::QueryStat(stat) => stat.encode(&mut out),
            ReplyBody::GetInfo(info) => info.encode(&mut out),
            ReplyBody::AddToList(add) => add.encode(&mut out),
            ReplyBody::Messages(entries) => {
                encode_messages(entries, style.sysmsg_trailing_space, &mut out)
            }
            ReplyBody::Finger(entries) => encode_finger(entries, &mut out),
        }
        out.finish(ends_with_amp(self.cmd, &self.body, style.trailing_amp))
    }

    /// Decodes a non-empty reply body, checking list lengths and counts.
    /// Accepts both Login echoes, any CMD case and a trailing `&`.
    pub fn decode(body: &[u8]) -> Result<Reply, CodecError> {
        let fields = ReplyFields(RawBody::parse(body, MAX_REPLY_BODY)?);
        fields.required_text("VER")?;
        let cmd: Command = fields.required_text("CMD")?.parse()?;
        let seq = fields.required_text("SEQ")?;
        let uin = fields.required_number("UIN")?;
        let body = match fields.required_number("RES")? {
            0 => decode_success(cmd, &fields)?,
            3 => ReplyBody::Refused,
            5 => ReplyBody::IllegalUin,
            20 => ReplyBody::NotLoggedIn,
            other => return Err(CodecError::UnknownResult(other)),
        };
        Ok(Reply {
            cmd,
            seq,
            uin,
            body,
        })
    }
}

/// Decodes what a client read: `Ok(None)` is the NULL answer (no bytes, or
/// an empty body in the simulator's alternative NULL mode).
pub fn decode_answer(body: &[u8]) -> Result<Option<Reply>, CodecError> {
    match Reply::decode(body) {
        Err(CodecError::Empty) => Ok(None),
        other => other.map(Some),
    }
}

fn encode_login(login: &LoginReply, out: &mut BodyWriter) {
    match login {
        LoginReply::Success {
            heartbeat_s,
            idle_timeout_s,
            comp,
        } => {
            out.number("RS", 0)
                .number("HI", heartbeat_s)
                .number("LI", idle_timeout_s);
            if let Some(comp) = comp {
                out.reply_text("COMP", comp);
            }
        }
        LoginReply::Failure { reason } => {
            out.number("RS", 1).reply_text("RA", reason);
        }
    }
}

fn decode_success(cmd: Command, fields: &ReplyFields<'_>) -> Result<ReplyBody, CodecError> {
    Ok(match cmd {
        Command::Login => {
            let rs: u32 = fields.required_number("RS")?;
            ReplyBody::Login(if rs == 0 {
                LoginReply::Success {
                    heartbeat_s: fields.required_number("HI")?,
                    idle_timeout_s: fields.required_number("LI")?,
                    comp: fields.text("COMP")?,
                }
            } else {
                LoginReply::Failure {
                    reason: fields.text("RA")?.unwrap_or_default(),
                }
            })
        }
        Command::List => ReplyBody::List(ListReply::decode(fields)?),
        Command::QueryStat => ReplyBody::QueryStat(QueryStatReply::decode(fields)?),
        Command::GetInfo => ReplyBody::GetInfo(Box::new(InfoReply::decode(fields)?)),
        Command::AddToList => ReplyBody::AddToList(AddToListReply::decode(fields)?),
        Command::GetMsgEx => ReplyBody::Messages(decode_messages(fields)?),
        Command::Finger => ReplyBody::Finger(decode_finger(fields)?),
        Command::AckAddToList
        | Command::DelFromList
        | Command::ChangeStat
        | Command::CltMsg
        | Command::Logout => ReplyBody::Done,
    })
}
