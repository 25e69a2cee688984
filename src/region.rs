//! Regions: the contiguous memory a core bumps through, and how it grows.
//!
//! Owns where memory comes from: a caller's buffer ([`SliceRegion`]), a linear memory grown a few
//! pages at a time from the end of the module's static data ([`WasmRegion`], over wasm32's own
//! memory or any [`LinearMemory`], such as a test's fake one), or one block reserved from the
//! system allocator ([`SystemRegion`], native with `std`).
//!
//! Must never: move a region that already handed out memory (growth is in place or not at all),
//! hand the same bytes to two regions, shrink, allocate through the global allocator (the region
//! is asked for memory with the arena's lock held, and the global allocator may be that arena), or
//! panic.

use core::marker::PhantomData;

/// Every block is aligned to at least this, and region bases and ends are multiples of it.
pub const MIN_ALIGN: usize = 8;

/// The default maximum region size: 256 MiB.
pub const DEFAULT_MAX_BYTES: usize = 256 << 20;

/// Bytes in a WebAssembly page.
pub const WASM_PAGE: usize = 65536;

/// A contiguous span of memory that can only grow at its end.
///
/// The arena calls [`Region::grow`], with its lock held, when it needs more room. The region answers
/// with its base and its new end, in bytes from the base.
///
/// # Safety
/// The arena hands out pointers into `base..base + end` as soon as a region answers, and keeps its
/// own bookkeeping in that span, so an implementation must guarantee that:
/// - the span is memory nobody else uses, valid for reads and writes, initialised, for as long as
///   the region lives, except the ranges [`Region::foreign`] reports: those may belong to
///   someone else, and the arena never reads or writes them;
/// - `base` is aligned to [`MIN_ALIGN`], and `end` is a multiple of it;
/// - once it has answered, every later answer has the same `base` and an `end` no smaller;
/// - if [`Region::ZEROED`] is true, bytes of the span never answered before read as zero (foreign
///   ranges excepted);
/// - a foreign range lies above every `end` answered before the `grow` after which `foreign`
///   first reports it; until `forget_foreign`, later growths may only widen it upward (the
///   arena's own pages in between are then lost to it, never handed to someone else);
/// - `grow` never allocates through the global allocator (the arena may *be* the global allocator,
///   and its lock is held: that would deadlock), never panics, and never calls back into the arena.
pub unsafe trait Region {
    /// Whether memory the region adds reads as zero (wasm's `memory.grow`, fresh system pages), so
    /// the arena need not clear its bookkeeping there.
    const ZEROED: bool = false;

    /// Makes at least `min_end` bytes available from the base. Returns `(base, end)` with
    /// `end >= min_end`, or `None` if it cannot.
    fn grow(&mut self, min_end: usize) -> Option<(*mut u8, usize)>;

    /// The largest `end` this region would ever answer: its maximum size. Growth may still stop
    /// short of it.
    fn limit(&self) -> usize;

    /// Bytes inside the span that are not the arena's, as offsets `(from, to)` from the base
    /// (`from == to`: none): pages someone else took from the same memory between two growths,
    /// which a `grow` stepped over. The arena looks after every growth, never hands those bytes
    /// out, and calls [`Region::forget_foreign`] once it has set them aside.
    fn foreign(&self) -> (usize, usize) {
        (0, 0)
    }

    /// The range [`Region::foreign`] reports is set aside: later growths start a new one.
    fn forget_foreign(&mut self) {}
}

/// A region over a caller's buffer: fixed, never grows.
///
/// ```
/// use flare_arena::{GlobalArena, SliceRegion};
/// use core::alloc::{GlobalAlloc, Layout};
///
/// let mut buffer = vec![0u8; 64 << 10];
/// let arena: GlobalArena<flare_arena::DefaultLock, SliceRegion<'_>> =
///     GlobalArena::with_region(SliceRegion::new(&mut buffer));
/// let block = unsafe { arena.alloc(Layout::new::<[u8; 100]>()) };
/// assert!(!block.is_null());
/// ```
#[derive(Debug)]
pub struct SliceRegion<'buf> {
    base: *mut u8,
    end: usize,
    _buffer: PhantomData<&'buf mut [u8]>,
}

impl<'buf> SliceRegion<'buf> {
    /// Uses `buffer` from its first 8-aligned byte to its last whole 8-byte word.
    pub fn new(buffer: &'buf mut [u8]) -> Self {
        let len = buffer.len();
        let pad = buffer.as_mut_ptr().align_offset(MIN_ALIGN).min(len);
        // SAFETY: the rest of a unique borrow of `len` initialised bytes, held for `'buf`, from its
        // first 8-aligned byte.
        unsafe { Self::from_raw_parts(buffer.as_mut_ptr().wrapping_add(pad), len - pad) }
    }

    /// The same over raw memory, for a `static` arena over a `static` buffer (its last `len % 8`
    /// bytes are not used).
    ///
    /// # Safety
    /// `ptr` must be aligned to [`MIN_ALIGN`], and `ptr..ptr + len` initialised memory, valid for
    /// reads and writes for `'buf`, that nothing else uses while the region lives.
    pub const unsafe fn from_raw_parts(ptr: *mut u8, len: usize) -> Self {
        SliceRegion {
            base: ptr,
            end: len & !(MIN_ALIGN - 1),
            _buffer: PhantomData,
        }
    }
}

// SAFETY: the region is a unique borrow of its buffer (a `&mut [u8]` is `Send`).
unsafe impl Send for SliceRegion<'_> {}

// SAFETY: the span is the caller's buffer, borrowed mutably for `'buf` (so nobody else uses it, it is
// initialised, and it outlives the region); base and end never change; the base is 8-aligned and the
// end a multiple of 8 by construction; `grow` only compares.
unsafe impl Region for SliceRegion<'_> {
    fn grow(&mut self, min_end: usize) -> Option<(*mut u8, usize)> {
        (min_end <= self.end).then_some((self.base, self.end))
    }

    fn limit(&self) -> usize {
        self.end
    }
}

/// A WebAssembly-style linear memory: pages of [`WASM_PAGE`] bytes from address 0, grown at the end.
///
/// [`Wasm32Memory`] is wasm32's own memory 0. Anything else implementing this (a test's fake memory)
/// lets [`WasmRegion`]'s growth logic run natively.
///
/// # Safety
/// `at(a)` must be a pointer to address `a` of the memory, 8-aligned where `a` is, valid for reads
/// and writes of every address from the start of the free space (what `claim_heap` answers, or,
/// where it answers `None`, the memory's size at that moment; a region never reaches below it) up
/// to `pages() * WASM_PAGE`; pages are zero when added by `grow`, never removed, and never moved;
/// `grow(n)` adds `n` pages at the end and returns the size before, or `None` and changes nothing.
/// `claim_heap` returns `Some` at most once per memory: the free space between the module's
/// static data and the end of its initial memory, which nothing else uses.
pub unsafe trait LinearMemory {
    /// A pointer to address `addr`.
    fn at(&self, addr: usize) -> *mut u8;
    /// Current size in pages.
    fn pages(&self) -> usize;
    /// Adds `delta` pages; the size before, or `None` if the memory cannot grow.
    fn grow(&mut self, delta: usize) -> Option<usize>;
    /// The free space after the module's static data, as `(start, end)` addresses: from
    /// `__heap_base` to the end of the initial memory (`__heap_end`), the first time it is asked;
    /// `None` afterwards (another region has it). Pages added since the memory was created are
    /// not in it: whoever grew the memory owns them.
    fn claim_heap(&mut self) -> Option<(usize, usize)>;
}

/// wasm32's memory 0, grown with `memory.grow`. It is a [`LinearMemory`] on wasm32 only.
#[derive(Clone, Copy, Debug, Default)]
pub struct Wasm32Memory;

#[cfg(target_arch = "wasm32")]
static HEAP_BASE_CLAIMED: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

// SAFETY: linear memory 0 spans `memory_size * 64 KiB` bytes from address 0 (pointers to it come from
// exposed provenance, which is what wasm addresses are); `memory.grow` adds zeroed pages at the end
// and never moves or removes any; `__heap_base` is where wasm-ld ends static data and the stack,
// `__heap_end` where it ends the initial memory, and the atomic flag hands the space between out
// once per module; on WASI it is never handed out, since libc's `malloc` owns it.
#[cfg(target_arch = "wasm32")]
unsafe impl LinearMemory for Wasm32Memory {
    fn at(&self, addr: usize) -> *mut u8 {
        core::ptr::with_exposed_provenance_mut(addr)
    }
    fn pages(&self) -> usize {
        core::arch::wasm32::memory_size(0)
    }
    fn grow(&mut self, delta: usize) -> Option<usize> {
        let old = core::arch::wasm32::memory_grow(0, delta);
        (old != usize::MAX).then_some(old)
    }
    fn claim_heap(&mut self) -> Option<(usize, usize)> {
        // On WASI, libc is linked and its `malloc` (wasi-libc's dlmalloc, which libc itself uses
        // for the environment, preopened directories and so on) takes `__heap_base` up to the end
        // of the initial memory the first time it runs: that space is libc's, never ours.
        if cfg!(target_os = "wasi") {
            return None;
        }
        unsafe extern "C" {
            static __heap_base: u8;
            static __heap_end: u8;
        }
        let claimed = HEAP_BASE_CLAIMED.swap(true, core::sync::atomic::Ordering::Relaxed);
        // Taking the address of a linker-defined symbol reads nothing.
        (!claimed).then(|| {
            (
                (&raw const __heap_base).addr(),
                (&raw const __heap_end).addr(),
            )
        })
    }
}

/// The address `pages` pages into a linear memory, at most the last page boundary a `usize` holds.
/// (A full wasm32 memory, 65,536 pages, ends at 2^32, one past `usize::MAX`: the region does
/// without the last page rather than overflow.)
#[inline(never)]
fn page_address(pages: usize) -> usize {
    pages.min(usize::MAX / WASM_PAGE) * WASM_PAGE
}

/// A linear memory from the end of the module's static data upward, grown a few pages and a
/// thirty-second of its size at a time up to `max_bytes`: the region of a `GlobalArena` on wasm32.
///
/// The first `WasmRegion` of a memory to grow claims the free space between `__heap_base` and the
/// end of the initial memory (except on WASI, where libc's `malloc` owns it); any other starts at
/// the memory's end at that moment. If something else grew the memory since the region's last
/// growth (libc's `malloc` on WASI, another allocator), the region grows at the new end and
/// reports the pages in between as foreign ([`Region::foreign`]): the arena steps over them
/// and never touches them.
#[derive(Debug)]
pub struct WasmRegion<M: LinearMemory> {
    memory: M,
    /// The region's first address (0 until first use) and its end.
    start: usize,
    end: usize,
    /// Someone else's pages the last growth stepped over, from the start (`from == to`: none).
    foreign_from: usize,
    foreign_to: usize,
    /// `max_bytes ^ DEFAULT_MAX_BYTES`: zero for the default, so that a default `GlobalArena`
    /// static is all zeroes and lives in `.bss` rather than adding its size to the `.wasm`.
    max_bytes_xor_default: usize,
}

#[cfg(target_arch = "wasm32")]
impl WasmRegion<Wasm32Memory> {
    /// A region of wasm32's memory that may grow to `max_bytes` (rounded down to 8).
    pub const fn new(max_bytes: usize) -> Self {
        Self::over(Wasm32Memory, max_bytes)
    }
}

impl<M: LinearMemory> WasmRegion<M> {
    /// Grow by at least this many pages (and a thirty-second of the span), when the maximum allows.
    const MIN_GROW_PAGES: usize = 4;

    /// A region of `memory` that may grow to `max_bytes` (rounded down to 8), or as far as the
    /// memory grows if that is less (`usize::MAX`: no maximum of its own).
    pub const fn over(memory: M, max_bytes: usize) -> Self {
        WasmRegion {
            memory,
            start: 0,
            end: 0,
            foreign_from: 0,
            foreign_to: 0,
            max_bytes_xor_default: (max_bytes & !(MIN_ALIGN - 1)) ^ DEFAULT_MAX_BYTES,
        }
    }

    fn max_bytes(&self) -> usize {
        self.max_bytes_xor_default ^ DEFAULT_MAX_BYTES
    }

    fn memory_end(&self) -> usize {
        page_address(self.memory.pages())
    }

    fn claim(&mut self) {
        let memory_end = self.memory_end();
        // (Pages someone else added before this first growth lie past the heap's end: the growth
        // that follows steps over them, as over any others.)
        let (start, end) = match self.memory.claim_heap() {
            Some((heap_base, heap_end)) => (
                heap_base.next_multiple_of(MIN_ALIGN),
                heap_end.min(memory_end),
            ),
            None => (memory_end, memory_end),
        };
        // Address 0 is never handed out (0 is the host contract's "none"), even by a fake memory
        // whose static data is empty.
        self.start = start.max(MIN_ALIGN);
        self.end = end.max(self.start);
    }
}

// SAFETY: the span starts either at `__heap_base` (claimed once per memory, see
// `LinearMemory::claim_heap`; everything from there to the end of the initial memory is unused) or
// at the end of memory at claim time, and only grows over pages that `grow` just added for us: pages someone
// else added in between (from our end to where `memory.grow` says ours start) are reported by
// `foreign` from then on, lie above every end answered before, and are only widened upward until
// forgotten. Added pages are zero. Linear memory never shrinks or moves; the start is set once and
// 8-aligned, and the end answered is rounded down to 8. Addresses are page counts times
// `WASM_PAGE` capped by `page_address`, so no end wraps past the address space: on wasm32 the last
// page of a full memory is left unused (a region that would start in it has an empty span, and
// the memory cannot grow). `grow` calls no allocator.
unsafe impl<M: LinearMemory> Region for WasmRegion<M> {
    const ZEROED: bool = true;

    fn grow(&mut self, min_end: usize) -> Option<(*mut u8, usize)> {
        if self.start == 0 {
            self.claim();
        }
        let max_bytes = self.max_bytes();
        let needed_end = self
            .start
            .checked_add(min_end)
            .filter(|_| min_end <= max_bytes)?;
        if needed_end > self.end {
            // Pages past our end that someone else added are theirs: ours start after them
            // (`memory.grow` says where), and what was missing is taken there in full. At least a
            // few pages at a time and a thirty-second of the span more, room permitting: fewer
            // growths, table moves and, on WASI, interleavings with libc's own growths (each costs
            // a partial line or two). Steps in proportion to the span keep the table's moves (a
            // copy of a byte per line each) and the core's laps back to the start of the region (a
            // read of the table each) to about twenty per doubling of what is live. (A sixteenth
            // took talc's churn from 89 to 94 pages; a thirty-second, to 90.)
            // (A maximum past the address space, such as `usize::MAX`, is no maximum: the
            // memory's own limit stops the growth.)
            let max_end = self.start.saturating_add(max_bytes);
            let room = max_end
                .saturating_sub(self.memory_end())
                .div_ceil(WASM_PAGE);
            let missing = (needed_end - self.end).div_ceil(WASM_PAGE);
            if missing > room {
                return None;
            }
            let step = Self::MIN_GROW_PAGES + (self.end - self.start) / WASM_PAGE / 32;
            let mut pages = missing.max(step.min(room));
            // Where the memory's own maximum is nearer than a step, what is missing will do.
            let grown_at_page = match self.memory.grow(pages) {
                Some(at) => at,
                None => {
                    pages = missing;
                    self.memory.grow(pages)?
                }
            };
            let grown_at = page_address(grown_at_page);
            if grown_at != self.end {
                // Still pending (a growth that then fell short of `min_end` answered nothing):
                // one range from the older gap on, our unanswered pages in it wasted, not lost.
                if self.foreign_from == self.foreign_to {
                    self.foreign_from = self.end - self.start;
                }
                self.foreign_to = grown_at - self.start;
            }
            self.end = page_address(grown_at_page + pages);
        }
        // (A multiple of 8: the start is 8-aligned, the end a page boundary, the maximum rounded.)
        let capacity = (self.end - self.start).min(max_bytes);
        (capacity >= min_end).then(|| (self.memory.at(self.start), capacity))
    }

    fn limit(&self) -> usize {
        self.max_bytes()
    }

    fn foreign(&self) -> (usize, usize) {
        (self.foreign_from, self.foreign_to)
    }

    fn forget_foreign(&mut self) {
        self.foreign_to = self.foreign_from;
    }
}

/// One block of `max_bytes` reserved from the system allocator on first use (native, `std`).
///
/// The reservation asks for fresh zeroed memory (`calloc`, which for a large block maps pages the
/// OS zeroes lazily), so a big maximum costs address space, not resident memory: only the pages the
/// arena touches become resident.
#[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
#[derive(Debug)]
pub struct SystemRegion {
    base: *mut u8,
    max_bytes: usize,
}

#[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
impl SystemRegion {
    /// A region that will reserve `max_bytes` (rounded down to 8) when first asked for memory.
    pub const fn new(max_bytes: usize) -> Self {
        SystemRegion {
            base: core::ptr::null_mut(),
            max_bytes: max_bytes & !(MIN_ALIGN - 1),
        }
    }

    /// The layout of the reservation. Its alignment stays at 16 or below: std then asks `calloc`,
    /// which maps large blocks as fresh zero pages; a larger alignment would make it
    /// `posix_memalign` plus a `memset` of the whole block (every page resident at once).
    fn layout(&self) -> Option<core::alloc::Layout> {
        core::alloc::Layout::from_size_align(self.max_bytes.max(MIN_ALIGN), 16).ok()
    }
}

// SAFETY: the region owns its block alone (the raw pointer is not shared with anything).
#[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
unsafe impl Send for SystemRegion {}

// SAFETY: the span is one block reserved from `System` on the first `grow`, owned by this region
// alone and freed only when it is dropped; it is zeroed (`alloc_zeroed`) and 16-aligned; its base and
// end (`max_bytes`, the size it was reserved with, a multiple of 8) never change. `System` is not the
// allocator this crate implements, so reserving from it with the arena's lock held cannot re-enter
// the arena.
#[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
unsafe impl Region for SystemRegion {
    const ZEROED: bool = true;

    fn grow(&mut self, min_end: usize) -> Option<(*mut u8, usize)> {
        if self.base.is_null() {
            let layout = self.layout()?;
            // SAFETY: the layout has a non-zero size; `System` is not this allocator.
            self.base =
                unsafe { std::alloc::GlobalAlloc::alloc_zeroed(&std::alloc::System, layout) };
        }
        (!self.base.is_null() && min_end <= self.max_bytes).then_some((self.base, self.max_bytes))
    }

    fn limit(&self) -> usize {
        self.max_bytes
    }
}

#[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
impl Drop for SystemRegion {
    fn drop(&mut self) {
        if let (false, Some(layout)) = (self.base.is_null(), self.layout()) {
            // SAFETY: `base` came from `System.alloc_zeroed` with this very layout and is freed once,
            // here, as the region goes away.
            unsafe { std::alloc::GlobalAlloc::dealloc(&std::alloc::System, self.base, layout) };
        }
    }
}

/// The region a `GlobalArena` uses on this target.
#[cfg(target_arch = "wasm32")]
pub type PlatformRegion = WasmRegion<Wasm32Memory>;
/// The region a `GlobalArena` uses on this target.
#[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
pub type PlatformRegion = SystemRegion;
/// Without `std` on a native target there is nowhere to reserve from: give a `GlobalArena` memory
/// with [`GlobalArena::with_region`](crate::GlobalArena::with_region) and a [`SliceRegion`].
#[cfg(all(not(target_arch = "wasm32"), not(feature = "std")))]
pub type PlatformRegion = SliceRegion<'static>;
