//! A reference model of an arena, and an interpreter of random operation sequences checked
//! against it after every step: live blocks and unexpired host buffers must be disjoint,
//! aligned, inside the buffer and still hold the bytes written into them; every reset must
//! reclaim exactly when nothing allocated since its checkpoint is live, and report how many are.
//!
//! Shared by the property test (`tests/model.rs`, decisions from a seeded PRNG) and the fuzzer
//! (`fuzz/fuzz_targets/arena_model.rs`, decisions from the fuzzer's bytes).

use core::alloc::Layout;
use flare_arena::{Arena, Checkpoint, MAX_FRAMES, Reset};

/// Where the interpreter's decisions come from.
pub trait Choices {
    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64;
    /// Any 64-bit value.
    fn next(&mut self) -> u64;
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
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
    fill: u8,
    birth: u64,
}

pub struct Model {
    blocks: Vec<Block>,
    host: Vec<HostBuffer>,
    /// Open checkpoints, innermost last, with the op counter they start after.
    checkpoints: Vec<(Checkpoint, u64)>,
    invocation_mark: Option<u64>,
    clock: u64,
    range: core::ops::Range<usize>,
}

impl Model {
    /// A model of an empty arena over the bytes at `range`.
    pub fn new(range: core::ops::Range<usize>) -> Self {
        Model {
            blocks: Vec::new(),
            host: Vec::new(),
            checkpoints: Vec::new(),
            invocation_mark: None,
            clock: 0,
            range,
        }
    }
}

impl Model {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn live_since(&self, mark: u64) -> usize {
        self.blocks.iter().filter(|b| b.birth > mark).count()
    }

    pub fn check(&self, arena: &mut Arena<'_>, step: &str) {
        let mut spans: Vec<(usize, usize)> = Vec::new();
        for b in &self.blocks {
            let addr = b.ptr as usize;
            assert_eq!(
                addr % b.layout.align().max(8),
                0,
                "step {step}: misaligned {b:?}"
            );
            assert!(
                self.range.start <= addr && addr + b.layout.size() <= self.range.end,
                "step {step}: outside {b:?}"
            );
            let bytes = unsafe { core::slice::from_raw_parts(b.ptr, b.layout.size()) };
            assert!(
                bytes.iter().all(|&x| x == b.fill),
                "step {step}: block {b:?} was overwritten"
            );
            spans.push((addr, addr + b.layout.size().max(1)));
        }
        for h in &self.host {
            let bytes =
                unsafe { arena.handle_bytes(h.handle, h.len) }.expect("host buffer resolves");
            let addr = bytes.as_ptr() as usize;
            assert_eq!(addr % 8, 0);
            assert!(
                bytes.iter().all(|&x| x == h.fill),
                "step {step}: host buffer {h:?} was overwritten"
            );
            spans.push((addr, addr + h.len));
        }
        spans.sort_unstable();
        for pair in spans.windows(2) {
            assert!(pair[0].1 <= pair[1].0, "step {step}: overlap {pair:?}");
        }
        assert_eq!(
            arena.stats().live,
            self.blocks.len(),
            "step {step}: live count"
        );
    }

    fn after_reset(&mut self, result: Reset, mark: u64, step: u64) {
        let expected_live = self.live_since(mark);
        match result {
            Reset::Reclaimed { .. } => {
                assert_eq!(expected_live, 0, "step {step}: reclaimed with live blocks")
            }
            Reset::Kept { live, .. } => assert_eq!(live, expected_live, "step {step}: kept count"),
            Reset::Refused(e) => panic!("step {step}: valid checkpoint refused: {e}"),
        }
        // Host buffers expire at the next reset, whatever it did.
        self.host.retain(|h| h.birth <= mark);
    }
}

fn random_layout(rng: &mut impl Choices) -> Layout {
    let size = match rng.below(10) {
        0 => 0,
        1..=6 => rng.below(64) as usize,
        7 | 8 => rng.below(600) as usize,
        _ => rng.below(5000) as usize,
    };
    // Under Miri every byte checked costs: keep blocks small there (same shapes of sequences).
    let size = if cfg!(miri) { size % 200 } else { size };
    let align = if rng.chance(80) {
        1 << rng.below(4)
    } else {
        1 << rng.below(13)
    };
    Layout::from_size_align(size, align).unwrap()
}

fn fill(ptr: *mut u8, len: usize, value: u8) {
    unsafe { ptr.write_bytes(value, len) };
}

/// Whether one more scope frame can open (more is misuse: a debug panic, a refused checkpoint in
/// release). Nested scopes hide the outer checkpoints from the model, so ask the arena.
fn room_for_a_frame(arena: &Arena<'_>) -> bool {
    arena.stats().depth + 1 < MAX_FRAMES
}

/// Runs up to `budget` random operations on `arena`, checking it against `model` after each.
pub fn run_ops(
    arena: &mut Arena<'_>,
    model: &mut Model,
    rng: &mut impl Choices,
    depth: usize,
    budget: &mut u64,
) {
    while *budget > 0 {
        *budget -= 1;
        let step = *budget;
        let choice = rng.below(100);
        let op = match choice {
            0..=34 => "alloc",
            35..=54 => "dealloc",
            55..=69 => "realloc",
            70..=79 => "guest_alloc",
            80..=84 => "checkpoint",
            85..=89 => "reset_to",
            90..=93 => "scope",
            94..=96 => "invocation",
            _ => "nothing",
        };
        match choice {
            0..=34 => {
                let layout = random_layout(rng);
                let ptr = arena.alloc(layout);
                if !ptr.is_null() {
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
            }
            35..=54 if !model.blocks.is_empty() => {
                // Mostly the newest block (the LIFO path), sometimes any.
                let i = if rng.chance(60) {
                    model.blocks.len() - 1
                } else {
                    rng.below(model.blocks.len() as u64) as usize
                };
                let b = model.blocks.swap_remove(i);
                unsafe { arena.dealloc(b.ptr, b.layout) };
            }
            55..=69 if !model.blocks.is_empty() => {
                let i = if rng.chance(60) {
                    model.blocks.len() - 1
                } else {
                    rng.below(model.blocks.len() as u64) as usize
                };
                let b = model.blocks[i];
                let new_size = random_layout(rng).size();
                let new = unsafe { arena.realloc(b.ptr, b.layout, new_size) };
                if new.is_null() {
                    continue; // the old block must be intact: `check` verifies it
                }
                let kept = b.layout.size().min(new_size);
                let bytes = unsafe { core::slice::from_raw_parts(new, kept) };
                assert!(
                    bytes.iter().all(|&x| x == b.fill),
                    "step {step}: realloc lost bytes"
                );
                let value = rng.next() as u8;
                fill(new, new_size, value);
                let layout = Layout::from_size_align(new_size, b.layout.align()).unwrap();
                let birth = if new == b.ptr { b.birth } else { model.tick() };
                model.blocks[i] = Block {
                    ptr: new,
                    layout,
                    fill: value,
                    birth,
                };
            }
            70..=79 => {
                let size = match rng.below(20) {
                    0 => -(rng.below(5) as i32),
                    1 => i32::MAX,
                    _ => 1 + rng.below(300) as i32,
                };
                let handle = arena.guest_alloc(size);
                if size <= 0 || size == i32::MAX {
                    assert_eq!(handle, 0, "step {step}: bad size {size} accepted");
                } else if handle != 0 && model.invocation_mark.is_some() {
                    let value = rng.next() as u8;
                    unsafe { arena.handle_bytes(handle, size as usize) }
                        .unwrap()
                        .fill(value);
                    let birth = model.tick();
                    model.host.push(HostBuffer {
                        handle,
                        len: size as usize,
                        fill: value,
                        birth,
                    });
                }
            }
            80..=84 if model.checkpoints.len() < 12 && room_for_a_frame(arena) => {
                let cp = arena.checkpoint();
                let mark = model.tick();
                model.checkpoints.push((cp, mark));
            }
            85..=89 if !model.checkpoints.is_empty() => {
                let i = rng.below(model.checkpoints.len() as u64) as usize;
                let (cp, mark) = model.checkpoints[i];
                let result = arena.reset_to(cp);
                model.after_reset(result, mark, step);
                model.checkpoints.truncate(i + 1);
                // A kept reset moves the checkpoint above what it kept.
                model.checkpoints[i].1 = model.tick();
            }
            90..=93 if depth < 6 && room_for_a_frame(arena) => {
                let saved = core::mem::take(&mut model.checkpoints);
                let mark = model.tick();
                let inner_budget = rng.below(40).min(*budget);
                *budget -= inner_budget;
                let mut inner = inner_budget;
                arena.scope(|arena| run_ops(arena, model, rng, depth + 1, &mut inner));
                // The scope's own reset: host buffers from inside it expired.
                model.host.retain(|h| h.birth <= mark);
                model.checkpoints = saved;
            }
            94..=96 if depth == 0 => {
                let result = arena.reset();
                match model.invocation_mark {
                    Some(mark) => model.after_reset(result, mark, step),
                    None => assert!(result.reclaimed()),
                }
                model.checkpoints.clear();
                model.host.clear();
                model.invocation_mark = Some(model.tick());
            }
            _ => {}
        }
        model.check(arena, &format!("step {step} ({op}, depth {depth})"));
    }
}
