//! The YAML scenario a simulator starts from: accounts (one by one or as
//! numbered ranges for load tests), mutual friendships, groups, scripted
//! accounts, the quirk flags of both protocols and the time scale. Unknown
//! keys are errors, and every validation problem names the account,
//! friendship, group or flag concerned.
//!
//! ```yaml
//! time_scale: 1.0            # multiplies every protocol delay and timeout
//! quirks: { login_cmd_echo: LOGIN, trailing_amp_profile: "003" }
//! accounts:
//!   - uin: 10001
//!     password: demo         # clear text; the world keeps only its MD5
//!     nick: 演示用户
//!     face: 0                # avatar id (FC)
//!     add_policy: verify     # open | verify | deny
//!     presence: offline      # before any client logs in
//!     profile: { age: 19, gender: male, province: 江苏, blood_type: B }
//!     script: { echo: true, status_cycle: { every_s: 30, statuses: [online, busy] } }
//! account_ranges:
//!   - { first_uin: 200000, count: 10000, password: load, nick_prefix: "load" }
//! friendships:
//!   - [10001, 10002]         # mutual, in the order they were made
//! webqq: { captcha_policy: never, poll_hold_s: 55 }   # webqq.md §10
//! groups: []                 # see the `groups` submodule
//! ```

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::account::{Account, AddPolicy, Presence, Profile};
use super::quirks::Quirks;
use super::timing::TimeScale;
use super::webqq::WebqqQuirks;
use super::world::{AccountSeed, ContactBook, Group, MAX_FRIENDS};
use crate::qq::http11::codec::PasswordHash;

mod groups;

pub use groups::{CategorySpec, GroupChatter, GroupSpec};

/// Lowest legal QQ number: the server answers `RES=5` below it.
pub const MIN_UIN: u64 = 10000;
/// Longest nickname, in bytes (QQ allowed about 12 Chinese characters).
pub const MAX_NICK_BYTES: usize = 48;
/// Most accounts one range may create.
pub const MAX_RANGE_COUNT: u32 = 100_000;

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default = "real_time")]
    pub time_scale: f64,
    #[serde(default)]
    pub quirks: Quirks,
    #[serde(default)]
    pub accounts: Vec<AccountSpec>,
    #[serde(default)]
    pub account_ranges: Vec<AccountRange>,
    /// Mutual friendships, in the order they were made.
    #[serde(default)]
    pub friendships: Vec<[u64; 2]>,
    /// Groups (only WebQQ shows them).
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    /// The WebQQ flags of webqq.md §10.
    #[serde(default)]
    pub webqq: WebqqQuirks,
}

fn real_time() -> f64 {
    1.0
}

/// A scenario password. Clear text (it is test data), never printed.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScenarioPassword(pub String);

impl fmt::Debug for ScenarioPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScenarioPassword(<redacted>)")
    }
}

/// One account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    pub uin: u64,
    pub password: ScenarioPassword,
    pub nick: String,
    #[serde(default)]
    pub face: u32,
    #[serde(default)]
    pub add_policy: AddPolicy,
    #[serde(default)]
    pub presence: Presence,
    #[serde(default)]
    pub profile: Profile,
    #[serde(default)]
    pub script: ScriptSpec,
    /// A WebQQ login of this account always needs this captcha code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captcha: Option<String>,
    /// Friend categories besides the default one (WebQQ).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<CategorySpec>,
    /// Private names for friends (WebQQ).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub marknames: BTreeMap<u64, String>,
}

/// What a scripted account does by itself.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScriptSpec {
    /// Answer every user message with the same text.
    pub echo: bool,
    pub status_cycle: Option<StatusCycle>,
}

/// Change presence every `every_s` seconds, going round `statuses`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusCycle {
    pub every_s: f64,
    pub statuses: Vec<Presence>,
}

/// `count` numbered accounts from `first_uin`, nick `<nick_prefix><uin>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountRange {
    pub first_uin: u64,
    pub count: u32,
    pub password: ScenarioPassword,
    #[serde(default)]
    pub nick_prefix: String,
    #[serde(default)]
    pub presence: Presence,
    #[serde(default)]
    pub add_policy: AddPolicy,
}

/// Why a scenario cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("cannot read scenario file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Includes the line and column, and for unknown keys the expected ones.
    #[error("scenario is not valid YAML for a scenario: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("invalid scenario: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

impl Scenario {
    /// Parses and validates YAML text.
    pub fn from_yaml(text: &str) -> Result<Scenario, ScenarioError> {
        let scenario: Scenario = serde_yaml::from_str(text)?;
        scenario.validate()?;
        Ok(scenario)
    }

    /// Reads, parses and validates a YAML file.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Io {
            path: path.to_owned(),
            source,
        })?;
        Scenario::from_yaml(&text)
    }

    /// The built-in demo world (also in `examples/scenario.demo.yaml`).
    pub fn demo() -> Scenario {
        super::demo::demo_scenario()
    }

    /// A scenario with no accounts and default flags.
    pub fn empty() -> Scenario {
        Scenario {
            time_scale: 1.0,
            quirks: Quirks::default(),
            accounts: Vec::new(),
            account_ranges: Vec::new(),
            friendships: Vec::new(),
            groups: Vec::new(),
            webqq: WebqqQuirks::default(),
        }
    }

    /// Checks everything serde cannot: numbers, references, limits.
    pub fn validate(&self) -> Result<(), ScenarioError> {
        let mut problems = Vec::new();
        if TimeScale::new(self.time_scale).is_none() {
            problems.push(format!(
                "time_scale must be a positive number, not {}",
                self.time_scale
            ));
        }
        problems.extend(self.quirks.problems());
        problems.extend(self.webqq.problems());
        let known = self.check_accounts(&mut problems);
        self.check_friendships(&known, &mut problems);
        self.check_groups(&known, &mut problems);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ScenarioError::Invalid(problems))
        }
    }

    /// Returns how many times each number is defined.
    fn check_accounts(&self, problems: &mut Vec<String>) -> HashMap<u64, usize> {
        let mut known: HashMap<u64, usize> = HashMap::new();
        for spec in &self.accounts {
            let who = format!("account {}", spec.uin);
            *known.entry(spec.uin).or_default() += 1;
            if spec.uin < MIN_UIN {
                problems.push(format!(
                    "{who}: QQ numbers below {MIN_UIN} are illegal (the server answers RES=5)"
                ));
            }
            if spec.password.0.is_empty() {
                problems.push(format!("{who}: the password is empty"));
            }
            if spec.nick.len() > MAX_NICK_BYTES {
                problems.push(format!(
                    "{who}: the nick is longer than {MAX_NICK_BYTES} bytes"
                ));
            }
            if let Some(cycle) = &spec.script.status_cycle {
                if !(cycle.every_s.is_finite() && cycle.every_s > 0.0) {
                    problems.push(format!(
                        "{who}: status_cycle.every_s must be a positive number of seconds"
                    ));
                }
                if cycle.statuses.is_empty() {
                    problems.push(format!("{who}: status_cycle.statuses is empty"));
                }
            }
        }
        for range in &self.account_ranges {
            let who = format!("account range from {}", range.first_uin);
            if range.count == 0 || range.count > MAX_RANGE_COUNT {
                problems.push(format!("{who}: count must be 1 to {MAX_RANGE_COUNT}"));
                continue;
            }
            if range.first_uin < MIN_UIN
                || range
                    .first_uin
                    .checked_add(u64::from(range.count))
                    .is_none()
            {
                problems.push(format!("{who}: numbers must be between {MIN_UIN} and 2^64"));
                continue;
            }
            if range.password.0.is_empty() {
                problems.push(format!("{who}: the password is empty"));
            }
            if range.nick_prefix.len() > MAX_NICK_BYTES - 20 {
                problems.push(format!("{who}: nick_prefix is too long"));
            }
            for uin in range.first_uin..range.first_uin + u64::from(range.count) {
                *known.entry(uin).or_default() += 1;
            }
        }
        let mut duplicates: Vec<u64> = known
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(u, _)| *u)
            .collect();
        duplicates.sort_unstable();
        for uin in duplicates.iter().take(10) {
            problems.push(format!("account {uin} is defined more than once"));
        }
        known
    }

    fn check_groups(&self, known: &HashMap<u64, usize>, problems: &mut Vec<String>) {
        let mut numbers = std::collections::HashSet::new();
        for group in &self.groups {
            if !numbers.insert(group.number) {
                problems.push(format!("group {} is defined more than once", group.number));
            }
            group.problems(known, problems);
        }
        for spec in &self.accounts {
            spec.webqq_problems(known, problems);
        }
    }

    fn check_friendships(&self, known: &HashMap<u64, usize>, problems: &mut Vec<String>) {
        let mut seen = std::collections::HashSet::new();
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for &[a, b] in &self.friendships {
            let who = format!("friendship [{a}, {b}]");
            for uin in [a, b] {
                if !known.contains_key(&uin) {
                    problems.push(format!("{who} names unknown account {uin}"));
                }
            }
            if a == b {
                problems.push(format!("{who}: an account cannot be its own friend"));
            }
            if !seen.insert((a.min(b), a.max(b))) {
                problems.push(format!("{who} is listed twice"));
            }
            for uin in [a, b] {
                let count = counts.entry(uin).or_default();
                *count += 1;
                if *count == MAX_FRIENDS + 1 {
                    problems.push(format!("account {uin} has more than {MAX_FRIENDS} friends"));
                }
            }
        }
    }

    /// The accounts to create (ranges expanded), passwords as MD5.
    pub fn seeds(&self) -> Vec<AccountSeed> {
        let mut seeds: Vec<AccountSeed> = self
            .accounts
            .iter()
            .map(|spec| AccountSeed {
                account: Account {
                    uin: spec.uin,
                    nick: spec.nick.clone(),
                    face: spec.face,
                    add_policy: spec.add_policy,
                    profile: spec.profile.clone(),
                    password_md5: PasswordHash::from_password(&spec.password.0),
                },
                presence: spec.presence,
                echo: spec.script.echo,
            })
            .collect();
        for range in &self.account_ranges {
            let password_md5 = PasswordHash::from_password(&range.password.0);
            let last = range.first_uin.saturating_add(u64::from(range.count));
            seeds.extend((range.first_uin..last).map(|uin| AccountSeed {
                account: Account {
                    uin,
                    nick: format!("{}{uin}", range.nick_prefix),
                    face: 0,
                    add_policy: range.add_policy,
                    profile: Profile::default(),
                    password_md5: password_md5.clone(),
                },
                presence: range.presence,
                echo: false,
            }));
        }
        seeds
    }

    /// The groups to create.
    pub fn world_groups(&self) -> Vec<Group> {
        self.groups.iter().map(GroupSpec::to_group).collect()
    }

    /// The groups whose member chatters, with the chatter.
    pub fn group_chatter(&self) -> Vec<(u64, GroupChatter)> {
        self.groups
            .iter()
            .filter_map(|g| Some((g.number, g.chatter.clone()?)))
            .collect()
    }

    /// Categories and marknames of the accounts that have any.
    pub fn contact_books(&self) -> Vec<(u64, ContactBook)> {
        self.accounts
            .iter()
            .filter(|spec| !spec.categories.is_empty() || !spec.marknames.is_empty())
            .map(|spec| (spec.uin, spec.contact_book()))
            .collect()
    }

    /// The fixed WebQQ captcha codes, by account.
    pub fn captchas(&self) -> HashMap<u64, String> {
        self.accounts
            .iter()
            .filter_map(|spec| Some((spec.uin, spec.captcha.clone()?)))
            .collect()
    }

    /// The accounts that cycle their status, with their cycles.
    pub fn status_cycles(&self) -> Vec<(u64, StatusCycle)> {
        self.accounts
            .iter()
            .filter_map(|spec| Some((spec.uin, spec.script.status_cycle.clone()?)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_example_file_equals_the_built_in_demo() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenario.demo.yaml");
        let from_file = Scenario::load(&path).unwrap();
        assert_eq!(from_file, Scenario::demo());
        Scenario::demo().validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = Scenario::from_yaml("accounts: []\nquirk: {}\n").unwrap_err();
        assert!(error.to_string().contains("quirk"), "{error}");
        let error = Scenario::from_yaml("quirks: { login_echo: LOGIN }\n").unwrap_err();
        assert!(error.to_string().contains("login_echo"), "{error}");
        let error = Scenario::from_yaml("quirks: { addtolist_deny_code: 4 }\n").unwrap_err();
        assert!(error.to_string().contains("2 or 3"), "{error}");
    }

    #[test]
    fn validation_names_each_problem() {
        let yaml = r#"
time_scale: 0
quirks: { null_on_lowercase_h: 2.0, double_reply_separator: "xx" }
accounts:
  - { uin: 100, password: a, nick: short }
  - { uin: 20000, password: "", nick: b }
  - { uin: 20000, password: c, nick: c }
friendships:
  - [20000, 30000]
  - [20000, 20000]
"#;
        let Err(ScenarioError::Invalid(problems)) = Scenario::from_yaml(yaml) else {
            panic!("accepted an invalid scenario");
        };
        let text = problems.join("\n");
        for expected in [
            "time_scale",
            "null_on_lowercase_h",
            "double_reply_separator",
            "account 100: QQ numbers below 10000",
            "account 20000: the password is empty",
            "account 20000 is defined more than once",
            "friendship [20000, 30000] names unknown account 30000",
            "friendship [20000, 20000]: an account cannot be its own friend",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
        }
    }

    #[test]
    fn ranges_expand_and_quirks_default() {
        let scenario = Scenario::from_yaml(
            "account_ranges:\n  - { first_uin: 50000, count: 3, password: p, nick_prefix: n }\nfriendships: [[50000, 50002]]\n",
        )
        .unwrap();
        let seeds = scenario.seeds();
        let uins: Vec<u64> = seeds.iter().map(|s| s.account.uin).collect();
        assert_eq!(uins, [50000, 50001, 50002]);
        assert_eq!(seeds[1].account.nick, "n50001");
        assert!(seeds[2]
            .account
            .password_md5
            .matches(&PasswordHash::from_password("p")));
        assert_eq!(scenario.quirks, Quirks::default());
        assert!(format!("{scenario:?}").contains("ScenarioPassword(<redacted>)"));
    }
}
