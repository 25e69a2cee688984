//! Regions: the contiguous memory a bump core bumps through, and how it grows.
//!
//! Owns where memory comes from: a caller's buffer ([`SliceRegion`]), wasm linear memory grown
//! with `memory.grow` (`WasmRegion`, wasm32 only), or one block reserved from the system
//! allocator ([`SystemRegion`], native with `std`).
//!
//! Must never: move a region that already handed out memory (growth is in place or not at all),
//! hand the same bytes to two regions, shrink, allocate through the global allocator, or panic.

use core::marker::PhantomData;

/// Every block is aligned to at least this, and region bases and ends are multiples of it.
pub const MIN_ALIGN: usize = 8;

/// A contiguous span of memory that can only grow at its end.
///
/// The core calls [`Region::grow`] when a request does not fit. The region answers with its base
/// and its new end, in bytes from the base.
///
/// # Safety
/// The core hands out pointers into `base..base + end` as soon as a region answers, so an
/// implementation must guarantee that: the span is memory nobody else uses, valid for reads and
/// writes for as long as the region lives; `base` is aligned to [`MIN_ALIGN`]; once it has answered,
/// every later answer has the same `base` and an `end` no smaller than before.
pub unsafe trait Region {
    /// Makes at least `min_end` bytes available from the base. Returns `(base, end)` with `base`
    /// aligned to [`MIN_ALIGN`] and `end >= min_end` a multiple of it, or `None` if it cannot.
    fn grow(&mut self, min_end: usize) -> Option<(*mut u8, usize)>;

    /// False while the region has yet to be given its memory by someone else (a native
    /// `SystemRegion` before reservation); failures then are not counted, and the owner retries
    /// after providing the memory.
    fn is_ready(&self) -> bool {
        true
    }

    /// The largest `end` this region would ever answer: its maximum size, reported as
    /// [`Stats::limit`](crate::Stats::limit). Growth may still stop short of it.
    fn limit(&self) -> usize;
}

/// A region over a caller-provided buffer: fixed, never grows.
pub struct SliceRegion<'buf> {
    base: *mut u8,
    end: usize,
    _buffer: PhantomData<&'buf mut [u8]>,
}

impl<'buf> SliceRegion<'buf> {
    /// Uses `buffer` from its first 8-aligned byte to its last whole 8-byte word.
    pub fn new(buffer: &'buf mut [u8]) -> Self {
        let len = buffer.len();
        let base = buffer.as_mut_ptr();
        let pad = base.align_offset(MIN_ALIGN).min(len);
        SliceRegion {
            base: base.wrapping_add(pad),
            end: (len - pad) & !(MIN_ALIGN - 1),
            _buffer: PhantomData,
        }
    }
}

// SAFETY: the span is the caller's buffer, borrowed mutably for `'buf` (so nobody else uses it and
// it outlives the region); base and end never change; the base is 8-aligned by construction.
unsafe impl Region for SliceRegion<'_> {
    fn grow(&mut self, min_end: usize) -> Option<(*mut u8, usize)> {
        (min_end <= self.end).then_some((self.base, self.end))
    }

    fn limit(&self) -> usize {
        self.end
    }
}

/// Wasm linear memory from `__heap_base` upward, grown with `memory.grow` up to `max_bytes`.
///
/// The first `WasmRegion` to grow claims the free space between `__heap_base` and the end of the
/// initial memory; any other starts at the memory's end at that moment. Growth must stay
/// contiguous: if something else grew memory since our last growth, the request fails cleanly
/// (the foreign pages are never touched).
#[cfg(target_arch = "wasm32")]
pub struct WasmRegion {
    base: usize,
    end: usize,
    /// `max_bytes ^ DEFAULT_MAX_BYTES`: zero for the default, so that a default `GlobalArena`
    /// static is all zeroes and lives in `.bss` rather than adding its size to the `.wasm`.
    max_bytes_xor_default: usize,
}

#[cfg(target_arch = "wasm32")]
static HEAP_BASE_CLAIMED: core::sync::atomic::AtomicBool =
    core::sync::atomic::AtomicBool::new(false);

#[cfg(target_arch = "wasm32")]
impl WasmRegion {
    const PAGE: usize = 65536;
    /// Grow in steps of at least this many pages, so a growing request does not pay a
    /// `memory.grow` per page.
    const MIN_GROW_PAGES: usize = 4;

    /// A region that may grow to `max_bytes` (rounded down to 8).
    pub const fn new(max_bytes: usize) -> Self {
        WasmRegion {
            base: 0,
            end: 0,
            max_bytes_xor_default: (max_bytes & !(MIN_ALIGN - 1)) ^ crate::DEFAULT_MAX_BYTES,
        }
    }

    fn max_bytes(&self) -> usize {
        self.max_bytes_xor_default ^ crate::DEFAULT_MAX_BYTES
    }

    fn memory_end() -> usize {
        core::arch::wasm32::memory_size(0) * Self::PAGE
    }

    fn claim(&mut self) {
        unsafe extern "C" {
            static __heap_base: u8;
        }
        let memory_end = Self::memory_end();
        let claimed = HEAP_BASE_CLAIMED.swap(true, core::sync::atomic::Ordering::Relaxed);
        let start = if claimed {
            memory_end
        } else {
            // Taking the address of a linker-defined symbol reads nothing.
            let heap_base = (&raw const __heap_base) as usize;
            (heap_base + MIN_ALIGN - 1) & !(MIN_ALIGN - 1)
        };
        self.base = start;
        self.end = memory_end.max(start);
    }
}

// SAFETY: the span starts either at `__heap_base` (claimed once per module, see `HEAP_BASE_CLAIMED`;
// wasm-ld leaves everything from there to the end of memory unused) or at the end of memory at claim
// time, and only grows over pages that `memory.grow` just added for us, never over foreign ones.
// Linear memory never shrinks or moves; the base is set once and 8-aligned.
#[cfg(target_arch = "wasm32")]
unsafe impl Region for WasmRegion {
    fn grow(&mut self, min_end: usize) -> Option<(*mut u8, usize)> {
        if self.base == 0 {
            self.claim();
        }
        let max_bytes = self.max_bytes();
        if min_end > max_bytes {
            return None;
        }
        let needed_end = self.base.checked_add(min_end)?;
        if needed_end > self.end {
            if Self::memory_end() != self.end {
                return None; // someone else grew memory: our next pages are not ours
            }
            let max_end = self.base.checked_add(max_bytes)?;
            let missing = (needed_end - self.end).div_ceil(Self::PAGE);
            let room = max_end.saturating_sub(self.end) / Self::PAGE;
            let pages = missing.max(Self::MIN_GROW_PAGES.min(room));
            if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                return None;
            }
            self.end += pages * Self::PAGE;
        }
        let capacity = (self.end - self.base).min(max_bytes) & !(MIN_ALIGN - 1);
        Some((core::ptr::with_exposed_provenance_mut(self.base), capacity))
    }

    fn limit(&self) -> usize {
        self.max_bytes()
    }
}

/// One block of `max_bytes` reserved from the system allocator on first use (native, `std`).
///
/// Reserving is done by `SystemRegion::reserve`, which the global wrapper calls *without* its
/// lock held; `grow` itself never allocates.
#[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
pub struct SystemRegion {
    base: *mut u8,
    max_bytes: usize,
}

#[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
impl SystemRegion {
    /// A region that will reserve `max_bytes` (rounded down to 8).
    pub const fn new(max_bytes: usize) -> Self {
        SystemRegion {
            base: core::ptr::null_mut(),
            max_bytes: max_bytes & !(MIN_ALIGN - 1),
        }
    }

    pub(crate) fn is_reserved(&self) -> bool {
        !self.base.is_null()
    }

    pub(crate) fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    pub(crate) fn layout(max_bytes: usize) -> Option<core::alloc::Layout> {
        core::alloc::Layout::from_size_align(max_bytes.max(MIN_ALIGN), 4096).ok()
    }

    /// Reserves the block from the system allocator. Returns null on failure.
    pub(crate) fn reserve(max_bytes: usize) -> *mut u8 {
        match Self::layout(max_bytes) {
            // Zeroed, so that every byte of the region is initialized: the host-value readers hand
            // out `&[u8]` over bytes the host may not have written. Large zeroed blocks come from
            // fresh pages, so this costs no memset and no resident memory up front.
            // SAFETY: the layout has a non-zero size; `System` is not the allocator this crate
            // implements, so this cannot re-enter it.
            Some(layout) => unsafe {
                std::alloc::GlobalAlloc::alloc_zeroed(&std::alloc::System, layout)
            },
            None => core::ptr::null_mut(),
        }
    }

    /// Gives a block from [`SystemRegion::reserve`]`(max_bytes)` back to the system allocator.
    ///
    /// # Safety
    /// `block` came from `reserve(max_bytes)`, is not installed in a region, and is not used again.
    pub(crate) unsafe fn unreserve(block: *mut u8, max_bytes: usize) {
        if let (false, Some(layout)) = (block.is_null(), Self::layout(max_bytes)) {
            // SAFETY: the caller's promise: `block` came from `System` with this very layout
            // (`reserve` computes it the same way) and is freed once, here.
            unsafe { std::alloc::GlobalAlloc::dealloc(&std::alloc::System, block, layout) };
        }
    }

    /// Installs a block from [`SystemRegion::reserve`]; `false` (and nothing changes) if one is
    /// already installed, in which case the caller gives its block back.
    pub(crate) fn install(&mut self, block: *mut u8) -> bool {
        if self.is_reserved() || block.is_null() {
            return false;
        }
        self.base = block;
        true
    }
}

// SAFETY: the span is one block reserved from `System` that this region owns alone and frees only
// when it is dropped; it is answered only once installed, with a
// fixed base (4096-aligned) and a fixed end (`max_bytes`, the size it was reserved with).
#[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
unsafe impl Region for SystemRegion {
    fn grow(&mut self, min_end: usize) -> Option<(*mut u8, usize)> {
        (self.is_reserved() && min_end <= self.max_bytes).then_some((self.base, self.max_bytes))
    }

    fn is_ready(&self) -> bool {
        self.is_reserved()
    }

    fn limit(&self) -> usize {
        self.max_bytes
    }
}

#[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
impl Drop for SystemRegion {
    fn drop(&mut self) {
        // SAFETY: `base` is null or the block installed from `reserve(self.max_bytes)`; the region
        // is going away, so nothing uses it again.
        unsafe { Self::unreserve(self.base, self.max_bytes) };
    }
}

/// The region a `GlobalArena` uses on this target.
#[cfg(target_arch = "wasm32")]
pub type PlatformRegion = WasmRegion;
/// The region a `GlobalArena` uses on this target.
#[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
pub type PlatformRegion = SystemRegion;

/// Without `std` on a native target there is nowhere to reserve from: every request fails.
#[cfg(all(not(target_arch = "wasm32"), not(feature = "std")))]
pub struct NoRegion;
#[cfg(all(not(target_arch = "wasm32"), not(feature = "std")))]
impl NoRegion {
    /// `max_bytes` is ignored: this region never has memory.
    pub const fn new(_max_bytes: usize) -> Self {
        NoRegion
    }
}
// SAFETY: it never answers.
#[cfg(all(not(target_arch = "wasm32"), not(feature = "std")))]
unsafe impl Region for NoRegion {
    fn grow(&mut self, _min_end: usize) -> Option<(*mut u8, usize)> {
        None
    }

    fn limit(&self) -> usize {
        0
    }
}
/// The region a `GlobalArena` uses on this target.
#[cfg(all(not(target_arch = "wasm32"), not(feature = "std")))]
pub type PlatformRegion = NoRegion;
