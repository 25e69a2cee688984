//! Scopes: checkpoints, what a reset reports, and the one implementation of `scope` that both
//! arenas use.
//!
//! A checkpoint is a position of the cursor in one invocation of one arena. Resetting to it rewinds
//! the cursor there, so whatever was freed since is reused; blocks still live stay where they are
//! and are skipped (the core's line counts see to it), so no reset ever has to *keep* a range, and
//! none can hand out live memory. Checkpoints of another arena, or of an earlier invocation, are
//! refused: a clear panic in debug builds, [`Reset::Refused`] (and no change) in release builds.
//!
//! Must never: touch memory, or panic while an arena's lock is held (the wrappers call
//! [`report`] after unlocking).
#![forbid(unsafe_code)]

/// A position in an arena to come back to with `reset_to`.
///
/// Obtained from `checkpoint()`; valid, any number of times, until the arena's next invocation
/// starts (see `reset`). Resetting to it afterwards, or on another arena, is refused with
/// [`CheckpointError`] (and panics in debug builds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a checkpoint does nothing until an arena is reset to it"]
pub struct Checkpoint {
    pub(crate) owner: usize,
    pub(crate) invocation: u32,
    /// The cursor when it was taken.
    pub(crate) offset: usize,
    /// The core's count of bytes reclaimed when it was taken.
    pub(crate) reclaimed: usize,
}

/// Why a checkpoint was refused. A refused reset changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointError {
    /// The checkpoint was taken on another arena.
    ForeignArena,
    /// The checkpoint was taken in an earlier invocation (before the last `reset`).
    Stale,
}

impl core::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            CheckpointError::ForeignArena => "checkpoint belongs to another arena",
            CheckpointError::Stale => "checkpoint is stale: it was taken before the last reset()",
        })
    }
}

/// What a reset did.
///
/// ```
/// use core::alloc::Layout;
/// use flare_arena::{Arena, Reset};
///
/// let mut buffer = [0u8; 8192];
/// let mut arena = Arena::new(&mut buffer);
/// let cp = arena.checkpoint();
/// let kept = arena.alloc(Layout::new::<[u64; 4]>()); // still live at the reset
/// let scratch_layout = Layout::from_size_align(100, 8).unwrap(); // 104 bytes, rounded up to 8
/// let scratch = arena.alloc(scratch_layout);
/// let newest = arena.alloc(Layout::new::<u64>());
/// unsafe {
///     arena.dealloc(scratch, scratch_layout); // reclaimed
///     arena.dealloc(newest, Layout::new::<u64>()); // the newest block: given back at once
/// }
/// let expected = Reset::Rewound { reclaimed: 104, live: 32, live_blocks: 1 };
/// assert_eq!(arena.reset_to(cp), expected);
/// # let _ = kept;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "a reset reports what it reclaimed and what is still live"]
pub enum Reset {
    /// The cursor went back: everything handed out since the checkpoint (or, for `reset`, since
    /// the last invocation began, host buffers included) is reusable, but for the lines that live
    /// blocks still overlap; those stay where they are.
    Rewound {
        /// Bytes reclaimed since the checkpoint (for `reset`: since the last invocation
        /// began): the blocks freed since (each rounded up to a multiple of 8), the tails of
        /// blocks shrunk since, and, for `reset`, the ending invocation's host buffers. A block
        /// freed (or shrunk) while it ended at the cursor (the newest block), which gives its
        /// bytes back to the cursor at once as in any bump allocator, is not counted. So for a
        /// scope that frees all it allocates this is how far its allocations had taken the
        /// cursor (0.1's `Reclaimed { bytes }`); blocks allocated before the checkpoint and
        /// freed since count too. (It costs the allocation and free fast paths nothing: the
        /// core works it out from where runs start and the table's live bytes.)
        reclaimed: usize,
        /// Bytes of the blocks still live in the whole arena (each rounded up to a multiple of
        /// 8; host buffers are not blocks). The memory they keep is the lines they overlap:
        /// [`Stats::live_lines`](crate::Stats::live_lines).
        live: usize,
        /// Counted blocks still live in the whole arena.
        live_blocks: usize,
    },
    /// The checkpoint was not valid for this arena; nothing changed.
    Refused(CheckpointError),
}

impl Reset {
    /// Bytes reclaimed since the checkpoint (0 if refused): see [`Reset::Rewound`].
    pub fn reclaimed(&self) -> usize {
        match *self {
            Reset::Rewound { reclaimed, .. } => reclaimed,
            Reset::Refused(_) => 0,
        }
    }

    /// Bytes of the blocks still live after the reset (0 if refused).
    pub fn live(&self) -> usize {
        match *self {
            Reset::Rewound { live, .. } => live,
            Reset::Refused(_) => 0,
        }
    }

    /// Whether the checkpoint was refused.
    pub fn is_refused(&self) -> bool {
        matches!(self, Reset::Refused(_))
    }
}

/// Turns a refused checkpoint into a clear panic in debug builds; release builds return the
/// refusal. Callers holding a lock must release it first.
#[inline]
pub(crate) fn report(result: Reset) -> Reset {
    if let Reset::Refused(error) = result {
        refused(error);
    }
    result
}

#[cold]
#[track_caller]
fn refused(error: CheckpointError) {
    debug_assert!(false, "flare-arena: reset refused: {error}");
    let _ = error;
}

/// An arena as a scope sees it: both [`GlobalArena`](crate::GlobalArena) (through `&`) and
/// [`Arena`](crate::Arena) (through `&mut`) implement it, so they share [`ScopeGuard`].
pub(crate) trait Rewind {
    /// A checkpoint at the cursor.
    fn mark(&mut self) -> Checkpoint;
    /// Resets to `cp` without reporting a refusal: a scope whose checkpoint went stale (the body
    /// started a new invocation) just ends.
    fn rewind_quietly(&mut self, cp: Checkpoint);
}

/// Resets to its checkpoint when dropped, so a scope ends the same way whether its body returns or
/// unwinds.
pub(crate) struct ScopeGuard<A: Rewind> {
    pub(crate) arena: A,
    cp: Checkpoint,
}

impl<A: Rewind> ScopeGuard<A> {
    pub(crate) fn new(mut arena: A) -> Self {
        let cp = arena.mark();
        ScopeGuard { arena, cp }
    }
}

impl<A: Rewind> Drop for ScopeGuard<A> {
    fn drop(&mut self) {
        self.arena.rewind_quietly(self.cp);
    }
}
