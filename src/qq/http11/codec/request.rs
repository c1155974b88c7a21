//! Typed HTTP QQ 1.1 requests (http11.md §6): decoding what a client sent,
//! encoding what a client sends.
//!
//! Decoding rejects, with a [`CodecError`], exactly the inputs the real
//! server answered with NULL: unknown `VER`, non-numeric `UIN`/`UN`/`TN`/
//! `LV`/`CD`, non-UTF-8 `RS`/`MG`, empty `PS`, wrong `LC`, illegal `ST`.
//! Unknown extra keys are ignored, as the server ignored `M6=1`.

use super::body::{BodyWriter, RawBody, RequestFields, MAX_REQUEST_BODY};
use super::coded::{AckCode, Gender, Status};
use super::command::{Command, Version};
use super::error::CodecError;
use super::password::PasswordHash;

/// The "mysterious" `LC` constant every Login must carry unchanged.
pub const LOGIN_LC: &str = "9326B87B234E7235";

/// One request: the four mandatory keys plus the command's own keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub ver: Version,
    /// Client-chosen tag, echoed verbatim in the reply.
    pub seq: String,
    /// The acting account.
    pub uin: u64,
    pub params: Params,
}

/// The command and its own parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Params {
    Login {
        password: PasswordHash,
        /// `M5`, purpose unknown; clients send `1`, the server ignores it.
        m5: Option<String>,
    },
    /// `TN` absent or 0 asks for the count only; `UN` changes nothing.
    List {
        tn: Option<u32>,
        un: Option<u64>,
    },
    /// Like List; `TN` absent or 0 triggers the double reply.
    QueryStat {
        tn: Option<u32>,
        un: Option<u64>,
    },
    /// `LV`: 0–1 brief, 2 normal, 3+ detailed.
    GetInfo {
        level: u32,
        target: u64,
    },
    AddToList {
        target: u64,
    },
    AckAddToList {
        target: u64,
        code: AckCode,
        /// `RS`: the request message or the refusal reason.
        text: String,
    },
    DelFromList {
        target: u64,
    },
    ChangeStat {
        status: Status,
    },
    GetMsgEx,
    CltMsg {
        to: u64,
        text: String,
    },
    Logout,
    /// Search (1.0 list). Empty or absent criteria match everybody.
    Finger {
        age: Option<u32>,
        gender: Option<Gender>,
        province: Option<String>,
    },
}

impl Params {
    pub fn command(&self) -> Command {
        match self {
            Params::Login { .. } => Command::Login,
            Params::List { .. } => Command::List,
            Params::QueryStat { .. } => Command::QueryStat,
            Params::GetInfo { .. } => Command::GetInfo,
            Params::AddToList { .. } => Command::AddToList,
            Params::AckAddToList { .. } => Command::AckAddToList,
            Params::DelFromList { .. } => Command::DelFromList,
            Params::ChangeStat { .. } => Command::ChangeStat,
            Params::GetMsgEx => Command::GetMsgEx,
            Params::CltMsg { .. } => Command::CltMsg,
            Params::Logout => Command::Logout,
            Params::Finger { .. } => Command::Finger,
        }
    }
}

impl Request {
    /// A version 1.1 request.
    pub fn new(seq: impl Into<String>, uin: u64, params: Params) -> Self {
        Request {
            ver: Version::V1_1,
            seq: seq.into(),
            uin,
            params,
        }
    }

    pub fn cmd(&self) -> Command {
        self.params.command()
    }

    /// Decodes a request body (exactly the Content-Length bytes).
    pub fn decode(body: &[u8]) -> Result<Request, CodecError> {
        let fields = RequestFields(RawBody::parse(body, MAX_REQUEST_BODY)?);
        let ver = fields.required_text("VER")?.parse()?;
        let cmd: Command = fields.required_text("CMD")?.parse()?;
        let seq = fields.required_text("SEQ")?;
        let uin = fields.required_number("UIN")?;
        let params = decode_params(cmd, &fields)?;
        Ok(Request {
            ver,
            seq,
            uin,
            params,
        })
    }

    /// Encodes the body a client sends, keys in the documented order.
    pub fn encode(&self) -> String {
        let mut body = BodyWriter::new();
        body.number("VER", self.ver)
            .number("CMD", self.cmd().wire_name())
            .request_text("SEQ", &self.seq)
            .number("UIN", self.uin);
        encode_params(&self.params, &mut body);
        body.finish(false)
    }
}

fn decode_params(cmd: Command, fields: &RequestFields<'_>) -> Result<Params, CodecError> {
    Ok(match cmd {
        Command::Login => {
            let password = fields.required_text("PS")?;
            if password.is_empty() {
                return Err(CodecError::EmptyValue { key: "PS" });
            }
            if fields.required_text("LC")? != LOGIN_LC {
                return Err(CodecError::BadLoginCode);
            }
            Params::Login {
                password: PasswordHash::from_wire(password),
                m5: fields.text("M5")?,
            }
        }
        Command::List => Params::List {
            tn: fields.number("TN")?,
            un: fields.number("UN")?,
        },
        Command::QueryStat => Params::QueryStat {
            tn: fields.number("TN")?,
            un: fields.number("UN")?,
        },
        Command::GetInfo => Params::GetInfo {
            level: fields.required_number("LV")?,
            target: fields.required_number("UN")?,
        },
        Command::AddToList => Params::AddToList {
            target: fields.required_number("UN")?,
        },
        Command::AckAddToList => Params::AckAddToList {
            target: fields.required_number("UN")?,
            code: AckCode::from_code(fields.required_number("CD")?),
            text: fields.text("RS")?.unwrap_or_default(),
        },
        Command::DelFromList => Params::DelFromList {
            target: fields.required_number("UN")?,
        },
        Command::ChangeStat => {
            let code = fields.required_number("ST")?;
            let status = Status::from_code(code).ok_or(CodecError::BadValue { key: "ST" })?;
            Params::ChangeStat { status }
        }
        Command::GetMsgEx => Params::GetMsgEx,
        Command::CltMsg => Params::CltMsg {
            to: fields.required_number("UN")?,
            text: fields.required_text("MG")?,
        },
        Command::Logout => Params::Logout,
        Command::Finger => Params::Finger {
            age: optional_number(fields, "AG")?,
            gender: optional_number(fields, "SX")?
                .map(|code| Gender::from_code(code).ok_or(CodecError::BadValue { key: "SX" }))
                .transpose()?,
            province: fields.text("PV")?.filter(|p| !p.is_empty()),
        },
    })
}

/// A Finger criterion: absent and empty both mean "any".
fn optional_number(
    fields: &RequestFields<'_>,
    key: &'static str,
) -> Result<Option<u32>, CodecError> {
    match fields.text(key) {
        Ok(Some(text)) if text.is_empty() => Ok(None),
        _ => fields.number(key),
    }
}

fn encode_params(params: &Params, body: &mut BodyWriter) {
    match params {
        Params::Login { password, m5 } => {
            body.request_text("PS", password.expose());
            if let Some(m5) = m5 {
                body.request_text("M5", m5);
            }
            body.number("LC", LOGIN_LC);
        }
        Params::List { tn, un } | Params::QueryStat { tn, un } => {
            if let Some(tn) = tn {
                body.number("TN", tn);
            }
            if let Some(un) = un {
                body.number("UN", un);
            }
        }
        Params::GetInfo { level, target } => {
            body.number("LV", level).number("UN", target);
        }
        Params::AddToList { target } | Params::DelFromList { target } => {
            body.number("UN", target);
        }
        Params::AckAddToList { target, code, text } => {
            body.number("UN", target)
                .number("CD", code.code())
                .request_text("RS", text);
        }
        Params::ChangeStat { status } => {
            body.number("ST", status.code());
        }
        Params::CltMsg { to, text } => {
            body.number("UN", to).request_text("MG", text);
        }
        Params::GetMsgEx | Params::Logout => {}
        Params::Finger {
            age,
            gender,
            province,
        } => {
            let age = age.map(|a| a.to_string()).unwrap_or_default();
            let gender = gender.map(|g| g.code().to_string()).unwrap_or_default();
            body.number("AG", age)
                .number("SX", gender)
                .request_text("PV", province.as_deref().unwrap_or_default());
        }
    }
}
