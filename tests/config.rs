//! Config loading: the example loads, and every class of bad config gives
//! one clear error naming the file, the line and the key.

use std::process::Command;

use qqbridge::config::{load_file, load_str, ConfigError};

const EXAMPLE: &str = include_str!("../bridge.example.yaml");

fn no_env(_: &str) -> Option<String> {
    None
}

fn load(text: &str) -> Result<qqbridge::config::Config, ConfigError> {
    load_str("test.yaml", text, &no_env)
}

fn err(text: &str) -> ConfigError {
    match load(text) {
        Ok(_) => panic!("config was accepted:\n{text}"),
        Err(e) => e,
    }
}

#[test]
fn example_file_loads_with_the_documented_defaults() {
    let c = load_file(std::path::Path::new("bridge.example.yaml")).expect("example loads");
    assert_eq!(c.qq.server, "http://127.0.0.1:8000");
    assert!(c.qq.simulator.enabled);
    assert!(c.irc.gateway.enabled);
    assert_eq!(c.irc.gateway.listen.to_string(), "127.0.0.1:6667");
    assert!(!c.matrix.enabled);
    assert_eq!(c.matrix.appservice.user_prefix, "_qq_");
    assert_eq!(c.database.to_str(), Some("qqbridge.db"));
    assert_eq!(c.qq.max_queued_per_user, 1000);
    assert_eq!(c.qq.http11.send_pacing_ms, 1100);
    assert_eq!(c.qq.http11.poll_fast_ms, 1000);
}

#[test]
fn a_zero_qq_queue_cap_is_refused() {
    let text = EXAMPLE.replace("max_queued_per_user: 1000", "max_queued_per_user: 0");
    let e = err(&text);
    assert_eq!(e.key.as_deref(), Some("qq.max_queued_per_user"), "{e}");
}

#[test]
fn unknown_key_names_key_and_line() {
    let text = EXAMPLE.replace(
        "    enabled: true\n    # Where the simulator",
        "    enable: true\n    # Where the simulator",
    );
    let e = err(&text);
    let line = text
        .lines()
        .position(|l| l.trim() == "enable: true")
        .map(|i| i + 1);
    assert_eq!(e.line, line, "{e}");
    assert_eq!(e.key.as_deref(), Some("qq.simulator"), "{e}");
    assert!(e.message.contains("unknown field `enable`"), "{e}");
    assert!(e.to_string().starts_with("test.yaml:"), "{e}");
}

#[test]
fn wrong_type_names_key_and_line() {
    let text = EXAMPLE.replace("grace_period_s: 600", "grace_period_s: soon");
    let e = err(&text);
    assert_eq!(e.key.as_deref(), Some("irc.gateway.grace_period_s"), "{e}");
    let line = text
        .lines()
        .position(|l| l.contains("grace_period_s: soon"))
        .map(|i| i + 1);
    assert_eq!(e.line, line, "{e}");
    assert!(e.message.contains("invalid type"), "{e}");
}

#[test]
fn bad_address_and_enum_values_are_rejected() {
    let e = err(&EXAMPLE.replace("listen: 127.0.0.1:6667", "listen: not-an-address"));
    assert_eq!(e.key.as_deref(), Some("irc.gateway.listen"), "{e}");
    let e = err(&EXAMPLE.replace("protocol: http11", "protocol: icq"));
    assert_eq!(e.key.as_deref(), Some("qq.protocol"), "{e}");
}

#[test]
fn missing_required_key() {
    let text = "qq:\n  protocol: http11\nirc:\n  gateway:\n    enabled: true\n";
    let e = err(text);
    assert!(e.message.contains("missing field `server`"), "{e}");
    assert_eq!(e.key.as_deref(), Some("qq"), "{e}");
}

#[test]
fn contradictory_settings_point_at_the_key() {
    let text = EXAMPLE.replace(
        "server: http://127.0.0.1:8000",
        "server: http://127.0.0.1:9000",
    );
    let e = err(&text);
    assert_eq!(e.key.as_deref(), Some("qq.server"));
    assert!(e.message.contains("embedded simulator"), "{e}");
    assert_eq!(
        e.line,
        text.lines()
            .position(|l| l.contains("server: http://127.0.0.1:9000"))
            .map(|i| i + 1)
    );

    for base in ["http://127.0.0.1:8000/?x=1", "http://127.0.0.1:8000/#top"] {
        let e = err(&EXAMPLE.replace(
            "server: http://127.0.0.1:8000",
            &format!("server: \"{base}\""),
        ));
        assert_eq!(e.key.as_deref(), Some("qq.server"), "{e}");
        assert!(e.message.contains("query or a fragment"), "{e}");
    }

    let e = err(&EXAMPLE.replace("control_listen: null", "control_listen: 0.0.0.0:8001"));
    assert_eq!(e.key.as_deref(), Some("qq.simulator.control_listen"));

    let e = err(&EXAMPLE.replace("  gateway:\n    # The built-in IRC server: connect any IRC client to it.\n    enabled: true", "  gateway:\n    enabled: false"));
    assert!(e.message.contains("no chat side"), "{e}");

    let e = err(&EXAMPLE.replace("listen: 127.0.0.1:6667", "listen: 127.0.0.1:8000"));
    assert_eq!(e.key.as_deref(), Some("irc.gateway.listen"));

    let e = err(&EXAMPLE.replace("networks: []", "networks: [{name: libera}]"));
    assert_eq!(e.key.as_deref(), Some("irc.networks[0]"), "{e}");
    assert!(e.message.contains("missing field `host`"), "{e}");

    let e = err(&EXAMPLE.replace("user_prefix: _qq_", "user_prefix: \"Bad Prefix\""));
    assert_eq!(e.key.as_deref(), Some("matrix.appservice.user_prefix"));

    let e = err(&EXAMPLE.replace("merge_backlog_lines: 256", "merge_backlog_lines: 1001"));
    assert_eq!(
        e.key.as_deref(),
        Some("matrix.appservice.merge_backlog_lines"),
        "{e}"
    );
    assert!(e.message.contains("at most 1000"), "{e}");
    let most = load(&EXAMPLE.replace("merge_backlog_lines: 256", "merge_backlog_lines: 1000"));
    assert_eq!(
        most.map(|c| c.matrix.appservice.merge_backlog_lines).ok(),
        Some(1000)
    );
    let e = err(&EXAMPLE.replace("merge_linger_ms: 100", "merge_linger_ms: 2001"));
    assert_eq!(
        e.key.as_deref(),
        Some("matrix.appservice.merge_linger_ms"),
        "{e}"
    );

    let e = err(&EXAMPLE.replace("\"*\": user", "\"*\": superuser"));
    assert!(
        e.key
            .as_deref()
            .is_some_and(|k| k.starts_with("permissions")),
        "{e}"
    );
}

#[test]
fn secrets_come_from_the_environment_and_never_show_in_errors() {
    let text = EXAMPLE.replace("password: null", "password: \"${QQB_TEST_IRC_PASSWORD}\"");
    let e = err(&text);
    assert_eq!(e.key.as_deref(), Some("irc.gateway.password"));
    assert!(e.message.contains("QQB_TEST_IRC_PASSWORD"), "{e}");

    let env = |var: &str| (var == "QQB_TEST_IRC_PASSWORD").then(|| "s3cret-value".to_owned());
    let c = load_str("t.yaml", &text, &env).expect("loads with the variable set");
    assert!(!format!("{:?}", c.irc.gateway).contains("s3cret-value"));
    let password = c.irc.gateway.password.expect("password set");
    assert_eq!(password.expose(), "s3cret-value");

    let literal = EXAMPLE.replace("password: null", "password: hunter2\n    grace_period_s: x");
    let e = err(&literal.replace("    grace_period_s: 600\n", ""));
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

#[test]
fn check_config_cli_accepts_the_example_and_rejects_bad_files() {
    let bin = env!("CARGO_BIN_EXE_qqbridge");
    let ok = Command::new(bin)
        .args(["check-config", "--config", "bridge.example.yaml"])
        .output()
        .expect("runs");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, EXAMPLE.replace("scenario: null", "scenaro: null")).expect("write");
    let out = Command::new(bin)
        .args(["check-config", "--config"])
        .arg(&bad)
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.yaml:") && stderr.contains("unknown field `scenaro`"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    let missing = Command::new(bin)
        .args(["check-config", "--config", "/nonexistent/bridge.yaml"])
        .output()
        .expect("runs");
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read the file"));
}

/// `matrix.mode: bot` with the given `bot:` section (indented by 4).
fn bot_mode(bot: &str) -> String {
    EXAMPLE
        .replace(
            "  enabled: false\n  # appservice | bot",
            "  enabled: true\n  # appservice | bot",
        )
        .replace("  mode: appservice", &format!("  mode: bot\n  bot:\n{bot}"))
}

#[test]
fn bot_mode_loads_with_secrets_from_env_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "syt_from_file\n").unwrap();
    let text = bot_mode(&format!(
        "    user_id: \"@qqbot:example.org\"\n    password: \"${{QQB_TEST_BOT_PW}}\"\n    store_path: {}\n",
        dir.path().join("store").display()
    ));
    let env = |var: &str| (var == "QQB_TEST_BOT_PW").then(|| "bot-s3cret".to_owned());
    let c = load_str("t.yaml", &text, &env).expect("bot mode loads");
    assert_eq!(c.matrix.mode, qqbridge::config::MatrixMode::Bot);
    let bot = c.matrix.bot.clone().expect("bot section");
    assert_eq!(bot.password().unwrap().unwrap().expose(), "bot-s3cret");
    assert!(bot.encrypt_portals, "encrypted portals by default");
    assert_eq!(
        bot.presence_display,
        qqbridge::config::PresenceDisplay::Notice
    );
    assert!(!format!("{c:?}").contains("bot-s3cret"));

    let text = bot_mode(&format!(
        "    user_id: \"@qqbot:example.org\"\n    access_token_file: {}\n    presence_display: topic\n    encrypt_portals: false\n",
        token_file.display()
    ));
    let c = load(&text).expect("token file loads");
    let bot = c.matrix.bot.unwrap();
    assert_eq!(
        bot.access_token().unwrap().unwrap().expose(),
        "syt_from_file"
    );
    assert!(bot.password().unwrap().is_none());
    assert!(!bot.encrypt_portals);
}

#[test]
fn bot_mode_errors_name_the_key() {
    let e = err(&bot_mode("    device_name: x\n").replace("  bot:\n    device_name: x\n", ""));
    assert_eq!(e.key.as_deref(), Some("matrix.mode"), "{e}");
    assert!(e.message.contains("matrix.bot"), "{e}");

    let e = err(&bot_mode("    user_id: qqbot\n    password: pw\n"));
    assert_eq!(e.key.as_deref(), Some("matrix.bot.user_id"), "{e}");

    let e = err(&bot_mode("    user_id: \"@qqbot:example.org\"\n"));
    assert!(e.message.contains("password"), "{e}");

    let e = err(&bot_mode(
        "    user_id: \"@qqbot:example.org\"\n    password: hunter2\n    password_file: /x\n",
    ));
    assert_eq!(e.key.as_deref(), Some("matrix.bot.password"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");

    let e = err(&bot_mode(
        "    user_id: \"@qqbot:example.org\"\n    password: pw\n    presence_display: loud\n",
    ));
    assert!(e.to_string().contains("presence_display"), "{e}");
}
