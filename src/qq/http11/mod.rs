//! HTTP QQ 1.1 (the 2005 `key=value` interface on port 8000): the wire
//! codec shared with the simulator, and the client the bridge logs in with.
//!
//! Client layers, bottom up: [`transport`] (one POST per TCP connection),
//! `wire` (one command for one account, typed by the codec), `link` (NULL
//! retries, transparent re-login), then the session's parts: `contacts`,
//! `sender` (paced CLTMSG queue), `poller` (GetMsgEx loop), `profile`, and
//! [`Http11Session`] / [`Http11Connector`] on top.

pub mod codec;

mod connector;
mod contacts;
mod events;
mod link;
mod login;
mod options;
mod poller;
mod profile;
mod sender;
mod session;
pub mod transport;
mod wire;

pub use connector::Http11Connector;
pub use options::Http11Options;
pub use session::Http11Session;
