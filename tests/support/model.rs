//! A reference model of an arena, and an interpreter of random operation sequences checked against
//! it after every step:
//! - live blocks and unexpired host buffers are disjoint, aligned, inside the region, and still
//!   hold the bytes written into them (canaries: an overlap, a reuse of a live line, or a host
//!   buffer recycled before its invocation ended shows as lost bytes);
//! - the arena's line counts are exact: `live_lines` is the number of lines the model's live blocks
//!   overlap, and `live_blocks` and `live_bytes` agree;
//! - a request is refused only when no run of free lines (at or past the end of this invocation's
//!   host buffers, within the arena's limit, none of someone else's pages) can hold it; and a
//!   growable region grows only when no run within its current capacity can (a refusal changes
//!   no block, and the capacity only where the growth stepped over someone else's pages);
//! - resets report exactly what was freed since their checkpoint, but for blocks given back at
//!   the cursor, and what is still live, and `Stats::bytes_reclaimed` is exact after every step
//!   (the model follows the cursor: the end of the block or host buffer last handed out, or grown
//!   or shrunk at it, the start of one freed there, where a reset rewinds it); stale and foreign
//!   checkpoints are refused and change nothing; `failed`, `refused` and `resets` are exact;
//!   `peak` never falls;
//! - over a fake linear memory, pages someone else grows it by (between any two steps, before the
//!   first allocation or after) are never touched: they keep what was written into them, and no
//!   block or host buffer overlaps them.
//!
//! The interpreter drives anything that implements [`Subject`]: the standalone `Arena`, and a
//! `GlobalArena` (over the system region, or a fake linear memory that grows) through the
//! `GlobalAlloc` trait. Its decisions come from a [`Choices`]: a seeded PRNG in `tests/model.rs`
//! (and under Miri), the fuzzer's bytes in `fuzz/` (see `fuzzing.rs`).

use crate::fake_memory::FakeMemory;
use core::alloc::{GlobalAlloc, Layout};
use flare_arena::{
    Arena, ArenaLock, Checkpoint, CheckpointError, GlobalArena, LINE_BYTES, Region, Reset, Stats,
    WASM_PAGE,
};
use std::panic::{AssertUnwindSafe, catch_unwind};

/// Where the interpreter's decisions come from.
pub trait Choices {
    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64;
    /// Any 64-bit value.
    fn next(&mut self) -> u64;
    /// True once the source has nothing more to say (the fuzzer's input is used up).
    fn exhausted(&self) -> bool {
        false
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// xorshift64*: tiny, deterministic, no dependencies (so Miri runs it too).
pub struct Rng(pub u64);

impl Choices for Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the interpreter does about misuse (resets to stale or foreign checkpoints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Misuse {
    /// Never attempt it: a fuzz build with debug assertions, where the debug panic would abort.
    Skip,
    /// Attempt it and expect the debug panic, raised after the arena refused it and unlocked.
    ExpectPanic,
    /// Attempt it and expect `Reset::Refused` (release builds).
    ExpectRefusal,
}

impl Misuse {
    /// For a fuzz target: with debug assertions (`cargo fuzz run` without `-O`) misuse is a debug
    /// panic, which the fuzzer would report as a crash, so leave it out; release builds refuse it.
    pub fn under_a_fuzzer() -> Self {
        if cfg!(debug_assertions) {
            Misuse::Skip
        } else {
            Misuse::ExpectRefusal
        }
    }

    /// What this build does with misuse: debug builds panic, release builds refuse quietly.
    pub fn of_this_build() -> Self {
        if cfg!(debug_assertions) {
            Misuse::ExpectPanic
        } else {
            Misuse::ExpectRefusal
        }
    }
}

/// An arena as the interpreter drives it.
pub trait Subject {
    fn alloc(&mut self, layout: Layout) -> *mut u8;
    /// # Safety
    /// `ptr` is a live block of this arena allocated with `layout`.
    unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout);
    /// # Safety
    /// As for `dealloc`, and `new_size` is non-zero and valid for `layout.align()`.
    unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8;
    fn guest_alloc(&mut self, size: i32) -> i32;
    /// Where the `len` bytes behind a host handle are, if they resolve.
    fn resolve(&mut self, handle: i32, len: usize) -> Option<*mut u8>;
    fn checkpoint(&mut self) -> Checkpoint;
    fn reset_to(&mut self, cp: Checkpoint) -> Reset;
    fn reset(&mut self) -> Reset;
    fn scope(&mut self, body: &mut dyn FnMut(&mut Self));
    fn stats(&self) -> Stats;
    /// A checkpoint of some other arena.
    fn foreign_checkpoint(&mut self) -> Checkpoint;
}

impl Subject for Arena<'_> {
    fn alloc(&mut self, layout: Layout) -> *mut u8 {
        Arena::alloc(self, layout)
    }
    unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from `Subject::dealloc`'s contract.
        unsafe { Arena::dealloc(self, ptr, layout) }
    }
    unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from `Subject::realloc`'s contract.
        unsafe { Arena::realloc(self, ptr, layout, new_size) }
    }
    fn guest_alloc(&mut self, size: i32) -> i32 {
        Arena::guest_alloc(self, size)
    }
    fn resolve(&mut self, handle: i32, len: usize) -> Option<*mut u8> {
        // SAFETY: only the address is kept; the model reads and writes through it alone, and host
        // buffers are disjoint from blocks (which `check` asserts).
        unsafe { self.handle_bytes(handle, len) }.map(|bytes| bytes.as_mut_ptr())
    }
    fn checkpoint(&mut self) -> Checkpoint {
        Arena::checkpoint(self)
    }
    fn reset_to(&mut self, cp: Checkpoint) -> Reset {
        Arena::reset_to(self, cp)
    }
    fn reset(&mut self) -> Reset {
        Arena::reset(self)
    }
    fn scope(&mut self, body: &mut dyn FnMut(&mut Self)) {
        Arena::scope(self, |arena| body(arena))
    }
    fn stats(&self) -> Stats {
        Arena::stats(self)
    }
    fn foreign_checkpoint(&mut self) -> Checkpoint {
        let mut other = [0u8; 64];
        Arena::new(&mut other).checkpoint()
    }
}

/// A `GlobalArena` driven through `GlobalAlloc` (and its host and scope API).
pub struct Global<'a, R: ArenaLock, G: Region>(pub &'a GlobalArena<R, G>);

/// `GlobalAlloc` may not be asked for zero bytes (a `Vec` never does): the model's zero-sized
/// blocks go through it as one byte, which takes the same 8.
fn nonzero(layout: Layout) -> Layout {
    Layout::from_size_align(layout.size().max(1), layout.align()).unwrap()
}

impl<R: ArenaLock, G: Region> Subject for Global<'_, R, G> {
    fn alloc(&mut self, layout: Layout) -> *mut u8 {
        // SAFETY: `nonzero` makes the size non-zero, as `GlobalAlloc::alloc` requires.
        unsafe { self.0.alloc(nonzero(layout)) }
    }
    unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from `Subject::dealloc`; the block was allocated with the same
        // `nonzero` layout.
        unsafe { self.0.dealloc(ptr, nonzero(layout)) }
    }
    unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from `Subject::realloc` (non-zero `new_size`, valid for the
        // alignment); the block was allocated with the same `nonzero` layout.
        unsafe { self.0.realloc(ptr, nonzero(layout), new_size) }
    }
    fn guest_alloc(&mut self, size: i32) -> i32 {
        self.0.guest_alloc(size)
    }
    fn resolve(&mut self, handle: i32, len: usize) -> Option<*mut u8> {
        // SAFETY: as for `Arena`: only the address is kept.
        unsafe { self.0.handle_bytes(handle, len) }.map(|bytes| bytes.as_mut_ptr())
    }
    fn checkpoint(&mut self) -> Checkpoint {
        self.0.checkpoint()
    }
    fn reset_to(&mut self, cp: Checkpoint) -> Reset {
        self.0.reset_to(cp)
    }
    fn reset(&mut self) -> Reset {
        self.0.reset()
    }
    fn scope(&mut self, body: &mut dyn FnMut(&mut Self)) {
        let arena = self.0;
        arena.scope(|| body(self))
    }
    fn stats(&self) -> Stats {
        self.0.stats()
    }
    fn foreign_checkpoint(&mut self) -> Checkpoint {
        GlobalArena::with_max_bytes(64).checkpoint()
    }
}

#[derive(Clone, Copy, Debug)]
struct Block {
    ptr: *mut u8,
    layout: Layout,
    fill: u8,
}

/// Pages someone else added to the linear memory under the arena (at `addr`, an address), filled
/// with `fill`.
#[derive(Clone, Copy, Debug)]
struct Foreign {
    addr: usize,
    len: usize,
    fill: u8,
}

#[derive(Clone, Copy, Debug)]
struct HostBuffer {
    handle: i32,
    len: usize,
    /// How many of its first bytes were filled (and are checked): all but the huge ones.
    checked: usize,
    fill: u8,
}

/// The model's cursor and count of bytes reclaimed when a checkpoint was taken.
#[derive(Clone, Copy, Debug)]
struct Taken {
    cursor: usize,
    reclaimed: usize,
}

/// Counters the model predicts exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Expected {
    failed: u64,
    refused: u64,
    resets: u64,
}

/// What the arena should look like.
pub struct Model<'m> {
    blocks: Vec<Block>,
    /// This invocation's host buffers (all unexpired).
    host: Vec<HostBuffer>,
    /// Checkpoints of this invocation (valid), with the cursor and `reclaimed` when they were
    /// taken.
    checkpoints: Vec<(Checkpoint, Taken)>,
    /// Checkpoints of earlier invocations: every reset to one must be refused.
    stale: Vec<Checkpoint>,
    /// The lines live blocks overlapped after the last change (merged runs).
    lines: Vec<(usize, usize)>,
    clock: u64,
    expected: Expected,
    peak: usize,
    /// The arena's capacity at the last check.
    capacity: usize,
    misuse: Misuse,
    /// Where the arena's cursor is (an offset from its base): a free of the block that ends there
    /// gives its bytes back at once, and reclaims nothing.
    cursor: usize,
    /// The end of this invocation's last host buffer (an offset), 0 if none.
    host_end: usize,
    /// Bytes of this invocation's host buffers.
    host_bytes: usize,
    /// Bytes reclaimed since the arena was made: freed, but for those given back at the cursor,
    /// and expired host buffers.
    reclaimed: usize,
    /// `reclaimed` when this invocation began.
    reclaimed_at_invocation: usize,
    /// The fake linear memory under the arena, if it is over one: its maximum bounds what fits
    /// (as a host's memory limit would), and the interpreter grows it as someone else would.
    memory: Option<&'m FakeMemory>,
    /// The pages someone else grew that memory by.
    foreign: Vec<Foreign>,
    /// Operations run, by name (for reports).
    pub ops: std::collections::BTreeMap<&'static str, u64>,
}

/// Whether every byte of `bytes` is `value`. Not generic, so it is compiled (optimised) with this
/// crate rather than in each test binary that instantiates the generic checks.
#[inline(never)]
pub fn holds(bytes: &[u8], value: u8) -> bool {
    bytes.iter().all(|&b| b == value)
}

/// The bytes a block of `size` takes in the arena.
fn rounded(size: usize) -> Option<usize> {
    Some((size.checked_add(7)? & !7).max(8))
}

impl<'m> Model<'m> {
    /// A model of an arena nothing has happened to yet.
    pub fn new(misuse: Misuse) -> Self {
        if misuse == Misuse::ExpectPanic {
            quiet_expected_panics();
        }
        Model {
            blocks: Vec::new(),
            host: Vec::new(),
            checkpoints: Vec::new(),
            stale: Vec::new(),
            lines: Vec::new(),
            clock: 0,
            expected: Expected::default(),
            peak: 0,
            capacity: 0,
            misuse,
            cursor: 0,
            host_end: 0,
            host_bytes: 0,
            reclaimed: 0,
            reclaimed_at_invocation: 0,
            memory: None,
            foreign: Vec::new(),
            ops: Default::default(),
        }
    }

    /// The same, for an arena over `memory`: a request must not be refused if it fits within the
    /// memory's maximum (where that is below the arena's), and the interpreter sometimes grows the
    /// memory behind the arena's back.
    pub fn with_memory(mut self, memory: &'m FakeMemory) -> Self {
        self.memory = Some(memory);
        self
    }

    /// After every change to the blocks: the lines they overlap now.
    fn sync_lines(&mut self, arena: &mut impl Subject) {
        if let Some(base) = base_of(arena) {
            self.lines = self.occupied_lines(base);
        }
    }

    /// Bytes of the live blocks, each rounded up to 8 (at least 8).
    fn live_bytes(&self) -> usize {
        (self.blocks.iter())
            .map(|b| rounded(b.layout.size()).unwrap())
            .sum()
    }

    fn live_lines(&self) -> usize {
        self.lines.iter().map(|(s, e)| e - s).sum()
    }

    /// The runs of lines that live blocks overlap (relative to the arena's `base`), sorted and
    /// merged: `[start, end)` in lines.
    fn occupied_lines(&self, base: usize) -> Vec<(usize, usize)> {
        Self::lines_of(self.block_spans(base))
    }

    /// The bytes each live block takes, `[start, end)` relative to `base`.
    fn block_spans(&self, base: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.blocks.iter().map(move |b| {
            let start = b.ptr as usize - base;
            (start, start + rounded(b.layout.size()).unwrap())
        })
    }

    /// The lines the arena may not hand out: those of live blocks, and those of someone else's
    /// pages. (Those taken as one span from the first foreign page to the last: where the arena's
    /// growth fell short between two of them, it leaves its own pages in between unused. And from
    /// the end of its `capacity` if that is below them: the lines between are usable only once
    /// its table has moved past the foreign pages, which needs room there.)
    fn unavailable_lines(&self, base: usize, capacity: usize) -> Vec<(usize, usize)> {
        let from = self.foreign.iter().map(|f| f.addr).min();
        let to = self.foreign.iter().map(|f| f.addr + f.len).max();
        let foreign = from
            .zip(to)
            .map(|(from, to)| ((from - base).min(capacity), to - base));
        Self::lines_of(self.block_spans(base).chain(foreign))
    }

    /// The runs of lines that byte spans `[start, end)` overlap, sorted and merged.
    fn lines_of(spans: impl Iterator<Item = (usize, usize)>) -> Vec<(usize, usize)> {
        let mut spans: Vec<(usize, usize)> = spans
            .map(|(start, end)| (start / LINE_BYTES, end.div_ceil(LINE_BYTES)))
            .collect();
        spans.sort_unstable();
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(spans.len());
        for (start, end) in spans {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        merged
    }

    /// Where no reuse may happen before the next invocation: the end of this invocation's last
    /// host buffer (as an offset from `base`).
    fn host_floor(&self, arena: &mut impl Subject, base: usize) -> usize {
        let ends = self.host.iter().map(|h| {
            let start = arena.resolve(h.handle, 0).expect("host buffers resolve") as usize;
            start - base + rounded(h.len).unwrap()
        });
        ends.max().unwrap_or(0)
    }

    /// Whether a block of `size` aligned to `align` fits in a run of free lines (none of a live
    /// block's or someone else's) at or past the host floor and below `lines`; `None` before the
    /// arena has a base.
    fn fits(
        &self,
        arena: &mut impl Subject,
        size: usize,
        align: usize,
        lines: usize,
    ) -> Option<bool> {
        let base = base_of(arena)?;
        let size = rounded(size)?;
        let floor = self.host_floor(arena, base).div_ceil(LINE_BYTES);
        let occupied = self.unavailable_lines(base, arena.stats().capacity);
        let gaps_from = std::iter::once(0).chain(occupied.iter().map(|&(_, end)| end));
        let gaps_to = occupied
            .iter()
            .map(|&(start, _)| start)
            .chain(std::iter::once(usize::MAX));
        let fits_in = |(start, end): (usize, usize)| {
            let (start, end) = (start.max(floor), end.min(lines));
            if start >= end {
                return false;
            }
            let offset = (base + start * LINE_BYTES).next_multiple_of(align.max(8)) - base;
            offset
                .checked_add(size)
                .is_some_and(|e| e <= end * LINE_BYTES)
        };
        Some(gaps_from.zip(gaps_to).any(fits_in))
    }

    /// Checks every invariant against `arena`; `step` names the operation for the message.
    pub fn check(&mut self, arena: &mut impl Subject, step: &str) {
        let stats = arena.stats();
        assert!(
            stats.peak <= stats.capacity && stats.capacity <= stats.limit,
            "{step}: {stats:?}"
        );
        assert!(
            stats.peak >= self.peak,
            "{step}: peak went down: {stats:?}, was {}",
            self.peak
        );
        self.peak = stats.peak;
        assert_eq!(stats.live_blocks, self.blocks.len(), "{step}: live blocks");
        assert_eq!(
            stats.bytes_reclaimed, self.reclaimed as u64,
            "{step}: bytes reclaimed"
        );
        let counted = Expected {
            failed: stats.failed,
            refused: stats.refused,
            resets: stats.resets,
        };
        assert_eq!(counted, self.expected, "{step}: counters");

        let Some(base) = base_of(arena) else {
            assert!(
                self.blocks.is_empty() && self.host.is_empty(),
                "{step}: no region yet"
            );
            return;
        };
        assert_eq!(
            self.lines,
            self.occupied_lines(base),
            "{step}: the model's lines are stale"
        );
        assert_eq!(
            stats.live_lines,
            self.live_lines(),
            "{step}: live lines (the line counts)"
        );
        assert_eq!(stats.live_bytes, self.live_bytes(), "{step}: live bytes");
        let region = base..base + stats.capacity;
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for b in &self.blocks {
            let addr = b.ptr as usize;
            assert_eq!(
                addr % b.layout.align().max(8),
                0,
                "{step}: misaligned {b:?}"
            );
            assert!(
                region.start <= addr && addr + b.layout.size() <= region.end,
                "{step}: outside {region:x?}: {b:?}"
            );
            // SAFETY: a live block of this size, filled when it was placed, and nothing writes to it
            // while the slice is held.
            let bytes = unsafe { core::slice::from_raw_parts(b.ptr, b.layout.size()) };
            assert!(holds(bytes, b.fill), "{step}: block {b:?} was overwritten");
            spans.push((addr, addr + b.layout.size().max(1)));
        }
        for h in &self.host {
            let ptr = arena
                .resolve(h.handle, h.len)
                .unwrap_or_else(|| panic!("{step}: host buffer {h:?} does not resolve"));
            let addr = ptr as usize;
            assert_eq!(addr % 8, 0);
            assert!(
                region.start <= addr && addr + h.len <= region.end,
                "{step}: {h:?}"
            );
            // SAFETY: the arena resolved `h.len >= h.checked` bytes there, and the first
            // `h.checked` were filled when the buffer was handed out.
            let bytes = unsafe { core::slice::from_raw_parts(ptr, h.checked) };
            assert!(
                holds(bytes, h.fill),
                "{step}: host buffer {h:?} was overwritten"
            );
            spans.push((addr, addr + h.len));
        }
        // Every byte after a growth (which moves the table), a sample otherwise; and every byte
        // at the end of the sequence (`run_ops`): nothing but the arena writes there, so a stray
        // write stays until then.
        self.check_foreign_pages(stats.capacity != self.capacity, step);
        self.capacity = stats.capacity;
        spans.extend(self.foreign.iter().map(|f| (f.addr, f.addr + f.len)));
        spans.sort_unstable();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "{step}: overlap {pair:x?}");
        }
    }

    /// Someone else's pages still hold what was written into them: every byte (`every`), or every
    /// 509th. (Under Miri, where every byte read costs, every 61st at most: a stray write of the
    /// arena's is a block's, a table's or a poisoning's, never a single byte.)
    fn check_foreign_pages(&self, every: bool, step: &str) {
        let stride = match (every, cfg!(miri)) {
            (true, false) => 1,
            (true, true) => 61,
            (false, _) => 509,
        };
        for f in &self.foreign {
            // SAFETY: pages of the fake memory someone else grew it by: in the memory, never
            // freed while it lives, and nothing writes to them while the slice is held.
            let bytes = unsafe { core::slice::from_raw_parts(f.addr as *const u8, f.len) };
            assert!(
                bytes.iter().step_by(stride).all(|&b| b == f.fill),
                "{step}: someone else's pages {f:x?} were written to"
            );
        }
    }

    /// A reset the model says is valid: what it reports reclaimed since `reclaimed_before` and
    /// live must be exact. This invocation's host buffers stay (they expire only at the next
    /// invocation).
    fn after_reset(&mut self, result: Reset, reclaimed_before: usize, step: &str) {
        self.expected.resets += 1;
        let expected = Reset::Rewound {
            reclaimed: self.reclaimed - reclaimed_before,
            live: self.live_bytes(),
            live_blocks: self.blocks.len(),
        };
        assert_eq!(
            result, expected,
            "{step}: what a reset reports reclaimed and live"
        );
    }

    /// What the model remembers of a checkpoint just taken.
    fn taken(&self) -> Taken {
        Taken {
            cursor: self.cursor,
            reclaimed: self.reclaimed,
        }
    }

    /// A valid rewind to a checkpoint taken at `taken`: the cursor goes back to the first line
    /// at or after it (and after this invocation's host buffers), unless it is there already.
    fn rewind(&mut self, arena: &mut impl Subject, taken: Taken) {
        if self.cursor != taken.cursor {
            let lines = arena.stats().capacity / LINE_BYTES;
            let line = taken.cursor.max(self.host_end).div_ceil(LINE_BYTES);
            self.cursor = line.min(lines) * LINE_BYTES;
        }
    }

    /// A block of `size` bytes was just placed at `ptr`: the cursor is at its end.
    fn placed(&mut self, arena: &mut impl Subject, ptr: *mut u8, size: usize) {
        let base = base_of(arena).expect("a region that placed a block has a base");
        self.cursor = ptr as usize - base + rounded(size).unwrap();
    }

    /// The block `b` is freed: given back at the cursor if it ends there, else reclaimed.
    fn freed(&mut self, arena: &mut impl Subject, b: Block) {
        let base = base_of(arena).expect("a region with a block has a base");
        let (start, size) = (b.ptr as usize - base, rounded(b.layout.size()).unwrap());
        if start + size == self.cursor {
            self.cursor = start;
        } else {
            self.reclaimed += size;
        }
    }

    /// A request the arena answered with `ok`: checks it against what the model says fits, before
    /// (`capacity` was the arena's capacity then) and after.
    fn check_answer(
        &mut self,
        arena: &mut impl Subject,
        ok: bool,
        (size, align): (usize, usize),
        before: &Stats,
        predicted: Option<(bool, bool)>,
        step: &str,
    ) {
        let after = arena.stats();
        if let Some((fits_in_limit, fits_in_capacity)) = predicted {
            if !ok {
                assert!(
                    !fits_in_limit,
                    "{step}: refused {size} B (align {align}) though a hole fits: {before:?}"
                );
            }
            if after.capacity > before.capacity {
                assert!(
                    !fits_in_capacity,
                    "{step}: grew for {size} B though a hole fits: {before:?}"
                );
            }
        }
        if !ok {
            self.expected.failed += 1;
            // (The first request of all makes the region answer, to learn its base, refused or not.
            // A growth that steps over someone else's pages keeps the pages it took past them,
            // though the request then does not fit there either: they serve later requests.)
            let stepped_over = base_of(arena).is_some_and(|base| {
                self.foreign
                    .iter()
                    .any(|f| f.addr >= base + before.capacity)
            });
            let capacity = if before.capacity == 0 || stepped_over {
                after.capacity
            } else {
                before.capacity
            };
            assert_eq!(
                (after.live_blocks, after.capacity),
                (before.live_blocks, capacity),
                "{step}: a refusal changed the arena"
            );
        }
    }

    /// What the model says of a request before it is made: (fits within the limit, fits within the
    /// current capacity), or `None` before the arena has a base.
    fn predict(&self, arena: &mut impl Subject, size: usize, align: usize) -> Option<(bool, bool)> {
        let stats = arena.stats();
        // (The lines a capacity holds once the table, a byte per line rounded up to a word, is
        // taken out: the arena's own sum, `LineTable::lines_in`.)
        let memory_bytes = self.memory.map_or(usize::MAX, |memory| {
            let base = base_of(arena).unwrap_or(usize::MAX);
            (memory.base_addr() + memory.max_bytes()).saturating_sub(base)
        });
        let limit_lines =
            (stats.limit / LINE_BYTES).min(memory_bytes.saturating_sub(7) / (LINE_BYTES + 1));
        let in_limit = self.fits(arena, size, align, limit_lines)?;
        let in_capacity = self.fits(arena, size, align, stats.capacity / LINE_BYTES)?;
        Some((in_limit, in_capacity))
    }
}

/// Where offset 0 of the arena is, once it has memory: native host handles are offsets plus 8,
/// so handle 8 names offset 0.
pub fn base_of(arena: &mut impl Subject) -> Option<usize> {
    arena.resolve(8, 0).map(|ptr| ptr as usize)
}

/// A size from a spread that favours small blocks and sometimes asks for the impossible.
fn random_size(rng: &mut impl Choices, align: usize) -> usize {
    let size = match rng.below(50) {
        0..=4 => 0,
        5..=34 => rng.below(64) as usize,
        35..=42 => rng.below(600) as usize,
        43..=47 => rng.below(5000) as usize,
        48 => rng.below(1 << 17) as usize,
        // The largest size a Layout of this alignment allows.
        _ => isize::MAX as usize + 1 - align,
    };
    // Under Miri every byte checked costs: keep blocks small there (same shapes of sequences).
    if cfg!(miri) && size < isize::MAX as usize / 2 {
        size % 200
    } else {
        size
    }
}

fn random_layout(rng: &mut impl Choices) -> Layout {
    let align = match rng.below(20) {
        0..=15 => 1 << rng.below(4),
        16..=18 => 1 << rng.below(13),
        _ => 1 << rng.below(17), // up to 64 KiB
    };
    Layout::from_size_align(random_size(rng, align), align).unwrap()
}

fn fill(ptr: *mut u8, len: usize, value: u8) {
    // SAFETY: callers pass a block or host buffer just handed out with at least `len` bytes, which
    // nothing else uses.
    unsafe { ptr.write_bytes(value, len) };
}

/// A host `alloc` size: the edges of the contract, what is left and just above it, or anything.
fn random_host_size(rng: &mut impl Choices, stats: &Stats) -> i32 {
    let left = stats.limit - stats.peak;
    let left = i32::try_from(left).unwrap_or(i32::MAX);
    match rng.below(40) {
        0 => 0,
        1 => -1,
        2 => i32::MIN,
        3 => i32::MAX,
        4 => left.saturating_add(1),
        5 => left,
        6 => rng.next() as i32,
        7..=9 => 1 + rng.below(5000) as i32,
        _ => 1 + rng.below(300) as i32,
    }
}

/// Debug builds panic on a refused reset (after unlocking); the interpreter provokes that on
/// purpose, so keep those expected messages out of the test output.
fn quiet_expected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let expected = info
                .payload_as_str()
                .is_some_and(|message| message.contains("flare-arena: reset refused"));
            if !expected {
                default(info);
            }
        }));
    });
}

/// Runs up to `budget` random operations on `arena`, checking it against `model` after each.
pub fn run_ops<S: Subject>(
    arena: &mut S,
    model: &mut Model,
    rng: &mut impl Choices,
    depth: usize,
    budget: &mut u64,
) {
    while *budget > 0 && !rng.exhausted() {
        *budget -= 1;
        model.clock += 1;
        let op = step(arena, model, rng, depth, budget);
        *model.ops.entry(op).or_default() += 1;
        let step = format!("step {} ({op}, depth {depth})", model.clock);
        model.check(arena, &step);
    }
    if depth == 0 {
        model.check_foreign_pages(true, "the end of the sequence");
    }
}

/// One operation; returns its name.
fn step<S: Subject>(
    arena: &mut S,
    model: &mut Model,
    rng: &mut impl Choices,
    depth: usize,
    budget: &mut u64,
) -> &'static str {
    let at = &format!("step {} (depth {depth})", model.clock);
    match rng.below(100) {
        0..=31 => {
            alloc(arena, model, rng, at);
            "alloc"
        }
        32..=49 if !model.blocks.is_empty() => {
            // Mostly the newest block (the LIFO path), sometimes any.
            let i = pick_block(model, rng);
            let b = model.blocks.swap_remove(i);
            // SAFETY: `b` is a live block of this arena with this layout, removed from the model so
            // it is freed once.
            unsafe { arena.dealloc(b.ptr, b.layout) };
            model.freed(arena, b);
            model.sync_lines(arena);
            "dealloc"
        }
        50..=61 if !model.blocks.is_empty() => {
            let i = pick_block(model, rng);
            let align = model.blocks[i].layout.align();
            let new_size = random_size(rng, align).max(1);
            realloc(arena, model, rng, i, new_size, at);
            "realloc"
        }
        62..=65 if !model.blocks.is_empty() => {
            // A Vec being pushed to: the newest block doubles a few times, then maybe shrinks to fit.
            let i = model.blocks.len() - 1;
            for _ in 0..1 + rng.below(4) {
                let size = model.blocks[i].layout.size();
                if !realloc(arena, model, rng, i, size.saturating_mul(2).max(8), at) {
                    break;
                }
            }
            if rng.chance(30) {
                let size = model.blocks[i].layout.size();
                realloc(arena, model, rng, i, (size / 3).max(1), at);
            }
            "vec growth"
        }
        66..=75 => {
            host_alloc(arena, model, rng, at);
            "host alloc"
        }
        76..=80 => {
            let cp = arena.checkpoint();
            let taken = model.taken();
            model.checkpoints.push((cp, taken));
            let excess = model.checkpoints.len().saturating_sub(16);
            model.checkpoints.drain(..excess);
            "checkpoint"
        }
        81..=85 if !model.checkpoints.is_empty() => {
            let (cp, taken) = model.checkpoints[rng.below(model.checkpoints.len() as u64) as usize];
            let result = arena.reset_to(cp);
            model.rewind(arena, taken);
            model.after_reset(result, taken.reclaimed, at);
            "reset_to"
        }
        86..=87 if model.misuse != Misuse::Skip => {
            misuse(arena, model, rng, at);
            "misuse"
        }
        88..=92 if depth < 6 => {
            let inner_budget = rng.below(40).min(*budget);
            *budget -= inner_budget;
            let mut inner = inner_budget;
            let taken = model.taken();
            arena.scope(&mut |arena| run_ops(arena, model, rng, depth + 1, &mut inner));
            model.rewind(arena, taken);
            // The scope's own reset when it ended: a rewind to where it began (its checkpoint is
            // of this invocation: invocations start only at depth 0).
            model.expected.resets += 1;
            "scope"
        }
        93..=96 if depth == 0 => {
            let result = arena.reset();
            model.reclaimed += core::mem::take(&mut model.host_bytes);
            let since = core::mem::replace(&mut model.reclaimed_at_invocation, model.reclaimed);
            model.after_reset(result, since, at);
            (model.cursor, model.host_end) = (0, 0);
            model.host.clear();
            let closed = model.checkpoints.drain(..).map(|(cp, _)| cp);
            model.stale.extend(closed);
            let excess = model.stale.len().saturating_sub(16);
            model.stale.drain(..excess);
            "invocation"
        }
        97 if model.memory.is_some() => {
            grow_elsewhere(model, rng);
            "foreign growth"
        }
        _ => "nothing",
    }
}

/// What another allocator (libc's `malloc` on WASI, a second region) does: grows the linear memory
/// under the arena by a page or two, and writes into them.
fn grow_elsewhere(model: &mut Model, rng: &mut impl Choices) {
    let Some(memory) = model.memory else { return };
    let pages = 1 + rng.below(2) as usize;
    let fill = rng.next() as u8;
    // (At the memory's maximum nothing grows: that is all.)
    if let Some(addr) = memory.grow_behind_its_back(pages, fill) {
        model.foreign.push(Foreign {
            addr: memory.base_addr() + addr,
            len: pages * WASM_PAGE,
            fill,
        });
    }
}

fn alloc(arena: &mut impl Subject, model: &mut Model, rng: &mut impl Choices, at: &str) {
    let layout = random_layout(rng);
    let before = arena.stats();
    let predicted = model.predict(arena, layout.size(), layout.align());
    let ptr = arena.alloc(layout);
    let step = &format!("{at}: alloc {layout:?}");
    model.check_answer(
        arena,
        !ptr.is_null(),
        (layout.size(), layout.align()),
        &before,
        predicted,
        step,
    );
    if !ptr.is_null() {
        model.placed(arena, ptr, layout.size());
        let value = rng.next() as u8;
        fill(ptr, layout.size(), value);
        model.blocks.push(Block {
            ptr,
            layout,
            fill: value,
        });
        model.sync_lines(arena);
    }
}

fn host_alloc(arena: &mut impl Subject, model: &mut Model, rng: &mut impl Choices, at: &str) {
    let before = arena.stats();
    let size = random_host_size(rng, &before);
    let usable = size > 0 && (size as usize) < i32::MAX as usize - 8;
    let predicted = if usable {
        model.predict(arena, size as usize, 8)
    } else {
        Some((false, false))
    };
    let handle = arena.guest_alloc(size);
    let step = &format!("{at}: alloc({size}) = {handle}");
    model.check_answer(
        arena,
        handle != 0,
        (size.max(0) as usize, 8),
        &before,
        predicted,
        step,
    );
    if handle != 0 {
        assert_eq!(handle % 8, 0, "{step}");
        let len = size as usize;
        let value = rng.next() as u8;
        // Fill only what a check can afford to read back; the rest is the host's business.
        let most = if cfg!(miri) { 256 } else { 1 << 16 };
        let checked = if len > most { 0 } else { len };
        let ptr = arena
            .resolve(handle, checked)
            .expect("a fresh host buffer resolves");
        model.placed(arena, ptr, len);
        model.host_end = model.cursor;
        model.host_bytes += rounded(len).unwrap();
        fill(ptr, checked, value);
        model.host.push(HostBuffer {
            handle,
            len,
            checked,
            fill: value,
        });
    }
}

fn misuse(arena: &mut impl Subject, model: &mut Model, rng: &mut impl Choices, at: &str) {
    let (cp, error) = match model.stale.len() {
        n if n > 0 && rng.chance(80) => (
            model.stale[rng.below(n as u64) as usize],
            CheckpointError::Stale,
        ),
        _ => (arena.foreign_checkpoint(), CheckpointError::ForeignArena),
    };
    let before = arena.stats();
    match model.misuse {
        Misuse::ExpectRefusal => {
            assert_eq!(arena.reset_to(cp), Reset::Refused(error), "{at}: {cp:?}")
        }
        _ => {
            let outcome = catch_unwind(AssertUnwindSafe(|| arena.reset_to(cp)));
            let message = outcome.expect_err("a debug build panics on misuse");
            let message = message.downcast_ref::<String>().map_or("", |m| m.as_str());
            assert!(message.contains(&error.to_string()), "{at}: {message}");
        }
    }
    model.expected.refused += 1;
    let after = arena.stats();
    assert_eq!(
        (after.peak, after.live_blocks),
        (before.peak, before.live_blocks)
    );
}

fn pick_block(model: &Model, rng: &mut impl Choices) -> usize {
    if rng.chance(60) {
        model.blocks.len() - 1
    } else {
        rng.below(model.blocks.len() as u64) as usize
    }
}

/// Reallocs block `i` to `new_size` and updates the model; false if the arena refused.
fn realloc(
    arena: &mut impl Subject,
    model: &mut Model,
    rng: &mut impl Choices,
    i: usize,
    new_size: usize,
    at: &str,
) -> bool {
    let b = model.blocks[i];
    let Ok(layout) = Layout::from_size_align(new_size, b.layout.align()) else {
        return false; // not a size `realloc` may be asked for
    };
    let before = arena.stats();
    // A move needs a hole while the old block is still live: that is what the model checks a
    // refusal against. (A region may grow for a block that grows in place at its end, so growth
    // is not checked here.)
    let fits = model
        .predict(arena, new_size, b.layout.align())
        .map(|(limit, _)| (limit, false));
    // SAFETY: `b` is a live block with this layout; `new_size` is non-zero and a valid `Layout` size
    // for its alignment (checked above).
    let new = unsafe { arena.realloc(b.ptr, b.layout, new_size) };
    let step = &format!("{at}: realloc {:?} to {new_size}", b.layout);
    model.check_answer(
        arena,
        !new.is_null(),
        (new_size, b.layout.align()),
        &before,
        fits,
        step,
    );
    if new.is_null() {
        return false; // the old block must be intact: `check` verifies it
    }
    let base = base_of(arena).expect("a region with a block has a base");
    let (old, new_rounded) = (
        rounded(b.layout.size()).unwrap(),
        rounded(new_size).unwrap(),
    );
    if new != b.ptr {
        // Moved: the old block is reclaimed, and the new one was placed at the cursor.
        model.reclaimed += old;
        model.placed(arena, new, new_size);
    } else if b.ptr as usize - base + old == model.cursor {
        model.placed(arena, new, new_size); // grown or shrunk at the cursor
    } else {
        model.reclaimed += old.saturating_sub(new_rounded); // a shrunk tail
    }
    let kept = b.layout.size().min(new_size);
    // SAFETY: the new block holds at least `new_size >= kept` bytes, the first `kept` copied from
    // the old block's filled bytes.
    let bytes = unsafe { core::slice::from_raw_parts(new, kept) };
    assert!(holds(bytes, b.fill), "{step}: realloc lost bytes");
    let value = rng.next() as u8;
    fill(new, new_size, value);
    model.blocks[i] = Block {
        ptr: new,
        layout,
        fill: value,
    };
    model.sync_lines(arena);
    true
}
