//! Property tests: thousands of seeded random operation sequences, checked after every step
//! against the reference model (`tests/support/model.rs`), on the standalone `Arena`, on a
//! `GlobalArena` through `GlobalAlloc` (over the system region, and over a fake linear memory that
//! grows, so the line table moves, and that the sequences also grow behind the arena's back), and
//! on the host ABI readers. Deterministic, so a failure
//! replays; Miri runs a few of each (`tests/miri`).

use flare_arena::{Arena, GlobalArena};
use flare_arena_testkit::abi_model::run_abi;
use flare_arena_testkit::fake_memory::FakeMemory;
use flare_arena_testkit::fuzzing::{capped_memory, growable_memory, on_fake_memory};
use flare_arena_testkit::model::{Global, Misuse, Model, Rng, Subject, run_ops};
use flare_arena_testkit::words_as_bytes;

/// How many sequences of how many operations: far fewer under Miri, where each step is slow.
fn plan(seeds: u64, ops: u64) -> (u64, u64) {
    if cfg!(miri) { (2, 100) } else { (seeds, ops) }
}

/// What ran in a sequence: operations by name.
type Ops = std::collections::BTreeMap<&'static str, u64>;

/// One sequence of `ops` operations on `subject`, checked against `model`.
fn drive(subject: &mut impl Subject, mut model: Model, seed: u64, ops: u64) -> Ops {
    run_ops(subject, &mut model, &mut Rng(seed | 1), 0, &mut { ops });
    model.ops
}

fn fresh_model() -> Model<'static> {
    Model::new(Misuse::of_this_build())
}

fn on_an_arena(seed: u64, ops: u64, words: usize) -> Ops {
    let mut storage = vec![0u64; words];
    let arena = &mut Arena::new(words_as_bytes(&mut storage));
    drive(arena, fresh_model(), seed, ops)
}

fn on_a_global_arena(seed: u64, ops: u64, max_bytes: usize) -> Ops {
    let arena = Box::new(GlobalArena::with_max_bytes(max_bytes));
    drive(&mut Global(&*arena), fresh_model(), seed, ops)
}

/// Over a fake linear memory: the model knows its maximum, and grows it behind the arena's back.
fn on_a_linear_memory(seed: u64, ops: u64, max_bytes: usize, memory: FakeMemory) -> Ops {
    let arena = on_fake_memory(&memory, max_bytes);
    let model = fresh_model().with_memory(&memory);
    drive(&mut Global(&*arena), model, seed, ops)
}

/// Runs `seeds` sequences of `ops` operations each (fewer under Miri), then checks that every kind
/// of operation ran somewhere, so a sequence generator that lost one fails here (and `also`,
/// operations of some subjects only).
fn run_sequences(seeds: u64, ops: u64, also: &[&str], sequence: impl Fn(u64, u64) -> Ops) {
    let (seeds, ops) = plan(seeds, ops);
    let mut seen = std::collections::BTreeSet::new();
    for seed in 0..seeds {
        seen.extend(sequence(seed, ops).into_keys());
    }
    if cfg!(miri) {
        return; // Miri's few short sequences are there to catch UB, not for coverage
    }
    for op in [
        "alloc",
        "dealloc",
        "realloc",
        "vec growth",
        "host alloc",
        "checkpoint",
        "reset_to",
        "misuse",
        "scope",
        "invocation",
    ]
    .iter()
    .chain(also)
    {
        assert!(seen.contains(op), "no {op} in any sequence: {seen:?}");
    }
}

#[test]
fn random_sequences_on_an_arena_match_the_model() {
    run_sequences(1500, 600, &[], |seed, ops| {
        on_an_arena(0x9E37_79B9_7F4A_7C15 ^ seed, ops, 1 << 13)
    });
}

#[test]
fn random_sequences_under_memory_pressure_match_the_model() {
    run_sequences(1000, 600, &[], |seed, ops| {
        on_an_arena(0xD1B5_4A32_D192_ED03 ^ seed, ops, 160)
    });
}

#[test]
fn random_sequences_through_global_alloc_match_the_model() {
    run_sequences(1000, 600, &[], |seed, ops| {
        let max_bytes = [600, 1 << 16][seed as usize % 2];
        on_a_global_arena(0xA076_1D64_78BD_642F ^ seed, ops, max_bytes)
    });
}

#[test]
fn random_sequences_on_a_growing_linear_memory_match_the_model() {
    run_sequences(600, 600, &["foreign growth"], |seed, ops| {
        // (Miri tracks every byte of the fake memory: small ones there.)
        let sizes = if cfg!(miri) {
            [3000, 40_000, 100_000]
        } else {
            [3000, 300_000, 3 << 20]
        };
        let max_bytes = sizes[seed as usize % 3];
        let memory = growable_memory(max_bytes);
        on_a_linear_memory(0x8BB8_4B93_962E_ACC9 ^ seed, ops, max_bytes, memory)
    });
}

#[test]
fn random_sequences_on_a_linear_memory_capped_below_the_arenas_maximum_match_the_model() {
    run_sequences(600, 600, &["foreign growth"], |seed, ops| {
        // The memory stops at 1 to 6 pages, the arena's maximum is 3 MiB (48 pages).
        let memory = capped_memory(1 + seed as usize % 6);
        on_a_linear_memory(0x5851_F42D_4C95_7F2D ^ seed, ops, 3 << 20, memory)
    });
}

#[test]
fn the_host_abi_readers_answer_exactly_for_any_value() {
    let (seeds, ops) = plan(500, 400);
    for seed in 0..seeds {
        let arena = Box::new(GlobalArena::with_max_bytes([256, 4096][seed as usize % 2]));
        run_abi(&arena, &mut Rng((0xE703_7ED1_A0B4_28DB ^ seed) | 1), ops);
    }
}
