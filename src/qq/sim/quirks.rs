//! The simulator's HTTP QQ 1.1 behaviour flags (http11.md §10), where the
//! sources disagree or say nothing, plus the rate-limit numbers of §6.8 and
//! §6.10. Defaults follow the captured samples; every timing is in protocol
//! seconds and is multiplied by the scenario's `time_scale`.

use serde::{Deserialize, Serialize};

use super::session::ReloginPolicy;
use crate::qq::http11::codec::{AmpProfile, DenyCode, LoginEcho, ReplyStyle};

/// What a NULL answer looks like on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NullMode {
    /// Close the connection without writing a byte.
    #[default]
    Close,
    /// `HTTP/1.1 200 OK` with an empty body.
    #[serde(rename = "empty_200")]
    Empty200,
}

/// All flags. Missing YAML keys take the defaults below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quirks {
    /// `Login` (\[003\], 2010 capture) or `LOGIN` (\[001\]).
    pub login_cmd_echo: LoginEcho,
    /// Append `&COMP=<comp_value>` to a successful login (2010 capture).
    pub emit_comp: bool,
    pub comp_value: String,
    /// AddToList `CD` for "refuses everybody": 3 (\[003\]) or 2 (\[001\]).
    pub addtolist_deny_code: DenyCode,
    /// Trailing `&` habits of seed `"001"` or `"003"`.
    pub trailing_amp_profile: AmpProfile,
    /// `MG=30 ` instead of `MG=30` in status messages (\[003\]).
    pub sysmsg_trailing_space: bool,
    pub null_mode: NullMode,
    /// `LI`: seconds without a request before a session expires.
    pub session_idle_timeout_s: u32,
    /// `HI` reported at login.
    pub heartbeat_interval_s: u32,
    /// Delay of a `RES=3` reply.
    pub res3_delay_s: f64,
    /// Delay of DelFromList's `RES=3` reply.
    pub delfromlist_res3_delay_s: f64,
    /// The first of two Ack_AddToList `CD=2` gets a delayed `RES=3`.
    pub ack_double_send: bool,
    /// How close together the two halves of the double send must be.
    pub ack_double_send_window_s: f64,
    /// Drop messages to someone who neither lists the sender nor wrote to them.
    pub hide_stranger_messages: bool,
    /// Probability of NULL for a CLTMSG whose text contains a lowercase `h`.
    pub null_on_lowercase_h: f64,
    pub relogin_while_online: ReloginPolicy,
    /// Bytes between the two replies of the Query_Stat double reply.
    pub double_reply_separator: String,
    /// A CLTMSG sooner than this after the previous one is a penalty.
    pub cltmsg_min_interval_s: f64,
    /// More than this many Change_Stat within the window is a penalty.
    pub change_stat_limit: u32,
    pub change_stat_window_s: f64,
    /// List the requester itself in Query_Stat when it is online (\[003\]).
    pub query_stat_include_self: bool,
}

impl Default for Quirks {
    fn default() -> Self {
        Quirks {
            login_cmd_echo: LoginEcho::MixedCase,
            emit_comp: false,
            comp_value: "NOKIA8F3A18D6E27".to_owned(),
            addtolist_deny_code: DenyCode::Three,
            trailing_amp_profile: AmpProfile::Seed001,
            sysmsg_trailing_space: false,
            null_mode: NullMode::Close,
            session_idle_timeout_s: 300,
            heartbeat_interval_s: 60,
            res3_delay_s: 20.0,
            delfromlist_res3_delay_s: 30.0,
            ack_double_send: true,
            ack_double_send_window_s: 60.0,
            hide_stranger_messages: false,
            null_on_lowercase_h: 0.0,
            relogin_while_online: ReloginPolicy::Replace,
            double_reply_separator: "\r\n".to_owned(),
            cltmsg_min_interval_s: 1.0,
            change_stat_limit: 3,
            change_stat_window_s: 10.0,
            query_stat_include_self: true,
        }
    }
}

impl Quirks {
    /// The codec's spelling choices these flags select.
    pub fn reply_style(&self) -> ReplyStyle {
        ReplyStyle {
            login_echo: self.login_cmd_echo,
            trailing_amp: self.trailing_amp_profile,
            sysmsg_trailing_space: self.sysmsg_trailing_space,
        }
    }

    /// Every problem with the values, each naming its flag.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let durations = [
            ("res3_delay_s", self.res3_delay_s),
            ("delfromlist_res3_delay_s", self.delfromlist_res3_delay_s),
            ("ack_double_send_window_s", self.ack_double_send_window_s),
            ("cltmsg_min_interval_s", self.cltmsg_min_interval_s),
            ("change_stat_window_s", self.change_stat_window_s),
        ];
        for (name, value) in durations {
            if !(value.is_finite() && value >= 0.0) {
                problems.push(format!(
                    "quirks.{name} must be a number of seconds >= 0, not {value}"
                ));
            }
        }
        if self.session_idle_timeout_s == 0 {
            problems.push("quirks.session_idle_timeout_s must be at least 1".to_owned());
        }
        if !(0.0..=1.0).contains(&self.null_on_lowercase_h) {
            problems.push(format!(
                "quirks.null_on_lowercase_h is a probability between 0 and 1, not {}",
                self.null_on_lowercase_h
            ));
        }
        if self.double_reply_separator.len() > 4
            || !self
                .double_reply_separator
                .chars()
                .all(|c| c == '\r' || c == '\n')
        {
            problems.push(
                "quirks.double_reply_separator may only hold CR and LF (e.g. \"\\r\\n\" or \"\")"
                    .to_owned(),
            );
        }
        problems
    }
}
