//! The translation core: the canonical model, portal routing, text
//! translation, loop prevention and de-duplication, and the bot command
//! language shared by every chat side.

pub mod bot;
pub mod bridge;
pub mod buddy_list;
pub mod command;
pub mod echo;
pub mod faces;
pub mod model;
pub mod outbox;
pub mod portal;
pub mod side;
pub mod text;

pub use bridge::{BridgeCore, CoreError};
pub use portal::PortalRouter;
pub use side::{ChatSide, DeliveryError, SideEvent};
