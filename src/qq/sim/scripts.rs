//! Scripted accounts that act by themselves inside the world. Echo
//! accounts answer in [`World::send_message`] itself (a reply is just one
//! more delivery); this module runs the status cycles, one small task per
//! cycling account, and the group chatter, one task per chatty group.

use std::sync::Arc;

use tokio::task::JoinHandle;

use super::events::Origin;
use super::scenario::{GroupChatter, StatusCycle};
use super::shutdown::ShutdownSignal;
use super::timing::TimeScale;
use super::world::World;

/// Starts one task per cycle; each changes the account's presence every
/// `every_s` (scaled), going round the list, until shutdown.
pub(crate) fn spawn_status_cycles(
    world: &Arc<World>,
    cycles: Vec<(u64, StatusCycle)>,
    scale: TimeScale,
    shutdown: &ShutdownSignal,
) -> Vec<JoinHandle<()>> {
    cycles
        .into_iter()
        .filter(|(_, cycle)| !cycle.statuses.is_empty())
        .map(|(uin, cycle)| {
            let world = Arc::clone(world);
            let mut shutdown = shutdown.clone();
            let period = scale
                .secs(cycle.every_s)
                .max(std::time::Duration::from_millis(1));
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(period);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await; // The first tick is immediate; the scenario's presence stands first.
                for presence in cycle.statuses.iter().cycle() {
                    tokio::select! {
                        _ = shutdown.triggered() => return,
                        _ = ticker.tick() => {
                            world.set_presence(uin, *presence, Origin::Script);
                        }
                    }
                }
            })
        })
        .collect()
}

/// Starts one task per chatty group; each has its member say the next
/// line every `every_s` (scaled), going round the lines, until shutdown.
pub(crate) fn spawn_group_chatter(
    world: &Arc<World>,
    chatter: Vec<(u64, GroupChatter)>,
    scale: TimeScale,
    shutdown: &ShutdownSignal,
) -> Vec<JoinHandle<()>> {
    chatter
        .into_iter()
        .filter(|(_, chatter)| !chatter.lines.is_empty())
        .map(|(group, chatter)| {
            let world = Arc::clone(world);
            let mut shutdown = shutdown.clone();
            let period = scale
                .secs(chatter.every_s)
                .max(std::time::Duration::from_millis(1));
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(period);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                ticker.tick().await; // The first tick is immediate; nobody talks at once.
                for line in chatter.lines.iter().cycle() {
                    tokio::select! {
                        _ = shutdown.triggered() => return,
                        _ = ticker.tick() => {
                            world.send_group_message(group, chatter.from, line, Origin::Script);
                        }
                    }
                }
            })
        })
        .collect()
}
