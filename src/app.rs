//! Wiring (temporary stub while the QQ client, simulator and gateway land).

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::config::Config;

pub async fn run(_config: Config) -> anyhow::Result<()> {
    anyhow::bail!("not wired yet")
}

pub async fn run_simulator(
    _listen: SocketAddr,
    _scenario: Option<PathBuf>,
    _control: Option<SocketAddr>,
) -> anyhow::Result<()> {
    anyhow::bail!("not wired yet")
}

pub async fn registration(_config: &Config) -> anyhow::Result<String> {
    anyhow::bail!("not wired yet")
}
