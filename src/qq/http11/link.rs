//! The state one logged-in account shares between its commands, its poller
//! and its sender: the wire, the password hash for re-login, the event
//! sink, the current presence, and the shutdown signal.
//!
//! [`SessionLink::request`] is the one way commands reach the server. It
//! retries NULL with bounded backoff (then `Unreachable`), and on `RES=20`
//! logs in again transparently and repeats the command. Concurrent `RES=20`
//! answers lead to one re-login: each caller remembers the login
//! generation it used, and only a caller whose generation is still current
//! logs in again.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::{watch, Mutex as AsyncMutex, Notify};

use super::codec::{Params, PasswordHash, ReplyBody, Status, Version};
use super::events::EventSink;
use super::login::{self, ServerTiming};
use super::options::Http11Options;
use super::wire::{CallError, RawAnswer, Wire};
use crate::backoff::Backoff;
use crate::core::model::{Presence, Uin};
use crate::qq::{EndReason, QqError};

/// How many times one command may trigger a re-login before giving up.
const MAX_RELOGINS_PER_REQUEST: u32 = 2;

/// What the retry loop needs to know about an answer.
pub(crate) enum Answer<T> {
    Value(T),
    /// `RES=20`: log in again and repeat.
    NotLoggedIn,
}

/// Shared state of one logged-in account.
#[derive(Debug)]
pub(crate) struct SessionLink {
    pub wire: Wire,
    password: PasswordHash,
    pub options: Http11Options,
    pub events: EventSink,
    /// Bumped by every successful re-login.
    generation: AtomicU64,
    relogin_lock: AsyncMutex<()>,
    /// The presence the user asked for, restored after a re-login.
    presence: Mutex<Presence>,
    timing: Mutex<ServerTiming>,
    shutdown: watch::Sender<bool>,
    /// Wakes the poller early (a message was just sent: replies follow).
    pub activity: Notify,
}

impl SessionLink {
    pub fn new(
        wire: Wire,
        password: PasswordHash,
        options: Http11Options,
        events: EventSink,
        timing: ServerTiming,
        presence: Presence,
    ) -> Self {
        SessionLink {
            wire,
            password,
            options,
            events,
            generation: AtomicU64::new(0),
            relogin_lock: AsyncMutex::new(()),
            presence: Mutex::new(presence),
            timing: Mutex::new(timing),
            shutdown: watch::Sender::new(false),
            activity: Notify::new(),
        }
    }

    pub fn uin(&self) -> Uin {
        self.wire.uin()
    }

    /// The current login generation (see [`relogin`](Self::relogin)).
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn timing(&self) -> ServerTiming {
        match self.timing.lock() {
            Ok(timing) => *timing,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    pub fn presence(&self) -> Presence {
        match self.presence.lock() {
            Ok(presence) => *presence,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    fn remember_presence(&self, presence: Presence) {
        match self.presence.lock() {
            Ok(mut current) => *current = presence,
            Err(poisoned) => *poisoned.into_inner() = presence,
        }
    }

    /// Whether the session is shutting down or over: no new work starts.
    pub fn is_closing(&self) -> bool {
        *self.shutdown.borrow() || self.events.is_ended()
    }

    /// Asks every background task to stop.
    pub fn close(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves once [`close`](Self::close) was called.
    pub async fn closed(&self) {
        let mut rx = self.shutdown.subscribe();
        // An error means the sender is gone, which also means closed.
        let _ = rx.wait_for(|closing| *closing).await;
    }

    /// Sleeps `delay` unless the session closes first; returns whether it
    /// is still open.
    pub async fn pause(&self, delay: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(delay) => !self.is_closing(),
            () = self.closed() => false,
        }
    }

    /// Ends the session with `reason` and stops the background tasks.
    pub async fn end(&self, reason: EndReason) {
        self.close();
        self.events.end(reason).await;
    }

    /// Sends a version 1.1 command with the standard retries.
    pub async fn request(&self, params: Params) -> Result<ReplyBody, QqError> {
        self.request_paced(params, Duration::ZERO).await
    }

    /// Like [`request`](Self::request), never retrying sooner than
    /// `min_retry_delay` (CLTMSG must respect its pacing even on retries).
    pub async fn request_paced(
        &self,
        params: Params,
        min_retry_delay: Duration,
    ) -> Result<ReplyBody, QqError> {
        self.run(Version::V1_1, params, min_retry_delay, |wire, answer| {
            typed(wire, answer)
        })
        .await
    }

    /// The retry loop, with a caller-chosen reading of the reply body.
    pub async fn run<T>(
        &self,
        ver: Version,
        params: Params,
        min_retry_delay: Duration,
        read: impl Fn(&Wire, &RawAnswer) -> Result<Answer<T>, CallError>,
    ) -> Result<T, QqError> {
        let mut delays = Backoff::new(
            self.options.retry_initial.max(min_retry_delay),
            self.options.retry_max.max(min_retry_delay),
        );
        let mut relogins = 0;
        loop {
            if self.is_closing() {
                return Err(QqError::SessionEnded);
            }
            let generation = self.generation.load(Ordering::Acquire);
            let outcome = match self.wire.exchange(ver, &params).await {
                Ok(answer) => read(&self.wire, &answer),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(Answer::Value(value)) => return Ok(value),
                Ok(Answer::NotLoggedIn) if relogins < MAX_RELOGINS_PER_REQUEST => {
                    relogins += 1;
                    self.relogin(generation).await?;
                }
                Ok(Answer::NotLoggedIn) => return Err(QqError::NotLoggedIn),
                Err(CallError::Null(cause)) => {
                    if delays.failures() + 1 >= self.options.retry_attempts.max(1) {
                        return Err(QqError::Unreachable(cause.to_string()));
                    }
                    let delay = delays.next_delay();
                    if !self.pause(delay).await {
                        return Err(QqError::SessionEnded);
                    }
                }
                Err(CallError::Malformed(why)) => return Err(QqError::Protocol(why)),
            }
        }
    }

    /// Logs in again after `RES=20`, unless another task already did since
    /// `seen_generation`. A refused re-login ends the session.
    pub async fn relogin(&self, seen_generation: u64) -> Result<(), QqError> {
        let _only_one = self.relogin_lock.lock().await;
        if self.generation.load(Ordering::Acquire) != seen_generation {
            return Ok(());
        }
        if self.is_closing() {
            return Err(QqError::SessionEnded);
        }
        self.events
            .degraded("the QQ session expired; logging in again")
            .await;
        match login::log_in(&self.wire, &self.password, &self.options).await {
            Ok(timing) => {
                match self.timing.lock() {
                    Ok(mut current) => *current = timing,
                    Err(poisoned) => *poisoned.into_inner() = timing,
                }
                self.generation.fetch_add(1, Ordering::AcqRel);
                self.restore_presence().await;
                self.events.recovered().await;
                Ok(())
            }
            Err(e @ (QqError::BadCredentials | QqError::LoginRefused(_))) => {
                tracing::warn!(error = %e, "re-login refused; ending the session");
                self.end(EndReason::LoginFailed(e.to_string())).await;
                Err(QqError::SessionEnded)
            }
            Err(e) => {
                tracing::info!(error = %e, "re-login failed; will retry");
                Err(e)
            }
        }
    }

    /// A fresh login is online; put back what the user had chosen.
    async fn restore_presence(&self) {
        let presence = self.presence();
        if presence == Presence::Online {
            return;
        }
        let params = Params::ChangeStat {
            status: status_for(presence),
        };
        match self.wire.call(Version::V1_1, &params).await {
            Ok(ReplyBody::Done) => {}
            Ok(other) => tracing::warn!(
                res = other.result_code(),
                "cannot restore the presence after re-login"
            ),
            Err(e) => tracing::warn!(?e, "cannot restore the presence after re-login"),
        }
    }

    /// Change_Stat with retries: `RES=3` (changed too often) waits and
    /// tries again, a bounded number of times.
    pub async fn change_presence(&self, presence: Presence) -> Result<(), QqError> {
        let params = Params::ChangeStat {
            status: status_for(presence),
        };
        let mut delays = Backoff::new(self.options.retry_initial, self.options.retry_max);
        loop {
            match self.request(params.clone()).await? {
                ReplyBody::Done => {
                    self.remember_presence(presence);
                    return Ok(());
                }
                ReplyBody::Refused => {
                    if delays.failures() + 1 >= self.options.throttle_attempts.max(1) {
                        return Err(QqError::Throttled);
                    }
                    if !self.pause(delays.next_delay()).await {
                        return Err(QqError::SessionEnded);
                    }
                }
                other => return Err(unexpected("Change_Stat", &other)),
            }
        }
    }
}

/// Reads an answer with the shared codec.
pub(crate) fn typed(wire: &Wire, answer: &RawAnswer) -> Result<Answer<ReplyBody>, CallError> {
    match wire.decode(answer)? {
        ReplyBody::NotLoggedIn => Ok(Answer::NotLoggedIn),
        body => Ok(Answer::Value(body)),
    }
}

/// The Change_Stat code for a presence. HTTP QQ has no "away": busy is the
/// closest thing the protocol offers.
pub(crate) fn status_for(presence: Presence) -> Status {
    match presence {
        Presence::Online => Status::Online,
        Presence::Away | Presence::Busy => Status::Busy,
        Presence::Invisible => Status::Invisible,
        Presence::Offline => Status::Offline,
    }
}

/// The presence a status code means to others (invisible looks offline).
pub(crate) fn presence_for(status: Status) -> Presence {
    match status {
        Status::Online => Presence::Online,
        Status::Busy => Presence::Busy,
        Status::Offline | Status::Invisible => Presence::Offline,
    }
}

/// The error for a `RES=0` body of the wrong shape (cannot happen with the
/// codec, which decodes by command, but is not worth a panic).
pub(crate) fn unexpected(cmd: &str, body: &ReplyBody) -> QqError {
    QqError::Protocol(format!(
        "unexpected {cmd} answer RES={}",
        body.result_code()
    ))
}
