//! The standalone arena: the same core over a caller's buffer, with no lock and no globals.
//!
//! Owns the `&mut self` API that mock hosts, tests, benches, fuzzers and Miri drive directly.
//! Must never: claim `Sync`, lock, or outlive the buffer it bumps through.

use core::alloc::Layout;
use core::fmt;

use crate::abi;
use crate::bump::Bump;
use crate::region::SliceRegion;
use crate::scope::{Checkpoint, Reset, Rewind, ScopeGuard, report};
use crate::stats::Stats;

/// An arena over a borrowed buffer: the core of [`GlobalArena`](crate::GlobalArena) without the
/// lock, for single-threaded use.
///
/// ```
/// use core::alloc::Layout;
/// use flare_arena::Arena;
///
/// let mut buffer = [0u8; 8192];
/// let mut arena = Arena::new(&mut buffer);
/// let cp = arena.checkpoint();
/// let kept = arena.alloc(Layout::from_size_align(100, 8).unwrap());
/// let scratch_layout = Layout::from_size_align(1000, 8).unwrap();
/// let scratch = arena.alloc(scratch_layout);
/// unsafe { arena.dealloc(scratch, scratch_layout) };
/// let reset = arena.reset_to(cp);
/// // The block still in use stays where it is, and is never handed out again...
/// assert_eq!(arena.stats().live_blocks, 1);
/// // ...while the lines around it are: the next block goes where `scratch` was.
/// let next = arena.alloc(Layout::from_size_align(500, 8).unwrap());
/// assert!((scratch as usize..scratch as usize + 1000).contains(&(next as usize)));
/// # let _ = (kept, reset);
/// ```
pub struct Arena<'buf> {
    core: Bump<SliceRegion<'buf>>,
    owner: usize,
}

impl<'buf> Arena<'buf> {
    /// An arena over `buffer` (any bytes before its first 8-aligned one are not used; about one
    /// byte in 256 of it holds the arena's line table).
    pub fn new(buffer: &'buf mut [u8]) -> Self {
        let owner = buffer.as_ptr().addr();
        Arena {
            core: Bump::new(SliceRegion::new(buffer)),
            owner,
        }
    }

    /// Reports misuse the core saw (a debug panic).
    #[inline(always)]
    fn checked<T>(&mut self, result: T) -> T {
        if cfg!(debug_assertions)
            && let Some(misuse) = self.core.take_misuse()
        {
            misuse.report();
        }
        result
    }

    /// Allocates a counted block aligned to `max(8, layout.align())`; null if it does not fit.
    #[inline(always)]
    pub fn alloc(&mut self, layout: Layout) -> *mut u8 {
        self.core.alloc(layout)
    }

    /// Frees a block: its bytes are reused once nothing else live shares its lines (at once, if it
    /// was the last block allocated).
    ///
    /// # Safety
    /// `ptr` must be a live block of this arena allocated with `layout`.
    #[inline(always)]
    pub unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        self.core.dealloc(ptr, layout);
        self.checked(())
    }

    /// Resizes a block, in place when it can; null (old block intact) on failure.
    ///
    /// # Safety
    /// `ptr` must be a live block of this arena allocated with `layout`.
    #[inline]
    pub unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from this function's contract.
        let new = unsafe { self.core.realloc(ptr, layout, new_size) };
        self.checked(new)
    }

    /// A checkpoint at the current position (see
    /// [`GlobalArena::checkpoint`](crate::GlobalArena::checkpoint)).
    pub fn checkpoint(&mut self) -> Checkpoint {
        self.core.checkpoint(self.owner)
    }

    /// Rewinds to `cp` (see [`GlobalArena::reset_to`](crate::GlobalArena::reset_to)).
    pub fn reset_to(&mut self, cp: Checkpoint) -> Reset {
        report(self.core.reset_to(cp, self.owner))
    }

    /// The same as [`Arena::reset_to`].
    pub fn close(&mut self, cp: Checkpoint) -> Reset {
        self.reset_to(cp)
    }

    /// The same as [`Arena::reset_to`], which is now always safe.
    ///
    /// # Safety
    /// None beyond `reset_to`'s.
    #[deprecated(since = "0.2.0", note = "every reset is safe now: use `reset_to`")]
    pub unsafe fn reset_to_unchecked(&mut self, cp: Checkpoint) -> Reset {
        self.reset_to(cp)
    }

    /// Runs `f` in a scope that rewinds when it returns or unwinds (see
    /// [`GlobalArena::scope`](crate::GlobalArena::scope)).
    pub fn scope<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let scope = ScopeGuard::new(self);
        f(&mut *scope.arena)
    }

    /// The reset at the top of an invocation (see [`GlobalArena::reset`](crate::GlobalArena::reset)).
    pub fn reset(&mut self) -> Reset {
        self.core.reset_invocation()
    }

    /// Starts an invocation, then runs `f`.
    pub fn invocation<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        let _ = self.reset();
        f(self)
    }

    /// The guest's `alloc(size)` export, exactly as
    /// [`GlobalArena::guest_alloc`](crate::GlobalArena::guest_alloc).
    pub fn guest_alloc(&mut self, size: i32) -> i32 {
        abi::guest_alloc(&mut self.core, size)
    }

    /// The `len` bytes at `handle`, if they lie in the part of the arena handed out so far (mock
    /// hosts).
    ///
    /// # Safety
    /// The bytes may belong to a live block; the caller must not alias a block it does not own.
    pub unsafe fn handle_bytes(&mut self, handle: i32, len: usize) -> Option<&mut [u8]> {
        let bytes = abi::resolve(&self.core, handle as u32, len)?;
        // SAFETY: `resolve` checked the range lies in the handed-out part of the buffer, which
        // `self` borrows for `'buf`; `&mut self` keeps the slice from outliving a reset through
        // `self`; aliasing is the caller's promise.
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

impl fmt::Debug for Arena<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Arena")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Rewind for &mut Arena<'_> {
    fn mark(&mut self) -> Checkpoint {
        self.checkpoint()
    }

    fn rewind_quietly(&mut self, cp: Checkpoint) {
        let _ = self.core.reset_to(cp, self.owner);
    }
}
