//! The simulator's WebQQ behaviour flags (webqq.md §10): where the sources
//! disagree or say nothing. Defaults follow the captured samples; timings
//! are protocol seconds, multiplied by the scenario's `time_scale`.
//!
//! ```yaml
//! webqq:
//!   captcha_policy: never        # always | "random(0.3)"; per-account `captcha` wins
//!   strict_referer: true         # API calls need a Referer on *.qq.com, else 103
//!   strict_cookies: true         # ptlogin and API calls need their cookies
//!   hash_variant: ecok           # password_error | quicksort | off; mismatch → {"retcode":50}
//!   poll_hold_s: 55              # then 102
//!   ptwebqq_rotate_s: ~          # e.g. 600: a poll answers 116 with a new ptwebqq
//!   reverse_poll_batches: true   # newest first
//!   append_trailing_space: true
//!   qplus_tip: false             # the Q+ Web advertisement on WebQQ senders' text
//!   duplicate_event_rate: 0.0    # chance an event is delivered twice
//!   session_idle_s: 120          # then 121 once, then 103
//!   alias_seed: ~                # a number makes aliases reproducible
//!   json_unicode_escape: channel_only   # everywhere | never
//!   verify_code_ttl_s: 600       # older verify codes: ptuiCB 4 with '2'
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// Whether a WebQQ login must read a captcha (accounts with a scenario
/// `captcha` code always must).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum CaptchaPolicy {
    #[default]
    Never,
    Always,
    /// With this probability per check.
    Random(f64),
}

impl fmt::Display for CaptchaPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptchaPolicy::Never => f.write_str("never"),
            CaptchaPolicy::Always => f.write_str("always"),
            CaptchaPolicy::Random(p) => write!(f, "random({p})"),
        }
    }
}

impl TryFrom<String> for CaptchaPolicy {
    type Error = String;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        let text = text.trim();
        match text {
            "never" => return Ok(CaptchaPolicy::Never),
            "always" => return Ok(CaptchaPolicy::Always),
            _ => {}
        }
        text.strip_prefix("random(")
            .and_then(|rest| rest.strip_suffix(')'))
            .and_then(|p| p.trim().parse::<f64>().ok())
            .filter(|p| (0.0..=1.0).contains(p))
            .map(CaptchaPolicy::Random)
            .ok_or_else(|| {
                "captcha_policy is never, always or random(p) with p between 0 and 1".to_owned()
            })
    }
}

impl Serialize for CaptchaPolicy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for CaptchaPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CaptchaPolicy::try_from(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Which friend-list hash `get_user_friends2` requires (webqq.md §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HashVariant {
    /// December 2013, 16 hex digits.
    #[default]
    Ecok,
    /// July 2013 and July 2014.
    PasswordError,
    /// August 2013 and May 2014.
    Quicksort,
    /// No hash is checked.
    Off,
}

/// Which replies escape every non-ASCII character as `\uXXXX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonUnicodeEscape {
    /// `d.web2` (channel) replies; `s.web2` sends raw UTF-8 (the samples).
    #[default]
    ChannelOnly,
    Everywhere,
    Never,
}

/// All WebQQ flags. Missing YAML keys take the defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebqqQuirks {
    pub captcha_policy: CaptchaPolicy,
    pub strict_referer: bool,
    pub strict_cookies: bool,
    pub hash_variant: HashVariant,
    pub poll_hold_s: f64,
    pub ptwebqq_rotate_s: Option<f64>,
    pub reverse_poll_batches: bool,
    pub append_trailing_space: bool,
    pub qplus_tip: bool,
    pub duplicate_event_rate: f64,
    pub session_idle_s: f64,
    pub alias_seed: Option<u64>,
    pub json_unicode_escape: JsonUnicodeEscape,
    pub verify_code_ttl_s: f64,
}

impl Default for WebqqQuirks {
    fn default() -> Self {
        WebqqQuirks {
            captcha_policy: CaptchaPolicy::Never,
            strict_referer: true,
            strict_cookies: true,
            hash_variant: HashVariant::Ecok,
            poll_hold_s: 55.0,
            ptwebqq_rotate_s: None,
            reverse_poll_batches: true,
            append_trailing_space: true,
            qplus_tip: false,
            duplicate_event_rate: 0.0,
            session_idle_s: 120.0,
            alias_seed: None,
            json_unicode_escape: JsonUnicodeEscape::ChannelOnly,
            verify_code_ttl_s: 600.0,
        }
    }
}

impl WebqqQuirks {
    /// Every problem with the values, each naming its flag.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let positive = [
            ("poll_hold_s", Some(self.poll_hold_s)),
            ("session_idle_s", Some(self.session_idle_s)),
            ("verify_code_ttl_s", Some(self.verify_code_ttl_s)),
            ("ptwebqq_rotate_s", self.ptwebqq_rotate_s),
        ];
        for (name, value) in positive {
            if let Some(value) = value.filter(|v| !(v.is_finite() && *v > 0.0)) {
                problems.push(format!(
                    "webqq.{name} must be a positive number of seconds, not {value}"
                ));
            }
        }
        // A poll held past the idle timeout would expire its own session.
        if self.poll_hold_s >= self.session_idle_s {
            problems.push(format!(
                "webqq.poll_hold_s must be shorter than webqq.session_idle_s ({} >= {})",
                self.poll_hold_s, self.session_idle_s
            ));
        }
        if !(0.0..=1.0).contains(&self.duplicate_event_rate) {
            problems.push(format!(
                "webqq.duplicate_event_rate is a probability between 0 and 1, not {}",
                self.duplicate_event_rate
            ));
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captcha_policy_reads_and_writes_its_three_forms() {
        for (text, policy) in [
            ("never", CaptchaPolicy::Never),
            ("always", CaptchaPolicy::Always),
            ("random(0.25)", CaptchaPolicy::Random(0.25)),
        ] {
            assert_eq!(CaptchaPolicy::try_from(text.to_owned()), Ok(policy));
            assert_eq!(policy.to_string(), text);
        }
        assert!(CaptchaPolicy::try_from("random(2)".to_owned()).is_err());
        assert!(CaptchaPolicy::try_from("sometimes".to_owned()).is_err());
    }

    #[test]
    fn bad_values_are_named() {
        let quirks = WebqqQuirks {
            poll_hold_s: 0.0,
            ptwebqq_rotate_s: Some(f64::NAN),
            duplicate_event_rate: 3.0,
            ..WebqqQuirks::default()
        };
        let text = quirks.problems().join("\n");
        for flag in ["poll_hold_s", "ptwebqq_rotate_s", "duplicate_event_rate"] {
            assert!(text.contains(flag), "{text}");
        }
        assert!(WebqqQuirks::default().problems().is_empty());
    }
}
