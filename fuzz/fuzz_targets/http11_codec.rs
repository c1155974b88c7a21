//! HTTP QQ 1.1, both directions: what the client decodes (HTTP replies,
//! reply bodies) and what the simulator decodes (request heads, request
//! bodies). Nothing may panic, and whatever decodes must survive
//! encode → decode unchanged, in every reply style.
#![no_main]

use libfuzzer_sys::fuzz_target;
use qqbridge::qq::http11::codec::{
    decode_answer, decode_reply_value, decode_request_value, http_head_len, http_reply,
    parse_http_replies, AmpProfile, LoginEcho, RawBody, Reply, ReplyStyle, Request, MAX_REPLY_BODY,
};

fn styles() -> impl Iterator<Item = ReplyStyle> {
    [LoginEcho::MixedCase, LoginEcho::UpperCase]
        .into_iter()
        .flat_map(|login_echo| {
            [AmpProfile::Seed001, AmpProfile::Seed003]
                .into_iter()
                .flat_map(move |trailing_amp| {
                    [false, true]
                        .into_iter()
                        .map(move |sysmsg_trailing_space| ReplyStyle {
                            login_echo,
                            trailing_amp,
                            sysmsg_trailing_space,
                        })
                })
        })
}

fuzz_target!(|data: &[u8]| {
    // Server side: a request head, then its body.
    if let Some(end) = http_head_len(data) {
        assert!(end <= data.len());
        let _ = qqbridge::fuzzing::sim_request_head(&data[..end]);
    }
    if let Ok(request) = Request::decode(data) {
        let wire = request.encode();
        assert_eq!(
            Request::decode(wire.as_bytes()),
            Ok(request),
            "request round trip: {wire:?}"
        );
    }

    // Client side: framing, then the body.
    if let Ok(replies) = parse_http_replies(data) {
        for reply in replies {
            let _ = decode_answer(&reply.body);
        }
    }
    let _ = decode_answer(data);
    if let Ok(reply) = Reply::decode(data) {
        for style in styles() {
            let wire = reply.encode(&style);
            assert_eq!(
                Reply::decode(wire.as_bytes()).as_ref(),
                Ok(&reply),
                "reply round trip in {style:?}: {wire:?}"
            );
            // Framed as the server sends it, the body comes back whole.
            let framed = parse_http_replies(&http_reply(&wire));
            let bodies: Option<Vec<Vec<u8>>> =
                framed.ok().map(|r| r.into_iter().map(|r| r.body).collect());
            assert_eq!(bodies, Some(vec![wire.clone().into_bytes()]));
        }
    }

    // The value escapes and the KEY=VALUE grammar on their own.
    let _ = decode_reply_value(data);
    let _ = decode_request_value(data);
    if let Ok(body) = RawBody::parse(data, MAX_REPLY_BODY) {
        for (key, _) in body.pairs() {
            assert!(body.has(key));
        }
    }
});
