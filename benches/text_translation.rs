//! Micro benchmarks of the one text path, `core::text`, per message
//! (README, Performance), and of the command parser:
//! QQ wire → Matrix (body + HTML), Matrix HTML → QQ, QQ → IRC lines
//! (including splitting a long message), IRC → QQ.
//!
//! `cargo bench --bench text_translation`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};

use qqbridge::core::command;
use qqbridge::core::model::{Segment, Uin};
use qqbridge::core::text::{
    clean_qq_wire, irc_payload_budget, parse_irc, parse_matrix_html, parse_plain, render_irc_lines,
    render_matrix, render_plain, FaceStyle, ResolveUser,
};

/// An ordinary QQ message as it comes off the wire (trailing space, `\r`).
const QQ_WIRE: &str =
    "你好 [微笑] see http://example.com/page?a=1&b=2 <b>not html</b>\rsecond line ";
const MATRIX_HTML: &str =
    "Hello <b>there</b> <a href=\"https://matrix.to/#/@_qq_10002:localhost\">微程</a>, \
     see <a href=\"http://example.com\">this</a><br>and 😊 <code>x &lt; y</code>";
const IRC_LINE: &str = "\x02bold\x02 and \x0304red\x03 text with :) and https://example.com/x";

fn text(c: &mut Criterion) {
    let mut group = c.benchmark_group("text");
    let budget = irc_payload_budget(":load300001!load300001@qq.qqbridge".len(), "u300000".len());
    let long = QQ_WIRE.repeat(40); // ~3.5 KiB: several IRC lines
    let mention = |segment: &Segment| match segment {
        Segment::Mention {
            uin: Some(uin),
            name,
        } => Some((
            format!("https://matrix.to/#/@_qq_{uin}:localhost"),
            name.clone(),
        )),
        _ => None,
    };
    let resolve: &ResolveUser = &|id: &str| {
        id.strip_prefix("@_qq_")
            .and_then(|rest| rest.split(':').next())
            .and_then(|n| n.parse().ok())
            .map(|n| (Some(Uin(n)), "微程".to_owned()))
    };

    group.bench_function("qq_to_matrix", |b| {
        b.iter(|| render_matrix(&clean_qq_wire(parse_plain(black_box(QQ_WIRE))), &mention))
    });
    group.bench_function("matrix_html_to_qq", |b| {
        b.iter(|| {
            render_plain(
                &parse_matrix_html(black_box(MATRIX_HTML), resolve),
                FaceStyle::Name,
            )
        })
    });
    group.bench_function("qq_to_irc", |b| {
        b.iter(|| {
            render_irc_lines(
                &clean_qq_wire(parse_plain(black_box(QQ_WIRE))),
                FaceStyle::Emoji,
                budget,
            )
        })
    });
    group.bench_function("qq_to_irc_long_split", |b| {
        b.iter(|| {
            render_irc_lines(
                &clean_qq_wire(parse_plain(black_box(&long))),
                FaceStyle::Emoji,
                budget,
            )
        })
    });
    group.bench_function("irc_to_qq", |b| {
        b.iter(|| render_plain(&parse_irc(black_box(IRC_LINE)), FaceStyle::Name))
    });
    group.finish();

    let mut group = c.benchmark_group("command");
    for line in [
        "login 10001 s3cret webqq",
        "rename 10002 小企鹅",
        "help",
        "add 10005 hello there",
    ] {
        let name = line.split_whitespace().next().unwrap_or("empty");
        group.bench_function(format!("parse/{name}"), |b| {
            b.iter(|| command::parse(black_box(line)))
        });
    }
    group.finish();
}

criterion_group!(benches, text);
criterion_main!(benches);
