//! QQ groups as IRC channels: `#<group name sanitised>` (pinyin for Chinese,
//! a stable suffix on collisions, remembered as a portal so the name
//! survives restarts), with the members as users and their group card as
//! realname. Groups come from the user's QQ session when its protocol has
//! them (WebQQ); with HTTP QQ 1.1 there are none and nothing here shows.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::core::model::{ChatId, GroupInfo, GroupNumber, Uin};
use crate::core::text::{irc_lowercase, nick_candidates};
use crate::store::Portal;

use super::buddies::{GroupChannel, Naming, UserView};
use super::sessions::Gateway;
use super::{CHANNELLEN, CONTROL_CHANNEL, SIDE_NAME};

/// Longest wait for the QQ server to list groups.
const GROUPS_TIMEOUT: Duration = Duration::from_secs(15);

impl Gateway {
    /// The user's QQ groups, when their protocol has groups.
    pub(crate) async fn load_groups(&self, user: &str) -> Vec<GroupInfo> {
        match tokio::time::timeout(GROUPS_TIMEOUT, self.core.groups(user)).await {
            Ok(Ok(groups)) => groups,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot list QQ groups");
                Vec::new()
            }
            Err(_) => {
                tracing::warn!("listing QQ groups timed out");
                Vec::new()
            }
        }
    }

    /// Replaces the view's groups with `groups`, naming channels and members.
    pub(crate) async fn apply_groups(
        &self,
        v: &mut UserView,
        naming: &Naming<'_>,
        owner: Uin,
        groups: Vec<GroupInfo>,
    ) {
        let mut next: BTreeMap<GroupNumber, GroupChannel> = BTreeMap::new();
        for info in groups {
            let name = self.channel_name(v, &next, owner, &info).await;
            let mut members = BTreeSet::new();
            let mut cards = BTreeMap::new();
            for member in &info.members {
                if member.uin == owner {
                    continue;
                }
                v.name(naming, member.uin, &member.nick, member.display_name())
                    .await;
                members.insert(member.uin);
                if let Some(card) = member.card.as_ref().filter(|c| !c.trim().is_empty()) {
                    cards.insert(member.uin, card.clone());
                }
            }
            next.insert(
                info.number,
                GroupChannel {
                    name,
                    topic: info.name.clone(),
                    members,
                    cards,
                },
            );
        }
        v.groups = next;
    }

    /// A channel for a group we have a message from but no listing of.
    pub(crate) async fn placeholder_group(
        &self,
        v: &mut UserView,
        owner: Uin,
        number: GroupNumber,
    ) {
        let info = GroupInfo {
            number,
            name: format!("qq{number}"),
            members: Vec::new(),
        };
        let name = self.channel_name(v, &v.groups.clone(), owner, &info).await;
        v.groups.insert(
            number,
            GroupChannel {
                name,
                topic: format!("QQ group {number}"),
                members: BTreeSet::new(),
                cards: BTreeMap::new(),
            },
        );
    }

    /// The channel name of a group: the one it had, else a new one from its
    /// name that no other group of this user has.
    async fn channel_name(
        &self,
        v: &UserView,
        taken: &BTreeMap<GroupNumber, GroupChannel>,
        owner: Uin,
        info: &GroupInfo,
    ) -> String {
        let chat = ChatId::Group(info.number);
        let in_use = |name: &str| {
            let folded = irc_lowercase(name);
            folded == CONTROL_CHANNEL
                || taken
                    .iter()
                    .any(|(n, g)| *n != info.number && irc_lowercase(&g.name) == folded)
        };
        if let Some(current) = v.groups.get(&info.number) {
            if !in_use(&current.name) {
                return current.name.clone();
            }
        }
        if let Ok(Some(portal)) = self.store.portal(owner, &chat, SIDE_NAME).await {
            if !in_use(&portal.target) {
                return portal.target;
            }
        }
        for candidate in nick_candidates(&info.name, Uin(info.number.0), CHANNELLEN - 1) {
            let name = format!("#{candidate}");
            if in_use(&name) {
                continue;
            }
            match self.store.portal_by_target(SIDE_NAME, &name).await {
                Ok(portals) if portals.iter().any(|p| p.owner == owner && p.chat != chat) => {
                    continue
                }
                _ => {}
            }
            let portal = Portal {
                owner,
                chat,
                side: SIDE_NAME.to_owned(),
                target: name.clone(),
            };
            if let Err(e) = self.store.save_portal(&portal).await {
                tracing::warn!(error = %e, "cannot remember a group channel name");
            }
            return name;
        }
        format!("#qq{}", info.number)
    }
}
