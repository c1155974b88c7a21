//! HTTP QQ 1.1 wire codec, shared by the client and the simulator.
//!
//! * [`Request`] / [`Params`]: what a client sends; `decode` fails with a
//!   [`CodecError`] exactly where the real server answered NULL.
//! * [`Reply`] / [`ReplyBody`]: what the server answers, for every command
//!   and every documented variant; [`ReplyStyle`] selects the spellings in
//!   which the sources disagree (Login echo, trailing `&`, `MG=30 `).
//!   [`decode_answer`] maps an empty body to NULL (`None`).
//! * [`RawBody`] / [`BodyWriter`]: the `KEY=VALUE&…` grammar with the
//!   percent rules of each direction (`%252c` commas, trailing-comma lists).
//! * [`http_reply`], [`http_request`], [`parse_http_replies`]: HTTP framing,
//!   including the probe's `POST HTTP/1.1` and the Query_Stat double reply.
//!
//! Nothing here panics on input: sizes are capped ([`MAX_REQUEST_BODY`],
//! [`MAX_REPLY_BODY`], [`MAX_LIST_ITEMS`]) and every failure is a
//! [`CodecError`] that names keys, never values.

mod body;
mod coded;
mod command;
mod contacts;
mod error;
mod escape;
mod framing;
mod info;
mod messages;
mod password;
mod reply;
mod request;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod samples;

pub use body::{BodyWriter, RawBody, MAX_LIST_ITEMS, MAX_REPLY_BODY, MAX_REQUEST_BODY};
pub use coded::{
    avatar_file_number, AckCode, AddToListCode, BloodType, Constellation, DenyCode, Gender, Status,
    Zodiac,
};
pub use command::{Command, LoginEcho, Version, REPLY_VERSION};
pub use contacts::{AddToListReply, FingerEntry, ListReply, OnlineFriend, QueryStatReply};
pub use error::CodecError;
pub use escape::{
    decode_reply_value, decode_request_value, encode_reply_text, encode_request_value,
};
pub use framing::{
    http_head_len, http_reply, http_request, parse_http_replies, HttpReply, RequestShape,
    REPLY_CONTENT_TYPE, SERVER_NAME,
};
pub use info::{InfoExtras, InfoReply, UserInfo};
pub use messages::MsgEntry;
pub use password::PasswordHash;
pub use reply::{decode_answer, AmpProfile, LoginReply, Reply, ReplyBody, ReplyStyle};
pub use request::{Params, Request, LOGIN_LC};
