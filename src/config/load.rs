//! Reading a config file: YAML parsing with errors that name the key and the
//! file line, `${ENV_VAR}` secrets, then cross-key validation.

use std::fmt;
use std::path::Path;

use super::{validate, Config};
use crate::secret::Secret;

/// A config problem, always pointing at the file (and line when known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: Option<usize>,
    /// Dotted key path, e.g. `matrix.appservice.as_token`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

pub(super) struct Source<'a> {
    pub name: &'a str,
    pub text: &'a str,
}

impl Source<'_> {
    pub(super) fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.name.to_owned(),
            line: locate_key(self.text, key),
            key: Some(key.to_owned()),
            message: message.into(),
        }
    }
}

/// Reads, parses and validates a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigError> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: name.clone(),
        line: None,
        key: None,
        message: format!("cannot read the file: {e}"),
    })?;
    load_str(&name, &text, &|var| std::env::var(var).ok())
}

/// Parses and validates config text; `env` resolves `${VAR}` secrets.
pub fn load_str(
    name: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let source = Source { name, text };
    let mut config: Config = serde_yaml::from_str(text).map_err(|e| yaml_error(&source, &e))?;
    resolve_secrets(&source, &mut config, env)?;
    validate::validate(&source, &config)?;
    Ok(config)
}

fn yaml_error(source: &Source<'_>, e: &serde_yaml::Error) -> ConfigError {
    // serde_yaml prefixes nested errors with the dotted path ("qq.simulator:
    // unknown field ..."); split it off so the key is reported separately.
    let raw = e.to_string();
    let without_location = match raw.rfind(" at line ") {
        Some(i) => raw[..i].to_owned(),
        None => raw.clone(),
    };
    let (key, message) = match without_location.split_once(": ") {
        Some((path, rest)) if is_key_path(path) => (Some(path.to_owned()), rest.to_owned()),
        _ => (None, without_location),
    };
    ConfigError {
        file: source.name.to_owned(),
        line: e.location().map(|l| l.line()),
        key,
        message,
    }
}

fn is_key_path(s: &str) -> bool {
    !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '.' | '[' | ']' | '*' | '"' | '@' | ':' | '-')
        })
}

/// Replaces secrets written as `${VAR}` with the environment's value, so that
/// tokens and passwords need not live in the file.
fn resolve_secrets(
    source: &Source<'_>,
    config: &mut Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let mut slots: Vec<(&str, &mut Option<Secret>)> = vec![
        ("irc.gateway.password", &mut config.irc.gateway.password),
        (
            "matrix.appservice.as_token",
            &mut config.matrix.appservice.as_token,
        ),
        (
            "matrix.appservice.hs_token",
            &mut config.matrix.appservice.hs_token,
        ),
    ];
    for (key, slot) in slots.iter_mut() {
        if let Some(secret) = slot.as_mut() {
            resolve_secret(source, key, secret, env)?;
        }
    }
    for (i, net) in config.irc.networks.iter_mut().enumerate() {
        if let Some(password) = net.password.as_mut() {
            resolve_secret(
                source,
                &format!("irc.networks[{i}].password"),
                password,
                env,
            )?;
        }
        if let Some(sasl) = net.sasl.as_mut() {
            let key = format!("irc.networks[{i}].sasl.password");
            resolve_secret(source, &key, &mut sasl.password, env)?;
        }
        if let Some(nickserv) = net.nickserv.as_mut() {
            let key = format!("irc.networks[{i}].nickserv.password");
            resolve_secret(source, &key, &mut nickserv.password, env)?;
        }
        for (r, relay) in net.relays.iter_mut().enumerate() {
            let key = format!("irc.networks[{i}].relays[{r}].password");
            resolve_secret(source, &key, &mut relay.password, env)?;
        }
    }
    if let Some(relay) = config.matrix.relay.as_mut() {
        resolve_secret(source, "matrix.relay.password", &mut relay.password, env)?;
    }
    if let Some(bot) = config.matrix.bot.as_mut() {
        for (key, slot) in [
            ("matrix.bot.password", &mut bot.password),
            ("matrix.bot.access_token", &mut bot.access_token),
            ("matrix.bot.store_passphrase", &mut bot.store_passphrase),
        ] {
            if let Some(secret) = slot.as_mut() {
                resolve_secret(source, key, secret, env)?;
            }
        }
    }
    Ok(())
}

/// Replaces one `${VAR}` secret with the environment's value.
fn resolve_secret(
    source: &Source<'_>,
    key: &str,
    secret: &mut Secret,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(), ConfigError> {
    let Some(var) = env_reference(secret.expose()) else {
        return Ok(());
    };
    match env(var) {
        Some(value) if !value.is_empty() => {
            *secret = Secret::new(value);
            Ok(())
        }
        _ => Err(source.error(
            key,
            format!("environment variable {var} is not set (the value refers to ${{{var}}})"),
        )),
    }
}

fn env_reference(value: &str) -> Option<&str> {
    let inner = value.strip_prefix("${")?.strip_suffix('}')?;
    let valid = !inner.is_empty() && inner.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then_some(inner)
}

/// Finds the 1-based line of a dotted key path in block-style YAML, so that
/// errors found after parsing still point into the file.
pub(super) fn locate_key(text: &str, path: &str) -> Option<usize> {
    let wanted: Vec<&str> = path.split('.').collect();
    // Stack of (indent, key) for the mapping keys enclosing the current line.
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut best: Option<(usize, usize)> = None; // (depth matched, line)
    for (index, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with('-') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        let Some((key, _)) = trimmed.split_once(':') else {
            continue;
        };
        let key = key
            .trim()
            .trim_matches(|c| c == '"' || c == '\'')
            .to_owned();
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        stack.push((indent, key));
        let depth = stack
            .iter()
            .zip(wanted.iter())
            .take_while(|((_, k), w)| k == *w)
            .count();
        if depth == stack.len() && depth > best.map_or(0, |(d, _)| d) {
            best = Some((depth, index + 1));
            if depth == wanted.len() {
                break;
            }
        }
    }
    best.map(|(_, line)| line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_keys() {
        let text = "qq:\n  server: x\n  simulator:\n    enabled: true\nmatrix:\n  enabled: true\n";
        assert_eq!(locate_key(text, "qq.simulator.enabled"), Some(4));
        assert_eq!(locate_key(text, "matrix.enabled"), Some(6));
        // A missing leaf points at its deepest existing parent.
        assert_eq!(locate_key(text, "qq.simulator.scenario"), Some(3));
        assert_eq!(locate_key(text, "irc.gateway"), None);
    }

    #[test]
    fn env_reference_form() {
        assert_eq!(env_reference("${AS_TOKEN}"), Some("AS_TOKEN"));
        assert_eq!(env_reference("$AS_TOKEN"), None);
        assert_eq!(env_reference("${}"), None);
        assert_eq!(env_reference("${A B}"), None);
    }
}
