//! The standalone arena: the same bump core over a caller's buffer, with no lock and no globals.
//!
//! Owns the `&mut self` API that mock hosts, tests, benches, fuzzers and Miri drive directly.
//! Must never: claim `Sync`, lock, or outlive the buffer it bumps through.

use core::alloc::Layout;

use crate::abi;
use crate::bump::Bump;
use crate::region::SliceRegion;
use crate::scope::{Checkpoint, Reset, report};
use crate::stats::Stats;

/// A bump arena over a borrowed buffer: the core of [`GlobalArena`](crate::GlobalArena) without the
/// lock, for single-threaded use.
///
/// ```
/// use core::alloc::Layout;
/// use flare_arena::{Arena, Reset};
///
/// let mut buffer = [0u8; 4096];
/// let mut arena = Arena::new(&mut buffer);
/// let cp = arena.checkpoint();
/// let block = arena.alloc(Layout::from_size_align(100, 8).unwrap());
/// assert_eq!(block as usize % 8, 0);
/// // The block is still live, so a checked reset keeps it...
/// assert_eq!(arena.reset_to(cp), Reset::Kept { live: 1, bytes: 104 });
/// // ...and once it is freed, the next reset reclaims everything after the checkpoint.
/// let cp = arena.checkpoint();
/// let scratch = arena.alloc(Layout::new::<[u8; 64]>());
/// unsafe { arena.dealloc(scratch, Layout::new::<[u8; 64]>()) };
/// assert!(arena.reset_to(cp).reclaimed());
/// ```
pub struct Arena<'buf> {
    core: Bump<SliceRegion<'buf>>,
    owner: usize,
}

impl<'buf> Arena<'buf> {
    /// An arena over `buffer` (its first word, and any bytes before its first 8-aligned one, are
    /// not handed out).
    pub fn new(buffer: &'buf mut [u8]) -> Self {
        let owner = buffer.as_ptr().addr();
        Arena {
            core: Bump::new(SliceRegion::new(buffer)),
            owner,
        }
    }

    /// Allocates a counted block aligned to `max(8, layout.align())`; null if it does not fit.
    #[inline(always)]
    pub fn alloc(&mut self, layout: Layout) -> *mut u8 {
        self.core.alloc(layout)
    }

    /// Frees a block: the last one gives its bytes back now, others at the next reset.
    ///
    /// # Safety
    /// `ptr` must be a live block of this arena allocated with `layout`.
    #[inline(always)]
    pub unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        self.core.dealloc(ptr, layout)
    }

    /// Resizes a block, in place when it is the last one or shrinks; null (old block intact) on
    /// failure.
    ///
    /// # Safety
    /// `ptr` must be a live block of this arena allocated with `layout`.
    #[inline]
    pub unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from this function's contract.
        unsafe { self.core.realloc(ptr, layout, new_size) }
    }

    /// Opens a scope at the current position. Panics in debug builds when too many are open;
    /// release builds return a checkpoint every reset refuses.
    pub fn checkpoint(&mut self) -> Checkpoint {
        match self.core.checkpoint(self.owner) {
            Ok(cp) => cp,
            Err(error) => {
                debug_assert!(false, "flare-arena: {error}");
                Checkpoint {
                    owner: self.owner,
                    depth: u32::MAX,
                    generation: 0,
                }
            }
        }
    }

    /// Checked reset to `cp` (see [`GlobalArena::reset_to`](crate::GlobalArena::reset_to)).
    pub fn reset_to(&mut self, cp: Checkpoint) -> Reset {
        report(self.core.reset_to(cp, self.owner))
    }

    /// Checked reset to `cp`, then closes it (see [`GlobalArena::close`](crate::GlobalArena::close)).
    pub fn close(&mut self, cp: Checkpoint) -> Reset {
        report(self.core.end_scope(cp, self.owner))
    }

    /// Resets to `cp` without checking live counts.
    ///
    /// # Safety
    /// Nothing allocated since `cp` may be used or freed afterwards.
    pub unsafe fn reset_to_unchecked(&mut self, cp: Checkpoint) -> Reset {
        // SAFETY: forwarded from this function's contract.
        report(unsafe { self.core.reset_to_unchecked(cp, self.owner) })
    }

    /// Runs `f` in a scope that is reset (checked) and closed when it returns.
    pub fn scope<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let cp = self.checkpoint();
        let result = f(self);
        self.close(cp);
        result
    }

    /// The reset at the top of an invocation (checked; the first call only sets the mark).
    pub fn reset(&mut self) -> Reset {
        report(self.core.reset_invocation(self.owner))
    }

    /// Resets for a new invocation, then runs `f`.
    pub fn invocation<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        self.reset();
        f(self)
    }

    /// The host's `alloc(size)`, exactly as [`GlobalArena::guest_alloc`](crate::GlobalArena::guest_alloc).
    pub fn guest_alloc(&mut self, size: i32) -> i32 {
        abi::guest_alloc(&mut self.core, size)
    }

    /// The bytes of `len` at `handle`, if they lie in the used part of the arena (mock hosts).
    ///
    /// # Safety
    /// The bytes may belong to a live block; the caller must not alias a block it does not own.
    pub unsafe fn handle_bytes(&mut self, handle: i32, len: usize) -> Option<&mut [u8]> {
        let bytes = abi::resolve(&self.core, handle as u32, len)?;
        // SAFETY: `resolve` checked the range lies in the used part of the buffer, which `self`
        // borrows for `'buf`; `&mut self` keeps the slice from outliving a reset through `self`;
        // aliasing is the caller's promise.
        Some(unsafe { core::slice::from_raw_parts_mut(bytes, len) })
    }

    /// The bytes behind a packed host result, `None` for 0 or out-of-arena values.
    pub fn packed_bytes(&mut self, packed: i64) -> Option<&[u8]> {
        let (handle, len) = abi::unpack(packed)?;
        let bytes = abi::resolve(&self.core, handle, len)?;
        // SAFETY: as in `handle_bytes`; the shared slice borrows `self`, so nothing can allocate or
        // reset through this arena while it is held.
        Some(unsafe { core::slice::from_raw_parts(bytes, len) })
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.core.stats()
    }
}
