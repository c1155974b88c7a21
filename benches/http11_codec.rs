//! Micro benchmarks of the HTTP QQ 1.1 codec (README, Performance): decode
//! and encode of the requests and replies a session exchanges most (login,
//! the GetMsgEx poll, CLTMSG) and of a 20-friend Query_Stat.
//!
//! `cargo bench --bench http11_codec`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use qqbridge::qq::http11::codec::{
    Command, LoginReply, MsgEntry, OnlineFriend, Params, PasswordHash, QueryStatReply, Reply,
    ReplyBody, ReplyStyle, Request, Status,
};

const UIN: u64 = 300_000;

fn requests() -> Vec<(&'static str, Request)> {
    vec![
        (
            "login",
            Request::new(
                "1",
                UIN,
                Params::Login {
                    password: PasswordHash::from_password("scale"),
                    m5: Some("1".to_owned()),
                },
            ),
        ),
        ("getmsgex", Request::new("2", UIN, Params::GetMsgEx)),
        (
            "cltmsg",
            Request::new(
                "3",
                UIN,
                Params::CltMsg {
                    to: UIN + 1,
                    text: "你好, a message of ordinary length & some punctuation: 100% =)"
                        .to_owned(),
                },
            ),
        ),
    ]
}

fn replies() -> Vec<(&'static str, Reply)> {
    let messages = (0..5)
        .map(|i| MsgEntry::User {
            from: UIN + i,
            text: format!("message {i}: 你好, with some text & symbols, 100%"),
        })
        .chain((0..5).map(|i| MsgEntry::Status {
            from: UIN + 10 + i,
            status: Status::Online,
        }))
        .collect();
    let online = (0..20)
        .map(|i| OnlineFriend {
            face: 0,
            status: Status::Online,
            uin: UIN + 1 + i,
            nick: format!("load{}", UIN + 1 + i),
        })
        .collect();
    vec![
        (
            "login",
            Reply::new(
                Command::Login,
                "1",
                UIN,
                ReplyBody::Login(LoginReply::Success {
                    heartbeat_s: 60,
                    idle_timeout_s: 300,
                    comp: None,
                }),
            ),
        ),
        (
            "getmsgex_empty",
            Reply::new(Command::GetMsgEx, "2", UIN, ReplyBody::Messages(Vec::new())),
        ),
        (
            "getmsgex_10",
            Reply::new(Command::GetMsgEx, "2", UIN, ReplyBody::Messages(messages)),
        ),
        (
            "query_stat_20",
            Reply::new(
                Command::QueryStat,
                "4",
                UIN,
                ReplyBody::QueryStat(QueryStatReply::Online(online)),
            ),
        ),
        (
            "cltmsg_done",
            Reply::new(Command::CltMsg, "3", UIN, ReplyBody::Done),
        ),
    ]
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("http11_request");
    for (name, request) in requests() {
        let wire = request.encode();
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| black_box(&request).encode())
        });
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| Request::decode(black_box(wire.as_bytes())))
        });
    }
    group.finish();

    let style = ReplyStyle::default();
    let mut group = c.benchmark_group("http11_reply");
    for (name, reply) in replies() {
        let wire = reply.encode(&style);
        group.throughput(Throughput::Bytes(wire.len() as u64));
        group.bench_function(format!("encode/{name}"), |b| {
            b.iter(|| black_box(&reply).encode(&style))
        });
        group.bench_function(format!("decode/{name}"), |b| {
            b.iter(|| Reply::decode(black_box(wire.as_bytes())))
        });
    }
    group.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
