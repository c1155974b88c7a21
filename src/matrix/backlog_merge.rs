//! Merging a room queue's backlog: when the homeserver is slower than the
//! chat (Synapse persists one event per ~25 ms of its CPU when a room's
//! events come one after another), the plain lines one ghost has waiting
//! back to back in a room's queue go out as one multi-line event instead
//! of one event each. A queue that is not behind holds one item, so an
//! idle room sees no change and no added delay. After sending a merge the
//! queue waits `merge_linger_ms` before reading again: Synapse's cost is
//! per event far more than per line (~23 ms of CPU for one line or 256),
//! so a room that sends each small merge as soon as the last is through
//! keeps the homeserver busy with events that fuller ones would save.
//!
//! Exactly-once still holds because the merge is written to the store
//! (the head item rewritten, the absorbed ones removed, one transaction)
//! before the merged event is sent under the head's transaction id, and
//! only items that no earlier attempt can have handed to the homeserver
//! are merged: not attempted, queued by this process (ids from the
//! `floor` up), and not a merge already (whose transaction id is taken).

use serde_json::{Map, Value};

use crate::core::text::escape_html;
use crate::store::OutboxItem;

use super::room_queue::RoomOp;

/// The merged text and its HTML version together stay at this size, so
/// the event (JSON escaping included) is well inside Matrix's 64 KiB limit.
pub const MAX_MERGED_BYTES: usize = 24 * 1024;

const HTML_FORMAT: &str = "org.matrix.custom.html";

/// A planned merge: the head item becomes `op`; `absorbed` (the items
/// right after it, in order) disappear into it.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub keep: i64,
    pub absorbed: Vec<i64>,
    pub op: RoomOp,
}

/// A line that may take part in a merge.
struct Line {
    sender: String,
    msgtype: String,
    body: String,
    html: Option<String>,
    /// Bytes it adds to a merge: the body and its HTML (escaped when the
    /// line has none), as if the merge were sent with HTML.
    bytes: usize,
}

/// Plain text or notice content with nothing else that a merge would lose
/// (no reply, edit, mentions or media).
fn line_of(item: &OutboxItem) -> Option<Line> {
    if item.attempts > 0 {
        return None;
    }
    let RoomOp::Send {
        sender,
        event_type,
        content,
    } = serde_json::from_str::<RoomOp>(&item.payload).ok()?
    else {
        return None;
    };
    if event_type != "m.room.message" {
        return None;
    }
    let fields = content.as_object()?;
    let msgtype = fields.get("msgtype")?.as_str()?;
    if !matches!(msgtype, "m.text" | "m.notice") {
        return None;
    }
    let body = fields.get("body")?.as_str()?.to_owned();
    let html = match (fields.get("format"), fields.get("formatted_body")) {
        (None, None) => None,
        (Some(Value::String(f)), Some(Value::String(h))) if f == HTML_FORMAT => Some(h.clone()),
        _ => return None,
    };
    let known = ["msgtype", "body", "format", "formatted_body"];
    if fields.keys().any(|k| !known.contains(&k.as_str())) {
        return None;
    }
    let html_bytes = match &html {
        Some(h) => h.len(),
        None => escape_html(&body).len() + 3 * body.matches('\n').count(),
    };
    Some(Line {
        sender,
        msgtype: msgtype.to_owned(),
        bytes: body.len() + html_bytes,
        body,
        html,
    })
}

/// The merge to make at the head of `items` (a room queue's pending items
/// in order), or `None` when the head goes out alone: fewer than two
/// mergeable lines of one sender and kind at the head, the head queued
/// before `floor` (by an earlier run of the bridge, which may have sent
/// it), or `max_lines` below 2.
pub fn plan(items: &[OutboxItem], floor: Option<i64>, max_lines: usize) -> Option<Merge> {
    let floor = floor?;
    let head = items.first()?;
    if max_lines < 2 || head.id < floor {
        return None;
    }
    let first = line_of(head)?;
    let mut lines = vec![first];
    let mut bytes = lines[0].bytes;
    let mut absorbed = Vec::new();
    for item in items.iter().skip(1).take(max_lines - 1) {
        let Some(line) = line_of(item) else { break };
        if line.sender != lines[0].sender || line.msgtype != lines[0].msgtype {
            break;
        }
        // A newline and a `<br>` between lines.
        bytes += 5 + line.bytes;
        if bytes > MAX_MERGED_BYTES {
            break;
        }
        absorbed.push(item.id);
        lines.push(line);
    }
    if absorbed.is_empty() {
        return None;
    }
    Some(Merge {
        keep: head.id,
        absorbed,
        op: merged_op(lines),
    })
}

/// Lines joined by newlines; when any of them has HTML, an HTML version
/// with the plain ones escaped and `<br>` between lines.
fn merged_op(lines: Vec<Line>) -> RoomOp {
    let body = lines
        .iter()
        .map(|l| l.body.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    let mut content = Map::new();
    content.insert("msgtype".into(), Value::String(lines[0].msgtype.clone()));
    content.insert("body".into(), Value::String(body));
    if lines.iter().any(|l| l.html.is_some()) {
        let html = lines
            .iter()
            .map(|l| match &l.html {
                Some(h) => h.clone(),
                None => escape_html(&l.body).replace('\n', "<br>"),
            })
            .collect::<Vec<_>>()
            .join("<br>");
        content.insert("format".into(), Value::String(HTML_FORMAT.into()));
        content.insert("formatted_body".into(), Value::String(html));
    }
    RoomOp::Merged {
        sender: lines[0].sender.clone(),
        lines: lines.len(),
        content: Value::Object(content),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn send(id: i64, sender: &str, content: Value) -> OutboxItem {
        let op = RoomOp::Send {
            sender: sender.into(),
            event_type: "m.room.message".into(),
            content,
        };
        OutboxItem {
            id,
            destination: "matrix:!r:hs".into(),
            lane: "!r:hs".into(),
            payload: serde_json::to_string(&op).unwrap(),
            attempts: 0,
            last_error: None,
        }
    }

    fn text(id: i64, sender: &str, body: &str) -> OutboxItem {
        send(id, sender, json!({"msgtype": "m.text", "body": body}))
    }

    fn merged(m: &Merge) -> (String, Value) {
        match &m.op {
            RoomOp::Merged {
                sender, content, ..
            } => (sender.clone(), content.clone()),
            other => panic!("not a merge: {other:?}"),
        }
    }

    #[test]
    fn one_senders_plain_lines_at_the_head_become_one_event() {
        let items = [
            text(10, "@a:hs", "one"),
            text(11, "@a:hs", "two"),
            text(12, "@a:hs", "three"),
            text(13, "@b:hs", "other sender"),
            text(14, "@a:hs", "after"),
        ];
        let m = plan(&items, Some(1), 32).unwrap();
        assert_eq!(m.keep, 10);
        assert_eq!(m.absorbed, vec![11, 12]);
        let (sender, content) = merged(&m);
        assert_eq!(sender, "@a:hs");
        assert_eq!(
            content,
            json!({"msgtype": "m.text", "body": "one\ntwo\nthree"})
        );
    }

    #[test]
    fn html_lines_keep_their_markup_and_plain_ones_are_escaped() {
        let items = [
            text(10, "@a:hs", "a <b>\nc"),
            send(
                11,
                "@a:hs",
                json!({"msgtype": "m.text", "body": "bold", "format": HTML_FORMAT, "formatted_body": "<b>bold</b>"}),
            ),
        ];
        let (_, content) = merged(&plan(&items, Some(1), 32).unwrap());
        assert_eq!(content["body"], "a <b>\nc\nbold");
        assert_eq!(content["formatted_body"], "a &lt;b&gt;<br>c<br><b>bold</b>");
        assert_eq!(content["format"], HTML_FORMAT);
    }

    #[test]
    fn nothing_is_merged_that_may_have_been_sent_or_would_lose_meaning() {
        let pair = |a: OutboxItem, b: OutboxItem| plan(&[a, b], Some(10), 32);
        // The head came from an earlier run of the bridge.
        assert!(pair(text(9, "@a:hs", "x"), text(10, "@a:hs", "y")).is_none());
        // No floor yet: this process has queued nothing.
        assert!(plan(&[text(10, "@a:hs", "x"), text(11, "@a:hs", "y")], None, 32).is_none());
        // The head was attempted: the homeserver may have it.
        let mut tried = text(10, "@a:hs", "x");
        tried.attempts = 1;
        assert!(pair(tried, text(11, "@a:hs", "y")).is_none());
        // Different kinds, emotes, replies, extra keys, other events.
        let notice = send(11, "@a:hs", json!({"msgtype": "m.notice", "body": "n"}));
        assert!(pair(text(10, "@a:hs", "x"), notice).is_none());
        let emote = send(10, "@a:hs", json!({"msgtype": "m.emote", "body": "waves"}));
        assert!(pair(emote, text(11, "@a:hs", "y")).is_none());
        let reply = send(
            11,
            "@a:hs",
            json!({"msgtype": "m.text", "body": "r", "m.relates_to": {"m.in_reply_to": {"event_id": "$e"}}}),
        );
        assert!(pair(text(10, "@a:hs", "x"), reply).is_none());
        let member = OutboxItem {
            payload: serde_json::to_string(&RoomOp::Member {
                user: "@a:hs".into(),
                inviter: "@bot:hs".into(),
                displayname: None,
            })
            .unwrap(),
            ..text(11, "@a:hs", "")
        };
        assert!(pair(text(10, "@a:hs", "x"), member).is_none());
        // A merge is never extended: its transaction id may be used.
        let earlier = plan(
            &[text(10, "@a:hs", "x"), text(11, "@a:hs", "y")],
            Some(1),
            32,
        )
        .map(|m| OutboxItem {
            payload: serde_json::to_string(&m.op).unwrap(),
            ..text(10, "@a:hs", "")
        })
        .unwrap();
        assert!(pair(earlier, text(12, "@a:hs", "z")).is_none());
        // Merging switched off.
        assert!(plan(
            &[text(10, "@a:hs", "x"), text(11, "@a:hs", "y")],
            Some(1),
            1
        )
        .is_none());
    }

    #[test]
    fn a_merge_stops_at_its_line_and_size_limits() {
        let items: Vec<OutboxItem> = (0..10).map(|i| text(i, "@a:hs", "line")).collect();
        assert_eq!(plan(&items, Some(0), 4).unwrap().absorbed, vec![1, 2, 3]);
        // Each costs its body twice (text and HTML): two fit, three do not.
        let big = "x".repeat(MAX_MERGED_BYTES / 4 - 3);
        let items: Vec<OutboxItem> = (0..5).map(|i| text(i, "@a:hs", &big)).collect();
        assert_eq!(plan(&items, Some(0), 32).unwrap().absorbed, vec![1]);
        // Markup counts too: a line whose HTML is large merges with nothing.
        let heavy = send(
            1,
            "@a:hs",
            json!({"msgtype": "m.text", "body": "b", "format": HTML_FORMAT,
                   "formatted_body": "<i></i>".repeat(MAX_MERGED_BYTES / 7)}),
        );
        assert!(plan(&[text(0, "@a:hs", "a"), heavy], Some(0), 32).is_none());
    }

    proptest! {
        /// Whatever the queue holds, a merge takes a contiguous run right
        /// after the head, and its body is exactly their bodies in order.
        #[test]
        fn a_merge_is_the_heads_run_in_order(
            queue in proptest::collection::vec((0u8..3, 0u8..3, "[a-z<&]{0,12}"), 1..40),
            max_lines in 0usize..40,
        ) {
            let items: Vec<OutboxItem> = queue
                .iter()
                .enumerate()
                .map(|(i, (who, kind, body))| {
                    let sender = format!("@{who}:hs");
                    let content = match kind {
                        0 => json!({"msgtype": "m.text", "body": body}),
                        1 => json!({"msgtype": "m.notice", "body": body}),
                        _ => json!({"msgtype": "m.emote", "body": body}),
                    };
                    send(i as i64, &sender, content)
                })
                .collect();
            if let Some(m) = plan(&items, Some(0), max_lines) {
                prop_assert_eq!(m.keep, 0);
                let expected: Vec<i64> = (1..=m.absorbed.len() as i64).collect();
                prop_assert_eq!(&m.absorbed, &expected);
                prop_assert!(m.absorbed.len() < max_lines);
                let (sender, content) = merged(&m);
                let (who, kind, _) = &queue[0];
                prop_assert_eq!(sender, format!("@{who}:hs"));
                let bodies: Vec<&str> = queue[..=m.absorbed.len()]
                    .iter()
                    .map(|(w, k, b)| {
                        assert_eq!((w, k), (who, kind));
                        b.as_str()
                    })
                    .collect();
                let joined = bodies.join("\n");
                prop_assert_eq!(content["body"].as_str(), Some(joined.as_str()));
                // It stopped where the run of one sender and kind ends.
                if let Some((w, k, _)) = queue.get(m.absorbed.len() + 1) {
                    prop_assert!(w != who || k != kind || m.absorbed.len() + 1 == max_lines);
                }
            }
        }
    }
}
