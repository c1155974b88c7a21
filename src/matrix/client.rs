//! The homeserver client: client-server API calls with ruma's request types,
//! made as the bridge bot or, by appservice identity assertion
//! (`?user_id=`), as one of its ghosts.
//!
//! One call is one HTTP request; [`Homeserver::call_retrying`] adds a few
//! quick retries through [`crate::backoff`] for calls made in line (room
//! creation, joins). Messages are never sent from here directly: they go
//! through the per-room queue (`room_queue.rs`), which sends to one room one
//! event at a time, in order, and keeps retrying while the homeserver is
//! down. The as_token travels in the `Authorization` header only, and
//! errors never carry a URL with credentials.

use std::collections::BTreeMap;
use std::time::Duration;

use ruma::api::auth_scheme::{AuthScheme, SendAccessToken};
use ruma::api::path_builder::VersionHistory;
use ruma::api::{
    AppserviceUserIdentity, IncomingResponse, OutgoingRequest, OutgoingRequestAppserviceExt,
    SupportedVersions,
};
use ruma::UserId;

use crate::backoff::Backoff;
use crate::secret::Secret;

/// Longest wait for one homeserver request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Largest homeserver response read (a downloaded media file included).
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Spec versions assumed: every current homeserver serves v1.1 to v1.11.
const ASSUMED_VERSIONS: [&str; 11] = [
    "v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11",
];

/// Why a homeserver call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum HsError {
    /// Down, overloaded, timing out or rate limiting: try again later.
    #[error("homeserver unavailable: {0}")]
    Unavailable(String),
    /// The homeserver answered with a Matrix error.
    #[error("homeserver refused ({status} {errcode}): {message}")]
    Refused {
        status: u16,
        errcode: String,
        message: String,
    },
    /// The request could not be made or the answer not understood.
    #[error("bad homeserver exchange: {0}")]
    Invalid(String),
}

impl HsError {
    pub fn is_transient(&self) -> bool {
        matches!(self, HsError::Unavailable(_))
    }

    pub fn errcode(&self) -> Option<&str> {
        match self {
            HsError::Refused { errcode, .. } => Some(errcode),
            _ => None,
        }
    }
}

/// The client-server API as the appservice.
pub struct Homeserver {
    http: reqwest::Client,
    base_url: String,
    as_token: Secret,
    versions: SupportedVersions,
}

impl Homeserver {
    pub fn new(base_url: &str, as_token: Secret) -> Result<Homeserver, HsError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| HsError::Invalid(format!("HTTP client: {e}")))?;
        let versions: Vec<String> = ASSUMED_VERSIONS.iter().map(|v| (*v).to_owned()).collect();
        Ok(Homeserver {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            as_token,
            versions: SupportedVersions::from_parts(&versions, &BTreeMap::new()),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// One request, as the bot (`as_user` none) or as a ghost.
    pub async fn call<R>(
        &self,
        request: R,
        as_user: Option<&UserId>,
    ) -> Result<R::IncomingResponse, HsError>
    where
        R: OutgoingRequest<PathBuilder = VersionHistory>,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        let identity = match as_user {
            Some(user) => AppserviceUserIdentity::new(user),
            None => AppserviceUserIdentity::default(),
        };
        let http_request: http::Request<Vec<u8>> = request
            .try_into_http_request_with_identity(
                &self.base_url,
                SendAccessToken::Appservice(self.as_token.expose()),
                identity,
                std::borrow::Cow::Borrowed(&self.versions),
            )
            .map_err(|e| HsError::Invalid(format!("building the request: {e}")))?;
        let response = self.execute(http_request).await?;
        R::IncomingResponse::try_from_http_response(response)
            .map_err(|e| HsError::Invalid(format!("reading the answer: {e}")))
    }

    /// Like [`Self::call`], retried a few times (quickly) while the
    /// homeserver is unavailable. `make` builds a fresh request each time.
    pub async fn call_retrying<R, F>(
        &self,
        make: F,
        as_user: Option<&UserId>,
    ) -> Result<R::IncomingResponse, HsError>
    where
        F: Fn() -> R,
        R: OutgoingRequest<PathBuilder = VersionHistory>,
        for<'a> R::Authentication: AuthScheme<Input<'a> = SendAccessToken<'a>>,
    {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(2));
        crate::backoff::retry(&mut backoff, 4, HsError::is_transient, || {
            self.call(make(), as_user)
        })
        .await
    }

    /// Sends a prepared request and turns Matrix errors into [`HsError`].
    async fn execute(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, HsError> {
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let mut builder = self.http.request(parts.method, url).body(body);
        for (name, value) in &parts.headers {
            builder = builder.header(name, value);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| HsError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let headers = response.headers().clone();
        if response
            .content_length()
            .is_some_and(|len| len > MAX_RESPONSE_BYTES as u64)
        {
            return Err(HsError::Invalid("answer too large".to_owned()));
        }
        let bytes = read_limited(response, MAX_RESPONSE_BYTES).await?;
        if !status.is_success() {
            return Err(matrix_error(status.as_u16(), &bytes));
        }
        let mut out = http::Response::new(bytes);
        *out.status_mut() = status;
        *out.headers_mut() = headers;
        Ok(out)
    }

    /// Whether the homeserver answers at all (`/_matrix/client/versions`).
    pub async fn is_up(&self) -> bool {
        self.http
            .get(format!("{}/_matrix/client/versions", self.base_url))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
    }

    /// A plain GET with the as_token (media download for the media proxy).
    pub async fn get_raw(
        &self,
        path_and_query: &str,
    ) -> Result<(Option<String>, Vec<u8>), HsError> {
        let response = self
            .http
            .get(format!("{}{path_and_query}", self.base_url))
            .bearer_auth(self.as_token.expose())
            .send()
            .await
            .map_err(|e| HsError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = read_limited(response, MAX_RESPONSE_BYTES).await?;
        if !status.is_success() {
            return Err(matrix_error(status.as_u16(), &bytes));
        }
        Ok((content_type, bytes))
    }
}

async fn read_limited(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, HsError> {
    let mut out = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| HsError::Unavailable(e.without_url().to_string()))?
    {
        if out.len() + chunk.len() > limit {
            return Err(HsError::Invalid("answer too large".to_owned()));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// A non-2xx answer: 429 and 5xx are "later", the rest a refusal.
fn matrix_error(status: u16, body: &[u8]) -> HsError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        #[serde(default)]
        errcode: String,
        #[serde(default)]
        error: String,
    }
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (errcode, message) = match parsed {
        Some(b) => (b.errcode, b.error.chars().take(300).collect()),
        None => (String::new(), String::new()),
    };
    if status == 429 || status >= 500 || errcode == "M_LIMIT_EXCEEDED" {
        return HsError::Unavailable(format!("{status} {errcode} {message}").trim().to_owned());
    }
    HsError::Refused {
        status,
        errcode,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_are_classified() {
        assert!(matrix_error(502, b"").is_transient());
        assert!(matrix_error(429, b"{}").is_transient());
        let e = matrix_error(403, br#"{"errcode":"M_FORBIDDEN","error":"no"}"#);
        assert_eq!(e.errcode(), Some("M_FORBIDDEN"));
        assert!(!e.is_transient());
    }
}
