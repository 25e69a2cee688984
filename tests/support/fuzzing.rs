//! The bodies of the fuzz targets in `fuzz/`, here so that `cargo test` replays the checked-in
//! corpus and every kept crash input through exactly the code the fuzzer runs
//! (`tests/fuzz_inputs.rs`). The fuzzer's bytes become decisions through `arbitrary`.
#![allow(dead_code)]

use super::abi_model::run_abi;
use super::model::{Choices, Global, Misuse, Model, run_ops};
use arbitrary::Unstructured;
use flare_arena::{Arena, GlobalArena};

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
    // SAFETY: u64 storage reinterpreted as bytes: no padding, every pattern valid, exact length.
    let bytes: &mut [u8] =
        unsafe { core::slice::from_raw_parts_mut(storage.as_mut_ptr().cast(), words * 8) };
    let mut arena = Arena::new(bytes);
    let mut model = Model::new(misuse);
    run_ops(&mut arena, &mut model, &mut input, 0, &mut 4000);
}

/// The same sequences through `GlobalAlloc` on a `GlobalArena` (lock, lazy reservation and all).
pub fn global_alloc(data: &[u8], misuse: Misuse) {
    let mut input = Unstructured::new(data);
    let max_bytes = [512usize, 4800, 1 << 16, 1 << 18][input.choose_index(4).unwrap_or(0)];
    let arena = Box::new(GlobalArena::with_max_bytes(max_bytes));
    let mut model = Model::new(misuse);
    run_ops(&mut Global(&arena), &mut model, &mut input, 0, &mut 4000);
}

/// Packing and the host-value readers with arbitrary values.
pub fn abi(data: &[u8]) {
    let mut input = Unstructured::new(data);
    let max_bytes = [256usize, 4096, 1 << 16][input.choose_index(3).unwrap_or(0)];
    let arena = Box::new(GlobalArena::with_max_bytes(max_bytes));
    run_abi(&arena, &mut input, 2000);
}
