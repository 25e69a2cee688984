//! Property test: long random operation sequences on an `Arena`, checked after every step against
//! the reference model in `support/model.rs`. Deterministic (seeded), so failures replay.

#[path = "support/model.rs"]
mod model;

use flare_arena::Arena;
use model::{Choices, Model, run_ops};

/// xorshift64*: tiny, deterministic, no dependencies (so Miri runs it too).
struct Rng(u64);
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

fn run(seed: u64, ops: u64, words: usize) {
    let mut storage = vec![0u64; words];
    let bytes: &mut [u8] =
        unsafe { core::slice::from_raw_parts_mut(storage.as_mut_ptr().cast(), words * 8) };
    let range = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
    let mut arena = Arena::new(bytes);
    let mut model = Model::new(range);
    let mut rng = Rng(seed | 1);
    let mut budget = ops;
    run_ops(&mut arena, &mut model, &mut rng, 0, &mut budget);
    let stats = arena.stats();
    assert!(
        stats.resets > 0 || ops < 100,
        "seed {seed}: the sequence exercised resets ({stats})"
    );
}

#[test]
fn random_sequences_match_the_model() {
    let (seeds, ops) = if cfg!(miri) { (2, 150) } else { (200, 3000) };
    for seed in 0..seeds {
        run(0x9E37_79B9_7F4A_7C15 ^ seed, ops, 1 << 13);
    }
}

#[test]
fn random_sequences_under_memory_pressure_match_the_model() {
    let (seeds, ops) = if cfg!(miri) { (1, 150) } else { (100, 3000) };
    for seed in 0..seeds {
        run(0xD1B5_4A32_D192_ED03 ^ seed, ops, 600);
    }
}
