//! The Matrix side (appservice and bot modes; not in this build yet).
