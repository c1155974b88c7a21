//! GetMsgEx entries (http11.md §6.9): `MN=<n>&MT=…,&UN=…,&MG=…,`.
//!
//! The server appends one space to user text (`hi `) and, in \[003\]'s
//! profile, to status codes (`30 `). Decoding removes exactly that space, so
//! the typed text is what the sender wrote.

use super::body::{BodyWriter, ReplyFields};
use super::coded::Status;
use super::contacts::check_parallel;
use super::error::CodecError;

/// One pending message or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MsgEntry {
    /// `MT=9`: a user message.
    User { from: u64, text: String },
    /// `MT=99`: a friend's status changed (20 also means invisible).
    Status { from: u64, status: Status },
    /// `MT=2`: `from` asks to add you.
    FriendRequest { from: u64, text: String },
    /// `MT=3`: `from` accepted your request.
    Accepted { from: u64, text: String },
    /// `MT=4`: `from` refused your request.
    Refused { from: u64, text: String },
    /// Any other `MT`, kept as received (`kind` is never 2, 3, 4, 9 or 99).
    Other { kind: u32, from: u64, text: String },
}

impl MsgEntry {
    pub fn kind(&self) -> u32 {
        match self {
            MsgEntry::User { .. } => 9,
            MsgEntry::Status { .. } => 99,
            MsgEntry::FriendRequest { .. } => 2,
            MsgEntry::Accepted { .. } => 3,
            MsgEntry::Refused { .. } => 4,
            MsgEntry::Other { kind, .. } => *kind,
        }
    }

    pub fn from(&self) -> u64 {
        match self {
            MsgEntry::User { from, .. }
            | MsgEntry::Status { from, .. }
            | MsgEntry::FriendRequest { from, .. }
            | MsgEntry::Accepted { from, .. }
            | MsgEntry::Refused { from, .. }
            | MsgEntry::Other { from, .. } => *from,
        }
    }

    /// The `MG` text as the server writes it (before escaping).
    fn wire_text(&self, sysmsg_trailing_space: bool) -> String {
        match self {
            MsgEntry::User { text, .. } => format!("{text} "),
            MsgEntry::Status { status, .. } if sysmsg_trailing_space => {
                format!("{} ", status.code())
            }
            MsgEntry::Status { status, .. } => status.code().to_string(),
            MsgEntry::FriendRequest { text, .. }
            | MsgEntry::Accepted { text, .. }
            | MsgEntry::Refused { text, .. }
            | MsgEntry::Other { text, .. } => text.clone(),
        }
    }

    fn from_wire(kind: u32, from: u64, text: String) -> Result<MsgEntry, CodecError> {
        Ok(match kind {
            9 => MsgEntry::User {
                text: text.strip_suffix(' ').map(str::to_owned).unwrap_or(text),
                from,
            },
            99 => {
                let code = super::body::parse_number("MG", text.trim_matches(' '))?;
                let status = Status::from_code(code).ok_or(CodecError::BadValue { key: "MG" })?;
                MsgEntry::Status { from, status }
            }
            2 => MsgEntry::FriendRequest { from, text },
            3 => MsgEntry::Accepted { from, text },
            4 => MsgEntry::Refused { from, text },
            kind => MsgEntry::Other { kind, from, text },
        })
    }
}

pub(crate) fn encode_messages(
    entries: &[MsgEntry],
    sysmsg_trailing_space: bool,
    body: &mut BodyWriter,
) {
    let texts: Vec<String> = entries
        .iter()
        .map(|entry| entry.wire_text(sysmsg_trailing_space))
        .collect();
    body.number("MN", entries.len())
        .number_list("MT", entries.iter().map(MsgEntry::kind))
        .number_list("UN", entries.iter().map(MsgEntry::from))
        .text_list("MG", texts.iter().map(String::as_str));
}

pub(crate) fn decode_messages(fields: &ReplyFields<'_>) -> Result<Vec<MsgEntry>, CodecError> {
    let count: usize = fields.required_number("MN")?;
    let kinds: Vec<u32> = fields.number_list("MT")?;
    let senders: Vec<u64> = fields.number_list("UN")?;
    let texts = fields.text_list("MG")?;
    check_parallel(
        "MN",
        count,
        &[
            ("MT", kinds.len()),
            ("UN", senders.len()),
            ("MG", texts.len()),
        ],
    )?;
    kinds
        .into_iter()
        .zip(senders)
        .zip(texts)
        .map(|((kind, from), text)| MsgEntry::from_wire(kind, from, text))
        .collect()
}
