//! Checks that span several keys or need more than a type: contradictory
//! settings, addresses that must be loopback, features not in this build.

use std::net::{IpAddr, SocketAddr};

use super::load::{ConfigError, Source};
use super::Config;

pub(super) fn validate(source: &Source<'_>, config: &Config) -> Result<(), ConfigError> {
    if config.database.as_os_str().is_empty() {
        return Err(source.error("database", "must name a SQLite file"));
    }
    let server = reqwest::Url::parse(&config.qq.server)
        .map_err(|e| source.error("qq.server", format!("not a URL ({e})")))?;
    if server.scheme() != "http" && server.scheme() != "https" {
        return Err(source.error("qq.server", "must be an http:// or https:// URL"));
    }
    let sim = &config.qq.simulator;
    if sim.enabled && !url_reaches(&server, sim.listen) {
        return Err(source.error(
            "qq.server",
            format!(
                "points at {} but the embedded simulator (qq.simulator.enabled) listens on {}; \
                 the bridge would not use its own simulator",
                config.qq.server, sim.listen
            ),
        ));
    }
    if let Some(control) = sim.control_listen {
        if !control.ip().is_loopback() {
            return Err(source.error(
                "qq.simulator.control_listen",
                "the simulator's control API must listen on a loopback address",
            ));
        }
    }
    if !config.irc.networks.is_empty() {
        return Err(source.error(
            "irc.networks",
            "IRC network connections are not available in this build yet; leave the list empty",
        ));
    }
    if config.matrix.enabled {
        return Err(source.error(
            "matrix.enabled",
            "the Matrix side is not available in this build yet; set it to false",
        ));
    }
    if !config.irc.gateway.enabled && !config.matrix.enabled {
        return Err(source.error(
            "irc.gateway.enabled",
            "no chat side is enabled: enable irc.gateway or matrix, or the bridge has nowhere to relay",
        ));
    }
    if config.irc.gateway.enabled && sim.enabled && config.irc.gateway.listen == sim.listen {
        return Err(source.error(
            "irc.gateway.listen",
            "the IRC gateway and the QQ simulator cannot listen on the same address",
        ));
    }
    if config.irc.gateway.max_clients == 0 {
        return Err(source.error("irc.gateway.max_clients", "must be at least 1"));
    }
    let appservice = &config.matrix.appservice;
    for (key, value) in [
        ("matrix.appservice.user_prefix", &appservice.user_prefix),
        ("matrix.appservice.alias_prefix", &appservice.alias_prefix),
        (
            "matrix.appservice.sender_localpart",
            &appservice.sender_localpart,
        ),
    ] {
        if value.is_empty() || !value.chars().all(is_localpart_char) {
            return Err(source.error(key, "must be non-empty and use only a-z, 0-9 and . _ = - /"));
        }
    }
    for key in config.permissions.keys() {
        let valid = key == "*"
            || (key.starts_with('@') && key.contains(':'))
            || (!key.is_empty() && !key.contains(char::is_whitespace) && !key.starts_with('@'));
        if !valid {
            return Err(source.error(
                "permissions",
                format!("{key:?} is not \"*\", a server name or a @user:server id"),
            ));
        }
    }
    Ok(())
}

fn is_localpart_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '=' | '-' | '/')
}

/// Whether a client using `url` reaches a server listening on `listen`.
fn url_reaches(url: &reqwest::Url, listen: SocketAddr) -> bool {
    if url.port_or_known_default() != Some(listen.port()) {
        return false;
    }
    if listen.ip().is_unspecified() {
        return true;
    }
    match url.host_str() {
        Some("localhost") => listen.ip().is_loopback(),
        Some(host) => host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip == listen.ip()),
        None => false,
    }
}
