//! Churn on wasm: the workload of talc's own wasm benchmark (100,000 random allocations of 1 to
//! 10,000 bytes at alignments up to 2 KiB, frees and reallocs, 50 or more blocks live), run by the
//! bench guest's `bench_churn` with a canary in every live block, checked in full on every free and
//! realloc. And its memory next to talc's, the same seeds on both.

use flare_arena_testkit::flares::instance;

/// `bench_churn`'s argument: bit 0 realloc mode, bit 1 canaries, the rest the seed.
fn churn_arg(seed: i32, realloc: bool, canaries: bool) -> i32 {
    (seed << 2) | i32::from(canaries) << 1 | i32::from(realloc)
}

#[test]
fn churn_with_canaries_never_loses_a_byte() {
    let mut flare = instance("bench", "arena");
    let churn = flare.export("bench_churn").unwrap();
    for seed in 0..3 {
        for realloc in [false, true] {
            let broken = flare.call(&churn, churn_arg(seed, realloc, true)).unwrap();
            assert_eq!(
                broken, 0,
                "seed {seed}, realloc {realloc}: {broken} canary bytes changed"
            );
        }
    }
    let stats = flare.arena_stats().unwrap();
    assert_eq!(stats.live_blocks, 0, "{stats:?}");
    assert!(
        stats.lines_recycled > 100_000,
        "freed memory was reused: {stats:?}"
    );
}

#[test]
fn churn_takes_at_most_one_and_a_half_times_talcs_memory() {
    for realloc in [false, true] {
        let mut pages = Vec::new();
        for feature in ["arena", "talc"] {
            let mut flare = instance("bench", feature);
            let churn = flare.export("bench_churn").unwrap();
            let start = flare.memory_pages();
            for seed in 0..4 {
                assert_eq!(
                    flare.call(&churn, churn_arg(seed, realloc, false)).unwrap(),
                    0
                );
            }
            // Memory never shrinks: this is the peak.
            pages.push((flare.memory_pages(), start));
        }
        let [(arena, arena_start), (talc, talc_start)] = pages[..] else {
            unreachable!()
        };
        println!(
            "churn (realloc {realloc}): flare-arena {arena_start} -> {arena} pages, talc {talc_start} -> {talc}"
        );
        assert!(
            arena * 2 <= talc * 3,
            "realloc {realloc}: {arena} pages, talc {talc}"
        );
    }
}

/// The same churn again and again on one instance: memory must follow what is live (the same each
/// time), not how long the instance has been churning. (On wasm the region grows only when a search
/// finds nothing below its end, which kept the peak creep tests/core.rs pins down natively in
/// check here; this keeps it so.)
#[test]
fn repeated_churn_keeps_memory_flat() {
    for realloc in [false, true] {
        let mut flare = instance("bench", "arena");
        let churn = flare.export("bench_churn").unwrap();
        let mut run = |calls: usize| {
            for _ in 0..calls {
                assert_eq!(flare.call(&churn, churn_arg(0, realloc, false)).unwrap(), 0);
            }
            flare.memory_pages()
        };
        let warm = run(3);
        let after = run(30);
        println!("churn (realloc {realloc}): {warm} pages after 3 calls, {after} after 33");
        assert!(
            after <= warm + 1,
            "realloc {realloc}: {warm} -> {after} pages"
        );
    }
}
