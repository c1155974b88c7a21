//! Entry points for the coverage-guided fuzz targets in `fuzz/` (see
//! README, "Fuzzing"), for the few input paths whose parser is not public
//! on its own. Hidden from the docs and not a stable API: everything else
//! the targets call is the crate's ordinary public API.

use crate::irc::gateway::wire::{Frame, LineReader};

/// Every frame the IRC gateway reads from a client that sends `bytes` and
/// then closes, exactly as a connection's read loop sees them.
pub fn gateway_frames(bytes: &[u8]) -> Vec<Frame> {
    let mut reader = LineReader::new(bytes);
    let mut frames = Vec::new();
    // A byte slice never makes a read wait, so this finishes without a
    // runtime; an I/O error cannot happen on a slice either.
    while let Ok(Some(frame)) = futures::executor::block_on(reader.next_frame()) {
        frames.push(frame);
    }
    frames
}

/// The method and Content-Length the simulator's HTTP server reads from a
/// request head (everything before the body), or `None` where it answers
/// 400.
pub fn sim_request_head(head: &[u8]) -> Option<(String, Option<usize>)> {
    crate::qq::sim::http::head_summary(head)
}
