//! The Login command (http11.md §6.1), used for the first login and for the
//! transparent re-login after `RES=20`: `PS` = lowercase MD5 hex, `M5=1`,
//! the fixed `LC`, NULL retried with bounded backoff.
//!
//! The password is only ever present as a [`PasswordHash`], whose `Debug` is
//! redacted; the server's `RA` reason is logged only when it cannot be
//! carrying the hash back.

use std::time::Duration;

use super::codec::{LoginReply, Params, PasswordHash, ReplyBody, Version};
use super::options::Http11Options;
use super::wire::{CallError, Wire};
use crate::backoff::{self, Backoff};
use crate::qq::QqError;

/// The keep-alive figures a successful Login announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ServerTiming {
    /// `HI`: poll at least this often.
    pub heartbeat: Duration,
    /// `LI`: the session expires after this much silence.
    pub idle_timeout: Duration,
}

impl ServerTiming {
    /// What every seed's Login announced (`HI=60&LI=300`, http11.md §3),
    /// for a continued session, which has no Login reply of its own.
    pub(crate) const DOCUMENTED: ServerTiming = ServerTiming {
        heartbeat: Duration::from_secs(60),
        idle_timeout: Duration::from_secs(300),
    };
}

/// Continues the session the server still keeps for `wire`'s account at
/// this address, when it does: a session is known by address and number
/// alone, and a Login while one is alive is unreliable (http11.md §3). The
/// probe is a count-only List, which changes nothing. `None`: log in anew.
pub(crate) async fn continue_session(wire: &Wire) -> Option<ServerTiming> {
    let probe = Params::List { tn: None, un: None };
    match wire.call(Version::V1_1, &probe).await {
        Ok(ReplyBody::List(_)) => {
            tracing::info!("continued the session the server kept");
            Some(ServerTiming::DOCUMENTED)
        }
        Ok(_) | Err(_) => None,
    }
}

/// Logs `wire`'s account in, retrying NULL answers.
pub(crate) async fn log_in(
    wire: &Wire,
    password: &PasswordHash,
    options: &Http11Options,
) -> Result<ServerTiming, QqError> {
    let params = Params::Login {
        password: password.clone(),
        m5: Some("1".to_owned()),
    };
    let mut delays = Backoff::new(options.retry_initial, options.retry_max);
    backoff::retry(
        &mut delays,
        options.retry_attempts,
        |e| matches!(e, QqError::Unreachable(_)),
        || login_once(wire, &params, password),
    )
    .await
}

async fn login_once(
    wire: &Wire,
    params: &Params,
    password: &PasswordHash,
) -> Result<ServerTiming, QqError> {
    let body = wire
        .call(Version::V1_1, params)
        .await
        .map_err(|e| match e {
            CallError::Null(cause) => QqError::Unreachable(cause.to_string()),
            CallError::Malformed(why) => QqError::Protocol(why),
        })?;
    match body {
        ReplyBody::Login(LoginReply::Success {
            heartbeat_s,
            idle_timeout_s,
            ..
        }) => {
            tracing::info!(heartbeat_s, idle_timeout_s, "logged in");
            Ok(ServerTiming {
                heartbeat: Duration::from_secs(u64::from(heartbeat_s)),
                idle_timeout: Duration::from_secs(u64::from(idle_timeout_s)),
            })
        }
        ReplyBody::Login(LoginReply::Failure { reason }) => {
            if reason.to_ascii_lowercase().contains(password.expose()) {
                tracing::warn!("login refused: wrong QQ number or password (reason withheld)");
            } else {
                let reason: String = reason.chars().take(64).collect();
                tracing::warn!(%reason, "login refused: wrong QQ number or password");
            }
            Err(QqError::BadCredentials)
        }
        ReplyBody::IllegalUin => Err(QqError::LoginRefused("illegal QQ number".to_owned())),
        ReplyBody::Refused => Err(QqError::Throttled),
        other => Err(QqError::Protocol(format!(
            "unexpected Login answer RES={}",
            other.result_code()
        ))),
    }
}
