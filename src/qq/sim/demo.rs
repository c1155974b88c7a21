//! The built-in demo scenario, used when no scenario file is given: four
//! accounts (10001–10004, password `demo`) who are all friends of each
//! other. 10001 is the bridge user's account; 10002 (微程) and 10003
//! (Hackfan 好) carry the profiles of the two seed authors' samples; 10004
//! (小企鹅) is an echo bot. All four are in group 20001 (QQ 桥测试群), where
//! Hackfan chats now and then. `examples/scenario.demo.yaml` is the same
//! data.

use std::collections::BTreeMap;

use super::account::{AddPolicy, Presence, Profile};
use super::quirks::Quirks;
use super::scenario::{
    AccountSpec, CategorySpec, GroupChatter, GroupSpec, Scenario, ScenarioPassword, ScriptSpec,
};
use super::webqq::WebqqQuirks;
use crate::qq::http11::codec::{BloodType, Constellation, Gender, Zodiac};

fn account(uin: u64, nick: &str, face: u32, presence: Presence, profile: Profile) -> AccountSpec {
    AccountSpec {
        uin,
        password: ScenarioPassword("demo".to_owned()),
        nick: nick.to_owned(),
        face,
        add_policy: AddPolicy::Verify,
        presence,
        profile,
        script: ScriptSpec::default(),
        captcha: None,
        categories: Vec::new(),
        marknames: BTreeMap::new(),
    }
}

fn text(value: &str) -> String {
    value.to_owned()
}

fn bridge_user() -> AccountSpec {
    let profile = Profile {
        age: 20,
        gender: Gender::Female,
        province: text("北京"),
        city: text("北京"),
        country: text("中华人民共和国"),
        email: text("demo@example.com"),
        occupation: text("学生"),
        intro: text("通过 qqbridge 连接 Matrix 和 IRC."),
        blood_type: BloodType::A,
        constellation: Constellation::Libra,
        zodiac: Zodiac::Ox,
        ..Profile::default()
    };
    let mut spec = account(10001, "演示用户", 0, Presence::Offline, profile);
    // WebQQ shows friend categories and marknames.
    spec.categories = vec![CategorySpec {
        index: 1,
        name: text("网友"),
        friends: vec![10002, 10003],
    }];
    spec.marknames = BTreeMap::from([(10003, text("老胡"))]);
    spec
}

/// The demo group: everybody, with cards, and Hackfan chatting.
fn bridge_group() -> GroupSpec {
    GroupSpec {
        number: 20001,
        name: text("QQ 桥测试群"),
        memo: text("欢迎来到 qqbridge 的测试群。"),
        owner: Some(10001),
        members: vec![10001, 10002, 10003, 10004],
        cards: BTreeMap::from([(10002, text("微程 (管理员)")), (10003, text("胡吉阳"))]),
        chatter: Some(GroupChatter {
            from: 10003,
            every_s: 300.0,
            lines: vec![
                text("大家好 /微笑"),
                text("有人在用 WebQQ 吗？"),
                text("HTTP QQ 1.1 的朋友看不到群消息哦。"),
            ],
        }),
    }
}

/// \[003\]'s GetInfo sample (微程), completed for a detailed reply.
fn weicheng() -> AccountSpec {
    let profile = Profile {
        age: 26,
        gender: Gender::Male,
        province: text("云南省"),
        city: text("昆明"),
        country: text("中华人民共和国"),
        address: text("云南昆明"),
        postcode: text("650000"),
        phone: text("0871-6466529"),
        mobile: text("139********"),
        email: text("Microprogramer@hotmail.com"),
        homepage: text("msger.org(建设中...)"),
        occupation: text("程序员"),
        school: text("社会大学"),
        real_name: text("刘X"),
        intro: text("网络为媒,关系为本,信息为财,客户为主.\r\n"),
        blood_type: BloodType::O,
        constellation: Constellation::Scorpio,
        zodiac: Zodiac::Dog,
        id: text("-"),
        mt: text("0"),
        ..Profile::default()
    };
    account(10002, "微程", 270, Presence::Online, profile)
}

/// \[001\]'s GetInfo sample (Hackfan), self-consistent for 2005.
fn hackfan() -> AccountSpec {
    let profile = Profile {
        age: 19,
        gender: Gender::Male,
        province: text("江苏"),
        city: text("苏州"),
        country: text("中华人民共和国"),
        address: text("江苏苏州"),
        postcode: text("215000"),
        phone: text("0512-6*******"),
        mobile: text("136********"),
        email: text("hackfan@qq.com"),
        homepage: text("http://blog.hackfan.net"),
        occupation: text("学生"),
        school: text("苏州大学"),
        real_name: text("胡吉阳"),
        intro: text("The guy is updating to .NET Frameword......"),
        blood_type: BloodType::B,
        constellation: Constellation::Cancer,
        zodiac: Zodiac::Tiger,
        cv: text("\u{1}"),
        id: text("-"),
        mt: text("0"),
        ..Profile::default()
    };
    let mut spec = account(10003, "Hackfan 好", 0, Presence::Busy, profile);
    spec.add_policy = AddPolicy::Open;
    spec
}

fn echo_bot() -> AccountSpec {
    let profile = Profile {
        age: 7,
        gender: Gender::Female,
        province: text("广东"),
        city: text("深圳"),
        country: text("中华人民共和国"),
        homepage: text("http://www.qq.com"),
        occupation: text("回声机器人"),
        intro: text("你说什么, 我就说什么."),
        zodiac: Zodiac::Ox,
        constellation: Constellation::Aquarius,
        ..Profile::default()
    };
    let mut spec = account(10004, "小企鹅", 141, Presence::Online, profile);
    spec.add_policy = AddPolicy::Open;
    spec.script.echo = true;
    spec
}

/// The demo world.
pub fn demo_scenario() -> Scenario {
    Scenario {
        time_scale: 1.0,
        quirks: Quirks::default(),
        accounts: vec![bridge_user(), weicheng(), hackfan(), echo_bot()],
        account_ranges: Vec::new(),
        friendships: vec![
            [10001, 10002],
            [10001, 10003],
            [10001, 10004],
            [10002, 10003],
            [10002, 10004],
            [10003, 10004],
        ],
        groups: vec![bridge_group()],
        webqq: WebqqQuirks::default(),
    }
}
