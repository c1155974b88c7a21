//! The scenario's groups and the WebQQ-only parts of an account (friend
//! categories, marknames, captcha code), with their validation.
//!
//! ```yaml
//! groups:
//!   - number: 20001
//!     name: QQ 桥测试群
//!     memo: 欢迎
//!     owner: 10001           # defaults to the first member
//!     members: [10001, 10002, 10003]
//!     cards: { 10002: 微程 (管理员) }
//!     chatter: { from: 10003, every_s: 120, lines: [大家好, 有人在吗？] }
//! accounts:
//!   - uin: 10001
//!     ...
//!     captcha: abcd          # WebQQ login always asks for this code
//!     categories: [{ index: 1, name: 同学, friends: [10002] }]
//!     marknames: { 10003: 老胡 }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::{AccountSpec, MAX_NICK_BYTES};
use crate::qq::sim::world::{Category, ContactBook, Group, MAX_CATEGORIES, MAX_GROUP_MEMBERS};

/// Longest group name or card, in bytes.
pub const MAX_GROUP_TEXT_BYTES: usize = 96;
/// Most chatter lines per group.
pub const MAX_CHATTER_LINES: usize = 100;
/// Longest captcha code (real ones had 4 characters).
pub const MAX_CAPTCHA_CHARS: usize = 8;
/// Creation time given to every group: 2013-12-29, the era simulated.
const GROUP_CREATED: u64 = 1_388_307_595;

/// One group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// The real group number.
    pub number: u64,
    pub name: String,
    #[serde(default)]
    pub memo: String,
    #[serde(default)]
    pub owner: Option<u64>,
    pub members: Vec<u64>,
    /// Group business cards by member.
    #[serde(default)]
    pub cards: BTreeMap<u64, String>,
    #[serde(default)]
    pub chatter: Option<GroupChatter>,
}

/// A member who says the next of `lines` every `every_s` seconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupChatter {
    pub from: u64,
    pub every_s: f64,
    pub lines: Vec<String>,
}

/// A friend category of an account (index 0, "我的好友", is implicit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CategorySpec {
    pub index: u32,
    pub name: String,
    /// Friends filed here; the others are in category 0.
    #[serde(default)]
    pub friends: Vec<u64>,
}

impl GroupSpec {
    pub fn to_group(&self) -> Group {
        Group {
            number: self.number,
            name: self.name.clone(),
            memo: self.memo.clone(),
            owner: self
                .owner
                .or_else(|| self.members.first().copied())
                .unwrap_or_default(),
            members: self.members.clone(),
            cards: self.cards.clone(),
            created: GROUP_CREATED,
        }
    }

    /// Every problem of this group, each naming it.
    pub(super) fn problems(&self, known: &HashMap<u64, usize>, problems: &mut Vec<String>) {
        let who = format!("group {}", self.number);
        if self.number == 0 || self.number > u64::from(u32::MAX) {
            problems.push(format!("{who}: group numbers are 1 to 4294967295"));
        }
        if self.name.is_empty() || self.name.len() > MAX_GROUP_TEXT_BYTES {
            problems.push(format!(
                "{who}: the name must be 1 to {MAX_GROUP_TEXT_BYTES} bytes"
            ));
        }
        if self.members.is_empty() || self.members.len() > MAX_GROUP_MEMBERS {
            problems.push(format!(
                "{who}: a group has 1 to {MAX_GROUP_MEMBERS} members"
            ));
        }
        let mut seen = HashSet::new();
        for member in &self.members {
            if !known.contains_key(member) {
                problems.push(format!("{who} names unknown account {member}"));
            }
            if !seen.insert(*member) {
                problems.push(format!("{who} lists member {member} twice"));
            }
        }
        if let Some(owner) = self.owner.filter(|o| !seen.contains(o)) {
            problems.push(format!("{who}: owner {owner} is not a member"));
        }
        for (member, card) in &self.cards {
            if !seen.contains(member) {
                problems.push(format!("{who}: card for non-member {member}"));
            }
            if card.len() > MAX_GROUP_TEXT_BYTES {
                problems.push(format!("{who}: the card of {member} is too long"));
            }
        }
        if let Some(chatter) = &self.chatter {
            if !seen.contains(&chatter.from) {
                problems.push(format!(
                    "{who}: chatter.from {} is not a member",
                    chatter.from
                ));
            }
            if !(chatter.every_s.is_finite() && chatter.every_s > 0.0) {
                problems.push(format!(
                    "{who}: chatter.every_s must be a positive number of seconds"
                ));
            }
            if chatter.lines.is_empty() || chatter.lines.len() > MAX_CHATTER_LINES {
                problems.push(format!(
                    "{who}: chatter.lines must hold 1 to {MAX_CHATTER_LINES} lines"
                ));
            }
        }
    }
}

impl AccountSpec {
    /// The account's categories and marknames as the world keeps them.
    pub fn contact_book(&self) -> ContactBook {
        let mut book = ContactBook::default();
        for category in &self.categories {
            book.categories.push(Category {
                index: category.index,
                name: category.name.clone(),
            });
            for friend in &category.friends {
                book.category_of.insert(*friend, category.index);
            }
        }
        book.marknames = self
            .marknames
            .iter()
            .map(|(uin, name)| (*uin, name.clone()))
            .collect();
        book
    }

    /// Problems of the WebQQ-only keys, each naming the account.
    pub(super) fn webqq_problems(&self, known: &HashMap<u64, usize>, problems: &mut Vec<String>) {
        let who = format!("account {}", self.uin);
        if let Some(code) = &self.captcha {
            let fine = (1..=MAX_CAPTCHA_CHARS).contains(&code.chars().count())
                && code.chars().all(|c| c.is_ascii_alphanumeric());
            if !fine {
                problems.push(format!(
                    "{who}: captcha must be 1 to {MAX_CAPTCHA_CHARS} ASCII letters or digits"
                ));
            }
        }
        if self.categories.len() > MAX_CATEGORIES {
            problems.push(format!("{who}: more than {MAX_CATEGORIES} categories"));
        }
        let mut indexes = HashSet::new();
        let mut filed = HashSet::new();
        for category in &self.categories {
            if category.index == 0 {
                problems.push(format!(
                    "{who}: category 0 is the implicit default (我的好友); start at 1"
                ));
            }
            if !indexes.insert(category.index) {
                problems.push(format!("{who}: category {} twice", category.index));
            }
            if category.name.is_empty() || category.name.len() > MAX_NICK_BYTES {
                problems.push(format!(
                    "{who}: category {} needs a name of 1 to {MAX_NICK_BYTES} bytes",
                    category.index
                ));
            }
            for friend in &category.friends {
                if !known.contains_key(friend) {
                    problems.push(format!("{who}: category names unknown account {friend}"));
                }
                if !filed.insert(*friend) {
                    problems.push(format!("{who}: {friend} is in two categories"));
                }
            }
        }
        for (uin, markname) in &self.marknames {
            if !known.contains_key(uin) {
                problems.push(format!("{who}: markname for unknown account {uin}"));
            }
            if markname.len() > MAX_NICK_BYTES {
                problems.push(format!("{who}: the markname of {uin} is too long"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::qq::sim::scenario::{Scenario, ScenarioError};

    #[test]
    fn group_and_contact_book_problems_are_named() {
        let yaml = r#"
accounts:
  - uin: 10001
    password: a
    nick: a
    captcha: "ab cd"
    categories:
      - { index: 0, name: default, friends: [10002] }
      - { index: 2, name: "", friends: [10002, 99999] }
    marknames: { 88888: x }
  - { uin: 10002, password: b, nick: b }
webqq: { poll_hold_s: 200, session_idle_s: 100 }
groups:
  - { number: 1, name: g, owner: 10002, members: [10001, 10001, 77777], cards: { 10002: c } }
  - { number: 1, name: "", members: [], chatter: { from: 10001, every_s: 0, lines: [] } }
"#;
        let Err(ScenarioError::Invalid(problems)) = Scenario::from_yaml(yaml) else {
            panic!("accepted an invalid scenario");
        };
        let text = problems.join("\n");
        for expected in [
            "account 10001: captcha must be",
            "account 10001: category 0 is the implicit default",
            "account 10001: category 2 needs a name",
            "account 10001: category names unknown account 99999",
            "account 10001: 10002 is in two categories",
            "account 10001: markname for unknown account 88888",
            "group 1 is defined more than once",
            "group 1 names unknown account 77777",
            "group 1 lists member 10001 twice",
            "group 1: owner 10002 is not a member",
            "group 1: card for non-member 10002",
            "group 1: the name must be",
            "group 1: a group has 1 to 500 members",
            "group 1: chatter.from 10001 is not a member",
            "group 1: chatter.every_s must be",
            "group 1: chatter.lines must hold",
            "webqq.poll_hold_s must be shorter than webqq.session_idle_s",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn groups_become_world_groups_with_an_owner() {
        let scenario = Scenario::from_yaml(
            "accounts: [{ uin: 10001, password: a, nick: a }]\ngroups: [{ number: 5, name: g, members: [10001], chatter: { from: 10001, every_s: 1, lines: [hi] } }]\n",
        )
        .unwrap();
        let groups = scenario.world_groups();
        assert_eq!((groups[0].number, groups[0].owner), (5, 10001));
        assert_eq!(scenario.group_chatter().len(), 1);
        assert!(scenario.contact_books().is_empty());
    }
}
