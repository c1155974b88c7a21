//! Contacts, groups and profiles of a session, and the reverse lookups the
//! sender needs (real number → alias, group number → gid).
//!
//! [`Roster`] caches the last friend list, group list and group details in
//! alias space, plus presence learned from status events and group
//! `stats`. Everything handed to the core is translated to real numbers
//! through [`super::aliases::Aliases`].

use std::collections::HashMap;

use futures::stream::{self, StreamExt};

use super::api::{retcode_ends_session, ApiError};
use super::json::{FriendsResult, GroupInfoResult, GroupName};
use super::session::SessionCore;
use crate::core::model::{Contact, GroupInfo, GroupMember, GroupNumber, Presence, Profile, Uin};
use crate::qq::QqError;

/// Group details kept at most (one per group of the account).
const MAX_GROUP_INFOS: usize = 1024;
/// The default category, which `get_user_friends2` never lists.
pub const DEFAULT_CATEGORY: &str = "我的好友";

/// What the session knows about its contacts, in alias space.
#[derive(Debug, Default)]
pub struct Roster {
    pub friends: Option<FriendsResult>,
    pub groups: Option<Vec<GroupName>>,
    /// Group details by group code.
    pub group_infos: HashMap<u64, GroupInfoResult>,
    /// gid → code, from the group list and from group events.
    pub gid_to_code: HashMap<u64, u64>,
    /// Presence by person alias.
    pub presence: HashMap<u64, Presence>,
}

impl Roster {
    /// A friend's display name: mark name, else nick.
    pub fn friend_name(&self, alias: u64) -> Option<String> {
        let friends = self.friends.as_ref()?;
        friends
            .marknames
            .iter()
            .find(|m| m.uin == alias && !m.markname.is_empty())
            .map(|m| m.markname.clone())
            .or_else(|| {
                friends
                    .info
                    .iter()
                    .find(|i| i.uin == alias)
                    .map(|i| i.nick.clone())
            })
    }

    /// A member's name in a group: the card, else the nick.
    pub fn member_name(&self, code: u64, alias: u64) -> Option<String> {
        let info = self.group_infos.get(&code)?;
        info.cards
            .iter()
            .find(|c| c.muin == alias && !c.card.is_empty())
            .map(|c| c.card.clone())
            .or_else(|| {
                info.minfo
                    .iter()
                    .find(|m| m.uin == alias)
                    .map(|m| m.nick.clone())
            })
    }

    /// The gid of a group code.
    pub fn gid_of(&self, code: u64) -> Option<u64> {
        self.gid_to_code
            .iter()
            .find(|(_, c)| **c == code)
            .map(|(gid, _)| *gid)
    }

    fn store_group_info(&mut self, code: u64, info: GroupInfoResult) {
        for stat in &info.stats {
            self.presence.insert(stat.uin, presence_of_stat(stat.stat));
        }
        if info.ginfo.gid != 0 {
            self.gid_to_code.insert(info.ginfo.gid, code);
        }
        if self.group_infos.len() >= MAX_GROUP_INFOS && !self.group_infos.contains_key(&code) {
            self.group_infos.clear();
        }
        self.group_infos.insert(code, info);
    }
}

/// A status string (webqq.md §7) as others see it.
pub fn presence_of_status(status: &str) -> Presence {
    match status.trim().to_ascii_lowercase().as_str() {
        "online" | "callme" => Presence::Online,
        "away" => Presence::Away,
        "busy" | "silent" => Presence::Busy,
        "hidden" | "offline" | "" => Presence::Offline,
        _ => Presence::Online,
    }
}

/// A numeric `stat` (lwqq's enum: 10 online, 20 offline, 30 away, 40
/// hidden, 50 busy, 60 callme, 70 silent).
pub fn presence_of_stat(stat: i64) -> Presence {
    match stat {
        10 | 60 => Presence::Online,
        30 => Presence::Away,
        50 | 70 => Presence::Busy,
        _ => Presence::Offline,
    }
}

/// Whether a failed lookup should fail the whole listing (the session or
/// the server is gone) rather than skip one entry.
fn is_fatal(e: &ApiError) -> bool {
    match e {
        ApiError::Transport(_) => true,
        ApiError::Retcode(code) => retcode_ends_session(*code),
        ApiError::Malformed(_) => false,
    }
}

impl SessionCore {
    fn roster<T>(&self, read: impl FnOnce(&mut Roster) -> T) -> Option<T> {
        self.roster.lock().ok().map(|mut r| read(&mut r))
    }

    /// Fetches the friend list and caches it.
    pub(super) async fn load_friends(&self) -> Result<FriendsResult, ApiError> {
        let friends = self.api.friends(self.own.0).await?;
        self.roster(|r| r.friends = Some(friends.clone()));
        Ok(friends)
    }

    /// Fetches the group list and caches it.
    pub(super) async fn load_groups(&self) -> Result<Vec<GroupName>, ApiError> {
        let groups = self.api.groups().await?.gnamelist;
        self.roster(|r| {
            for g in &groups {
                r.gid_to_code.insert(g.gid, g.code);
            }
            r.groups = Some(groups.clone());
        });
        Ok(groups)
    }

    /// Fetches one group's details and caches them.
    pub(super) async fn load_group_info(&self, code: u64) -> Result<GroupInfoResult, ApiError> {
        let info = self.api.group_info(code).await?;
        self.roster(|r| r.store_group_info(code, info.clone()));
        Ok(info)
    }

    /// Cached group details, fetched once when missing.
    pub(super) async fn group_info(&self, code: u64) -> Result<GroupInfoResult, ApiError> {
        if let Some(Some(info)) = self.roster(|r| r.group_infos.get(&code).cloned()) {
            return Ok(info);
        }
        self.load_group_info(code).await
    }

    /// The real number of a person alias; the own number is real already.
    pub(super) async fn real_person(&self, alias: u64) -> Result<Uin, ApiError> {
        if alias == self.own.0 {
            return Ok(self.own);
        }
        self.aliases.person(&self.api, alias).await
    }

    /// Resolves many aliases, a few at a time, in order.
    async fn resolve_people(&self, aliases: Vec<u64>) -> Vec<(u64, Result<Uin, ApiError>)> {
        let concurrency = self.options.lookup_concurrency.max(1);
        stream::iter(aliases)
            .map(|alias| async move { (alias, self.real_person(alias).await) })
            .buffered(concurrency)
            .collect()
            .await
    }

    /// The buddy list with real numbers.
    pub(super) async fn contacts_now(&self) -> Result<Vec<Contact>, QqError> {
        let friends = self.load_friends().await?;
        let aliases: Vec<u64> = friends.friends.iter().map(|f| f.uin).collect();
        let resolved = self.resolve_people(aliases).await;
        let presence = self.roster(|r| r.presence.clone()).unwrap_or_default();
        let mut contacts = Vec::with_capacity(resolved.len());
        for ((alias, real), entry) in resolved.into_iter().zip(&friends.friends) {
            let uin = match real {
                Ok(uin) => uin,
                Err(e) if is_fatal(&e) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = ?e, "skipping a friend whose number is unknown");
                    continue;
                }
            };
            let info = friends.info.iter().find(|i| i.uin == alias);
            let category = match entry.categories {
                0 => Some(DEFAULT_CATEGORY.to_owned()),
                index => friends
                    .categories
                    .iter()
                    .find(|c| c.index == index)
                    .map(|c| c.name.clone()),
            };
            contacts.push(Contact {
                uin,
                nick: info
                    .map(|i| i.nick.clone())
                    .unwrap_or_else(|| uin.to_string()),
                mark_name: friends
                    .marknames
                    .iter()
                    .find(|m| m.uin == alias && !m.markname.is_empty())
                    .map(|m| m.markname.clone()),
                presence: presence.get(&alias).copied().unwrap_or(Presence::Offline),
                face: info.map_or(0, |i| u32::try_from(i.face).unwrap_or(0)),
                category,
            });
        }
        Ok(contacts)
    }

    /// The groups with real numbers, members and cards.
    pub(super) async fn groups_now(&self) -> Result<Vec<GroupInfo>, QqError> {
        let groups = self.load_groups().await?;
        let mut out = Vec::with_capacity(groups.len());
        for group in groups {
            let number = match self.aliases.group(&self.api, group.code).await {
                Ok(number) => number,
                Err(e) if is_fatal(&e) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(error = ?e, "skipping a group whose number is unknown");
                    continue;
                }
            };
            let info = match self.load_group_info(group.code).await {
                Ok(info) => info,
                Err(e) if is_fatal(&e) => return Err(e.into()),
                Err(e) => {
                    tracing::warn!(%number, error = ?e, "group details unavailable");
                    GroupInfoResult::default()
                }
            };
            let members = self.members_of(group.code, &info).await?;
            out.push(GroupInfo {
                number,
                name: group.name,
                members,
            });
        }
        Ok(out)
    }

    async fn members_of(
        &self,
        code: u64,
        info: &GroupInfoResult,
    ) -> Result<Vec<GroupMember>, QqError> {
        let aliases: Vec<u64> = info.ginfo.members.iter().map(|m| m.muin).collect();
        let mut members = Vec::with_capacity(aliases.len());
        for (alias, real) in self.resolve_people(aliases).await {
            let uin = match real {
                Ok(uin) => uin,
                Err(e) if is_fatal(&e) => return Err(e.into()),
                Err(e) => {
                    tracing::debug!(error = ?e, "skipping a member whose number is unknown");
                    continue;
                }
            };
            let nick = info
                .minfo
                .iter()
                .find(|m| m.uin == alias)
                .map(|m| m.nick.clone())
                .unwrap_or_else(|| uin.to_string());
            let card = self
                .roster(|r| {
                    r.group_infos.get(&code).and_then(|i| {
                        i.cards
                            .iter()
                            .find(|c| c.muin == alias && !c.card.is_empty())
                            .map(|c| c.card.clone())
                    })
                })
                .flatten();
            members.push(GroupMember { uin, nick, card });
        }
        Ok(members)
    }

    /// The alias of a buddy, looking through the friend list if needed.
    pub(super) async fn friend_alias(&self, real: Uin) -> Result<u64, QqError> {
        if let Some(alias) = self.aliases.alias_of(real) {
            return Ok(alias);
        }
        let friends = match self.roster(|r| r.friends.clone()).flatten() {
            Some(friends) => friends,
            None => self.load_friends().await?,
        };
        for entry in &friends.friends {
            if self.aliases.cached_person(entry.uin).is_some() {
                continue;
            }
            match self.real_person(entry.uin).await {
                Ok(uin) if uin == real => return Ok(entry.uin),
                Ok(_) => {}
                Err(e) if is_fatal(&e) => return Err(e.into()),
                Err(_) => {}
            }
        }
        Err(QqError::UnknownContact(real.to_string()))
    }

    /// The (gid, code) of a group, looking through the group list if
    /// needed.
    pub(super) async fn group_ids(&self, real: GroupNumber) -> Result<(u64, u64), QqError> {
        if let Some(code) = self.aliases.code_of(real) {
            if let Some(Some(gid)) = self.roster(|r| r.gid_of(code)) {
                return Ok((gid, code));
            }
        }
        let groups = self.load_groups().await?;
        for group in &groups {
            match self.aliases.group(&self.api, group.code).await {
                Ok(number) if number == real => return Ok((group.gid, group.code)),
                Ok(_) => {}
                Err(e) if is_fatal(&e) => return Err(e.into()),
                Err(_) => {}
            }
        }
        Err(QqError::UnknownContact(format!("group {real}")))
    }

    /// The alias of a member of the group `code`.
    pub(super) async fn member_alias(&self, code: u64, real: Uin) -> Result<u64, QqError> {
        if let Some(alias) = self.aliases.alias_of(real) {
            return Ok(alias);
        }
        let info = self.group_info(code).await?;
        for member in &info.ginfo.members {
            match self.real_person(member.muin).await {
                Ok(uin) if uin == real => return Ok(member.muin),
                Ok(_) => {}
                Err(e) if is_fatal(&e) => return Err(e.into()),
                Err(_) => {}
            }
        }
        Err(QqError::UnknownContact(real.to_string()))
    }

    /// What the friend list and the cached group details know about a user
    /// (WebQQ's own profile call is not documented).
    pub(super) async fn profile_of(&self, uin: Uin) -> Result<Profile, QqError> {
        let alias = match self.friend_alias(uin).await {
            Ok(alias) => Some(alias),
            Err(QqError::UnknownContact(_)) => self.aliases.alias_of(uin),
            Err(e) => return Err(e),
        };
        let Some(alias) = alias else {
            return Err(QqError::UnknownContact(uin.to_string()));
        };
        let found = self.roster(|r| {
            let friend = r
                .friends
                .as_ref()
                .and_then(|f| f.info.iter().find(|i| i.uin == alias).cloned());
            let mark = r.friends.as_ref().and_then(|f| {
                f.marknames
                    .iter()
                    .find(|m| m.uin == alias && !m.markname.is_empty())
                    .map(|m| m.markname.clone())
            });
            let member = r
                .group_infos
                .values()
                .find_map(|g| g.minfo.iter().find(|m| m.uin == alias).cloned());
            (friend, mark, member, r.presence.get(&alias).copied())
        });
        let Some((friend, mark, member, presence)) = found else {
            return Err(QqError::UnknownContact(uin.to_string()));
        };
        if friend.is_none() && member.is_none() {
            return Err(QqError::UnknownContact(uin.to_string()));
        }
        let nick = friend
            .as_ref()
            .map(|f| f.nick.clone())
            .or_else(|| member.as_ref().map(|m| m.nick.clone()))
            .unwrap_or_default();
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        let mut details = Vec::new();
        if let Some(mark) = mark {
            details.push(("mark name".to_owned(), mark));
        }
        if let Some(m) = &member {
            if let Some(country) = nonempty(&m.country) {
                details.push(("country".to_owned(), country));
            }
            if let Some(city) = nonempty(&m.city) {
                details.push(("city".to_owned(), city));
            }
        }
        if let Some(p) = presence {
            details.push(("status".to_owned(), p.to_string()));
        }
        Ok(Profile {
            uin: Some(uin),
            nick,
            face: friend.and_then(|f| u32::try_from(f.face).ok()),
            gender: member.as_ref().and_then(|m| nonempty(&m.gender)),
            age: None,
            province: member.as_ref().and_then(|m| nonempty(&m.province)),
            details,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_strings_and_numbers() {
        assert_eq!(presence_of_status("online"), Presence::Online);
        assert_eq!(presence_of_status("callme"), Presence::Online);
        assert_eq!(presence_of_status("silent"), Presence::Busy);
        assert_eq!(presence_of_status("hidden"), Presence::Offline);
        assert_eq!(presence_of_status("away"), Presence::Away);
        assert_eq!(presence_of_stat(10), Presence::Online);
        assert_eq!(presence_of_stat(20), Presence::Offline);
        assert_eq!(presence_of_stat(40), Presence::Offline);
        assert_eq!(presence_of_stat(70), Presence::Busy);
    }
}
