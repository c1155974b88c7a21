//! The built-in IRC gateway against an in-memory fake QQ network, with the
//! `irc` crate's client as the user (and a raw line client for what a
//! library would never send): registration and numerics, login, the buddy
//! list, messages both ways, presence, friend requests, groups, reconnect
//! replay and the grace period, restarts, bad input, flood control, TLS and
//! password hygiene.

#[path = "support/gateway.rs"]
mod support;

use irc::proto::{Capability, Command, Message, Response};

use qqbridge::core::model::*;
use qqbridge::qq::{EndReason, QqError, QqEvent};

use support::*;

fn joined(m: &Message, nick: &str, channel: &str) -> bool {
    m.source_nickname() == Some(nick)
        && matches!(&m.command, Command::JOIN(c, _, _) if c == channel)
}

#[tokio::test]
async fn registration_sends_welcome_isupport_and_joins_the_control_channel() {
    let rig = Rig::start(test_config()).await;
    let mut alice = IrcUser::connect(rig.addr(), "alice").await;
    let isupport = alice
        .wait_for("ISUPPORT", |m| {
            matches!(m.command, Command::Response(Response::RPL_ISUPPORT, _))
        })
        .await;
    let tokens = numeric_args(&isupport).join(" ");
    for token in [
        "CHANTYPES=&#",
        "NICKLEN=30",
        "CHANNELLEN=50",
        "CASEMAPPING=rfc1459",
        "PREFIX=(ov)@+",
    ] {
        assert!(tokens.contains(token), "{token} missing from {tokens}");
    }
    alice
        .wait_for("JOIN &qq", |m| joined(m, "alice", "&qq"))
        .await;
    let names = alice
        .wait_for("NAMES", |m| {
            matches!(m.command, Command::Response(Response::RPL_NAMREPLY, _))
        })
        .await;
    let args = numeric_args(&names);
    assert_eq!(args[2], "&qq");
    assert!(args[3].split(' ').any(|n| n == "@qqbot"), "{args:?}");
    let hello = alice.bot_reply("greeting").await;
    assert!(hello.contains("/OPER"), "{hello}");
}

/// Consumes the bot's greeting to a new client.
async fn greeted(user: &mut IrcUser) {
    let last = user
        .wait_for("greeting", |m| text_of(m).contains("Type \"help\""))
        .await;
    assert_eq!(last.source_nickname(), Some("qqbot"));
}

/// Logs `nick` in as 10001 and waits until the three demo buddies are in `&qq`.
async fn logged_in(rig: &Rig, nick: &str, caps: &[Capability]) -> IrcUser {
    let mut user = IrcUser::connect_with(rig.addr(), nick, caps).await;
    user.wait_for("JOIN &qq", |m| joined(m, nick, "&qq")).await;
    greeted(&mut user).await;
    let reply = user.login(10001, "demo").await;
    assert_eq!(reply, "logged in to QQ as 10001 (http11)");
    for buddy in ["WeiCheng", "HackfanHao", "XiaoQiE"] {
        user.wait_for(buddy, |m| joined(m, buddy, "&qq")).await;
    }
    user
}

/// `+nick` / `-nick` for each voice change in a MODE message.
fn voice_changes(m: &Message) -> Vec<String> {
    use irc::proto::{ChannelMode, Mode};
    match &m.command {
        Command::ChannelMODE(_, modes) => modes
            .iter()
            .filter_map(|mode| match mode {
                Mode::Plus(ChannelMode::Voice, Some(n)) => Some(format!("+{n}")),
                Mode::Minus(ChannelMode::Voice, Some(n)) => Some(format!("-{n}")),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn who_replies(all: &[Message]) -> Vec<Vec<String>> {
    all.iter()
        .filter(|m| matches!(m.command, Command::Response(Response::RPL_WHOREPLY, _)))
        .map(numeric_args)
        .collect()
}

#[tokio::test]
async fn login_shows_buddies_with_pinyin_nicks_qq_idents_and_voice() {
    let rig = Rig::start(test_config()).await;
    rig.net.set_contacts(
        10001,
        vec![
            contact(10002, "微程", Presence::Online),
            contact(10003, "Hackfan 好", Presence::Busy),
            contact(10004, "小企鹅", Presence::Offline),
        ],
    );
    let mut alice = logged_in(&rig, "alice", &[Capability::MultiPrefix]).await;
    let voiced = alice
        .wait_for(
            "voice",
            |m| matches!(&m.command, Command::ChannelMODE(c, _) if c == "&qq"),
        )
        .await;
    // Offline buddies stay unvoiced.
    assert_eq!(voice_changes(&voiced), vec!["+WeiCheng", "+HackfanHao"]);

    alice.raw("WHO &qq");
    alice
        .wait_for("end of WHO", |m| {
            matches!(m.command, Command::Response(Response::RPL_ENDOFWHO, _))
        })
        .await;
    let rows = who_replies(&alice.all());
    let row = |nick: &str| {
        rows.iter()
            .find(|r| r[5] == nick)
            .cloned()
            .unwrap_or_else(|| panic!("{nick} in {rows:?}"))
    };
    // <me> <channel> <user> <host> <server> <nick> <flags> :<hops> <realname>
    let wei = row("WeiCheng");
    assert_eq!(
        (
            wei[2].as_str(),
            wei[3].as_str(),
            wei[6].as_str(),
            wei[7].as_str()
        ),
        ("10002", "qq", "H+", "0 微程")
    );
    let hackfan = row("HackfanHao");
    assert_eq!(
        (
            hackfan[2].as_str(),
            hackfan[6].as_str(),
            hackfan[7].as_str()
        ),
        ("10003", "G+", "0 Hackfan 好")
    );
    assert_eq!(row("XiaoQiE")[6], "H");
    assert_eq!(row("qqbot")[6], "H@");

    // The irc crate tracked the channel from NAMES, JOIN and MODE.
    let users = alice.client.list_users("&qq").expect("channel tracked");
    let mut nicks: Vec<&str> = users.iter().map(|u| u.get_nickname()).collect();
    nicks.sort();
    assert_eq!(
        nicks,
        vec!["HackfanHao", "WeiCheng", "XiaoQiE", "alice", "qqbot"]
    );

    // The bot's list agrees.
    alice.say("&qq", "list");
    assert_eq!(alice.bot_reply("list").await, "3 buddies:");
}

#[tokio::test]
async fn messages_flow_both_ways_with_chinese_text_actions_and_safe_lines() {
    let rig = Rig::start(test_config()).await;
    let mut alice = logged_in(&rig, "alice", &[]).await;

    rig.net.message(10001, 10002, "你好，今天怎么样？").await;
    let m = alice
        .wait_for("message", |m| is_privmsg_from(m, "WeiCheng"))
        .await;
    assert_eq!(
        m.prefix.as_ref().map(|p| p.to_string()).as_deref(),
        Some("WeiCheng!10002@qq")
    );
    assert_eq!(text_of(&m), "你好，今天怎么样？");
    assert!(matches!(&m.command, Command::PRIVMSG(t, _) if t == "alice"));

    // Several lines, and an attempt to smuggle a command through CR/LF/NUL.
    rig.net
        .message(10001, 10002, "第一行\r\n第二行\nQUIT :bye\0 PRIVMSG x :y\r")
        .await;
    let mut lines = Vec::new();
    for _ in 0..3 {
        lines.push(text_of(
            &alice
                .wait_for("line", |m| is_privmsg_from(m, "WeiCheng"))
                .await,
        ));
    }
    assert_eq!(lines, vec!["第一行", "第二行", "QUIT :bye PRIVMSG x :y"]);

    // A long Chinese message is cut on character boundaries within 512 bytes.
    let long: String = "微程说话很长。".repeat(60);
    rig.net.message(10001, 10002, &long).await;
    let mut got = String::new();
    while got.chars().count() < long.chars().count() {
        let m = alice
            .wait_for("long line", |m| is_privmsg_from(m, "WeiCheng"))
            .await;
        let wire = m.to_string();
        assert!(wire.len() <= 512, "{} bytes", wire.len());
        got.push_str(&text_of(&m));
    }
    assert_eq!(got, long);

    // IRC to QQ, plain and /me.
    alice.say("WeiCheng", "我很好，谢谢");
    alice.client.send_action("WeiCheng", "挥手").unwrap();
    eventually("two messages on QQ", || rig.net.sent_texts().len() == 2).await;
    assert_eq!(
        rig.net.sent_texts(),
        vec![
            (ChatId::Buddy(Uin(10002)), "我很好，谢谢".to_owned(), false),
            (ChatId::Buddy(Uin(10002)), "挥手".to_owned(), true),
        ]
    );

    // A QQ action shows as /me.
    rig.net
        .emit(
            10001,
            QqEvent::Message {
                chat: ChatId::Buddy(Uin(10003)),
                sender: Uin(10003),
                sender_name: None,
                text: RichText {
                    segments: vec![Segment::Text {
                        text: "笑了".into(),
                    }],
                    action: true,
                },
                remote_id: Some("act-1".into()),
            },
        )
        .await;
    let m = alice
        .wait_for("action", |m| is_privmsg_from(m, "HackfanHao"))
        .await;
    assert_eq!(text_of(&m), "\u{1}ACTION 笑了\u{1}");

    // Unknown nicks are refused.
    alice.say("NoSuchBuddy", "hello?");
    let err = alice.wait_for("401", |m| numeric(m) == Some(401)).await;
    assert_eq!(numeric_args(&err)[1], "NoSuchBuddy");
}

#[tokio::test]
async fn presence_shows_as_voice_and_away_and_irc_away_sets_qq_busy() {
    let rig = Rig::start(test_config()).await;
    let mut alice = logged_in(&rig, "alice", &[Capability::AwayNotify]).await;

    rig.net.presence(10001, 10002, Presence::Busy).await;
    let away = alice
        .wait_for("AWAY", |m| {
            m.source_nickname() == Some("WeiCheng") && matches!(m.command, Command::AWAY(_))
        })
        .await;
    assert!(
        matches!(&away.command, Command::AWAY(Some(r)) if r == "Busy"),
        "{away:?}"
    );
    alice.raw("WHOIS WeiCheng");
    let whois_away = alice.wait_for("301", |m| numeric(m) == Some(301)).await;
    assert_eq!(
        numeric_args(&whois_away)[1..],
        ["WeiCheng".to_owned(), "Busy".to_owned()]
    );
    alice
        .wait_for("end of WHOIS", |m| numeric(m) == Some(318))
        .await;

    rig.net.presence(10001, 10002, Presence::Online).await;
    let back = alice
        .wait_for("AWAY back", |m| {
            m.source_nickname() == Some("WeiCheng") && matches!(m.command, Command::AWAY(_))
        })
        .await;
    assert!(matches!(back.command, Command::AWAY(None)), "{back:?}");

    rig.net.presence(10001, 10002, Presence::Offline).await;
    let devoice = alice
        .wait_for(
            "-v",
            |m| matches!(&m.command, Command::ChannelMODE(c, _) if c == "&qq"),
        )
        .await;
    assert_eq!(voice_changes(&devoice), vec!["-WeiCheng"]);
    rig.net.presence(10001, 10002, Presence::Online).await;
    let revoice = alice
        .wait_for(
            "+v",
            |m| matches!(&m.command, Command::ChannelMODE(c, _) if c == "&qq"),
        )
        .await;
    assert_eq!(voice_changes(&revoice), vec!["+WeiCheng"]);

    alice.raw("AWAY :在开会");
    alice.wait_for("306", |m| numeric(m) == Some(306)).await;
    eventually("busy on QQ", || {
        rig.net.presence_set.lock().unwrap().last() == Some(&(Uin(10001), Presence::Busy))
    })
    .await;
    alice.raw("AWAY");
    alice.wait_for("305", |m| numeric(m) == Some(305)).await;
    eventually("online on QQ", || {
        rig.net.presence_set.lock().unwrap().last() == Some(&(Uin(10001), Presence::Online))
    })
    .await;
}

#[tokio::test]
async fn friend_request_arrives_as_a_notice_and_is_accepted_from_irc() {
    let rig = Rig::start(test_config()).await;
    let mut alice = logged_in(&rig, "alice", &[]).await;
    rig.net
        .emit(
            10001,
            QqEvent::FriendRequest {
                uin: Uin(10005),
                message: "我是新朋友".into(),
            },
        )
        .await;
    let first = alice
        .wait_for("request notice", |m| {
            m.source_nickname() == Some("qqbot")
                && matches!(&m.command, Command::NOTICE(t, _) if t == "&qq")
        })
        .await;
    assert_eq!(
        text_of(&first),
        "10005 wants to add you as a QQ buddy: \u{201c}我是新朋友\u{201d}"
    );
    let how = alice
        .wait_for(
            "how",
            |m| matches!(&m.command, Command::NOTICE(t, _) if t == "&qq"),
        )
        .await;
    assert!(
        text_of(&how).contains("accept 10005") && text_of(&how).contains("reject 10005"),
        "{how}"
    );

    alice.say("&qq", "accept 10005");
    assert_eq!(alice.bot_reply("accept").await, "accepted 10005 as a buddy");
    assert_eq!(
        rig.net.answered.lock().unwrap().clone(),
        vec![(Uin(10001), Uin(10005), true)]
    );
    alice
        .wait_for("new buddy joins", |m| joined(m, "XinPengYou", "&qq"))
        .await;
    alice.raw("WHOIS XinPengYou");
    let who = alice.wait_for("311", |m| numeric(m) == Some(311)).await;
    assert_eq!(
        numeric_args(&who)[1..],
        ["XinPengYou", "10005", "qq", "*", "新朋友"].map(String::from)
    );
    // The profile comes from QQ.
    let mut profile = Vec::new();
    loop {
        let m = alice
            .wait_for("whois lines", |m| {
                matches!(numeric(m), Some(320) | Some(318))
            })
            .await;
        if numeric(&m) == Some(318) {
            break;
        }
        profile.push(numeric_args(&m)[2].clone());
    }
    assert!(profile.iter().any(|l| l == "city: 南京"), "{profile:?}");
}

#[tokio::test]
async fn send_failures_kicks_and_logouts_are_shown() {
    let rig = Rig::start(test_config()).await;
    let mut alice = logged_in(&rig, "alice", &[]).await;

    // A message QQ refuses comes back as a notice from the buddy.
    *rig.net.send_error.lock().unwrap() = Some(QqError::Refused("RES=5".into()));
    alice.say("WeiCheng", "这条发不出去");
    let failed = alice
        .wait_for("failure", |m| {
            m.source_nickname() == Some("WeiCheng") && matches!(m.command, Command::NOTICE(..))
        })
        .await;
    assert_eq!(
        text_of(&failed),
        "not delivered: \u{201c}这条发不出去\u{201d} (the QQ server refused the request (RES=5))"
    );
    *rig.net.send_error.lock().unwrap() = None;

    // Kicked by QQ: the buddies leave and the bot says why.
    rig.net
        .emit(
            10001,
            QqEvent::SessionEnded(EndReason::Kicked("logged in elsewhere".into())),
        )
        .await;
    for buddy in ["WeiCheng", "HackfanHao", "XiaoQiE"] {
        alice
            .wait_for("QUIT", |m| {
                m.source_nickname() == Some(buddy) && matches!(m.command, Command::QUIT(_))
            })
            .await;
    }
    let why = alice
        .wait_for("notice", |m| {
            m.source_nickname() == Some("qqbot")
                && matches!(&m.command, Command::NOTICE(t, _) if t == "&qq")
        })
        .await;
    assert_eq!(
        text_of(&why),
        "QQ 10001: kicked by the QQ server: logged in elsewhere"
    );

    // Log in again, then out: the buddies quit, with just the bot's reply.
    assert_eq!(
        alice.login(10001, "demo").await,
        "logged in to QQ as 10001 (http11)"
    );
    alice
        .wait_for("back", |m| joined(m, "WeiCheng", "&qq"))
        .await;
    alice.say("&qq", "logout");
    alice
        .wait_for("QUIT", |m| {
            m.source_nickname() == Some("WeiCheng") && matches!(m.command, Command::QUIT(_))
        })
        .await;
    assert_eq!(alice.bot_reply("logout").await, "logged out of QQ 10001");
    alice.say("&qq", "list");
    assert_eq!(
        alice.bot_reply("list").await,
        "you are not logged in to QQ; use: login <qq number> <password>"
    );
    assert!(!alice
        .all()
        .iter()
        .any(|m| text_of(m).starts_with("QQ 10001: logged out")));
    alice.say("WeiCheng", "还在吗");
    let not_sent = alice
        .wait_for(
            "not sent",
            |m| matches!(&m.command, Command::NOTICE(t, _) if t == "alice"),
        )
        .await;
    assert_eq!(
        text_of(&not_sent),
        "not sent to WeiCheng: you are not logged in to QQ; use: login <qq number> <password>"
    );
}

fn group(number: u64, name: &str, members: &[(u64, &str, Option<&str>)]) -> GroupInfo {
    GroupInfo {
        number: GroupNumber(number),
        name: name.to_owned(),
        members: members
            .iter()
            .map(|(uin, nick, card)| GroupMember {
                uin: Uin(*uin),
                nick: (*nick).to_owned(),
                card: card.map(str::to_owned),
            })
            .collect(),
    }
}

#[tokio::test]
async fn qq_groups_are_channels_with_members_and_messages_both_ways() {
    let rig = Rig::start(test_config()).await;
    rig.net.set_groups(
        10001,
        vec![group(
            346167134,
            "开源爱好者",
            &[
                (10001, "演示用户", None),
                (10002, "微程", Some("程序员微程")),
                (20001, "路人甲", None),
            ],
        )],
    );
    let mut alice = IrcUser::connect(rig.addr(), "alice").await;
    greeted(&mut alice).await;
    alice.login(10001, "demo").await;
    alice
        .wait_for("group channel", |m| joined(m, "alice", "#KaiYuanAiHaoZhe"))
        .await;
    let topic = alice.wait_for("topic", |m| numeric(m) == Some(332)).await;
    assert_eq!(
        numeric_args(&topic)[1..],
        ["#KaiYuanAiHaoZhe", "开源爱好者"].map(String::from)
    );
    let names = alice.wait_for("names", |m| numeric(m) == Some(353)).await;
    let mut members: Vec<String> = numeric_args(&names)[3]
        .split(' ')
        .map(String::from)
        .collect();
    members.sort();
    assert_eq!(members, vec!["LuRenJia", "WeiCheng", "alice"]);

    alice.raw("WHO #KaiYuanAiHaoZhe");
    alice
        .wait_for("end of WHO", |m| numeric(m) == Some(315))
        .await;
    let rows = who_replies(&alice.all());
    let stranger = rows
        .iter()
        .find(|r| r[5] == "LuRenJia")
        .expect("member in WHO");
    assert_eq!(
        (stranger[2].as_str(), stranger[7].as_str()),
        ("20001", "0 路人甲")
    );

    rig.net
        .message_in(
            10001,
            ChatId::Group(GroupNumber(346167134)),
            20001,
            "大家好",
        )
        .await;
    let m = alice
        .wait_for("group message", |m| is_privmsg_from(m, "LuRenJia"))
        .await;
    assert!(
        matches!(&m.command, Command::PRIVMSG(t, x) if t == "#KaiYuanAiHaoZhe" && x == "大家好"),
        "{m}"
    );

    alice.say("#KaiYuanAiHaoZhe", "欢迎");
    // A private message to a member who is not a buddy is a temporary session.
    alice.say("LuRenJia", "你好");
    eventually("both sent", || rig.net.sent_texts().len() == 2).await;
    assert_eq!(
        rig.net.sent_texts(),
        vec![
            (
                ChatId::Group(GroupNumber(346167134)),
                "欢迎".to_owned(),
                false
            ),
            (
                ChatId::Session {
                    via_group: GroupNumber(346167134),
                    uin: Uin(20001)
                },
                "你好".to_owned(),
                false
            ),
        ]
    );

    alice.raw("LIST");
    let entry = alice
        .wait_for("LIST entry", |m| {
            numeric(m) == Some(322) && numeric_args(m)[1] == "#KaiYuanAiHaoZhe"
        })
        .await;
    assert_eq!(
        numeric_args(&entry)[2..],
        ["3", "开源爱好者"].map(String::from)
    );

    // Leaving the channel, then coming back.
    alice.raw("PART #KaiYuanAiHaoZhe");
    alice
        .wait_for("PART", |m| {
            m.source_nickname() == Some("alice") && matches!(m.command, Command::PART(..))
        })
        .await;
    alice.say("#KaiYuanAiHaoZhe", "还在吗");
    alice.wait_for("404", |m| numeric(m) == Some(404)).await;
    alice.raw("JOIN #KaiYuanAiHaoZhe");
    alice
        .wait_for("rejoined", |m| joined(m, "alice", "#KaiYuanAiHaoZhe"))
        .await;
}

#[tokio::test]
async fn a_reconnecting_client_must_authenticate_and_gets_missed_messages_in_order() {
    let mut config = test_config();
    config.grace_period_s = 600;
    let rig = Rig::start(config).await;
    let alice = logged_in(&rig, "alice", &[]).await;
    alice.client.send_quit("brb").unwrap();
    eventually("client gone", || rig.gateway.client_count() == 0).await;

    for i in 1..=3 {
        rig.net.message(10001, 10002, &format!("离线消息{i}")).await;
    }
    // The QQ session stays online during the grace period.
    assert!(rig.net.is_logged_in(10001));

    // Someone connecting with the same nick gets nothing until they prove
    // they own the session.
    let mut back = IrcUser::connect(rig.addr(), "alice").await;
    let notice = back.bot_reply("auth request").await;
    assert!(notice.contains("has a QQ session"), "{notice}");
    assert!(back
        .bot_reply("how")
        .await
        .starts_with("/OPER <qq number> <password>"));
    back.say("&qq", "list");
    assert!(back
        .bot_reply("refused")
        .await
        .contains("prove it is yours"));
    back.raw("OPER 10001 wrong");
    assert!(back
        .bot_reply("denied")
        .await
        .contains("wrong QQ number or password"));
    assert!(!back.all().iter().any(|m| is_privmsg_from(m, "WeiCheng")));

    back.raw("OPER 10001 demo");
    for buddy in ["WeiCheng", "HackfanHao", "XiaoQiE"] {
        back.wait_for(buddy, |m| joined(m, buddy, "&qq")).await;
    }
    let mut replayed = Vec::new();
    for _ in 0..3 {
        replayed.push(text_of(
            &back
                .wait_for("replay", |m| is_privmsg_from(m, "WeiCheng"))
                .await,
        ));
    }
    assert_eq!(replayed, vec!["离线消息1", "离线消息2", "离线消息3"]);
    assert!(back
        .all()
        .iter()
        .any(|m| text_of(m).starts_with("resumed your QQ session 10001")));
    // Still one QQ login: the session was resumed, not logged in twice.
    assert_eq!(rig.net.logins.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn the_grace_period_logs_out_a_client_that_does_not_come_back() {
    let mut config = test_config();
    config.grace_period_s = 1;
    let rig = Rig::start(config).await;
    let alice = logged_in(&rig, "alice", &[]).await;
    alice.vanish();
    eventually("logged out of QQ", || {
        rig.net.logouts.lock().unwrap().contains(&Uin(10001))
    })
    .await;
    eventually("core forgot the login", || {
        rig.core.login_of("gateway:alice").is_none()
    })
    .await;
    // The nick is free again: no authentication needed.
    let mut again = IrcUser::connect(rig.addr(), "alice").await;
    greeted(&mut again).await;
    assert_eq!(
        again.login(10002, "demo").await,
        "logged in to QQ as 10002 (http11)"
    );

    // After a restart, a restored login gets the same grace period.
    let rig = rig.restart().await;
    eventually("restored", || rig.core.login_of("gateway:alice").is_some()).await;
    let store = rig.store.clone();
    tokio::time::timeout(WAIT, async {
        while !store.logins_of("gateway:alice").await.unwrap().is_empty() {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the restored login is logged out after the grace period");
    assert!(rig.core.login_of("gateway:alice").is_none());
}

#[tokio::test]
async fn nicks_are_stable_across_restarts_collisions_get_suffixes_and_rename_persists() {
    let rig = Rig::start(test_config()).await;
    rig.net.set_contacts(
        10001,
        vec![
            contact(10002, "微程", Presence::Online),
            contact(10003, "微程", Presence::Online),
            contact(10004, "qqbot", Presence::Online),
        ],
    );
    let mut alice = IrcUser::connect(rig.addr(), "alice").await;
    greeted(&mut alice).await;
    alice.login(10001, "demo").await;
    alice
        .wait_for("first", |m| joined(m, "WeiCheng", "&qq"))
        .await;
    alice
        .wait_for("second gets a suffix", |m| joined(m, "WeiCheng_", "&qq"))
        .await;
    // A buddy called like the bot gets another nick.
    alice
        .wait_for("not the bot", |m| joined(m, "qqbot_", "&qq"))
        .await;

    alice.say("&qq", "rename WeiCheng_ XiaoWei");
    let nick = alice
        .wait_for("NICK", |m| {
            m.source_nickname() == Some("WeiCheng_") && matches!(m.command, Command::NICK(_))
        })
        .await;
    assert!(matches!(&nick.command, Command::NICK(n) if n == "XiaoWei"));
    assert_eq!(
        alice.bot_reply("rename").await,
        "10003 is now known as XiaoWei"
    );
    alice.say("&qq", "rename 10002 qqbot");
    assert_eq!(alice.bot_reply("taken").await, "the nick qqbot is taken");
    alice.say("&qq", "rename 10002 9lives");
    assert!(alice
        .bot_reply("invalid")
        .await
        .contains("is not a valid nick"));
    alice.client.send_quit("restart").unwrap();
    eventually("client gone", || rig.gateway.client_count() == 0).await;

    let rig = rig.restart().await;
    eventually("login restored", || {
        rig.core.login_of("gateway:alice").is_some()
    })
    .await;
    let mut back = IrcUser::connect(rig.addr(), "alice").await;
    back.wait_for("auth request", |m| text_of(m).starts_with("/OPER"))
        .await;
    back.raw("OPER 10001 demo");
    for nick in ["WeiCheng", "XiaoWei", "qqbot_"] {
        back.wait_for(nick, |m| joined(m, nick, "&qq")).await;
    }
    // A message to the renamed nick goes to the right buddy.
    back.say("XiaoWei", "还记得我吗");
    eventually("sent", || !rig.net.sent_texts().is_empty()).await;
    assert_eq!(rig.net.sent_texts()[0].0, ChatId::Buddy(Uin(10003)));
}

#[tokio::test]
async fn two_clients_have_their_own_logins_and_cannot_share_a_nick() {
    let rig = Rig::start(test_config()).await;
    let mut alice = logged_in(&rig, "alice", &[]).await;
    let mut bob = IrcUser::connect(rig.addr(), "bob").await;
    greeted(&mut bob).await;
    assert_eq!(
        bob.login(10002, "demo").await,
        "logged in to QQ as 10002 (http11)"
    );
    bob.wait_for("bob's buddy", |m| joined(m, "YanShiYongHu", "&qq"))
        .await;

    rig.net.message(10002, 10001, "给bob的").await;
    rig.net.message(10001, 10002, "给alice的").await;
    let to_bob = bob
        .wait_for("bob's message", |m| is_privmsg_from(m, "YanShiYongHu"))
        .await;
    assert_eq!(text_of(&to_bob), "给bob的");
    let to_alice = alice
        .wait_for("alice's message", |m| is_privmsg_from(m, "WeiCheng"))
        .await;
    assert_eq!(text_of(&to_alice), "给alice的");
    assert!(!bob.all().iter().any(|m| text_of(m) == "给alice的"));

    // The same nick, in any case, is refused while alice is connected.
    let mut raw = raw_connect(rig.addr()).await;
    raw.send("NICK ALICE").await;
    let refused = raw.expect(" 433 ").await;
    assert!(refused.contains("ALICE"), "{refused}");
}

#[tokio::test]
async fn numerics_for_mode_topic_names_list_ison_userhost_and_unknown_commands() {
    let rig = Rig::start(test_config()).await;
    let mut c = raw_connect(rig.addr()).await;
    c.send("CAP LS 302").await;
    let ls = c.expect("CAP * LS").await;
    for cap in ["multi-prefix", "away-notify", "server-time", "message-tags"] {
        assert!(ls.contains(cap), "{ls}");
    }
    c.send("CAP REQ :multi-prefix server-time").await;
    assert!(c
        .expect("CAP")
        .await
        .contains("ACK :multi-prefix server-time"));
    c.send("CAP REQ :sasl").await;
    assert!(c.expect("CAP").await.contains("NAK"));
    c.send("NICK carol").await;
    c.send("USER carol 0 * :Carol").await;
    c.send("CAP END").await;
    let welcome = c.expect(" 001 ").await;
    assert!(welcome.starts_with("@time="), "server-time tag: {welcome}");
    c.expect(" 366 carol &qq ").await;

    c.send("MODE &qq").await;
    assert!(c.expect(" 324 ").await.ends_with("324 carol &qq +nt"));
    c.send("MODE &qq b").await;
    c.expect(" 368 carol &qq ").await;
    c.send("MODE &qq +o carol").await;
    c.expect(" 482 carol &qq ").await;
    c.send("MODE carol").await;
    c.expect(" 221 carol ").await;
    c.send("MODE carol +i").await;
    assert!(c.expect(" MODE carol ").await.ends_with("+i"));
    c.send("TOPIC &qq").await;
    assert!(c.expect(" 332 ").await.contains("help"));
    c.send("TOPIC &qq :mine").await;
    c.expect(" 482 ").await;
    c.send("NAMES &qq").await;
    assert!(c.expect(" 353 ").await.ends_with("= &qq :@qqbot carol"));
    c.send("LIST").await;
    c.expect(" 322 carol &qq 2 ").await;
    c.expect(" 323 ").await;
    c.send("ISON qqbot nobody carol").await;
    assert!(c.expect(" 303 ").await.ends_with(":qqbot carol"));
    c.send("USERHOST qqbot").await;
    assert!(c.expect(" 302 ").await.contains("qqbot=+qqbot@"));
    c.send("WHOIS qqbot").await;
    c.expect(" 311 carol qqbot qqbot ").await;
    c.expect(" 318 ").await;
    c.send("FROBNICATE now").await;
    assert!(c.expect(" 421 ").await.contains("FROBNICATE"));
    c.send("PRIVMSG").await;
    c.expect(" 411 ").await;
    c.send("JOIN #nosuch").await;
    c.expect(" 403 carol #nosuch ").await;
    c.send("PART &qq").await;
    c.expect(" PART &qq").await;
    c.send("JOIN &qq").await;
    c.expect(" JOIN &qq").await;
    c.send("PING :abc").await;
    assert!(c.expect("PONG").await.ends_with("abc"));
    c.send("NICK carol2").await;
    assert!(c.expect(" NICK ").await.ends_with("carol2"));
    c.send("USER again 0 * :x").await;
    c.expect(" 462 ").await;
    c.send("QUIT :bye").await;
    let last = c.until_closed().await;
    assert!(
        last.iter().any(|l| l.contains("ERROR :Closing link")),
        "{last:?}"
    );
}

#[tokio::test]
async fn bad_input_is_refused_without_hurting_the_client_or_others() {
    let rig = Rig::start(test_config()).await;
    let mut alice = logged_in(&rig, "alice", &[]).await;
    let mut c = raw_connect(rig.addr()).await;
    c.send("PRIVMSG qqbot :too early").await;
    c.expect(" 451 ").await;
    c.send("NICK 9bad").await;
    c.expect(" 432 ").await;
    c.register("mallory").await;

    // 511 bytes plus CR LF is one byte over the limit.
    let long = format!("PRIVMSG qqbot :{}", "x".repeat(511 - 15));
    assert_eq!(long.len(), 511);
    c.send(&long).await;
    c.expect(" 417 mallory ").await;
    // Tags get their own, larger budget.
    let tagged = format!("@+draft/x={} PING :tagged", "y".repeat(4000));
    c.send(&tagged).await;
    assert!(c.expect("PONG").await.ends_with("tagged"));
    // A line far beyond every limit, in one piece.
    c.send(&"z".repeat(100_000)).await;
    c.expect(" 417 mallory ").await;
    // Garbage of all kinds.
    c.send_bytes(b"\xff\xfe\x00\x01 :\r\n:\r\n@\r\n: x\r\nMODE\r\nCAP FOO\r\n \r\n")
        .await
        .unwrap();
    c.send("PING :still here").await;
    assert!(c.expect("PONG").await.ends_with("still here"));

    // Alice is unaffected.
    rig.net.message(10001, 10002, "没事").await;
    assert_eq!(
        text_of(
            &alice
                .wait_for("message", |m| is_privmsg_from(m, "WeiCheng"))
                .await
        ),
        "没事"
    );
}

#[tokio::test]
async fn floods_are_slowed_down_not_dropped() {
    let mut config = test_config();
    config.flood_burst = 5;
    config.flood_lines_per_s = 50.0;
    let rig = Rig::start(config).await;
    let mut c = raw_connect(rig.addr()).await;
    c.register("flooder").await;
    let burst: String = (0..60).map(|i| format!("PING :n{i}\r\n")).collect();
    c.send_bytes(burst.as_bytes()).await.unwrap();
    let mut answered = Vec::new();
    while answered.len() < 60 {
        let line = c.expect("PONG").await;
        answered.push(line.rsplit(' ').next().unwrap_or("").to_owned());
    }
    assert_eq!(
        answered,
        (0..60).map(|i| format!("n{i}")).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_client_that_stops_answering_ping_is_dropped_and_others_stay() {
    let mut config = test_config();
    config.ping_interval_s = 1;
    config.ping_timeout_s = 1;
    let rig = Rig::start(config).await;
    let mut alice = logged_in(&rig, "alice", &[]).await;
    let mut silent = raw_connect(rig.addr()).await;
    silent.send("NICK silent").await;
    silent.send("USER silent 0 * :zzz").await;
    // Reads everything but never answers.
    let mut lines = Vec::new();
    while let Some(line) = silent.next_line().await {
        lines.push(line);
    }
    assert!(lines.iter().any(|l| l.starts_with("PING")), "{lines:?}");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("ERROR :Closing link: Ping timeout")),
        "{lines:?}"
    );
    // Alice answers PINGs (her client library does) and is still served.
    rig.net.message(10001, 10002, "还在").await;
    assert_eq!(
        text_of(
            &alice
                .wait_for("message", |m| is_privmsg_from(m, "WeiCheng"))
                .await
        ),
        "还在"
    );
}

#[tokio::test]
async fn a_client_that_does_not_read_is_disconnected_and_others_are_unaffected() {
    let mut config = test_config();
    config.send_queue_lines = 32;
    config.ping_timeout_s = 1;
    config.flood_burst = 1_000_000;
    config.flood_lines_per_s = 1_000_000.0;
    let rig = Rig::start(config).await;
    let mut alice = logged_in(&rig, "alice", &[]).await;

    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let stream = socket.connect(rig.addr()).await.unwrap();
    let mut stuck = RawClient::new(stream);
    stuck.register("stuck").await;
    // Ask for far more than it will ever read: tens of megabytes of replies.
    let ask: String = "NAMES &qq\r\nLIST\r\nWHO &qq\r\n".repeat(400);
    for _ in 0..60 {
        if stuck.send_bytes(ask.as_bytes()).await.is_err() {
            break;
        }
    }
    eventually("only alice left", || rig.gateway.client_count() == 1).await;
    rig.net.message(10001, 10002, "不受影响").await;
    assert_eq!(
        text_of(
            &alice
                .wait_for("message", |m| is_privmsg_from(m, "WeiCheng"))
                .await
        ),
        "不受影响"
    );
}

#[tokio::test]
async fn the_server_password_is_required_when_configured() {
    let mut config = test_config();
    config.password = Some(qqbridge::secret::Secret::new("letmein"));
    let rig = Rig::start(config).await;
    let mut wrong = raw_connect(rig.addr()).await;
    wrong.send("PASS nope").await;
    wrong.send("NICK eve").await;
    wrong.send("USER eve 0 * :Eve").await;
    let lines = wrong.until_closed().await;
    assert!(lines.iter().any(|l| l.contains(" 464 ")), "{lines:?}");
    assert!(!lines.iter().any(|l| l.contains(" 001 ")), "{lines:?}");
    let mut right = raw_connect(rig.addr()).await;
    right.send("PASS letmein").await;
    right.register("eve").await;
}

#[tokio::test]
async fn tls_works_with_a_configured_certificate() {
    use tokio_rustls::rustls::{self, pki_types::ServerName};

    let dir = tempfile::tempdir().unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.path().join("irc.crt");
    let key_path = dir.path().join("irc.key");
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let mut config = test_config();
    config.tls = Some(qqbridge::config::GatewayTlsConfig {
        cert: cert_path,
        key: key_path,
    });
    let rig = Rig::start(config).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let client_config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_config));
    let tcp = tokio::net::TcpStream::connect(rig.addr()).await.unwrap();
    let tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("TLS handshake");
    let mut c = RawClient::new(tls);
    c.register("secure").await;
    c.send("PRIVMSG &qq :login 10001 demo").await;
    c.expect("logged in to QQ as 10001").await;
    c.expect(" JOIN &qq").await;
    // Plain text on the TLS port gets nowhere.
    let mut plain = raw_connect(rig.addr()).await;
    plain.send("NICK plain").await;
    plain.send("USER plain 0 * :p").await;
    assert!(plain
        .until_closed()
        .await
        .iter()
        .all(|l| !l.contains(" 001 ")));
}

#[tokio::test]
async fn passwords_never_reach_the_logs_or_the_screen() {
    const PASSWORD: &str = "Pw-7f3a9c-unique-secret";
    let rig = Rig::start(test_config()).await;
    rig.net.set_password(10003, PASSWORD);
    let mut dave = IrcUser::connect(rig.addr(), "dave").await;
    greeted(&mut dave).await;
    dave.raw(&format!("OPER 10003 {PASSWORD}"));
    assert_eq!(
        dave.bot_reply("oper").await,
        "logged in to QQ as 10003 (http11)"
    );
    dave.say("&qq", &format!("login 10003 {PASSWORD}"));
    dave.bot_reply("again").await;
    dave.say("&qq", &format!("login 10003 {PASSWORD}x"));
    dave.bot_reply("wrong").await;
    dave.client.send_quit("bye").unwrap();
    eventually("client gone", || rig.gateway.client_count() == 0).await;
    let mut back = IrcUser::connect(rig.addr(), "dave").await;
    back.wait_for("auth request", |m| text_of(m).starts_with("/OPER"))
        .await;
    back.raw(&format!("OPER 10003 {PASSWORD}"));
    assert!(back.bot_reply("resumed").await.starts_with("resumed"));
    back.raw("OPER 10003 wrong-one");
    back.bot_reply("already").await;

    let logs = captured_logs();
    assert!(logs.contains("bot command"), "logging is captured");
    let leaks: Vec<&str> = logs.lines().filter(|l| l.contains(PASSWORD)).collect();
    assert!(leaks.is_empty(), "a password reached the logs: {leaks:#?}");
    for user in [&mut dave, &mut back] {
        let shown: String = user.all().iter().map(|m| m.to_string()).collect();
        assert!(!shown.contains(PASSWORD), "a password was echoed: {shown}");
    }
}

#[tokio::test]
async fn messages_for_a_client_that_stopped_reading_are_replayed_not_lost() {
    let mut config = test_config();
    config.ping_timeout_s = 1;
    let rig = Rig::start(config).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let mut stuck = RawClient::new(socket.connect(rig.addr()).await.unwrap());
    stuck.register("bob").await;
    stuck.send("PRIVMSG &qq :login 10002 demo").await;
    stuck.expect("logged in to QQ as 10002").await;
    stuck.expect(" JOIN &qq").await;
    // Bob stops reading; QQ keeps talking.
    const COUNT: usize = 300;
    let filler = "很长的消息".repeat(500);
    for i in 0..COUNT {
        rig.net
            .message(10002, 10001, &format!("#{i} {filler}"))
            .await;
    }
    eventually("the stuck client is dropped", || {
        rig.gateway.client_count() == 0
    })
    .await;
    // What the bridge handed to the socket before giving up still reaches
    // the client; the rest must come on reconnect.
    let number_of =
        |text: &str| -> Option<usize> { text.strip_prefix('#')?.split(' ').next()?.parse().ok() };
    let mut received: Vec<usize> = Vec::new();
    for line in stuck.until_closed().await {
        if let Some((_, text)) = line.split_once(" PRIVMSG bob :") {
            received.extend(number_of(text));
        }
    }
    assert!(
        received.len() < COUNT,
        "the client was dropped before it could get everything"
    );

    let mut back = IrcUser::connect(rig.addr(), "bob").await;
    back.wait_for("auth request", |m| text_of(m).starts_with("/OPER"))
        .await;
    back.raw("OPER 10002 demo");
    while received.last() != Some(&(COUNT - 1)) {
        let m = back
            .wait_for("replayed message", |m| is_privmsg_from(m, "YanShiYongHu"))
            .await;
        received.extend(number_of(&text_of(&m)));
    }
    // In order, each at least once: a message cut off by the drop may
    // come twice, none is missing.
    let mut expected = 0;
    for number in received {
        assert!(
            number <= expected,
            "message {expected} is missing (got {number})"
        );
        if number == expected {
            expected += 1;
        }
    }
    assert_eq!(expected, COUNT);
}

mod properties {
    use super::*;
    use proptest::prelude::*;
    use qqbridge::irc::gateway::wire::{
        classify, parse_line, Frame, LineReader, MAX_BODY_BYTES, MAX_TAGS_BYTES,
    };

    fn ircish() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            Just("@".to_owned()),
            Just(":".to_owned()),
            Just(" ".to_owned()),
            Just(" :".to_owned()),
            Just("\r".to_owned()),
            Just(";".to_owned()),
            Just("=".to_owned()),
            Just("\\".to_owned()),
            Just(",".to_owned()),
            Just("#".to_owned()),
            Just("&qq".to_owned()),
            Just("+".to_owned()),
            Just("-".to_owned()),
            prop::sample::select(vec![
                "PRIVMSG", "NOTICE", "MODE", "CAP", "JOIN", "PART", "WHO", "WHOIS", "NICK", "USER",
                "PASS", "OPER", "PING", "ISON", "USERHOST", "KICK", "TOPIC", "LIST", "NAMES",
                "AWAY", "QUIT", "METADATA", "BATCH", "LS", "REQ", "END", "+ov", "-b", "0", "001",
                "微程",
            ])
            .prop_map(str::to_owned),
            "\\PC{0,6}",
        ];
        prop::collection::vec(piece, 0..24).prop_map(|p| p.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// The gateway's decoder never panics, on IRC-shaped or arbitrary input.
        #[test]
        fn parsing_never_panics(line in prop_oneof![ircish(), "\\PC{0,300}", ".{0,100}"]) {
            let _ = parse_line(&line);
        }

        /// irc-proto itself, unguarded, on the lines the gateway hands it
        /// (no CR, LF or NUL): any panic here would be caught by the guard,
        /// but none is known.
        #[test]
        fn irc_proto_parsing_does_not_panic(line in ircish()) {
            let line: String = line.chars().filter(|c| !matches!(c, '\r' | '\n' | '\0')).collect();
            let _ = line.parse::<irc::proto::Message>();
        }

    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Framing: whatever bytes arrive, in whatever chunks, every line
        /// handed on is within the limits and has no line break in it.
        #[test]
        fn framing_respects_the_limits(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..3000), 0..8)) {
            let bytes: Vec<u8> = chunks.concat();
            let frames = tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
                let mut reader = LineReader::new(&bytes[..]);
                let mut frames = Vec::new();
                while let Ok(Some(frame)) = reader.next_frame().await {
                    frames.push(frame);
                }
                frames
            });
            for frame in frames {
                if let Frame::Line(line) = frame {
                    prop_assert!(!line.is_empty());
                    prop_assert!(!line.contains(['\r', '\n']));
                    let (tags, body) = match line.strip_prefix('@') {
                        Some(_) => line.split_once(' ').map_or((line.len(), 0), |(t, b)| (t.len() + 1, b.len())),
                        None => (0, line.len()),
                    };
                    // Lossy decoding may widen invalid bytes to U+FFFD (3 bytes).
                    prop_assert!(tags <= MAX_TAGS_BYTES * 3 && body <= MAX_BODY_BYTES * 3);
                }
            }
        }

        #[test]
        fn classify_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..9000)) {
            let _ = classify(&bytes);
        }
    }

    /// Arbitrary lines sent to a live gateway never take it down: after
    /// each burst the same connection and a fresh one are still served.
    #[test]
    fn a_live_gateway_survives_arbitrary_lines() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let rig = runtime.block_on(Rig::start(test_config()));
        let addr = rig.addr();
        let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
            cases: 24,
            ..ProptestConfig::default()
        });
        runner
            .run(
                &prop::collection::vec(prop_oneof![ircish(), "\\PC{0,200}"], 1..20),
                |lines| {
                    runtime.block_on(async {
                        let mut c = raw_connect(addr).await;
                        c.register("fuzzer").await;
                        for line in &lines {
                            let clean: String = line
                                .chars()
                                .filter(|ch| !matches!(ch, '\r' | '\n'))
                                .collect();
                            if clean.trim_start().to_ascii_uppercase().starts_with("QUIT") {
                                continue;
                            }
                            c.send(&clean).await;
                        }
                        c.send("PING :alive").await;
                        c.expect("alive").await;
                        c.send("QUIT").await;
                        c.until_closed().await;
                        let mut fresh = raw_connect(addr).await;
                        fresh.register("other").await;
                        fresh.send("QUIT").await;
                        fresh.until_closed().await;
                    });
                    Ok(())
                },
            )
            .unwrap();
        drop(rig);
    }
}

/// One host cannot take every slot: beyond `max_clients_per_ip` its next
/// connection is refused with a reason, while another address still gets
/// in, and a slot freed is usable again.
#[tokio::test]
async fn connections_per_address_are_capped_with_a_reason() {
    let mut config = test_config();
    config.max_clients_per_ip = 2;
    let rig = Rig::start(config).await;
    let mut first = raw_connect(rig.addr()).await;
    first.register("one").await;
    let mut second = raw_connect(rig.addr()).await;
    second.register("two").await;

    let mut third = raw_connect(rig.addr()).await;
    let lines = third.until_closed().await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ERROR") && l.contains("Too many connections from your address")),
        "{lines:?}"
    );

    // Another address is not affected.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
    let mut other = RawClient::new(socket.connect(rig.addr()).await.unwrap());
    other.register("elsewhere").await;

    // A freed slot can be used again.
    first.send("QUIT :bye").await;
    first.until_closed().await;
    eventually("the slot is freed", || rig.gateway.client_count() == 2).await;
    let mut again = raw_connect(rig.addr()).await;
    again.register("again").await;
    assert_eq!(rig.gateway.client_count(), 3);
}
