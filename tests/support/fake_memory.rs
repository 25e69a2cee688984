//! A linear memory in native memory, with wasm's rules: 64 KiB pages from address 0, zero when
//! added, grown only at the end, up to a maximum. `WasmRegion` grows through it exactly as it grows
//! through wasm32's own memory, so the growth logic, the line table's moves and "memory grown
//! behind the arena's back" run under the models, the fuzzers and Miri.

use flare_arena::{LinearMemory, WASM_PAGE};
use std::alloc::{Layout, alloc_zeroed, dealloc};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

pub struct FakeMemory {
    base: *mut u8,
    max_pages: usize,
    pages: AtomicUsize,
    heap_base: usize,
    /// The end of the initial memory: the free space a region claims ends there.
    initial_end: usize,
    heap_claimed: AtomicBool,
}

// SAFETY: the memory is a block this value owns; the page count and the claim are atomics, and the
// bytes are only reached through pointers `at` hands out, whose users (a region, a test) keep to
// their own parts.
unsafe impl Sync for FakeMemory {}
// SAFETY: as above: nothing in it is tied to a thread.
unsafe impl Send for FakeMemory {}

impl FakeMemory {
    /// A memory of `pages` pages that can grow to `max_pages`; its "static data" ends at
    /// `heap_base` (the free space a first region claims starts there).
    pub fn new(pages: usize, max_pages: usize, heap_base: usize) -> Self {
        assert!(pages <= max_pages && max_pages > 0 && heap_base <= pages * WASM_PAGE);
        // SAFETY: a non-zero size.
        let base = unsafe { alloc_zeroed(Self::layout(max_pages)) };
        assert!(!base.is_null(), "fake memory of {max_pages} pages");
        FakeMemory {
            base,
            max_pages,
            pages: AtomicUsize::new(pages),
            heap_base,
            initial_end: pages * WASM_PAGE,
            heap_claimed: AtomicBool::new(false),
        }
    }

    fn layout(max_pages: usize) -> Layout {
        Layout::from_size_align(max_pages * WASM_PAGE, 16).unwrap()
    }

    pub fn pages(&self) -> usize {
        self.pages.load(Relaxed)
    }

    pub fn bytes(&self) -> usize {
        self.pages() * WASM_PAGE
    }

    /// The most bytes the memory can grow to.
    pub fn max_bytes(&self) -> usize {
        self.max_pages * WASM_PAGE
    }

    /// Address of byte 0 (to turn pointers into addresses).
    pub fn base_addr(&self) -> usize {
        self.base.addr()
    }

    /// What someone else does: grows the memory by `pages` pages and fills them with `fill`.
    /// Returns the address of the first new page, or `None` at the maximum.
    pub fn grow_behind_its_back(&self, pages: usize, fill: u8) -> Option<usize> {
        let old = (&*self).grow(pages)?;
        let start = old * WASM_PAGE;
        // SAFETY: the pages were just added and belong to nobody else.
        unsafe { self.base.add(start).write_bytes(fill, pages * WASM_PAGE) };
        Some(start)
    }

    /// Whether the `len` bytes at address `addr` all hold `fill`.
    pub fn holds(&self, addr: usize, len: usize, fill: u8) -> bool {
        assert!(addr + len <= self.bytes());
        // SAFETY: inside the memory; the test calls this where no region writes.
        unsafe { std::slice::from_raw_parts(self.base.add(addr), len) }
            .iter()
            .all(|&b| b == fill)
    }
}

impl Drop for FakeMemory {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout, freed once.
        unsafe { dealloc(self.base, Self::layout(self.max_pages)) };
    }
}

// SAFETY: `at` points into the one zeroed block of `max_pages` pages this memory owns, of which the
// first `pages()` are "in" the memory; `grow` only raises `pages` up to the maximum (the pages it
// adds are zero: never written before); `claim_heap` answers once, with the free space of the
// initial memory (pages added since are whoever added them, as in wasm).
unsafe impl LinearMemory for &FakeMemory {
    fn at(&self, addr: usize) -> *mut u8 {
        self.base.wrapping_add(addr)
    }

    fn pages(&self) -> usize {
        self.pages.load(Relaxed)
    }

    fn grow(&mut self, delta: usize) -> Option<usize> {
        let mut old = self.pages.load(Relaxed);
        loop {
            let new = old.checked_add(delta).filter(|&n| n <= self.max_pages)?;
            match self.pages.compare_exchange(old, new, Relaxed, Relaxed) {
                Ok(_) => return Some(old),
                Err(now) => old = now,
            }
        }
    }

    fn claim_heap(&mut self) -> Option<(usize, usize)> {
        (!self.heap_claimed.swap(true, Relaxed)).then_some((self.heap_base, self.initial_end))
    }
}
