//! WebQQ captcha images for IRC users. IRC cannot show an image, so the
//! gateway keeps it for a while under a random token and answers a plain
//! HTTP `GET /captcha/<token>` on its own port: the user opens the link the
//! bot gives, reads the code and types `captcha <code>`.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a captcha link works; WebQQ's own captchas expired sooner.
const LIFETIME: Duration = Duration::from_secs(600);
/// Bound on images kept at once, so login floods cannot grow memory.
const MAX_IMAGES: usize = 256;

#[derive(Default)]
pub(crate) struct CaptchaImages {
    addr: OnceLock<SocketAddr>,
    images: Mutex<HashMap<String, (Instant, Vec<u8>)>>,
}

impl CaptchaImages {
    pub fn set_addr(&self, addr: SocketAddr) {
        let _ = self.addr.set(addr);
    }

    /// Keeps `image` and returns the link to it.
    pub fn offer(&self, image: Vec<u8>) -> String {
        let token = format!("{:032x}", rand::random::<u128>());
        if let Ok(mut images) = self.images.lock() {
            let now = Instant::now();
            images.retain(|_, (at, _)| now.duration_since(*at) < LIFETIME);
            if images.len() >= MAX_IMAGES {
                if let Some(oldest) = images
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(k, _)| k.clone())
                {
                    images.remove(&oldest);
                }
            }
            images.insert(token.clone(), (now, image));
        }
        let host = self
            .addr
            .get()
            .map_or_else(|| "127.0.0.1:6667".to_owned(), SocketAddr::to_string);
        format!("http://{host}/captcha/{token}")
    }

    /// The full HTTP response for a request line `GET <path> HTTP/1.x`.
    pub fn http_response(&self, request_line: &str) -> Vec<u8> {
        let path = request_line.split_whitespace().nth(1).unwrap_or("");
        let image = path.strip_prefix("/captcha/").and_then(|token| {
            let images = self.images.lock().ok()?;
            images
                .get(token)
                .filter(|(at, _)| at.elapsed() < LIFETIME)
                .map(|(_, image)| image.clone())
        });
        match image {
            Some(image) => {
                let mut out = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
                    mime_type(&image),
                    image.len()
                )
                .into_bytes();
                out.extend_from_slice(&image);
                out
            }
            None => {
                let body = "no such captcha (links expire after 10 minutes)\n";
                format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }
        }
    }
}

fn mime_type(image: &[u8]) -> &'static str {
    if image.starts_with(b"\x89PNG") {
        "image/png"
    } else if image.starts_with(b"\xff\xd8") {
        "image/jpeg"
    } else if image.starts_with(b"GIF8") {
        "image/gif"
    } else if image.starts_with(b"BM") {
        "image/bmp"
    } else {
        "application/octet-stream"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offered_images_are_served_once_known_and_unknown_tokens_are_404() {
        let c = CaptchaImages::default();
        c.set_addr("127.0.0.1:7000".parse().unwrap());
        let link = c.offer(b"\x89PNG-image".to_vec());
        let path = link.strip_prefix("http://127.0.0.1:7000").unwrap();
        let ok = c.http_response(&format!("GET {path} HTTP/1.1"));
        let text = String::from_utf8_lossy(&ok);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(
            text.contains("Content-Type: image/png") && text.ends_with("\r\n\r\n\u{fffd}PNG-image"),
            "{text}"
        );
        let missing = c.http_response("GET /captcha/nope HTTP/1.1");
        assert!(missing.starts_with(b"HTTP/1.1 404"));
        assert!(c
            .http_response("GET / HTTP/1.1")
            .starts_with(b"HTTP/1.1 404"));
    }

    #[test]
    fn memory_is_bounded() {
        let c = CaptchaImages::default();
        for _ in 0..(MAX_IMAGES + 10) {
            c.offer(vec![0; 4]);
        }
        assert!(c.images.lock().unwrap().len() <= MAX_IMAGES);
    }
}
