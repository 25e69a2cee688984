//! Stats: a plain snapshot of what an arena did, cheap to take and easy to print.
//!
//! Owns the [`Stats`] type and its formatting. Must never: hold a reference into an arena, or be
//! updated on the allocation fast path (the core derives what it can when asked).

use core::fmt;

/// Counters of an arena at one moment. Byte figures exclude the arena's reserved first word.
///
/// ```
/// let mut buffer = [0u8; 1024];
/// let mut arena = flare_arena::Arena::new(&mut buffer);
/// let block = arena.alloc(core::alloc::Layout::new::<u64>());
/// assert!(!block.is_null());
/// let stats = arena.stats();
/// assert_eq!((stats.used, stats.live), (8, 1));
/// println!("{stats}");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes the region can hand out without growing.
    pub capacity: usize,
    /// The most `used` can ever reach: the arena's maximum size. `limit - used` is what a request
    /// can still get (growth may stop short of it if the system, or on wasm another user of
    /// `memory.grow`, takes the memory first).
    pub limit: usize,
    /// Bytes from the start of the region to the bump pointer.
    pub used: usize,
    /// The most `used` has ever been.
    pub high_water: usize,
    /// Counted allocations (through `GlobalAlloc` or `Arena::alloc`) not yet freed.
    /// Host buffers from `guest_alloc` are transient and never counted.
    pub live: usize,
    /// Open frames above init: 1 during an invocation, plus one per open scope.
    pub depth: usize,
    /// Resets performed (checked, unchecked, and the start of every invocation).
    pub resets: u64,
    /// Resets that kept their memory because something allocated since the checkpoint was live.
    pub kept: u64,
    /// Requests refused: exhaustion, overflow, bad sizes or alignments.
    pub failed: u64,
    /// Resets refused because their checkpoint was foreign, stale or never opened.
    pub refused: u64,
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "capacity {} B of {} B, used {} B, high water {} B, live {}, depth {}, resets {} (kept {}), failed {}, refused {}",
            self.capacity,
            self.limit,
            self.used,
            self.high_water,
            self.live,
            self.depth,
            self.resets,
            self.kept,
            self.failed,
            self.refused
        )
    }
}
