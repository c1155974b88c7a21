//! Shared test support. Each part is a submodule, so a test binary can
//! include just what it needs (`#[path = "support/gateway.rs"] mod support;`)
//! or all of it (`mod support;`):
//! - `gateway`: the IRC gateway rig (fake QQ network, bridge rig, IRC
//!   clients, log capture);
//! - `process`, `ngircd`, `synapse`: real-server harnesses.

#![allow(dead_code)]

pub mod gateway;

// ---------------------------------------------------------------- real servers
// Harnesses that start a real Synapse homeserver and a real ngIRCd server
// (installed by scripts/install-test-deps).

pub mod ngircd;
pub mod process;
pub mod synapse;

#[allow(unused_imports)]
pub use process::{deadline_in, free_port, wait_until};
