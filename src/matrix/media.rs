//! Links that let QQ users open Matrix media. A file posted in a portal
//! gets a random, unguessable id in the store; the link
//! `<public_url>/_qqbridge/media/<id>/<file name>` is served by the
//! appservice listener, which fetches the file from the homeserver with
//! the appservice token. Only files the bridge linked can be fetched, and
//! they are served as downloads (never rendered by the browser as HTML).

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};

use crate::store::MatrixMedia;

use super::{Matrix, MatrixError};

/// The path prefix of media links on the appservice listener.
pub const MEDIA_PATH: &str = "/_qqbridge/media";

impl Matrix {
    /// A link a QQ user can open for an mxc file.
    pub(crate) async fn media_link(
        &self,
        mxc: &str,
        name: &str,
        mimetype: Option<&str>,
    ) -> Result<String, MatrixError> {
        let id = format!("{:032x}", rand::random::<u128>());
        self.store
            .save_matrix_media(&MatrixMedia {
                id: id.clone(),
                mxc: mxc.to_owned(),
                name: name.to_owned(),
                mimetype: mimetype.map(str::to_owned),
            })
            .await?;
        let shown = if name.trim().is_empty() { "file" } else { name };
        Ok(format!(
            "{}{MEDIA_PATH}/{id}/{}",
            self.settings.public_url,
            utf8_percent_encode(shown, NON_ALPHANUMERIC)
        ))
    }

    /// Serves a linked file.
    pub(crate) async fn serve_media(&self, id: &str) -> Response {
        if id.len() != 32 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return StatusCode::NOT_FOUND.into_response();
        }
        let media = match self.store.matrix_media(id).await {
            Ok(Some(m)) => m,
            Ok(None) => return StatusCode::NOT_FOUND.into_response(),
            Err(e) => {
                tracing::error!(error = %e, "cannot look up a media link");
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
        };
        let Some((server, media_id)) = media
            .mxc
            .strip_prefix("mxc://")
            .and_then(|rest| rest.split_once('/'))
        else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let path = format!(
            "/_matrix/client/v1/media/download/{}/{}",
            utf8_percent_encode(server, NON_ALPHANUMERIC),
            utf8_percent_encode(media_id, NON_ALPHANUMERIC)
        );
        match self.hs.get_raw(&path).await {
            Ok((content_type, bytes)) => {
                let mut response = Response::new(Body::from(bytes));
                let headers = response.headers_mut();
                let kind = media
                    .mimetype
                    .or(content_type)
                    .filter(|t| is_safe_inline_type(t))
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                if let Ok(v) = HeaderValue::from_str(&kind) {
                    headers.insert(header::CONTENT_TYPE, v);
                }
                let disposition = format!(
                    "attachment; filename*=UTF-8''{}",
                    utf8_percent_encode(&media.name, NON_ALPHANUMERIC)
                );
                if let Ok(v) = HeaderValue::from_str(&disposition) {
                    headers.insert(header::CONTENT_DISPOSITION, v);
                }
                headers.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                headers.insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("sandbox; default-src 'none'"),
                );
                response
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot fetch linked media");
                StatusCode::BAD_GATEWAY.into_response()
            }
        }
    }
}

/// Types a browser may show as they are (no scripts in them).
fn is_safe_inline_type(t: &str) -> bool {
    let t = t.trim().to_ascii_lowercase();
    (t.starts_with("image/") && !t.contains("svg"))
        || t.starts_with("audio/")
        || t.starts_with("video/")
        || t == "text/plain"
        || t.starts_with("text/plain;")
        || t == "application/pdf"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_harmless_types_are_kept() {
        assert!(is_safe_inline_type("image/png"));
        assert!(!is_safe_inline_type("image/svg+xml"));
        assert!(!is_safe_inline_type("text/html"));
        assert!(!is_safe_inline_type("application/javascript"));
    }
}
