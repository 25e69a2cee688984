//! The bump core: one region, one bump pointer, and the scope frames that make resets checked.
//!
//! Owns every decision about where a block goes and when bytes come back: the fast path
//! (`alloc`), LIFO frees, in-place `realloc` of the last block, uncounted host buffers, checkpoints
//! and checked resets, and the counters behind [`Stats`].
//!
//! Must never: lock, claim `Sync`, allocate, panic (the global wrapper calls it with its lock held;
//! all arithmetic is checked or provably in range), or reclaim a range that still has a live block.
//!
//! Memory is addressed as *offsets* from `base`, which is the region's base plus one reserved word
//! (so that no native handle is 0); pointers are made with `wrapping_add` on the base the region
//! returned, so they keep its provenance (Miri checks this). A fresh core is all zeroes, so a
//! `static` arena costs no initialised data in a flare's `.wasm`.

use core::alloc::Layout;
use core::ptr;

use crate::region::{MIN_ALIGN, Region};
use crate::scope::{Checkpoint, CheckpointError, Frames, Reset};
use crate::stats::Stats;

/// Bytes reserved at the start of every region. Native ABI handles are offsets from the region
/// base and 0 means "none", so the first word is never handed out.
pub(crate) const RESERVED: usize = MIN_ALIGN;

/// Byte written over reclaimed memory in debug builds (and with the `poison` feature).
pub const POISON_BYTE: u8 = 0xDE;

/// Rounds a size up to [`MIN_ALIGN`]; zero-sized requests take one word so that no two blocks share
/// an address. `None` on overflow.
#[inline(always)]
fn round_size(size: usize) -> Option<usize> {
    Some((size.checked_add(MIN_ALIGN - 1)? & !(MIN_ALIGN - 1)).max(MIN_ALIGN))
}

/// The end, in core offsets, of a region that ends `region_end` bytes past its base.
#[inline(always)]
fn core_end(region_end: usize) -> usize {
    region_end.saturating_sub(RESERVED) & !(MIN_ALIGN - 1)
}

/// Single-threaded bump allocator over one [`Region`].
pub struct Bump<G: Region> {
    region: G,
    /// The region base plus [`RESERVED`]; null until the region answers.
    base: *mut u8,
    /// Next free offset. Invariant: `top <= end`, both multiples of 8.
    top: usize,
    end: usize,
    frames: Frames,
    high_water: usize,
    resets: u64,
    kept: u64,
    failed: u64,
    refused: u64,
}

impl<G: Region> Bump<G> {
    /// A core over `region`; nothing is asked of the region until the first allocation.
    pub const fn new(region: G) -> Self {
        Bump {
            region,
            base: ptr::null_mut(),
            top: 0,
            end: 0,
            frames: Frames::new(),
            high_water: 0,
            resets: 0,
            kept: 0,
            failed: 0,
            refused: 0,
        }
    }

    #[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
    pub(crate) fn region_mut(&mut self) -> &mut G {
        &mut self.region
    }

    /// False only while the region waits for memory its owner must provide.
    pub(crate) fn is_ready(&self) -> bool {
        self.region.is_ready()
    }

    /// Allocates a counted block: it is live until `dealloc`. Null on failure.
    #[inline]
    pub fn alloc(&mut self, layout: Layout) -> *mut u8 {
        // A Layout's size is at most isize::MAX, so adding 7 cannot overflow.
        let rounded = ((layout.size() + MIN_ALIGN - 1) & !(MIN_ALIGN - 1)).max(MIN_ALIGN);
        let offset = self.top;
        if layout.align() <= MIN_ALIGN && rounded <= self.end - offset {
            self.top = offset + rounded;
            self.frames.count_alloc();
            return self.base.wrapping_add(offset);
        }
        match self.alloc_slow(layout.size(), layout.align(), usize::MAX) {
            Some(offset) => {
                self.frames.count_alloc();
                self.base.wrapping_add(offset)
            }
            None => ptr::null_mut(),
        }
    }

    /// Allocates an uncounted host buffer (valid until the next reset) whose end stays at or below
    /// `max_end`. Returns its offset, or `None` (and nothing changes) if it does not fit.
    #[inline]
    pub fn alloc_transient(&mut self, size: usize, max_end: usize) -> Option<usize> {
        let offset = self.top;
        let room = self.end.min(max_end).saturating_sub(offset);
        if let Some(rounded) = round_size(size).filter(|&rounded| rounded <= room) {
            self.top = offset + rounded;
            return Some(offset);
        }
        self.alloc_slow(size, MIN_ALIGN, max_end)
    }

    /// Places a block of `size` bytes aligned to `align` (a power of two), growing the region if
    /// needed. Commits only on success.
    #[cold]
    #[inline(never)]
    fn alloc_slow(&mut self, size: usize, align: usize, max_end: usize) -> Option<usize> {
        // Alignment padding depends on the base address: learn it before placing anything.
        if self.base.is_null() && !self.grow_to(0) {
            return self.refuse();
        }
        let placed = self
            .place(size, align)
            .filter(|&(_, new_top)| new_top <= max_end);
        match placed {
            Some((offset, new_top)) if new_top <= self.end || self.grow_to(new_top) => {
                self.top = new_top;
                Some(offset)
            }
            _ => self.refuse(),
        }
    }

    /// Asks the region for room up to offset `new_top`; true if it now has it.
    fn grow_to(&mut self, new_top: usize) -> bool {
        let Some(region_end) = new_top.checked_add(RESERVED) else {
            return false;
        };
        match self.region.grow(region_end) {
            // The region answers with `end >= region_end` and, once it has answered, the same base
            // (its contract): blocks already handed out stay where they are.
            Some((base, end)) => {
                self.base = base.wrapping_add(RESERVED);
                self.end = core_end(end);
                true
            }
            None => false,
        }
    }

    /// Counts a request refused before it reached the core (a host `alloc` of size <= 0).
    #[cold]
    pub(crate) fn refuse_bad_request(&mut self) {
        self.failed += 1;
    }

    /// Counts a refused request; a region still waiting for its memory is not a refusal yet (the
    /// owner provides the memory and retries).
    #[cold]
    fn refuse<T>(&mut self) -> Option<T> {
        if self.region.is_ready() {
            self.failed += 1;
        }
        None
    }

    /// Where a block would go: its offset and the new top. `None` on arithmetic overflow.
    fn place(&self, size: usize, align: usize) -> Option<(usize, usize)> {
        let addr = self.base.addr().checked_add(self.top)?;
        let padding = addr.wrapping_neg() & align.wrapping_sub(1).max(MIN_ALIGN - 1);
        let offset = self.top.checked_add(padding)?;
        let new_top = offset.checked_add(round_size(size)?)?;
        Some((offset, new_top))
    }

    /// Offset of `ptr` from the base; pointers outside the used part give an offset at or past
    /// `top` (those below the base wrap around to huge values).
    #[inline(always)]
    fn offset_of(&self, ptr: *mut u8) -> usize {
        ptr.addr().wrapping_sub(self.base.addr())
    }

    /// Frees a counted block. The last block's bytes come back at once; others at the next reset.
    /// Pointers that are not in the used part of the region are ignored.
    #[inline]
    pub fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        let offset = self.offset_of(ptr);
        if offset >= self.top {
            return;
        }
        if !self.frames.count_free_in_current(offset) {
            return; // an older scope's block: it waits for that scope's reset
        }
        // Only a block of the innermost scope may give its bytes back at once: lowering the top
        // below that scope's start would hand its range out again.
        let rounded = round_size(layout.size()).unwrap_or(usize::MAX);
        if offset.checked_add(rounded) == Some(self.top) {
            self.reclaim_to(offset);
        }
    }

    /// Resizes a counted block: in place when it is the last block of the innermost scope or when it
    /// shrinks, otherwise by allocate, copy and free. Null (and the old block untouched) on failure.
    ///
    /// # Safety
    /// `ptr` must be a live counted block of this core allocated with `layout`.
    #[inline]
    pub unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let offset = self.offset_of(ptr);
        let (Some(old_rounded), Some(new_rounded)) =
            (round_size(layout.size()), round_size(new_size))
        else {
            return self.refuse().unwrap_or(ptr::null_mut());
        };
        let is_last = offset.checked_add(old_rounded) == Some(self.top)
            && offset >= self.frames.current_start();
        if is_last {
            if new_rounded <= self.end - offset {
                if new_rounded < old_rounded {
                    self.note_high_water();
                }
                self.top = offset + new_rounded;
                return ptr;
            }
            return self.grow_last_slow(ptr, offset, new_rounded);
        }
        if new_rounded <= old_rounded {
            return ptr;
        }
        self.move_block(ptr, layout, new_size)
    }

    #[cold]
    #[inline(never)]
    fn grow_last_slow(&mut self, ptr: *mut u8, offset: usize, new_rounded: usize) -> *mut u8 {
        match offset.checked_add(new_rounded) {
            Some(new_top) if self.grow_to(new_top) => {
                self.top = new_top;
                ptr
            }
            _ => self.refuse().unwrap_or(ptr::null_mut()),
        }
    }

    #[cold]
    #[inline(never)]
    fn move_block(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return self.refuse().unwrap_or(ptr::null_mut());
        };
        let new_ptr = self.alloc(new_layout);
        if !new_ptr.is_null() {
            // SAFETY: the caller guarantees `ptr` is a live block of `layout.size()` bytes; `new_ptr`
            // was just placed at or above `top`, so it is a fresh block of `new_size` bytes that
            // cannot overlap it; both derive from the region base.
            unsafe { ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size)) };
            self.dealloc(ptr, layout);
        }
        new_ptr
    }

    /// Opens a scope at the current top. `Err(TooDeep)` when all frames are open.
    pub fn checkpoint(&mut self, owner: usize) -> Result<Checkpoint, CheckpointError> {
        self.frames
            .push(self.top, owner)
            .ok_or(CheckpointError::TooDeep)
    }

    /// Checked reset to `cp`: reclaims everything since it if nothing counted there is live,
    /// otherwise keeps it (see [`Reset::Kept`]). Refuses checkpoints that are not open on this core.
    pub fn reset_to(&mut self, cp: Checkpoint, owner: usize) -> Reset {
        match self.frames.validate(cp, owner) {
            Ok((start, live)) => self.reset_frame(cp, start, live),
            Err(error) => {
                self.refused += 1;
                Reset::Refused(error)
            }
        }
    }

    /// The checked reset of a frame known to be open: `start` and `live` as `validate` found them.
    fn reset_frame(&mut self, cp: Checkpoint, start: usize, live: usize) -> Reset {
        self.resets += 1;
        let bytes = self.top - start;
        if live == 0 {
            self.reclaim_to(start);
            self.frames.truncate_to(cp);
            Reset::Reclaimed { bytes }
        } else {
            self.kept += 1;
            self.frames.keep(cp, self.top);
            Reset::Kept { live, bytes }
        }
    }

    /// Resets to `cp` and closes it: the end of a scope.
    pub fn end_scope(&mut self, cp: Checkpoint, owner: usize) -> Reset {
        let result = self.reset_to(cp, owner);
        if !matches!(result, Reset::Refused(_)) {
            self.frames.pop(cp);
        }
        result
    }

    /// Starts a new invocation: a checked reset to the start-of-invocation mark. The first call
    /// sets that mark. What was allocated before it (init) and is still live stays for good; if
    /// nothing is, the first call reclaims everything first (a host that called `alloc` before any
    /// export must not cost the arena that memory forever).
    pub fn reset_invocation(&mut self, owner: usize) -> Reset {
        match self.frames.invocation_frame(owner) {
            Some((cp, start, live)) => self.reset_frame(cp, start, live),
            None => self.start_first_invocation(owner),
        }
    }

    #[cold]
    fn start_first_invocation(&mut self, owner: usize) -> Reset {
        self.resets += 1;
        let start = self.frames.start_first_invocation(self.top, owner);
        let bytes = self.top - start;
        self.reclaim_to(start);
        Reset::Reclaimed { bytes }
    }

    /// Moves the top back to `cp` without looking at live counts. Refused checkpoints change nothing.
    ///
    /// # Safety
    /// No block allocated since `cp` may be used again, nor freed.
    pub unsafe fn reset_to_unchecked(&mut self, cp: Checkpoint, owner: usize) -> Reset {
        match self.frames.validate(cp, owner) {
            Ok((start, _)) => {
                self.resets += 1;
                let bytes = self.top - start;
                self.reclaim_to(start);
                self.frames.truncate_to(cp);
                Reset::Reclaimed { bytes }
            }
            Err(error) => {
                self.refused += 1;
                Reset::Refused(error)
            }
        }
    }

    /// Moves the top down to `start`, poisoning what it gives back in debug builds.
    #[inline(always)]
    fn reclaim_to(&mut self, start: usize) {
        self.note_high_water();
        if cfg!(any(debug_assertions, feature = "poison")) && self.top > start {
            // SAFETY: `start..top` is inside the region (`start <= top <= end`, past the base) and
            // the caller established that nothing in it is in use: it is the block just freed, or a
            // range whose live count is zero (or whose unchecked reset the caller vouched for), and
            // host buffers expire at a reset.
            unsafe {
                ptr::write_bytes(self.base.wrapping_add(start), POISON_BYTE, self.top - start)
            };
        }
        self.top = start;
    }

    #[inline(always)]
    fn note_high_water(&mut self) {
        self.high_water = self.high_water.max(self.top);
    }

    /// Address of offset 0 (0 before the region has memory).
    pub fn base_addr(&self) -> usize {
        self.base.addr()
    }

    /// Pointer to `len` bytes at `offset` if they lie in the used part of the region.
    pub fn used_bytes(&self, offset: usize, len: usize) -> Option<*mut u8> {
        let end = offset.checked_add(len)?;
        // Before the region answers, `base` is null and not even an empty slice may start there.
        (end <= self.top && !self.base.is_null()).then(|| self.base.wrapping_add(offset))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        Stats {
            capacity: self.end,
            limit: core_end(self.region.limit()),
            used: self.top,
            high_water: self.high_water.max(self.top),
            live: self.frames.total_live(),
            depth: self.frames.depth(),
            resets: self.resets,
            kept: self.kept,
            failed: self.failed,
            refused: self.refused,
        }
    }
}
