//! Message text translation: the one place where message text is rendered
//! for, and parsed from, QQ, Matrix and IRC. Every side goes through these
//! functions, so a face, mention or link means the same thing everywhere.
//!
//! - Plain text ([`render_plain`], [`parse_plain`]): QQ wire text, IRC and
//!   the Matrix `body`; face codes (`[微笑]`, `/微笑`) and URLs;
//!   [`emoji_to_faces`] for WebQQ.
//! - QQ wire clean-up ([`clean_qq_wire`]): the server's trailing space,
//!   `\r` line breaks, the Q+ Web advertisement.
//! - Matrix ([`render_matrix`], [`parse_matrix_html`]): `formatted_body`
//!   with escaping, and HTML back to rich text.
//! - IRC ([`split_irc_lines`], [`parse_irc`], [`render_irc_lines`]):
//!   formatting codes, CTCP ACTION, line splitting that cannot inject
//!   commands; nicks ([`irc_nick_from_qq_nick`], [`nick_candidates`]).
//! - Length limits ([`split_message_for_limit`]) share one cutter with IRC.

mod entities;
#[cfg(feature = "matrix")]
pub(crate) use entities::escape_html;
mod html;
mod irc;
mod matrix_parse;
mod matrix_render;
mod nick;
mod plain;
mod qq_wire;
mod split;
mod url;

pub use irc::{
    irc_payload_budget, parse_ctcp, parse_irc, parse_irc_action, render_irc_action,
    render_irc_lines, split_irc_lines, strip_irc_formatting, CTCP_ACTION_OVERHEAD,
    IRC_MAX_LINE_BYTES,
};
pub use matrix_parse::{matrix_user_id_from_link, parse_matrix_html, ResolveUser};
pub use matrix_render::render_matrix;
pub use nick::{
    irc_lowercase, irc_nick_from_qq_nick, is_valid_irc_nick, nick_candidates, sanitize_irc_nick,
};
pub use plain::{emoji_to_faces, face_text, parse_plain, render_plain, FaceStyle};
pub use qq_wire::{clean_qq_wire, clean_qq_wire_text};
pub use split::{split_message_for_limit, MIN_PIECE_BYTES};
