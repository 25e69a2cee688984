//! Random operation sequences (alloc, free, realloc, host alloc, checkpoints, scopes, resets)
//! driven by the fuzzer's bytes, checked after every step against the reference model: overlap,
//! misalignment, out-of-region blocks, lost bytes (use-after-reset) and wrong reset decisions all
//! panic.
#![no_main]

#[path = "../../tests/support/model.rs"]
mod model;

use flare_arena::Arena;
use libfuzzer_sys::fuzz_target;
use model::{Choices, Model, run_ops};

/// Decisions read from the input; zeros once it runs out (the budget ends the run first).
struct Bytes<'a>(&'a [u8]);

impl Choices for Bytes<'_> {
    fn next(&mut self) -> u64 {
        let mut word = [0u8; 8];
        let n = self.0.len().min(8);
        word[..n].copy_from_slice(&self.0[..n]);
        self.0 = &self.0[n..];
        u64::from_le_bytes(word)
    }
    fn below(&mut self, n: u64) -> u64 {
        let Some((&first, rest)) = self.0.split_first() else { return 0 };
        self.0 = rest;
        if n <= 256 { first as u64 % n } else { (first as u64 | (self.next() << 8)) % n }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&size_choice, data)) = data.split_first() else { return };
    // Small buffers reach exhaustion often; large ones let sequences run long.
    let words = [64usize, 600, 8192][size_choice as usize % 3];
    let mut storage = vec![0u64; words];
    // SAFETY: u64 storage reinterpreted as bytes: no padding, every pattern valid, exact length.
    let bytes: &mut [u8] = unsafe { core::slice::from_raw_parts_mut(storage.as_mut_ptr().cast(), words * 8) };
    let range = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
    let mut arena = Arena::new(bytes);
    let mut model = Model::new(range);
    let mut budget = (data.len() as u64 / 2).min(4000);
    run_ops(&mut arena, &mut model, &mut Bytes(data), 0, &mut budget);
});
