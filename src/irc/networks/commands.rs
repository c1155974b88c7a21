//! Commands sent privately to the bot: the shared command language (so an
//! IRC user can `login` with their own QQ account), plus `bridge` and
//! `unbridge` for admins, which this side handles itself. Replies are
//! notices from the bot.

use crate::config::{is_valid_channel, PermissionLevel};
use crate::core::bot::CommandContext;
use crate::core::command::{self, Command};
use crate::core::model::{ChatId, GroupNumber, Uin};
use crate::core::text::irc_lowercase;

use super::ids::{network_scope, person_user_id, relay_user_id};
use super::mappings::Mapping;
use super::network::Network;

impl Network {
    pub(crate) async fn on_command(&self, nick: &str, text: &str) {
        if crate::core::text::parse_ctcp(text).is_some() {
            return;
        }
        let user = person_user_id(self.name(), nick);
        // One user's commands run in the order they were sent (a `list`
        // right after `login` must see the login), others' alongside.
        let turn = self.command_turn(&user);
        let _turn = turn.lock().await;
        tracing::debug!(network = %self.name(), %user, command = %command::redact(text), "bot command");
        let lines = match command::parse(text) {
            Ok(Command::Bridge {
                group,
                network,
                channel,
            }) => vec![self.bridge(&user, group, &network, &channel).await],
            Ok(Command::Unbridge {
                group,
                network,
                channel,
            }) => vec![self.unbridge(&user, group, &network, &channel).await],
            Ok(cmd) => {
                let scope = network_scope(self.name());
                let ctx = CommandContext {
                    user: &user,
                    name_scope: Some(&scope),
                };
                let lines = self.core.execute(&ctx, cmd).await;
                // A captcha image cannot be shown on IRC.
                let _ = self.core.take_captcha_image(&user);
                lines
            }
            Err(e) => vec![e.to_string()],
        };
        for line in lines {
            self.tell(nick, &line).await;
        }
    }

    fn admin_check(&self, user: &str, network: &str) -> Result<(), String> {
        if self.core.permission(user) != Some(PermissionLevel::Admin) {
            return Err("only bridge admins may do that".to_owned());
        }
        if !network.eq_ignore_ascii_case(self.name()) {
            return Err(format!(
                "this bot serves the network {}; ask the bot on {network}",
                self.name()
            ));
        }
        Ok(())
    }

    /// `bridge <group> <network> <#channel>`: the group's messages go to
    /// the channel through a relay login that is in the group: a configured
    /// relay if one is, else the admin's own QQ login.
    async fn bridge(&self, user: &str, group: u64, network: &str, channel: &str) -> String {
        if let Err(why) = self.admin_check(user, network) {
            return why;
        }
        if !is_valid_channel(channel) {
            return format!("{channel} is not a channel name the bridge can use");
        }
        if let Some(m) = self.mappings.by_channel(channel) {
            return format!("{} is already bridged ({})", m.channel, m.chat);
        }
        let chat = ChatId::Group(GroupNumber(group));
        let mut candidates: Vec<String> = self
            .settings
            .relays
            .iter()
            .map(|r| relay_user_id(self.name(), Uin(r.uin)))
            .collect();
        candidates.push(user.to_owned());
        let mut relay = None;
        for candidate in candidates {
            let Some(owner) = self.core.login_of(&candidate) else {
                continue;
            };
            if self.mappings.channels_for(owner, &chat).is_empty()
                && self.is_member(&candidate, group).await
            {
                relay = Some((candidate, owner));
                break;
            }
        }
        let Some((relay_user, owner)) = relay else {
            return format!(
                "no QQ login here is a member of group {group}: log in with an account \
                 in the group first (or it is already bridged)"
            );
        };
        let mapping = Mapping {
            channel: channel.to_owned(),
            owner,
            chat,
            relay_user,
            from_config: false,
        };
        if let Err(e) = self
            .mappings
            .add(self.store.as_ref(), self.name(), mapping)
            .await
        {
            return format!("could not save the bridge: {e}");
        }
        if let Some(bot) = self.bot_link() {
            self.bot_join(&bot, channel).await;
        }
        format!("bridged QQ group {group} to {channel} (relayed by QQ {owner})")
    }

    async fn is_member(&self, user: &str, group: u64) -> bool {
        let Ok(session) = self.core.session_of(user) else {
            return false;
        };
        session
            .groups()
            .await
            .is_ok_and(|groups| groups.iter().any(|g| g.number.0 == group))
    }

    async fn unbridge(&self, user: &str, group: u64, network: &str, channel: &str) -> String {
        if let Err(why) = self.admin_check(user, network) {
            return why;
        }
        let Some(mapping) = self
            .mappings
            .by_channel(channel)
            .filter(|m| m.chat == ChatId::Group(GroupNumber(group)))
        else {
            return format!("group {group} is not bridged to {channel}");
        };
        if mapping.from_config {
            return format!(
                "{channel} is bridged in the config file; remove it there (and restart)"
            );
        }
        if let Err(e) = self
            .mappings
            .remove(self.store.as_ref(), self.name(), &mapping)
            .await
        {
            return format!("could not remove the bridge: {e}");
        }
        let folded = irc_lowercase(channel);
        let mut leaving = Vec::new();
        for puppet in self.puppets.all() {
            puppet.forget_channel(channel);
            if let Some(link) = puppet.live_link().filter(|l| l.is_joined(&folded)) {
                leaving.push(link);
            }
        }
        if let Some(bot) = self.bot_link() {
            leaving.push(bot);
        }
        for link in leaving {
            let _ = link
                .send(irc::proto::Command::PART(
                    channel.to_owned(),
                    Some("unbridged".to_owned()),
                ))
                .await;
        }
        format!("unbridged QQ group {group} from {channel}")
    }
}
