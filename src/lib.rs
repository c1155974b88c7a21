//! qqbridge: a puppeting bridge between Tencent QQ and Matrix / IRC.
//!
//! The crate is split the way the data flows (see README.md, "Architecture"):
//! - [`qq`] is the QQ network side (protocol clients and the simulator); it knows
//!   nothing about Matrix or IRC.
//! - [`core`] owns the canonical model, portal routing, text translation, loop
//!   prevention and the bot command language.
//! - [`irc`] and [`matrix`] are the chat sides; they only talk to [`core`].
//! - [`store`] persists everything that must survive a restart.

pub mod app;
pub mod backoff;
pub mod config;
pub mod core;
#[doc(hidden)]
pub mod fuzzing;
pub mod irc;
pub mod logging;
#[cfg(feature = "matrix")]
pub mod matrix;
pub mod matrix_txn;
pub mod qq;
pub mod secret;
pub mod store;
