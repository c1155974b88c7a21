//! [`Http11Connector`]: logs accounts in to one HTTP QQ 1.1 server and
//! hands out [`Http11Session`]s.
//!
//! Login: MD5 the password (the clear text is touched only there), Login
//! with NULL retries (or, restoring a stored login, continue the session
//! the server kept across the bridge's restart), apply the requested presence, read the buddy list,
//! start the poller. Everything of one account runs inside a `qq_session`
//! span carrying its `uin`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tracing::Instrument;

use super::codec::PasswordHash;
use super::events::EventSink;
use super::link::SessionLink;
use super::login;
use super::options::Http11Options;
use super::session::Http11Session;
use super::transport::Transport;
use super::wire::Wire;
use crate::core::model::Presence;
use crate::qq::EventSender;
use crate::qq::{LoginRequest, LoginStep, Protocol, QqConnector, QqError};

/// Logs in to the HTTP QQ 1.1 server at one address.
#[derive(Debug, Clone)]
pub struct Http11Connector {
    transport: Transport,
    options: Http11Options,
}

impl Http11Connector {
    /// A connector for the server at `base_url` (`http://host:port`).
    pub fn new(base_url: &str) -> Result<Self, QqError> {
        let options = Http11Options::default();
        let transport =
            Transport::from_url(base_url, options.connect_timeout, options.read_timeout)?;
        Ok(Http11Connector { transport, options })
    }

    /// The current options.
    pub fn options(&self) -> &Http11Options {
        &self.options
    }

    /// Replaces every option at once.
    pub fn with_options(mut self, options: Http11Options) -> Self {
        self.transport
            .set_timeouts(options.connect_timeout, options.read_timeout);
        self.transport.set_local_addr(options.local_addr);
        self.options = options;
        self
    }

    /// Connect and read timeouts of each request (the read timeout must
    /// exceed the server's RES=3 delay: 30 s against the real server).
    pub fn with_timeouts(mut self, connect: Duration, read: Duration) -> Self {
        self.options.connect_timeout = connect;
        self.options.read_timeout = read;
        self.transport.set_timeouts(connect, read);
        self
    }

    /// The GetMsgEx schedule: `fast` after activity, backing off to `idle_max`.
    pub fn with_poll_interval(mut self, fast: Duration, idle_max: Duration) -> Self {
        self.options.poll_fast = fast;
        self.options.poll_idle_max = idle_max;
        self
    }

    /// Minimum gap between two CLTMSG of one account.
    pub fn with_send_pacing(mut self, pacing: Duration) -> Self {
        self.options.send_pacing = pacing;
        self
    }

    /// Longest message part, in bytes of UTF-8 text.
    pub fn with_max_message_bytes(mut self, max: usize) -> Self {
        self.options.max_message_bytes = max;
        self
    }

    /// Retries of a request that gets NULL: first delay, longest delay, attempts.
    pub fn with_retry(mut self, initial: Duration, max: Duration, attempts: u32) -> Self {
        self.options.retry_initial = initial;
        self.options.retry_max = max;
        self.options.retry_attempts = attempts;
        self
    }

    /// Attempts for a request that keeps getting RES=3 (CLTMSG, Change_Stat).
    pub fn with_throttle_attempts(mut self, attempts: u32) -> Self {
        self.options.throttle_attempts = attempts;
        self
    }

    /// Connects from this source address (e.g. one of several loopback
    /// addresses in a load test, or one interface of a multi-homed host).
    pub fn with_local_addr(mut self, local: IpAddr) -> Self {
        self.options.local_addr = Some(local);
        self.transport.set_local_addr(Some(local));
        self
    }

    /// Longest delay between two polls while the server is unreachable.
    pub fn with_outage_backoff_max(mut self, max: Duration) -> Self {
        self.options.outage_backoff_max = max;
        self
    }

    async fn log_in(
        &self,
        request: LoginRequest,
        events: EventSender,
        span: tracing::Span,
    ) -> Result<LoginStep, QqError> {
        // The only use of the clear-text password.
        let password = PasswordHash::from_password(request.password.expose());
        let wire = Wire::new(self.transport.clone(), request.uin);
        tracing::info!(server = self.transport.authority(), "logging in");
        let resumed = if request.resume {
            login::continue_session(&wire).await
        } else {
            None
        };
        let timing = match resumed {
            Some(timing) => timing,
            None => login::log_in(&wire, &password, &self.options).await?,
        };
        let link = Arc::new(SessionLink::new(
            wire,
            password,
            self.options.clone(),
            EventSink::new(events),
            timing,
            Presence::Online,
        ));
        if request.presence != Presence::Online {
            if let Err(e) = link.change_presence(request.presence).await {
                tracing::warn!(error = %e, presence = %request.presence, "cannot set the initial presence");
            }
        }
        let session = Http11Session::start(link, span).await;
        Ok(LoginStep::Done(Arc::new(session)))
    }
}

#[async_trait]
impl QqConnector for Http11Connector {
    fn protocol(&self) -> Protocol {
        Protocol::Http11
    }

    async fn login(
        &self,
        request: LoginRequest,
        events: EventSender,
    ) -> Result<LoginStep, QqError> {
        let span = tracing::info_span!("qq_session", protocol = "http11", uin = %request.uin);
        self.log_in(request, events, span.clone())
            .instrument(span)
            .await
    }
}
