//! The global arena: the core behind a `lock_api` mutex, as a `GlobalAlloc`, the guest's `alloc`
//! export, and the scope API a flare calls.
//!
//! Owns locking, the one `Send` claim the core needs to sit in a `static`, and reporting misuse (a
//! refused checkpoint, a free of a block that is not live or of a pointer the arena never handed
//! out) as debug panics *after* unlocking.
//!
//! Must never: allocate, panic or call out while the lock is held — a panic message allocates, and
//! the allocator it would call is this one. Every locked section below is one call into the core.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::fmt;

use crate::abi;
use crate::bump::Bump;
use crate::lock::{ArenaLock, DefaultLock};
use crate::region::{PlatformRegion, Region};
use crate::scope::{Checkpoint, Reset, Rewind, ScopeGuard, report};
use crate::stats::Stats;

/// An arena usable as the `#[global_allocator]` of a flare (or of any program), shared by
/// `GlobalAlloc` and the guest's `alloc` export, reset at the top of every invocation.
///
/// `R` is the lock ([`DefaultLock`]: nothing at all on wasm32 without threads, a spin lock
/// elsewhere; any [`lock_api::RawMutex`]) and `G` the region it bumps through
/// ([`PlatformRegion`]: wasm linear memory, or one block reserved from the system allocator
/// natively; any [`Region`] with [`GlobalArena::with_region`]).
///
/// ```
/// use flare_arena::GlobalArena;
///
/// static ARENA: GlobalArena = GlobalArena::with_max_bytes(1 << 20);
///
/// let mut handles = Vec::new();
/// for request in 0..3 {
///     let reply = ARENA.invocation(|| {
///         // With `#[global_allocator]` a `String` would come from here; this example calls the
///         // arena directly so that it runs under the test harness's own allocator.
///         handles.push(ARENA.guest_alloc(16)); // what the host's call of the `alloc` export does
///         request * 2
///     });
///     assert_eq!(reply, request * 2);
/// }
/// assert!(handles[0] != 0 && handles.iter().all(|&h| h == handles[0])); // the same bytes, reused
/// let stats = ARENA.stats();
/// assert_eq!((stats.resets, stats.live_blocks), (3, 0));
/// ```
pub struct GlobalArena<R: ArenaLock = DefaultLock, G: Region = PlatformRegion> {
    lock: R,
    core: UnsafeCell<Bump<G>>,
}

// SAFETY: the core is reached only in `GlobalArena::with`, between `lock` and `unlock`, so
// `ArenaLock`'s contract makes every access exclusive; sharing the arena between threads therefore
// shares nothing but the lock, which must be `Sync` itself. The core may then be used from any
// thread: it holds raw pointers only into its region, which is `Send` and owned by it alone (see
// `Region`'s contract).
unsafe impl<R: ArenaLock + Sync, G: Region + Send> Sync for GlobalArena<R, G> {}
// SAFETY: as above: the core is not tied to a thread; the region and the lock move with it.
unsafe impl<R: ArenaLock + Send, G: Region + Send> Send for GlobalArena<R, G> {}

#[cfg(any(target_arch = "wasm32", feature = "std"))]
impl GlobalArena {
    /// An arena that may grow to [`DEFAULT_MAX_BYTES`](crate::DEFAULT_MAX_BYTES) with the default
    /// lock and region.
    pub const fn new() -> Self {
        Self::with_max_bytes(crate::DEFAULT_MAX_BYTES)
    }

    /// An arena that may grow to `max_bytes` (rounded down to 8) with the default lock. On wasm32
    /// the region grows on demand up to it, or until `memory.grow` fails if that comes first (a
    /// host's limit on the instance's memory is then used to its last page; `usize::MAX` means
    /// no maximum of the arena's own); on native targets it is reserved (as untouched pages) on
    /// first use.
    pub const fn with_max_bytes(max_bytes: usize) -> Self {
        Self::with_region(PlatformRegion::new(max_bytes))
    }
}

#[cfg(any(target_arch = "wasm32", feature = "std"))]
impl Default for GlobalArena {
    fn default() -> Self {
        Self::new()
    }
}

// Nothing panics while the lock is held, so every state another thread or a `catch_unwind` can see
// is a consistent one.
impl<R: ArenaLock, G: Region> core::panic::RefUnwindSafe for GlobalArena<R, G> {}
impl<R: ArenaLock, G: Region> core::panic::UnwindSafe for GlobalArena<R, G> {}

impl<R: ArenaLock, G: Region> GlobalArena<R, G> {
    /// An arena over `region`, guarded by the lock `R`.
    ///
    /// ```
    /// use flare_arena::{GlobalArena, NoThreads, SystemRegion};
    /// // One thread only: no lock at all (such an arena cannot be shared between threads).
    /// let arena: GlobalArena<NoThreads, SystemRegion> =
    ///     GlobalArena::with_region(SystemRegion::new(1 << 20));
    /// assert_ne!(arena.guest_alloc(8), 0);
    /// ```
    ///
    /// A lock of your own (any `lock_api::RawMutex`; here spin's) over the default region, as
    /// a `static`:
    ///
    /// ```
    /// use flare_arena::{GlobalArena, PlatformRegion};
    ///
    /// static ARENA: GlobalArena<spin::Mutex<()>> =
    ///     GlobalArena::with_region(PlatformRegion::new(1 << 20));
    /// assert_ne!(ARENA.guest_alloc(8), 0);
    /// ```
    pub const fn with_region(region: G) -> Self {
        GlobalArena {
            lock: R::INIT,
            core: UnsafeCell::new(Bump::new(region)),
        }
    }

    /// Identifies this arena in its checkpoints.
    fn owner(&self) -> usize {
        (self as *const Self).addr()
    }

    /// Runs `f` on the core under the lock; reports misuse it saw after unlocking (debug builds).
    /// `f` is one call into the core, which never calls back into the arena, allocates or panics.
    #[inline(always)]
    fn with<T>(&self, f: impl FnOnce(&mut Bump<G>) -> T) -> T {
        self.lock.lock();
        // SAFETY: the lock is held: no other reference to the core exists (see the `Sync` impl),
        // and `f` does not call back into the arena, so this one is unique until `unlock`.
        let core = unsafe { &mut *self.core.get() };
        let result = f(core);
        let misuse = if cfg!(debug_assertions) {
            core.take_misuse()
        } else {
            None
        };
        // SAFETY: this thread took the lock above; the reference to the core is not used again.
        unsafe { self.lock.unlock() };
        if let Some(misuse) = misuse {
            misuse.report();
        }
        result
    }

    /// The guest's `alloc(size)` export, as the host contract defines it: 0 for `size <= 0`, for
    /// exhaustion and for overflow; otherwise a non-zero, 8-aligned handle (the address on wasm32,
    /// an offset on native targets) to a *host buffer* of `size` bytes that stays valid, and is
    /// never reused, until the next invocation starts. Host buffers are not counted as live.
    /// Never panics and never calls out. [`export_alloc!`](crate::export_alloc) exports it.
    pub fn guest_alloc(&self, size: i32) -> i32 {
        self.with(|core| abi::guest_alloc(core, size))
    }

    /// A checkpoint at the current position. Reset to it with [`GlobalArena::reset_to`].
    ///
    /// ```
    /// use core::alloc::{GlobalAlloc, Layout};
    /// use flare_arena::GlobalArena;
    ///
    /// static ARENA: GlobalArena = GlobalArena::with_max_bytes(1 << 16);
    /// let layout = Layout::new::<[u64; 4]>();
    ///
    /// let cp = ARENA.checkpoint();
    /// let cached = unsafe { ARENA.alloc(layout) }; // still in use at the reset...
    /// let scratch = unsafe { ARENA.alloc(layout) };
    /// unsafe { ARENA.dealloc(scratch, layout) };
    /// let reset = ARENA.reset_to(cp); // ...so it stays where it is, and is never handed out again
    /// assert_eq!(reset.live(), 32, "the bytes of the blocks still live");
    /// assert_eq!(ARENA.stats().live_lines, 1, "the memory they keep");
    /// let next = unsafe { ARENA.alloc(layout) };
    /// assert_ne!(next, cached);
    /// ```
    pub fn checkpoint(&self) -> Checkpoint {
        let owner = self.owner();
        self.with(|core| core.checkpoint(owner))
    }

    /// Rewinds to `cp`: whatever was allocated since and freed is reused from here on; blocks still
    /// live stay where they are and are never handed out again. Host buffers are not reclaimed by
    /// this, only by the next invocation. The checkpoint stays valid for the rest of the invocation.
    /// Reports the bytes reclaimed since `cp` and what is still live ([`Reset::Rewound`]).
    ///
    /// # Panics
    /// In debug builds, when `cp` is from another arena or an earlier invocation. Release builds
    /// refuse it ([`Reset::Refused`]) and change nothing.
    pub fn reset_to(&self, cp: Checkpoint) -> Reset {
        let owner = self.owner();
        report(self.with(|core| core.reset_to(cp, owner)))
    }

    /// The same as [`GlobalArena::reset_to`]: a checkpoint needs no closing. (Kept from the time
    /// checkpoints were frames on a stack.)
    pub fn close(&self, cp: Checkpoint) -> Reset {
        self.reset_to(cp)
    }

    /// The same as [`GlobalArena::reset_to`], which is now always safe: a reset never hands out
    /// memory that is still live, checked or not.
    ///
    /// # Safety
    /// None beyond `reset_to`'s; it is `unsafe` only because it once skipped the checks.
    #[deprecated(since = "0.2.0", note = "every reset is safe now: use `reset_to`")]
    pub unsafe fn reset_to_unchecked(&self, cp: Checkpoint) -> Reset {
        self.reset_to(cp)
    }

    /// Runs `f` in a scope: when it returns (or unwinds), the arena rewinds to where the scope
    /// began, so what `f` allocated and freed is reused by what comes next.
    ///
    /// ```
    /// use core::alloc::{GlobalAlloc, Layout};
    /// static ARENA: flare_arena::GlobalArena = flare_arena::GlobalArena::with_max_bytes(1 << 16);
    ///
    /// let layout = Layout::from_size_align(1000, 8).unwrap();
    /// let first = ARENA.scope(|| {
    ///     let scratch = unsafe { ARENA.alloc(layout) };
    ///     unsafe { ARENA.dealloc(scratch, layout) };
    ///     scratch
    /// });
    /// let again = unsafe { ARENA.alloc(layout) };
    /// assert_eq!(again, first); // the scope's memory is reused
    /// ```
    ///
    /// When threads share a native `GlobalArena`, their scopes interleave: one thread's reset may
    /// rewind past another's allocations. That is still safe (live blocks are skipped); it only
    /// moves the cursor.
    pub fn scope<T>(&self, f: impl FnOnce() -> T) -> T {
        let _scope = ScopeGuard::new(self);
        f()
    }

    /// Starts an invocation and runs it: [`GlobalArena::reset`], then `f`. Every guest export
    /// should wrap its body in this.
    pub fn invocation<T>(&self, f: impl FnOnce() -> T) -> T {
        let _ = self.reset();
        f()
    }

    /// The reset at the top of an invocation: host buffers of the last invocation expire, the
    /// cursor goes back to the start of the region, and every line nothing live overlaps is reused.
    /// Checkpoints of the last invocation become stale. O(1), whatever was allocated or is live.
    /// Reports the bytes reclaimed since the last invocation began (its host buffers included)
    /// and what is still live ([`Reset::Rewound`]).
    pub fn reset(&self) -> Reset {
        self.with(|core| core.reset_invocation())
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.with(|core| core.stats())
    }

    /// The bytes behind a host result packed as `(handle << 32) | len`; `None` for 0 ("none") or
    /// if they are not in the part of the arena handed out so far.
    ///
    /// # Safety
    /// The slice is valid only until the next invocation starts, nothing may write to those bytes
    /// while it is held, and they must hold a value the host wrote (see
    /// [`GlobalArena::handle_bytes`]). Reading the same value twice at once is fine.
    pub unsafe fn packed_bytes(&self, packed: i64) -> Option<&[u8]> {
        let (handle, len) = abi::unpack(packed)?;
        let bytes = self.with(|core| abi::resolve(core, handle, len))?;
        // SAFETY: `resolve` checked that `len` bytes at `bytes` lie in the part of the region handed
        // out so far, which stays allocated while `self` lives; that they stay unchanged until the
        // next invocation is the caller's promise. Only a shared slice is made, so reading the same
        // value twice (two live slices over the same bytes) is fine.
        Some(unsafe { core::slice::from_raw_parts(bytes, len) })
    }

    /// The text behind a host result, as [`GlobalArena::packed_bytes`]; `Some(Err(_))` when it is
    /// not UTF-8.
    ///
    /// # Safety
    /// As for [`GlobalArena::packed_bytes`].
    pub unsafe fn packed_str(&self, packed: i64) -> Option<Result<&str, core::str::Utf8Error>> {
        // SAFETY: forwarded from this function's contract.
        unsafe { self.packed_bytes(packed) }.map(core::str::from_utf8)
    }

    /// The `len` bytes at `handle` (from [`GlobalArena::guest_alloc`]), for a native mock host (or
    /// a guest) to write or read; `None` unless they lie in the part of the arena handed out so far.
    ///
    /// # Safety
    /// Valid only until the next invocation starts; the caller must not create aliasing references
    /// to the same bytes (each host buffer belongs to whoever asked `alloc` for it), and must write
    /// bytes before reading them: reused memory may still hold an earlier value's uninitialized
    /// padding (bytes never used since the region was reserved are zero).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn handle_bytes(&self, handle: i32, len: usize) -> Option<&mut [u8]> {
        let bytes = self.with(|core| abi::resolve(core, handle as u32, len))?;
        // SAFETY: `resolve` checked that `len` bytes at `bytes` lie in the part of the region handed
        // out so far, which stays allocated while `self` lives; exclusivity and the lifetime until
        // the next invocation are the caller's promise.
        Some(unsafe { core::slice::from_raw_parts_mut(bytes, len) })
    }

    /// Passes a string to a host import as `(ptr, len)`; see [`GlobalArena::host_arg`].
    pub fn host_arg_str(&self, text: &str) -> (i32, i32) {
        self.host_arg(text.as_bytes())
    }

    /// Passes `data` to a host import as `(ptr, len)`. On wasm32 that is the slice itself; on
    /// native targets the bytes are copied into a host buffer and its handle is passed, as a
    /// native mock host expects. `(0, 0)` for empty data or if the copy cannot be made.
    ///
    /// ```
    /// static ARENA: flare_arena::GlobalArena = flare_arena::GlobalArena::with_max_bytes(4096);
    /// let _ = ARENA.reset();
    /// // What a native mock host sees: a handle it can resolve back into the bytes.
    /// let (ptr, len) = ARENA.host_arg_str("x-request-id");
    /// let packed = flare_arena::abi::encode_ptr_len(ptr as u32, len as u32);
    /// assert_eq!(unsafe { ARENA.packed_str(packed) }, Some(Ok("x-request-id")));
    /// ```
    pub fn host_arg(&self, data: &[u8]) -> (i32, i32) {
        if data.is_empty() {
            return (0, 0);
        }
        if cfg!(target_arch = "wasm32") {
            return (data.as_ptr().addr() as i32, data.len() as i32);
        }
        let Ok(len) = i32::try_from(data.len()) else {
            return (0, 0);
        };
        let handle = self.guest_alloc(len);
        // SAFETY: a fresh host buffer, not yet known to anyone else.
        match unsafe { self.handle_bytes(handle, data.len()) } {
            Some(buffer) if handle != 0 => {
                buffer.copy_from_slice(data);
                (handle, len)
            }
            _ => (0, 0),
        }
    }
}

impl<R: ArenaLock, G: Region> fmt::Debug for GlobalArena<R, G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The stats are taken (and the lock released) before anything is formatted.
        let stats = self.stats();
        f.debug_struct("GlobalArena")
            .field("stats", &stats)
            .finish()
    }
}

impl<R: ArenaLock, G: Region> Rewind for &GlobalArena<R, G> {
    fn mark(&mut self) -> Checkpoint {
        self.checkpoint()
    }

    fn rewind_quietly(&mut self, cp: Checkpoint) {
        let owner = self.owner();
        let _ = self.with(|core| core.reset_to(cp, owner));
    }
}

// SAFETY: every method hands out blocks from the core under the lock, and the core never places a
// block over a byte of a live block or of an unexpired host buffer: it places blocks in the current
// hole (bytes it found free) or in runs of lines whose live count is zero at or past the end of the
// last host buffer. Blocks are aligned to `max(8, layout.align())` and sized at least
// `layout.size()`; refusals return null.
unsafe impl<R: ArenaLock, G: Region> GlobalAlloc for GlobalArena<R, G> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.with(|core| core.alloc(layout))
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.with(|core| core.dealloc(ptr, layout));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `GlobalAlloc::realloc`'s contract: `ptr` is a live block of ours with `layout`.
        self.with(|core| unsafe { core.realloc(ptr, layout, new_size) })
    }
}
