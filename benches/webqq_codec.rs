//! Micro benchmarks of the WebQQ codec (README, Performance): a `poll2`
//! reply decoded and its message content turned into rich text (what the
//! client does per poll), the same reply encoded (what the simulator does),
//! and an outgoing message encoded into `send_buddy_msg2` content and back.
//!
//! `cargo bench --bench webqq_codec`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

use qqbridge::core::model::RichText;
use qqbridge::core::text::parse_plain;
use qqbridge::qq::webqq::content::{
    decode_send_content, encode_send_content, outgoing_elements, received_text, SendFont,
};
use qqbridge::qq::webqq::json::{parse_poll, BuddyMessage, PollEvent, PollReply};

fn message(i: u64) -> BuddyMessage {
    BuddyMessage {
        msg_id: 24_225 + i,
        from_uin: 3_901_234_567,
        to_uin: 1_685_359_365,
        msg_id2: 950_054 + i,
        msg_type: 9,
        reply_ip: 176_498_455,
        time: 1_388_368_696,
        content: vec![
            json!(["font", {"size": 10, "color": "000000", "style": [0, 0, 0], "name": "宋体"}]),
            json!("你好 "),
            json!(["face", 14]),
            json!(" a message of ordinary length, see http://example.com/x "),
        ],
    }
}

fn poll_body(messages: u64) -> String {
    let result: Vec<Value> = (0..messages)
        .map(|i| json!({"poll_type": "message", "value": message(i)}))
        .collect();
    json!({"retcode": 0, "result": result}).to_string()
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("webqq");
    for n in [1, 10] {
        let body = poll_body(n);
        group.bench_function(format!("poll2_decode/{n}_messages"), |b| {
            b.iter(|| {
                let Ok(PollReply::Events(events)) = parse_poll(black_box(&body)) else {
                    unreachable!("the sample is a valid poll reply")
                };
                let texts: Vec<RichText> = events
                    .iter()
                    .filter_map(|e| match e {
                        PollEvent::Message(m) => Some(received_text(&m.content)),
                        _ => None,
                    })
                    .collect();
                texts
            })
        });
        group.bench_function(format!("poll2_encode/{n}_messages"), |b| {
            b.iter(|| poll_body(black_box(n)))
        });
    }
    let rich = parse_plain("你好 [微笑] a message of ordinary length, see http://example.com/x");
    let font = SendFont::default();
    let content = encode_send_content(&outgoing_elements(&rich), &font);
    group.bench_function("send_content_encode", |b| {
        b.iter(|| encode_send_content(&outgoing_elements(black_box(&rich)), &font))
    });
    group.bench_function("send_content_decode", |b| {
        b.iter(|| decode_send_content(black_box(&content)))
    });
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
