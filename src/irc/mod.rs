//! The IRC side: the built-in gateway server (BitlBee-style) and puppet
//! connections on existing IRC networks.

pub mod gateway;
pub mod networks;
