//! One command on the wire for one account: picks a SEQ, encodes the
//! request with the shared codec, runs the exchange inside a `qq_request`
//! span (`cmd`, `seq`), and checks that the reply is for this command and
//! this account.
//!
//! Request bodies are never logged: a Login body carries the password hash.

use rand::Rng;
use tracing::Instrument;

use super::codec::{Command, Params, Reply, ReplyBody, Request, Version};
use super::transport::{Exchange, NullCause, Transport};
use crate::core::model::Uin;

/// Why a command got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// No reply (NULL or a look-alike): worth retrying.
    Null(NullCause),
    /// A reply that cannot be understood; the text names keys, never values.
    Malformed(String),
}

/// The raw first reply body of a command, before typed decoding.
pub(crate) struct RawAnswer {
    pub cmd: Command,
    pub body: Vec<u8>,
    /// The request's span, so decoding logs inside it too.
    pub span: tracing::Span,
}

/// Sends commands as one account.
#[derive(Debug, Clone)]
pub(crate) struct Wire {
    transport: Transport,
    uin: Uin,
}

impl Wire {
    pub fn new(transport: Transport, uin: Uin) -> Self {
        Wire { transport, uin }
    }

    pub fn uin(&self) -> Uin {
        self.uin
    }

    /// Sends one command and returns the first reply body, not yet decoded.
    pub async fn exchange(&self, ver: Version, params: &Params) -> Result<RawAnswer, CallError> {
        let cmd = params.command();
        let seq = rand::thread_rng()
            .gen_range(1000u32..10_000_000)
            .to_string();
        let span = tracing::debug_span!("qq_request", cmd = cmd.wire_name(), seq = %seq);
        let answer_span = span.clone();
        let request = Request {
            ver,
            seq,
            uin: self.uin.0,
            params: params.clone(),
        };
        async move {
            match self.transport.post(&request.encode()).await {
                Exchange::Replies(replies) => {
                    let extra = replies.len().saturating_sub(1);
                    if extra > 0 {
                        tracing::debug!(extra, "ignoring further replies on the connection");
                    }
                    let body = replies
                        .into_iter()
                        .next()
                        .map(|r| r.body)
                        .unwrap_or_default();
                    Ok(RawAnswer {
                        cmd,
                        body,
                        span: answer_span,
                    })
                }
                Exchange::Null(cause) => {
                    tracing::debug!(%cause, "no reply (NULL)");
                    Err(CallError::Null(cause))
                }
                Exchange::Malformed(why) => {
                    tracing::warn!(%why, "unreadable reply");
                    Err(CallError::Malformed(why))
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Sends one command and decodes the reply with the shared codec.
    pub async fn call(&self, ver: Version, params: &Params) -> Result<ReplyBody, CallError> {
        let answer = self.exchange(ver, params).await?;
        self.decode(&answer)
    }

    /// Decodes a raw answer and checks it belongs to this command and account.
    pub fn decode(&self, answer: &RawAnswer) -> Result<ReplyBody, CallError> {
        let _in_request = answer.span.enter();
        let reply = Reply::decode(&answer.body).map_err(|error| {
            tracing::warn!(%error, "malformed reply");
            CallError::Malformed(error.to_string())
        })?;
        self.check_envelope(answer.cmd, reply.cmd, reply.uin)?;
        tracing::debug!(res = reply.body.result_code(), "reply");
        Ok(reply.body)
    }

    /// The echoed CMD and UIN must be ours (the codec already compared the
    /// CMD spelling case-insensitively).
    pub fn check_envelope(
        &self,
        sent: Command,
        echoed: Command,
        uin: u64,
    ) -> Result<(), CallError> {
        if echoed != sent {
            return Err(CallError::Malformed(format!(
                "reply to {} is for {}",
                sent.wire_name(),
                echoed.wire_name()
            )));
        }
        if uin != self.uin.0 {
            return Err(CallError::Malformed("reply is for another account".into()));
        }
        Ok(())
    }
}
