//! Stats: a plain snapshot of what an arena did, cheap to take and easy to print.
//!
//! Owns the [`Stats`] type and its formatting. Must never: hold a reference into an arena, or be
//! updated on the allocation fast path beyond the live counts (the core derives the rest when asked).
#![forbid(unsafe_code)]

use core::fmt;

/// Counters of an arena at one moment.
///
/// ```
/// let mut buffer = [0u8; 4096];
/// let mut arena = flare_arena::Arena::new(&mut buffer);
/// let block = arena.alloc(core::alloc::Layout::new::<u64>());
/// assert!(!block.is_null());
/// let stats = arena.stats();
/// assert_eq!((stats.live_blocks, stats.live_bytes, stats.live_lines), (1, 8, 1));
/// println!("{stats}");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes the region can hand out without growing (its lines; the line table is not counted).
    pub capacity: usize,
    /// The most `capacity` can ever reach: the arena's maximum size. Growth may stop short of it if
    /// the system, or on wasm another user of `memory.grow`, takes the memory first.
    pub limit: usize,
    /// The furthest any hole has reached: the part of the region in use so far. (A hole that
    /// raises it runs up to 16 KiB, or a sixteenth of the peak, past the request it was opened
    /// for, so this may exceed the bytes ever written by that much.)
    pub peak: usize,
    /// Counted allocations (through `GlobalAlloc` or `Arena::alloc`) not yet freed. Host buffers
    /// from the `alloc` export are transient and never counted.
    pub live_blocks: usize,
    /// Bytes of the counted blocks not yet freed, each rounded up to a multiple of 8.
    pub live_bytes: usize,
    /// Lines that a live block overlaps: the memory live blocks really hold, in
    /// [`LINE_BYTES`](crate::LINE_BYTES) units. (Counted by reading the line table, one byte per
    /// line: `stats()` takes time in proportion to the capacity, about 1 ns per 2 KiB of it.)
    pub live_lines: usize,
    /// Lines given to the cursor again after they had been used and freed: reuse at work. (A
    /// hole's lines count when the cursor is given the hole, whether or not it reaches its end.)
    pub lines_recycled: u64,
    /// Bytes reclaimed since the arena was made: blocks freed and tails of blocks shrunk (each a
    /// multiple of 8), and the host buffers of every invocation that ended, but for those given
    /// back at the cursor at once (a block freed while it was the newest). What each reset
    /// reclaimed is in its [`Reset`](crate::Reset).
    pub bytes_reclaimed: u64,
    /// Resets performed (`reset_to`, scope ends, and the start of every invocation).
    pub resets: u64,
    /// Requests refused: exhaustion, overflow, bad sizes or alignments.
    pub failed: u64,
    /// Resets refused because their checkpoint was foreign or stale.
    pub refused: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "capacity {} B of {} B, peak {} B, live {} blocks of {} B in {} lines, {} lines recycled, {} B reclaimed, resets {}, failed {}, refused {}",
            self.capacity,
            self.limit,
            self.peak,
            self.live_blocks,
            self.live_bytes,
            self.live_lines,
            self.lines_recycled,
            self.bytes_reclaimed,
            self.resets,
            self.failed,
            self.refused
        )
    }
}
