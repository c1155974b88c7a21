//! What the simulated world knows about one account, independent of any
//! protocol: identity, profile, friend-add policy and presence.
//!
//! The same types are used by the YAML scenario (so a scenario file reads
//! like the data it creates) and by the world at run time.

use serde::{Deserialize, Serialize};

use crate::qq::http11::codec::{BloodType, Constellation, Gender, PasswordHash, Zodiac};

/// Online status in the world. It is the union of what the protocols know:
/// HTTP QQ 1.1 has online/busy/invisible/offline, WebQQ adds away, silent
/// and "call me". Each protocol front end maps it to its own codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Presence {
    Online,
    Away,
    Busy,
    Silent,
    CallMe,
    Invisible,
    #[default]
    Offline,
}

impl Presence {
    /// What other accounts see: invisible is indistinguishable from offline.
    pub fn seen_by_others(self) -> Presence {
        match self {
            Presence::Invisible => Presence::Offline,
            other => other,
        }
    }

    /// Whether others see this account as present in any way.
    pub fn is_visible(self) -> bool {
        self.seen_by_others() != Presence::Offline
    }
}

/// How an account answers AddToList.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddPolicy {
    /// Anyone may add this account; AddToList succeeds at once.
    Open,
    /// A verification request must be accepted first (QQ's default).
    #[default]
    Verify,
    /// Nobody may add this account.
    Deny,
}

/// Profile fields shown by GetInfo (and searched by Finger). Unknown-meaning
/// fields of the detailed reply (`CV`, `ID`, `MT`, `MV`) are kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Profile {
    pub age: u32,
    pub gender: Gender,
    pub province: String,
    pub city: String,
    pub country: String,
    pub address: String,
    pub postcode: String,
    pub phone: String,
    pub mobile: String,
    pub email: String,
    pub homepage: String,
    pub occupation: String,
    pub school: String,
    pub real_name: String,
    /// Personal introduction (free text; commas and line breaks allowed).
    pub intro: String,
    pub blood_type: BloodType,
    pub constellation: Constellation,
    pub zodiac: Zodiac,
    pub cv: String,
    pub id: String,
    pub mt: String,
    pub mv: String,
}

/// An account's fixed data. The password exists only as its MD5 (what
/// HTTP QQ sends and what WebQQ's scheme starts from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub uin: u64,
    pub nick: String,
    /// Avatar id (`FC`).
    pub face: u32,
    pub add_policy: AddPolicy,
    pub profile: Profile,
    pub password_md5: PasswordHash,
}

/// The public face of an account as a contact list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub uin: u64,
    pub nick: String,
    pub face: u32,
    /// As others see it (never `Invisible`).
    pub presence: Presence,
}

/// Finger search criteria; `None` matches everybody.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SearchCriteria {
    pub age: Option<u32>,
    pub gender: Option<Gender>,
    pub province: Option<String>,
}

impl SearchCriteria {
    pub fn matches(&self, account: &Account) -> bool {
        let profile = &account.profile;
        self.age.is_none_or(|age| profile.age == age)
            && self.gender.is_none_or(|gender| profile.gender == gender)
            && self
                .province
                .as_deref()
                .is_none_or(|province| profile.province == province)
    }
}
