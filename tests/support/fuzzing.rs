//! The bodies of the fuzz targets in `fuzz/`, here so that `cargo test` replays the checked-in
//! corpus and every kept crash input through exactly the code the fuzzer runs
//! (`tests/fuzz_inputs.rs`). The fuzzer's bytes become decisions through `arbitrary`.

use crate::abi_model::run_abi;
use crate::fake_memory::FakeMemory;
use crate::model::{Choices, Global, Misuse, Model, run_ops};
use arbitrary::Unstructured;
use flare_arena::{Arena, WASM_PAGE};
use flare_arena::{DefaultLock, GlobalArena, WasmRegion};

impl Choices for Unstructured<'_> {
    fn below(&mut self, n: u64) -> u64 {
        self.int_in_range(0..=n - 1).unwrap_or(0)
    }
    fn next(&mut self) -> u64 {
        self.arbitrary().unwrap_or(0)
    }
    fn exhausted(&self) -> bool {
        self.is_empty()
    }
}

/// Operation sequences on a standalone `Arena` over a buffer of one of four sizes (small ones reach
/// exhaustion often; large ones let 64 KiB alignments fit).
pub fn arena_ops(data: &[u8], misuse: Misuse) {
    let mut input = Unstructured::new(data);
    let words = [64usize, 600, 8192, 1 << 15][input.choose_index(4).unwrap_or(0)];
    let mut storage = vec![0u64; words];
    let mut arena = Arena::new(crate::words_as_bytes(&mut storage));
    let mut model = Model::new(misuse);
    run_ops(&mut arena, &mut model, &mut input, 0, &mut 4000);
}

/// The same sequences through `GlobalAlloc` on a `GlobalArena` (lock, lazy reservation and all),
/// over the system region or over a fake linear memory that grows a few pages at a time (so the
/// line table moves as the region grows) and that the sequence sometimes grows behind the arena's
/// back (someone else's pages, which the model checks are never touched).
pub fn global_alloc(data: &[u8], misuse: Misuse) {
    let mut input = Unstructured::new(data);
    let max_bytes = [512usize, 4800, 1 << 16, 1 << 18, 3 << 20][input.choose_index(5).unwrap_or(0)];
    if input.arbitrary().unwrap_or(false) {
        let arena = Box::new(GlobalArena::with_max_bytes(max_bytes));
        let mut model = Model::new(misuse);
        run_ops(&mut Global(&*arena), &mut model, &mut input, 0, &mut 4000);
    } else {
        // Sometimes the memory's own maximum is below the arena's, as under a host's limit.
        let memory = match input.choose_index(4).unwrap_or(0) {
            0 => capped_memory(1 + input.choose_index(max_pages(max_bytes)).unwrap_or(0)),
            _ => growable_memory(max_bytes),
        };
        let arena = on_fake_memory(&memory, max_bytes);
        let mut model = Model::new(misuse).with_memory(&memory);
        run_ops(&mut Global(&*arena), &mut model, &mut input, 0, &mut 4000);
    }
}

/// Where a fake memory's "static data" ends: the free space a region claims starts there.
pub const HEAP_BASE: usize = 1000;

/// Pages of a memory with room for a region of `max_bytes` (and a page to spare).
fn max_pages(max_bytes: usize) -> usize {
    (HEAP_BASE + max_bytes).div_ceil(WASM_PAGE) + 1
}

/// A fake linear memory with room for a region of `max_bytes` after 1000 bytes of "static data",
/// starting with one page.
pub fn growable_memory(max_bytes: usize) -> FakeMemory {
    FakeMemory::new(1, max_pages(max_bytes), HEAP_BASE)
}

/// A fake linear memory of one page that can grow to `pages` (at least 1): over it, a region
/// reaches the memory's maximum before its own.
pub fn capped_memory(pages: usize) -> FakeMemory {
    FakeMemory::new(1, pages, HEAP_BASE)
}

/// A `GlobalArena` over `memory`, as a flare's is over wasm32's memory.
pub fn on_fake_memory(
    memory: &FakeMemory,
    max_bytes: usize,
) -> Box<GlobalArena<DefaultLock, WasmRegion<&FakeMemory>>> {
    Box::new(GlobalArena::with_region(WasmRegion::over(
        memory, max_bytes,
    )))
}

/// Packing and the host-value readers with arbitrary values.
pub fn abi(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let max_bytes = [256usize, 4096, 1 << 16][input.choose_index(3).unwrap_or(0)];
    let arena = Box::new(GlobalArena::with_max_bytes(max_bytes));
    run_abi(&arena, &mut input, 2000);
}
