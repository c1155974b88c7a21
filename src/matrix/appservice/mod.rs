//! The application service API the homeserver calls: the HTTP listener
//! (`server`) and the stored transaction queue behind it (`txn_queue`).

pub mod server;
pub mod txn_queue;
