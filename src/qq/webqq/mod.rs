//! The WebQQ (2013) client: `web2.qq.com` with the ptlogin2 password login,
//! the `d.web2`/`s.web2` JSON API and the `poll2` long-poll
//! (`/work/shared/protocol/webqq.md`).
//!
//! * Codec, shared with the simulator: [`crypto`] (password encryption,
//!   uin bytes, the Dec-2013 friend hash), [`ptlogin`] (`ptui_checkVC`,
//!   `ptuiCB`), [`json`] (every reply and poll event), [`content`]
//!   (content arrays ↔ [`crate::core::model::RichText`]), [`endpoints`]
//!   (URL paths and headers).
//! * Client: [`WebqqConnector`] logs in (`login.rs`) and starts a
//!   [`WebqqSession`] (`session.rs`), whose poller (`poller.rs`), sender
//!   (`sender.rs`) and roster (`roster.rs`) share one state; aliases are
//!   translated to real numbers (`aliases.rs`, `translate.rs`) before
//!   anything reaches the core.
//!
//! Every host is reached through the one base URL given to
//! [`WebqqConnector::new`]: `{base}/check`, `{base}/channel/login2`, …

mod aliases;
mod api;
pub mod content;
mod cookies;
pub mod crypto;
pub mod endpoints;
mod events;
pub mod json;
mod login;
mod poller;
pub mod ptlogin;
mod roster;
mod sender;
mod session;
mod translate;
mod transport;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;

use crate::qq::{
    Capabilities, EventSender, LoginRequest, LoginStep, PendingLogin, Protocol, QqConnector,
    QqError,
};

pub use session::WebqqSession;

/// What WebQQ can do: groups, temporary sessions and a signature; no user
/// search.
pub const CAPABILITIES: Capabilities = Capabilities {
    groups: true,
    temporary_sessions: true,
    search: false,
    signature: true,
};

/// Message size limit in bytes (text bytes plus 12 per face). webqq.md
/// documents none; this is a conservative choice.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1500;

/// Tunables of the client. The defaults follow webqq.md.
#[derive(Debug, Clone)]
pub struct WebqqOptions {
    /// Longest message piece; longer messages are split.
    pub max_message_bytes: usize,
    /// `get_msg_tip` period (60 s, twqq).
    pub heartbeat_interval: Duration,
    /// Poll failures in a row before relinking (5, lwqq).
    pub poll_failures_before_relink: u32,
    /// First and longest pause between retries.
    pub retry_initial: Duration,
    pub retry_max: Duration,
    /// `get_friend_uin2` lookups in flight at once.
    pub lookup_concurrency: usize,
}

impl Default for WebqqOptions {
    fn default() -> Self {
        WebqqOptions {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            heartbeat_interval: Duration::from_secs(60),
            poll_failures_before_relink: 5,
            retry_initial: Duration::from_secs(1),
            retry_max: Duration::from_secs(120),
            lookup_concurrency: 4,
        }
    }
}

/// Logs in to WebQQ servers reached through one base URL.
#[derive(Debug, Clone)]
pub struct WebqqConnector {
    base_url: String,
    options: WebqqOptions,
    /// Made at the first login, then shared by every login (and clone).
    client: Arc<OnceLock<reqwest::Client>>,
}

impl WebqqConnector {
    /// A connector for `base_url` (e.g. `http://127.0.0.1:8600`), which
    /// serves every WebQQ host.
    pub fn new(base_url: &str) -> Self {
        WebqqConnector::with_options(base_url, WebqqOptions::default())
    }

    pub fn with_options(base_url: &str, options: WebqqOptions) -> Self {
        WebqqConnector {
            base_url: base_url.trim().to_owned(),
            options,
            client: Arc::default(),
        }
    }

    fn client(&self) -> Result<reqwest::Client, QqError> {
        if let Some(client) = self.client.get() {
            return Ok(client.clone());
        }
        let client = transport::shared_client()?;
        Ok(self.client.get_or_init(|| client).clone())
    }
}

#[async_trait]
impl QqConnector for WebqqConnector {
    fn protocol(&self) -> Protocol {
        Protocol::Webqq
    }

    async fn login(
        &self,
        request: LoginRequest,
        events: EventSender,
    ) -> Result<LoginStep, QqError> {
        let transport = Arc::new(transport::Transport::new(&self.base_url, self.client()?)?);
        let creds = login::Credentials {
            uin: request.uin,
            password: request.password,
            status: login::login_status_string(request.presence),
        };
        tracing::info!(uin = %creds.uin, "WebQQ login");
        let progress = login::start(&transport, &creds).await?;
        finish_step(progress, transport, creds, events, self.options.clone()).await
    }
}

/// Turns login progress into a [`LoginStep`].
async fn finish_step(
    progress: login::Progress,
    transport: Arc<transport::Transport>,
    creds: login::Credentials,
    events: EventSender,
    options: WebqqOptions,
) -> Result<LoginStep, QqError> {
    match progress {
        login::Progress::Done(logged_in) => {
            let session = session::start(transport, creds, logged_in, events, options).await;
            Ok(LoginStep::Done(session))
        }
        login::Progress::Captcha { image, wait } => Ok(LoginStep::NeedCaptcha {
            image,
            pending: Box::new(WebqqPendingLogin {
                transport,
                creds,
                wait,
                events,
                options,
            }),
        }),
    }
}

/// A login waiting for the captcha answer; it keeps the cookie jar that
/// holds the captcha's `verifysession`.
struct WebqqPendingLogin {
    transport: Arc<transport::Transport>,
    creds: login::Credentials,
    wait: login::CaptchaWait,
    events: EventSender,
    options: WebqqOptions,
}

#[async_trait]
impl PendingLogin for WebqqPendingLogin {
    async fn submit_captcha(self: Box<Self>, code: String) -> Result<LoginStep, QqError> {
        let this = *self;
        let progress =
            login::continue_with_captcha(&this.transport, &this.creds, this.wait, &code).await?;
        finish_step(
            progress,
            this.transport,
            this.creds,
            this.events,
            this.options,
        )
        .await
    }
}
