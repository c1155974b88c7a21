//! The `PS` value of a Login request: the MD5 of the password as 32
//! lowercase hex digits (http11.md §4.1, §6.1).
//!
//! It is as good as the password itself for this protocol, so it never
//! shows in `Debug` output or error messages.

use std::fmt;

use md5::{Digest, Md5};

/// A password hash as sent in `PS=`. `Debug` prints a placeholder.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Hashes a clear-text password the way clients do (`md5()` in PHP).
    pub fn from_password(password: &str) -> Self {
        let digest = Md5::digest(password.as_bytes());
        let mut hex = String::with_capacity(32);
        for byte in digest {
            hex.push_str(&format!("{byte:02x}"));
        }
        PasswordHash(hex)
    }

    /// Wraps a `PS` value exactly as received or to be sent.
    pub fn from_wire(value: String) -> Self {
        PasswordHash(value)
    }

    /// The wire text. Only for putting it in a request body.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Compares two hashes, ignoring hex case, in time independent of where
    /// they differ.
    pub fn matches(&self, other: &PasswordHash) -> bool {
        let (a, b) = (self.0.as_bytes(), other.0.as_bytes());
        a.len() == b.len()
            && a.iter().zip(b).fold(0u8, |acc, (x, y)| {
                acc | (x.to_ascii_lowercase() ^ y.to_ascii_lowercase())
            }) == 0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_the_worked_example_and_is_redacted() {
        let hash = PasswordHash::from_password("secret");
        assert_eq!(hash.expose(), "5ebe2294ecd0e0f08eab7690d2a6ee69");
        assert!(hash.matches(&PasswordHash::from_wire(
            "5EBE2294ECD0E0F08EAB7690D2A6EE69".into()
        )));
        assert!(!hash.matches(&PasswordHash::from_password("demo")));
        assert!(!format!("{hash:?}").contains("5ebe"));
    }
}
