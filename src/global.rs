//! The global arena: the bump core behind a `lock_api` mutex, as a `GlobalAlloc`, a host `alloc`
//! export, and the scope API a flare calls.
//!
//! Owns locking, the one `Send` claim the core needs to sit in a `static`, lazy reservation of the
//! native region (done *outside* the lock), and turning refused checkpoints into debug panics
//! (again outside the lock).
//!
//! Must never: allocate, panic or call out while the lock is held — a panic message allocates, and
//! the allocator it would call is this one. Every locked section below is one call into the core.

use core::alloc::{GlobalAlloc, Layout};

use lock_api::{Mutex, RawMutex};

use crate::abi;
use crate::bump::Bump;
use crate::region::PlatformRegion;
use crate::scope::{Checkpoint, Reset, report};
use crate::stats::Stats;

/// The lock used when none is named: a spin lock. On single-threaded wasm it is never contended,
/// so it costs one compare-and-swap and one store per call.
pub type DefaultLock = spin::Mutex<()>;

/// The default maximum region size: 256 MiB.
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

/// The core as it sits in the mutex.
struct Locked(Bump<PlatformRegion>);

// SAFETY: the core is `!Send` only because it holds raw pointers into its region. The region is
// owned by the core alone (see `Region`'s contract) and is not tied to any thread, and the mutex
// around `Locked` makes every access exclusive. Moving it between threads is therefore sound.
unsafe impl Send for Locked {}

/// A bump arena usable as the `#[global_allocator]` of a flare (or of any program), shared by
/// `GlobalAlloc` and the host's `alloc` export, reset at the top of every invocation.
///
/// ```
/// use flare_arena::GlobalArena;
///
/// static ARENA: GlobalArena = GlobalArena::with_max_bytes(1 << 20);
///
/// for request in 0..3 {
///     let reply = ARENA.invocation(|| {
///         // With `#[global_allocator]` a `String` would come from here; this example calls the
///         // arena directly so that it runs under the test harness's own allocator.
///         let handle = ARENA.guest_alloc(16); // what the host's `alloc` call does
///         assert_ne!(handle, 0);
///         request * 2
///     });
///     assert_eq!(reply, request * 2);
/// }
/// let stats = ARENA.stats();
/// assert_eq!(stats.high_water, 16); // every invocation reused the same bytes
/// assert_eq!(stats.resets, 3);
/// ```
pub struct GlobalArena<R: RawMutex = DefaultLock> {
    core: Mutex<R, Locked>,
}

impl GlobalArena<DefaultLock> {
    /// An arena that may grow to [`DEFAULT_MAX_BYTES`] with the default lock.
    pub const fn new() -> Self {
        Self::with_lock(DEFAULT_MAX_BYTES)
    }

    /// An arena that may grow to `max_bytes` (rounded down to 8) with the default lock. On wasm32
    /// the region grows on demand up to it; on native targets it is reserved on first use.
    pub const fn with_max_bytes(max_bytes: usize) -> Self {
        Self::with_lock(max_bytes)
    }
}

// Nothing panics while the lock is held, so every state another thread or a `catch_unwind` can see
// is a consistent one.
impl<R: RawMutex> core::panic::RefUnwindSafe for GlobalArena<R> {}
impl<R: RawMutex> core::panic::UnwindSafe for GlobalArena<R> {}

impl Default for GlobalArena<DefaultLock> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: RawMutex> GlobalArena<R> {
    /// An arena of at most `max_bytes` guarded by the lock `R`.
    pub const fn with_lock(max_bytes: usize) -> Self {
        GlobalArena {
            core: Mutex::const_new(R::INIT, Locked(Bump::new(PlatformRegion::new(max_bytes)))),
        }
    }

    /// Identifies this arena in its checkpoints.
    fn owner(&self) -> usize {
        (self as *const Self).addr()
    }

    #[inline(always)]
    fn with<T>(&self, f: impl FnOnce(&mut Bump<PlatformRegion>) -> T) -> T {
        f(&mut self.core.lock().0)
    }

    /// Makes sure the region has its memory, then runs `attempt` again. Taken only when an attempt
    /// failed while the region was not ready, which on native is the first request of the arena.
    #[cold]
    #[inline(never)]
    fn after_reserving<T>(&self, attempt: impl FnOnce(&mut Bump<PlatformRegion>) -> T) -> T {
        self.reserve_region();
        self.with(attempt)
    }

    /// Reserves the native region from the system allocator unless it already is (by us or by a
    /// thread that raced us). The reservation happens with the lock released.
    fn reserve_region(&self) {
        #[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
        {
            use crate::region::SystemRegion;
            let max_bytes = self.with(|core| {
                let region = core.region_mut();
                (!region.is_reserved()).then(|| region.max_bytes())
            });
            let Some(max_bytes) = max_bytes else {
                return;
            };
            let block = SystemRegion::reserve(max_bytes);
            if block.is_null() {
                return;
            }
            if !self.with(|core| core.region_mut().install(block)) {
                // Another thread installed its block first; ours goes back unused.
                // SAFETY: `block` came from `reserve(max_bytes)` and was not installed.
                unsafe { SystemRegion::unreserve(block, max_bytes) };
            }
        }
    }

    /// The host contract's `alloc(size)` (see `ABI.md`): 0 for `size <= 0`, for exhaustion and for
    /// overflow; otherwise a non-zero, 8-aligned handle (the address on wasm32, an offset on native)
    /// to `size` bytes that stay valid until the next reset. Host buffers are not counted as live.
    /// Never panics and never calls out.
    pub fn guest_alloc(&self, size: i32) -> i32 {
        let (handle, unready) = self.with(|core| {
            let handle = abi::guest_alloc(core, size);
            // A bad size is refused (and counted) without asking for memory.
            (handle, handle == 0 && size > 0 && !core.is_ready())
        });
        if unready {
            return self.after_reserving(|core| abi::guest_alloc(core, size));
        }
        handle
    }

    /// Opens a scope at the current position. Reset to it with [`GlobalArena::reset_to`].
    ///
    /// ```
    /// use core::alloc::{GlobalAlloc, Layout};
    /// use flare_arena::{GlobalArena, Reset};
    ///
    /// static ARENA: GlobalArena = GlobalArena::with_max_bytes(1 << 16);
    /// let layout = Layout::new::<[u64; 4]>();
    ///
    /// let cp = ARENA.checkpoint();
    /// let cached = unsafe { ARENA.alloc(layout) }; // still in use at the reset...
    /// assert!(matches!(ARENA.reset_to(cp), Reset::Kept { live: 1, .. })); // ...so it is kept
    ///
    /// unsafe { ARENA.dealloc(cached, layout) };
    /// let scratch = unsafe { ARENA.alloc(layout) };
    /// unsafe { ARENA.dealloc(scratch, layout) };
    /// assert!(ARENA.close(cp).reclaimed()); // nothing since `cp` is live: reclaimed, and closed
    /// ```
    ///
    /// # Panics
    /// In debug builds, when more than [`MAX_FRAMES`](crate::MAX_FRAMES) frames would be open;
    /// release builds return a checkpoint that every reset refuses (so nothing is ever reclaimed
    /// through it).
    pub fn checkpoint(&self) -> Checkpoint {
        let owner = self.owner();
        match self.with(|core| core.checkpoint(owner)) {
            Ok(cp) => cp,
            Err(error) => {
                debug_assert!(false, "flare-arena: {error}");
                Checkpoint {
                    owner,
                    depth: u32::MAX,
                    generation: 0,
                }
            }
        }
    }

    /// Checked reset to `cp`: reclaims everything allocated since `cp` unless some of it is still
    /// live, in which case that memory is kept (and counted in [`Stats::kept`]). The checkpoint stays
    /// open; checkpoints taken after it are closed.
    ///
    /// # Panics
    /// In debug builds, when `cp` is from another arena or already closed. Release builds refuse it
    /// and change nothing.
    pub fn reset_to(&self, cp: Checkpoint) -> Reset {
        let owner = self.owner();
        report(self.with(|core| core.reset_to(cp, owner)))
    }

    /// Checked reset to `cp`, then closes it: its frame returns to the enclosing scope (what
    /// [`GlobalArena::scope`] does when its closure returns). Later uses of `cp` are refused.
    ///
    /// # Panics
    /// In debug builds, when `cp` is from another arena or already closed.
    pub fn close(&self, cp: Checkpoint) -> Reset {
        let owner = self.owner();
        report(self.with(|core| core.end_scope(cp, owner)))
    }

    /// Resets to `cp` without checking live counts.
    ///
    /// # Safety
    /// Nothing allocated since `cp` (by any thread) may be used or freed afterwards.
    pub unsafe fn reset_to_unchecked(&self, cp: Checkpoint) {
        let owner = self.owner();
        // SAFETY: forwarded from this function's contract.
        report(self.with(|core| unsafe { core.reset_to_unchecked(cp, owner) }));
    }

    /// Runs `f` in a scope: what it allocates and frees again is reclaimed when it returns (or
    /// unwinds); what it leaves live is kept.
    ///
    /// ```
    /// use core::alloc::{GlobalAlloc, Layout};
    /// static ARENA: flare_arena::GlobalArena = flare_arena::GlobalArena::with_max_bytes(1 << 16);
    ///
    /// let before = ARENA.stats().used;
    /// ARENA.scope(|| {
    ///     let layout = Layout::from_size_align(1000, 8).unwrap();
    ///     let scratch = unsafe { ARENA.alloc(layout) };
    ///     unsafe { ARENA.dealloc(scratch, layout) };
    /// });
    /// assert_eq!(ARENA.stats().used, before);
    /// ```
    ///
    /// Scopes are a stack. When threads share a native `GlobalArena`, their scopes interleave and
    /// one thread's reset may close a scope another thread opened: nothing live is ever reclaimed
    /// (the reset is checked), but the closed scope then ends without reclaiming anything. For the
    /// same reason `scope` never panics: with all [`MAX_FRAMES`](crate::MAX_FRAMES) frames open it
    /// runs `f` without a frame of its own. Both cases show in [`Stats::refused`].
    pub fn scope<T>(&self, f: impl FnOnce() -> T) -> T {
        let owner = self.owner();
        let Ok(cp) = self.with(|core| core.checkpoint(owner)) else {
            return f();
        };
        let _end = ScopeEnd { arena: self, cp };
        f()
    }

    /// Starts an invocation and runs it: resets to the start-of-invocation mark (checked), then
    /// calls `f`. Every guest export should wrap its body in this.
    pub fn invocation<T>(&self, f: impl FnOnce() -> T) -> T {
        self.reset();
        f()
    }

    /// The reset at the top of an invocation, without a closure (the seed's `reset_arena`).
    /// The first call marks where invocations start: what init allocated and still holds is never
    /// reclaimed (if it holds nothing, as in a flare, the first call reclaims everything first).
    pub fn reset(&self) -> Reset {
        let owner = self.owner();
        report(self.with(|core| core.reset_invocation(owner)))
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.with(|core| core.stats())
    }

    /// The bytes behind a host result packed as `(handle << 32) | len`; `None` for 0 ("none") or
    /// if they are not in the used part of the arena.
    ///
    /// # Safety
    /// The slice is valid only until the next reset of this arena, nothing may write to those
    /// bytes while it is held, and they must hold a value the host wrote (see
    /// [`GlobalArena::handle_bytes`]). Reading the same value twice at once is fine.
    pub unsafe fn packed_bytes(&self, packed: i64) -> Option<&[u8]> {
        let (handle, len) = abi::unpack(packed)?;
        let bytes = self.with(|core| abi::resolve(core, handle, len))?;
        // SAFETY: `resolve` checked that `len` bytes at `bytes` lie in the used part of the region,
        // which stays allocated while `self` lives; that they stay unchanged until the next reset
        // is the caller's promise. Only a shared slice is made, so reading the same value twice
        // (two live slices over the same bytes) is fine.
        Some(unsafe { core::slice::from_raw_parts(bytes, len) })
    }

    /// The text behind a host result, as [`GlobalArena::packed_bytes`]; `Some(Err(_))` when it is
    /// not UTF-8 (the seed SDK replaced such bytes; borrowing in place cannot).
    ///
    /// # Safety
    /// As for [`GlobalArena::packed_bytes`].
    pub unsafe fn packed_str(&self, packed: i64) -> Option<Result<&str, core::str::Utf8Error>> {
        // SAFETY: forwarded from this function's contract.
        unsafe { self.packed_bytes(packed) }.map(core::str::from_utf8)
    }

    /// The bytes of `len` at `handle` (from [`GlobalArena::guest_alloc`]), for a native mock host
    /// (or a guest) to write or read; `None` unless they lie in the used part of the arena.
    ///
    /// # Safety
    /// Valid only until the next reset; the caller must not create aliasing references to the
    /// same bytes (each host buffer belongs to whoever asked `alloc` for it), and must write bytes
    /// before reading them: reused memory may still hold an earlier value's uninitialized padding
    /// (bytes never used since the region was reserved are zero).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn handle_bytes(&self, handle: i32, len: usize) -> Option<&mut [u8]> {
        let bytes = self.with(|core| abi::resolve(core, handle as u32, len))?;
        // SAFETY: `resolve` checked that `len` bytes at `bytes` lie in the used part of the region,
        // which stays allocated while `self` lives; exclusivity and the lifetime until the next reset
        // are the caller's promise.
        Some(unsafe { core::slice::from_raw_parts_mut(bytes, len) })
    }

    /// Passes a string to a host import as `(ptr, len)`; see [`GlobalArena::host_arg`].
    pub fn host_arg_str(&self, text: &str) -> (i32, i32) {
        self.host_arg(text.as_bytes())
    }

    /// Passes `data` to a host import as `(ptr, len)`. On wasm32 that is the slice itself; on
    /// native targets the bytes are copied into a host buffer and its handle is passed, as the
    /// mock host expects. `(0, 0)` for empty data or if the copy cannot be made.
    ///
    /// ```
    /// static ARENA: flare_arena::GlobalArena = flare_arena::GlobalArena::with_max_bytes(4096);
    /// ARENA.reset();
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

/// Ends a scope when dropped, so a scope unwinding from a panic still closes.
struct ScopeEnd<'a, R: RawMutex> {
    arena: &'a GlobalArena<R>,
    cp: Checkpoint,
}

impl<R: RawMutex> Drop for ScopeEnd<'_, R> {
    fn drop(&mut self) {
        let owner = self.arena.owner();
        // Not `report`ed: a refusal here means another thread's reset already closed this scope.
        self.arena.with(|core| core.end_scope(self.cp, owner));
    }
}

// SAFETY: every method hands out blocks from the core under the lock, and the core never places two
// live blocks over the same bytes: a block is placed at or above the bump pointer, which moves down
// only over a freed last block or over a range whose live count is zero (checked reset). Blocks are
// aligned to `max(8, layout.align())` and sized at least `layout.size()`; refusals return null.
unsafe impl<R: RawMutex> GlobalAlloc for GlobalArena<R> {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let (block, unready) = self.with(|core| {
            let block = core.alloc(layout);
            (block, block.is_null() && !core.is_ready())
        });
        if unready {
            return self.after_reserving(|core| core.alloc(layout));
        }
        block
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
