//! The IRC side: the built-in gateway server (BitlBee-style).

pub mod gateway;
