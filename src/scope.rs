//! Scopes: the stack of checkpoint frames and the live count each one carries.
//!
//! Owns the bookkeeping that makes a reset *checked*: every frame covers the address range from its
//! `start` up to the next frame's start (the innermost one up to the bump pointer) and counts the
//! counted blocks still live in that range. A reset to a checkpoint may reclaim its range only when
//! the frames from that checkpoint upward all count zero.
//!
//! Frame 0 is the init frame (everything allocated before the first invocation, and everything a
//! reset had to keep); it is never reclaimed once an invocation has started (the first invocation
//! reclaims it only if nothing in it is live). Frame 1, once the first invocation starts, is the
//! invocation frame. User checkpoints stack above it.
//!
//! Must never: touch memory, allocate, panic (it runs with the allocator's lock held; it does not
//! even index with `[]`, so no panic path is linked into a flare), or trust a [`Checkpoint`] it did
//! not validate.

/// How many frames can be open at once: init, invocation, and 30 nested user scopes.
pub const MAX_FRAMES: usize = 32;

/// One open scope: where its range starts and how many counted blocks in it are live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) start: usize,
    pub(crate) live: usize,
    pub(crate) generation: u32,
}

impl Frame {
    const fn at(start: usize, generation: u32) -> Self {
        Frame {
            start,
            live: 0,
            generation,
        }
    }
}

/// A position in an arena to come back to with `reset_to`.
///
/// Obtained from `checkpoint()`. It stays valid, and can be reset to any number of times, until a
/// reset to an *earlier* checkpoint (or the next invocation) closes it; after that, resetting to it
/// is refused with [`CheckpointError::Stale`] (and panics in debug builds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub(crate) owner: usize,
    pub(crate) depth: u32,
    pub(crate) generation: u32,
}

/// Why a checkpoint was refused. A refused reset changes nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckpointError {
    /// The checkpoint was taken on another arena.
    ForeignArena,
    /// The checkpoint was closed by an earlier reset (or by the start of a new invocation).
    Stale,
    /// `checkpoint()` was called with all [`MAX_FRAMES`] frames open; this checkpoint never opened.
    TooDeep,
}

impl core::fmt::Display for CheckpointError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            CheckpointError::ForeignArena => "checkpoint belongs to another arena",
            CheckpointError::Stale => {
                "checkpoint is stale: an earlier reset or a new invocation already closed it"
            }
            CheckpointError::TooDeep => "checkpoint was never opened: scopes nested too deep",
        })
    }
}

/// What a reset did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reset {
    /// Nothing allocated since the checkpoint was live: `bytes` were given back to the arena.
    Reclaimed {
        /// Bytes between the checkpoint and the bump pointer before the reset.
        bytes: usize,
    },
    /// `live` blocks allocated since the checkpoint are still in use, so its `bytes` were kept:
    /// they joined the enclosing scope and the checkpoint now starts above them.
    Kept {
        /// Counted blocks allocated since the checkpoint and not yet freed.
        live: usize,
        /// Bytes between the checkpoint and the bump pointer, now part of the enclosing scope.
        bytes: usize,
    },
    /// The checkpoint was not valid for this arena; nothing changed.
    Refused(CheckpointError),
}

impl Reset {
    /// True when the reset gave memory back.
    pub fn reclaimed(&self) -> bool {
        matches!(self, Reset::Reclaimed { .. })
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

/// The frame stack. The innermost frame lives apart in `current` because every allocation touches it.
pub(crate) struct Frames {
    current: Frame,
    below: [Frame; MAX_FRAMES - 1],
    /// Index of `current`: 0 = init, 1 = invocation, 2.. = user scopes.
    depth: usize,
    next_generation: u32,
    invocation_started: bool,
}

impl Frames {
    /// A stack holding only the init frame, which covers everything from offset 0.
    pub(crate) const fn new() -> Self {
        Frames {
            current: Frame::at(0, 0),
            below: [Frame::at(0, 0); MAX_FRAMES - 1],
            depth: 0,
            next_generation: 0,
            invocation_started: false,
        }
    }

    #[inline(always)]
    pub(crate) fn current_start(&self) -> usize {
        self.current.start
    }

    #[inline(always)]
    pub(crate) fn count_alloc(&mut self) {
        self.current.live = self.current.live.wrapping_add(1);
    }

    /// A counted block at `offset` was freed: take it off the frame its address lies in. Returns
    /// whether that is the innermost frame.
    ///
    /// Counts wrap (one instruction on the free path). A double free is undefined behaviour of the
    /// caller under `GlobalAlloc`'s contract and can unbalance any count; frees of pointers outside
    /// the used region are filtered out before they get here.
    #[inline(always)]
    pub(crate) fn count_free_in_current(&mut self, offset: usize) -> bool {
        if offset >= self.current.start {
            self.current.live = self.current.live.wrapping_sub(1);
            true
        } else {
            self.count_free_below(offset);
            false
        }
    }

    #[cold]
    fn count_free_below(&mut self, offset: usize) {
        // Frame 0 starts at offset 0, so the search always finds a frame for an offset inside
        // the region.
        for frame in self.below.iter_mut().take(self.depth).rev() {
            if offset >= frame.start {
                frame.live = frame.live.wrapping_sub(1);
                return;
            }
        }
    }

    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    pub(crate) fn total_live(&self) -> usize {
        self.live_from(0)
    }

    fn frame(&self, index: usize) -> Option<&Frame> {
        if index == self.depth {
            Some(&self.current)
        } else {
            self.below.get(index).filter(|_| index < self.depth)
        }
    }

    fn live_from(&self, index: usize) -> usize {
        let below = self.below.get(index..self.depth).unwrap_or(&[]);
        below
            .iter()
            .fold(self.current.live, |sum, f| sum.saturating_add(f.live))
    }

    /// Opens a frame starting at `top`. `None` when all frames are in use.
    pub(crate) fn push(&mut self, top: usize, owner: usize) -> Option<Checkpoint> {
        let slot = self.below.get_mut(self.depth)?;
        *slot = self.current;
        self.depth += 1;
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        self.current = Frame::at(top, generation);
        Some(Checkpoint {
            owner,
            depth: self.depth as u32,
            generation,
        })
    }

    /// The invocation frame's checkpoint, start and live count (from it upward); `None` before the
    /// first invocation. It needs no validation: it is always open once invocations have started.
    pub(crate) fn invocation_frame(&self, owner: usize) -> Option<(Checkpoint, usize, usize)> {
        let frame = self.frame(1).filter(|_| self.invocation_started)?;
        let cp = Checkpoint {
            owner,
            depth: 1,
            generation: frame.generation,
        };
        Some((cp, frame.start, self.live_from(1)))
    }

    /// Starts the first invocation: everything so far (init, and any scopes opened during init)
    /// becomes the init frame, which is never reclaimed, and the invocation frame opens at `top`;
    /// or, when nothing in init is live, at 0, and the caller reclaims everything. Returns where
    /// the invocation frame starts.
    pub(crate) fn start_first_invocation(&mut self, top: usize, owner: usize) -> usize {
        let live = self.live_from(0);
        let start = if live == 0 { 0 } else { top };
        self.depth = 0;
        self.current = Frame {
            start: 0,
            live,
            generation: 0,
        };
        self.invocation_started = true;
        // `depth` is 0, so the push always finds a slot.
        let _ = self.push(start, owner);
        start
    }

    /// Checks that `cp` names a frame open right now on this arena; returns its start and the
    /// number of live blocks from it upward.
    pub(crate) fn validate(
        &self,
        cp: Checkpoint,
        owner: usize,
    ) -> Result<(usize, usize), CheckpointError> {
        if cp.owner != owner {
            return Err(CheckpointError::ForeignArena);
        }
        if cp.depth == 0 || cp.depth as usize >= MAX_FRAMES {
            return Err(CheckpointError::TooDeep);
        }
        let index = cp.depth as usize;
        match self.frame(index) {
            Some(frame) if frame.generation == cp.generation => {
                Ok((frame.start, self.live_from(index)))
            }
            _ => Err(CheckpointError::Stale),
        }
    }

    /// Closes every frame above `cp` and empties `cp`'s own: its range was reclaimed.
    /// `cp` must have passed [`Frames::validate`].
    pub(crate) fn truncate_to(&mut self, cp: Checkpoint) {
        let index = cp.depth as usize;
        if let Some(&frame) = self.below.get(index).filter(|_| index < self.depth) {
            self.current = frame;
            self.depth = index;
        }
        self.current.live = 0;
    }

    /// Closes every frame above `cp` and moves the live counts of `cp`'s frame and those above it
    /// into the enclosing frame, which now covers their blocks; `cp`'s frame reopens, empty, at `top`.
    /// `cp` must have passed [`Frames::validate`].
    pub(crate) fn keep(&mut self, cp: Checkpoint, top: usize) {
        let index = cp.depth as usize;
        let live = self.live_from(index);
        if let Some(enclosing) = self.below.get_mut(index.wrapping_sub(1)) {
            enclosing.live = enclosing.live.saturating_add(live);
            self.depth = index;
            self.current = Frame::at(top, cp.generation);
        }
    }

    /// Closes `cp`'s frame, which a reset has just emptied; its range returns to the enclosing frame.
    pub(crate) fn pop(&mut self, cp: Checkpoint) {
        let index = cp.depth as usize;
        let open = index == self.depth && self.current.generation == cp.generation;
        if let Some(&enclosing) = self.below.get(index.wrapping_sub(1)).filter(|_| open) {
            let live = self.current.live;
            self.depth = index - 1;
            self.current = enclosing;
            self.current.live = self.current.live.saturating_add(live);
        }
    }
}
