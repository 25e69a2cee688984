//! A reference model of an arena, and an interpreter of random operation sequences checked against
//! it after every step:
//! - live blocks and unexpired host buffers are disjoint, aligned, inside the region, and still
//!   hold the bytes written into them (canaries: a use-after-reset or an overlap shows as lost bytes);
//! - a checked reset reclaims exactly when nothing allocated since its checkpoint is live, and says
//!   how many are; stale and foreign checkpoints are refused and change nothing;
//! - every request the arena refuses is one the model says cannot fit, and the other way round;
//! - `stats()` agrees: `used <= capacity <= limit`, `high_water` monotone, `live`, `failed`,
//!   `refused`, `resets` and `kept` exact.
//!
//! The interpreter drives anything that implements [`Subject`]: the standalone `Arena`, and a
//! `GlobalArena` through the `GlobalAlloc` trait. Its decisions come from a [`Choices`]: a seeded
//! PRNG in `tests/model.rs` (and under Miri), the fuzzer's bytes in `fuzz/` (see `fuzzing.rs`).
#![allow(dead_code)] // each includer uses part of it

use core::alloc::{GlobalAlloc, Layout};
use flare_arena::{Arena, Checkpoint, CheckpointError, GlobalArena, MAX_FRAMES, Reset, Stats};
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
        // SAFETY: only the address is kept; the model reads and writes through it
        // alone, and host buffers are disjoint from blocks (which `check` asserts).
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
#[derive(Clone, Copy)]
pub struct Global<'a>(pub &'a GlobalArena);

/// `GlobalAlloc` may not be asked for zero bytes (a `Vec` never does): the model's zero-sized
/// blocks go through it as one byte, which takes the same 8.
fn nonzero(layout: Layout) -> Layout {
    Layout::from_size_align(layout.size().max(1), layout.align()).unwrap()
}

impl Subject for Global<'_> {
    fn alloc(&mut self, layout: Layout) -> *mut u8 {
        // SAFETY: `nonzero` makes the size non-zero, as `GlobalAlloc::alloc` requires.
        unsafe { self.0.alloc(nonzero(layout)) }
    }
    unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded from `Subject::dealloc`; the block was allocated with
        // the same `nonzero` layout.
        unsafe { self.0.dealloc(ptr, nonzero(layout)) }
    }
    unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded from `Subject::realloc` (non-zero `new_size`, valid
        // for the alignment); the block was allocated with the same `nonzero` layout.
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
    /// When it was placed (an op counter); a realloc that moves it is a new birth.
    birth: u64,
}

#[derive(Clone, Copy, Debug)]
struct HostBuffer {
    handle: i32,
    len: usize,
    /// How many of its first bytes were filled (and are checked): all but the huge ones.
    checked: usize,
    fill: u8,
    birth: u64,
}

/// Counters the model predicts exactly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Expected {
    failed: u64,
    refused: u64,
    resets: u64,
    kept: u64,
}

/// What the arena should look like.
pub struct Model {
    blocks: Vec<Block>,
    host: Vec<HostBuffer>,
    /// Open checkpoints visible at this scope depth, innermost last, with the op counter they
    /// start after.
    checkpoints: Vec<(Checkpoint, u64)>,
    /// Checkpoints that resets, scope ends and invocations have closed: every reset to one must
    /// be refused.
    stale: Vec<Checkpoint>,
    invocation_mark: Option<u64>,
    clock: u64,
    expected: Expected,
    high_water: usize,
    misuse: Misuse,
    /// Operations run, by name (for reports).
    pub ops: std::collections::BTreeMap<&'static str, u64>,
}

impl Model {
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
            invocation_mark: None,
            clock: 0,
            expected: Expected::default(),
            high_water: 0,
            misuse,
            ops: Default::default(),
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn live_since(&self, mark: u64) -> usize {
        self.blocks.iter().filter(|b| b.birth > mark).count()
    }

    fn close_checkpoints(&mut self, from: usize) {
        let closed = self.checkpoints.drain(from..).map(|(cp, _)| cp);
        self.stale.extend(closed);
        let excess = self.stale.len().saturating_sub(16);
        self.stale.drain(..excess);
    }

    /// Checks every invariant against `arena`; `step` names the operation for the message.
    pub fn check(&mut self, arena: &mut impl Subject, step: &str) {
        let stats = arena.stats();
        assert!(
            stats.used <= stats.capacity && stats.capacity <= stats.limit,
            "{step}: {stats:?}"
        );
        assert!(
            stats.high_water >= stats.used && stats.high_water >= self.high_water,
            "{step}: high water went down: {stats:?}, was {}",
            self.high_water
        );
        self.high_water = stats.high_water;
        assert_eq!(stats.live, self.blocks.len(), "{step}: live count");
        let counted = Expected {
            failed: stats.failed,
            refused: stats.refused,
            resets: stats.resets,
            kept: stats.kept,
        };
        assert_eq!(counted, self.expected, "{step}: counters");

        let region = region_of(arena);
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for b in &self.blocks {
            let addr = b.ptr as usize;
            assert_eq!(
                addr % b.layout.align().max(8),
                0,
                "{step}: misaligned {b:?}"
            );
            let region = region.clone().expect("blocks exist, so the region does");
            assert!(
                region.start <= addr && addr + b.layout.size() <= region.end,
                "{step}: outside {region:x?}: {b:?}"
            );
            // SAFETY: a live block of this size, filled when it was placed, and
            // nothing writes to it while the slice is held.
            let bytes = unsafe { core::slice::from_raw_parts(b.ptr, b.layout.size()) };
            assert!(
                bytes.iter().all(|&x| x == b.fill),
                "{step}: block {b:?} was overwritten"
            );
            spans.push((addr, addr + b.layout.size().max(1)));
        }
        for h in &self.host {
            let ptr = arena
                .resolve(h.handle, h.len)
                .unwrap_or_else(|| panic!("{step}: host buffer {h:?} does not resolve"));
            let addr = ptr as usize;
            assert_eq!(addr % 8, 0);
            // SAFETY: the arena resolved `h.len >= h.checked` bytes there, and the
            // first `h.checked` were filled when the buffer was handed out.
            let bytes = unsafe { core::slice::from_raw_parts(ptr, h.checked) };
            assert!(
                bytes.iter().all(|&x| x == h.fill),
                "{step}: host buffer {h:?} was overwritten"
            );
            spans.push((addr, addr + h.len));
        }
        spans.sort_unstable();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "{step}: overlap {pair:x?}");
        }
    }

    fn after_reset(&mut self, result: Reset, mark: u64, step: &str) {
        let expected_live = self.live_since(mark);
        self.expected.resets += 1;
        match result {
            Reset::Reclaimed { .. } => {
                assert_eq!(expected_live, 0, "{step}: reclaimed with live blocks")
            }
            Reset::Kept { live, .. } => {
                assert_eq!(live, expected_live, "{step}: kept count");
                self.expected.kept += 1;
            }
            Reset::Refused(e) => panic!("{step}: valid checkpoint refused: {e}"),
        }
        // Host buffers expire at the next reset, whatever it did.
        self.host.retain(|h| h.birth <= mark);
    }
}

/// The bytes a block of `size` takes in the arena.
fn rounded(size: usize) -> Option<usize> {
    Some((size.checked_add(7)? & !7).max(8))
}

/// Where offset 0 of the arena is, once it has memory: native host handles are offsets plus 8,
/// so handle 8 names offset 0.
pub fn base_of(arena: &mut impl Subject) -> Option<usize> {
    arena.resolve(8, 0).map(|ptr| ptr as usize)
}

/// The arena's usable range, once it has one: `[offset 0, capacity)`.
fn region_of(arena: &mut impl Subject) -> Option<core::ops::Range<usize>> {
    let base = base_of(arena)?;
    Some(base..base + arena.stats().capacity)
}

/// Whether a block of `layout` fits, as the model sees it; `None` before the region has a base.
fn fits(arena: &mut impl Subject, layout: Layout) -> Option<bool> {
    let stats = arena.stats();
    let base = base_of(arena)?;
    let top = base + stats.used;
    let padding = top.wrapping_neg() & (layout.align().max(8) - 1);
    let end = rounded(layout.size()).and_then(|r| (stats.used + padding).checked_add(r));
    Some(end.is_some_and(|end| end <= stats.limit))
}

/// A size from a spread that favours small blocks and sometimes asks for the impossible.
fn random_size(rng: &mut impl Choices, align: usize) -> usize {
    let size = match rng.below(50) {
        0..=4 => 0,
        5..=34 => rng.below(64) as usize,
        35..=42 => rng.below(600) as usize,
        43..=47 => rng.below(5000) as usize,
        48 => rng.below(1 << 20) as usize,
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
    // SAFETY: callers pass a block or host buffer just handed out with at
    // least `len` bytes, which nothing else uses.
    unsafe { ptr.write_bytes(value, len) };
}

/// A host `alloc` size: the edges of the contract, what is left and just above it, or anything.
fn random_host_size(rng: &mut impl Choices, stats: &Stats) -> i32 {
    let remaining = stats.limit - stats.used;
    let remaining = i32::try_from(remaining).unwrap_or(i32::MAX);
    match rng.below(40) {
        0 => 0,
        1 => -1,
        2 => i32::MIN,
        3 => i32::MAX,
        4 => remaining.saturating_add(1),
        5 => remaining,
        6 => rng.next() as i32,
        7..=9 => 1 + rng.below(5000) as i32,
        _ => 1 + rng.below(300) as i32,
    }
}

/// Whether one more scope frame can open (more is misuse: a debug panic, a refused checkpoint in
/// release). Nested scopes hide the outer checkpoints from the model, so ask the arena.
fn room_for_a_frame(arena: &impl Subject) -> bool {
    arena.stats().depth + 1 < MAX_FRAMES
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
        let op = step(arena, model, rng, depth, budget);
        *model.ops.entry(op).or_default() += 1;
        let step = format!("step {} ({op}, depth {depth})", model.clock);
        model.check(arena, &step);
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
            let layout = random_layout(rng);
            let used = arena.stats().used;
            let predicted = fits(arena, layout);
            let ptr = arena.alloc(layout);
            if let Some(fits) = predicted {
                assert_eq!(
                    !ptr.is_null(),
                    fits,
                    "{at}: alloc {layout:?} at used {used}"
                );
            }
            if ptr.is_null() {
                model.expected.failed += 1;
                assert_eq!(
                    arena.stats().used,
                    used,
                    "{at}: a refusal changed the arena"
                );
            } else {
                let value = rng.next() as u8;
                fill(ptr, layout.size(), value);
                let birth = model.tick();
                model.blocks.push(Block {
                    ptr,
                    layout,
                    fill: value,
                    birth,
                });
            }
            "alloc"
        }
        32..=49 if !model.blocks.is_empty() => {
            // Mostly the newest block (the LIFO path), sometimes any.
            let i = pick_block(model, rng);
            let b = model.blocks.swap_remove(i);
            // SAFETY: `b` is a live block of this arena with this layout, removed from
            // the model so it is freed once.
            unsafe { arena.dealloc(b.ptr, b.layout) };
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
            let size = random_host_size(rng, &arena.stats());
            let stats = arena.stats();
            let limit = stats.limit.min(i32::MAX as usize - 8);
            let expected = size > 0
                && rounded(size as usize).is_some_and(|r| stats.used.saturating_add(r) <= limit);
            let handle = arena.guest_alloc(size);
            assert_eq!(
                handle != 0,
                expected,
                "{at}: alloc({size}) = {handle}, {stats:?}"
            );
            if handle == 0 {
                model.expected.failed += 1;
                assert_eq!(
                    arena.stats().used,
                    stats.used,
                    "{at}: a refusal changed the arena"
                );
            } else {
                assert_eq!(handle % 8, 0);
                let len = size as usize;
                let value = rng.next() as u8;
                // Fill only what a check can afford to read back; the rest is the host's business.
                let most = if cfg!(miri) { 256 } else { 1 << 16 };
                let checked = if len > most { 0 } else { len };
                let ptr = arena
                    .resolve(handle, checked)
                    .expect("a fresh host buffer resolves");
                fill(ptr, checked, value);
                let birth = model.tick();
                model.host.push(HostBuffer {
                    handle,
                    len,
                    checked,
                    fill: value,
                    birth,
                });
            }
            "host alloc"
        }
        76..=80 if model.checkpoints.len() < 12 && room_for_a_frame(arena) => {
            let cp = arena.checkpoint();
            let mark = model.tick();
            model.checkpoints.push((cp, mark));
            "checkpoint"
        }
        81..=85 if !model.checkpoints.is_empty() => {
            let i = rng.below(model.checkpoints.len() as u64) as usize;
            let (cp, mark) = model.checkpoints[i];
            let result = arena.reset_to(cp);
            model.after_reset(result, mark, at);
            model.close_checkpoints(i + 1);
            // A kept reset moves the checkpoint above what it kept.
            model.checkpoints[i].1 = model.tick();
            "reset_to"
        }
        86..=87 if model.misuse != Misuse::Skip => {
            let (cp, error) = match model.stale.len() {
                0 => (arena.foreign_checkpoint(), CheckpointError::ForeignArena),
                n if rng.chance(80) => (
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
            assert_eq!((after.used, after.depth), (before.used, before.depth));
            "misuse"
        }
        88..=92 if depth < 6 && room_for_a_frame(arena) => {
            let saved = core::mem::take(&mut model.checkpoints);
            let mark = model.tick();
            let inner_budget = rng.below(40).min(*budget);
            *budget -= inner_budget;
            let mut inner = inner_budget;
            arena.scope(&mut |arena| run_ops(arena, model, rng, depth + 1, &mut inner));
            // The scope's own checked reset when it closed.
            let live = model.live_since(mark);
            model.expected.resets += 1;
            model.expected.kept += u64::from(live > 0);
            model.host.retain(|h| h.birth <= mark);
            model.close_checkpoints(0);
            model.checkpoints = saved;
            "scope"
        }
        93..=96 if depth == 0 => {
            let result = arena.reset();
            match model.invocation_mark {
                Some(mark) => model.after_reset(result, mark, at),
                None => {
                    // The first one reclaims init only if nothing in it is live.
                    assert!(result.reclaimed(), "{at}: {result:?}");
                    model.expected.resets += 1;
                    if model.blocks.is_empty() {
                        assert_eq!(arena.stats().used, 0, "{at}: init was not reclaimed");
                    }
                }
            }
            model.close_checkpoints(0);
            model.host.clear();
            model.invocation_mark = Some(model.tick());
            "invocation"
        }
        _ => "nothing",
    }
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
    step: &str,
) -> bool {
    let b = model.blocks[i];
    let Ok(layout) = Layout::from_size_align(new_size, b.layout.align()) else {
        return false; // not a size `realloc` may be asked for
    };
    // SAFETY: `b` is a live block with this layout; `new_size` is non-zero
    // and a valid `Layout` size for its alignment (checked above).
    let new = unsafe { arena.realloc(b.ptr, b.layout, new_size) };
    if new.is_null() {
        model.expected.failed += 1;
        return false; // the old block must be intact: `check` verifies it
    }
    let kept = b.layout.size().min(new_size);
    // SAFETY: the new block holds at least `new_size >= kept` bytes, the
    // first `kept` copied from the old block's filled bytes.
    let bytes = unsafe { core::slice::from_raw_parts(new, kept) };
    assert!(
        bytes.iter().all(|&x| x == b.fill),
        "{step}: realloc lost bytes"
    );
    let value = rng.next() as u8;
    fill(new, new_size, value);
    let birth = if new == b.ptr { b.birth } else { model.tick() };
    model.blocks[i] = Block {
        ptr: new,
        layout,
        fill: value,
        birth,
    };
    true
}
