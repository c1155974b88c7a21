//! Appservice transaction bodies, as the homeserver PUTs them: parsing
//! (deep nesting, huge numbers, duplicate keys), the events stored and the
//! exactly-once key; then the parts of each event the bridge reads,
//! including `formatted_body` through the Matrix HTML parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qqbridge::core::text::{matrix_user_id_from_link, parse_matrix_html};
use qqbridge::matrix_txn::parse_transaction;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(body) = parse_transaction(data) else {
        return;
    };
    let timeline = body.events.len();
    let expected = timeline
        + if body.ephemeral.is_empty() {
            body.ephemeral_unstable.len()
        } else {
            body.ephemeral.len()
        };
    let Ok(stored) = body.into_stored("txn1") else {
        return;
    };
    assert_eq!(stored.events.len(), expected);
    assert!(stored.key.starts_with("txn1 "));
    for (index, (kind, json)) in stored.events.iter().enumerate() {
        assert_eq!(
            kind,
            if index < timeline {
                "timeline"
            } else {
                "ephemeral"
            }
        );
        // What is stored reads back (the queue worker parses it again).
        let event: Value = serde_json::from_str(json).expect("stored event re-parses");
        read_event(&event);
    }
});

/// What `matrix::inbound` reads from an event.
fn read_event(event: &Value) {
    let _ = event.get("type").and_then(Value::as_str);
    let _ = event.get("sender").and_then(Value::as_str);
    let _ = event.get("room_id").and_then(Value::as_str);
    let _ = event.get("state_key").and_then(Value::as_str);
    let Some(content) = event.get("content") else {
        return;
    };
    let _ = content.get("membership").and_then(Value::as_str);
    let _ = content.get("body").and_then(Value::as_str);
    if let Some(html) = content.get("formatted_body").and_then(Value::as_str) {
        let resolve = |user: &str| Some((None, user.to_owned()));
        let _ = parse_matrix_html(html, &resolve);
        let _ = matrix_user_id_from_link(html);
    }
}
