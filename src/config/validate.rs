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
    if server.query().is_some() || server.fragment().is_some() {
        return Err(source.error(
            "qq.server",
            "must not have a query or a fragment (#…): every QQ path is appended to it",
        ));
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
    if config.qq.max_queued_per_user == 0 {
        return Err(source.error(
            "qq.max_queued_per_user",
            "must be at least 1, or nobody could send a message to QQ",
        ));
    }
    if config.qq.http11.poll_fast_ms == 0 {
        return Err(source.error("qq.http11.poll_fast_ms", "must be at least 1"));
    }
    super::networks::validate_networks(source, &config.irc.networks)?;
    if config.matrix.enabled {
        validate_matrix(source, config)?;
    }
    if !config.irc.gateway.enabled && !config.matrix.enabled && config.irc.networks.is_empty() {
        return Err(source.error(
            "irc.gateway.enabled",
            "no chat side is enabled: enable irc.gateway or matrix, or configure irc.networks, \
             or the bridge has nowhere to relay",
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
    if config.irc.gateway.max_clients_per_ip == 0 {
        return Err(source.error("irc.gateway.max_clients_per_ip", "must be at least 1"));
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
    if appservice.merge_backlog_lines > super::MAX_MERGE_BACKLOG_LINES {
        return Err(source.error(
            "matrix.appservice.merge_backlog_lines",
            format!(
                "at most {} (a merged event also stops at 24 KiB of text)",
                super::MAX_MERGE_BACKLOG_LINES
            ),
        ));
    }
    if appservice.merge_linger_ms > super::MAX_MERGE_LINGER_MS {
        return Err(source.error(
            "matrix.appservice.merge_linger_ms",
            format!("at most {} (ms)", super::MAX_MERGE_LINGER_MS),
        ));
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

fn validate_matrix(source: &Source<'_>, config: &Config) -> Result<(), ConfigError> {
    let matrix = &config.matrix;
    if !cfg!(feature = "matrix") {
        return Err(source.error(
            "matrix.enabled",
            "this qqbridge was built without the Matrix side (cargo feature \"matrix\"); \
             set it to false or use a build with it",
        ));
    }
    let http_url = |key: &str, value: &str| -> Result<reqwest::Url, ConfigError> {
        let url = reqwest::Url::parse(value)
            .map_err(|e| source.error(key, format!("not a URL ({e})")))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(source.error(key, "must be an http:// or https:// URL"));
        }
        Ok(url)
    };
    http_url("matrix.homeserver_url", &matrix.homeserver_url)?;
    if matrix.mode == super::MatrixMode::Bot {
        return validate_bot(source, config);
    }
    let appservice = &matrix.appservice;
    http_url("matrix.appservice.url", &appservice.url)?;
    if let Some(public) = &appservice.public_url {
        http_url("matrix.appservice.public_url", public)?;
    }
    let domain = &matrix.domain;
    if domain.is_empty()
        || !domain
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
    {
        return Err(source.error(
            "matrix.domain",
            "must be the homeserver's server name (e.g. example.org)",
        ));
    }
    if appservice.id.is_empty() || appservice.id.chars().any(char::is_whitespace) {
        return Err(source.error("matrix.appservice.id", "must be a word without spaces"));
    }
    let explicit = |t: &Option<crate::secret::Secret>| {
        t.as_ref()
            .filter(|t| !t.is_empty() && t.expose() != "generate")
            .map(|t| t.expose().to_owned())
    };
    if let (Some(a), Some(h)) = (
        explicit(&appservice.as_token),
        explicit(&appservice.hs_token),
    ) {
        if a == h {
            return Err(source.error(
                "matrix.appservice.hs_token",
                "must differ from as_token (the homeserver and the bridge prove different things)",
            ));
        }
    }
    for (key, token) in [
        ("matrix.appservice.as_token", &appservice.as_token),
        ("matrix.appservice.hs_token", &appservice.hs_token),
    ] {
        if let Some(t) = explicit(token) {
            if t.len() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(source.error(
                    key,
                    "must be at least 16 characters without spaces (or \"generate\")",
                ));
            }
        }
    }
    if appservice.max_transaction_bytes < 64 * 1024 {
        return Err(source.error(
            "matrix.appservice.max_transaction_bytes",
            "must be at least 65536 (one Matrix event may be 64 KiB)",
        ));
    }
    if !matrix.displayname_template.contains("{nick}")
        && !matrix.displayname_template.contains("{uin}")
    {
        return Err(source.error(
            "matrix.displayname_template",
            "must contain {nick} or {uin}, or every ghost would have the same name",
        ));
    }
    let prefix = matrix.command_prefix.trim();
    if prefix.is_empty() || prefix.contains(char::is_whitespace) {
        return Err(source.error("matrix.command_prefix", "must be one word, e.g. !qq"));
    }
    if config.irc.gateway.enabled && config.irc.gateway.listen == appservice.listen {
        return Err(source.error(
            "matrix.appservice.listen",
            "the appservice and the IRC gateway cannot listen on the same address",
        ));
    }
    if config.qq.simulator.enabled && config.qq.simulator.listen == appservice.listen {
        return Err(source.error(
            "matrix.appservice.listen",
            "the appservice and the QQ simulator cannot listen on the same address",
        ));
    }
    Ok(())
}

/// Bot mode: an account to log in with and a store for its keys. The
/// appservice keys are ignored in this mode.
fn validate_bot(source: &Source<'_>, config: &Config) -> Result<(), ConfigError> {
    let Some(bot) = &config.matrix.bot else {
        return Err(source.error(
            "matrix.mode",
            "bot mode needs a matrix.bot section (user_id, password or access_token, store_path)",
        ));
    };
    let user = &bot.user_id;
    let valid_user = user.starts_with('@')
        && user
            .split_once(':')
            .is_some_and(|(local, server)| local.len() > 1 && !server.is_empty())
        && !user.contains(char::is_whitespace);
    if !valid_user {
        return Err(source.error(
            "matrix.bot.user_id",
            "must be a full Matrix user id, e.g. @qqbot:example.org",
        ));
    }
    let set = |s: &Option<crate::secret::Secret>| s.as_ref().is_some_and(|s| !s.is_empty());
    for (key, value, file) in [
        (
            "matrix.bot.password",
            set(&bot.password),
            bot.password_file.is_some(),
        ),
        (
            "matrix.bot.access_token",
            set(&bot.access_token),
            bot.access_token_file.is_some(),
        ),
    ] {
        if value && file {
            return Err(source.error(key, format!("give either {key} or {key}_file, not both")));
        }
    }
    let has_password = set(&bot.password) || bot.password_file.is_some();
    let has_token = set(&bot.access_token) || bot.access_token_file.is_some();
    if !has_password && !has_token {
        return Err(source.error(
            "matrix.bot.user_id",
            "bot mode needs matrix.bot.password (or password_file) or access_token \
             (or access_token_file) to log in",
        ));
    }
    if bot.store_path.as_os_str().is_empty() {
        return Err(source.error(
            "matrix.bot.store_path",
            "must name a directory for the bot's state and encryption keys",
        ));
    }
    if bot.device_name.trim().is_empty() {
        return Err(source.error("matrix.bot.device_name", "must not be empty"));
    }
    let prefix = config.matrix.command_prefix.trim();
    if prefix.is_empty() || prefix.contains(char::is_whitespace) {
        return Err(source.error("matrix.command_prefix", "must be one word, e.g. !qq"));
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
