//! A WASI 0.2 component on flare-arena (tests/guests/component, built for `wasm32-wasip2` with
//! wit-bindgen), driven through wasmtime's component API: the host lowers strings and lists into
//! the guest through `cabi_realloc` before each export body runs, and the export resets the arena
//! at its top. The arguments must survive that reset, state kept across calls must survive every
//! reset, results must be freed by post-return, and memory must stay flat.

use flare_arena_testkit::component::{self, Orders};
use flare_arena_testkit::{flares, guests};
use std::sync::OnceLock;
use wasmtime::component::Component;

const WASIP2: &str = "wasm32-wasip2";
const REGION: (&str, &str) = ("FLARE_REGION", "eu-central-component");

/// The component built with allocator `feature` (`arena` or `system`), compiled once per binary.
fn compiled(feature: &str) -> Component {
    static ARENA: OnceLock<Component> = OnceLock::new();
    static SYSTEM: OnceLock<Component> = OnceLock::new();
    let cell = if feature == "arena" { &ARENA } else { &SYSTEM };
    cell.get_or_init(|| {
        let wasm = guests::build_for(WASIP2, "component", feature, "release")
            .unwrap_or_else(|e| panic!("{e}"));
        component::load(flares::engine(), &wasm).expect("component compiles")
    })
    .clone()
}

fn instance(feature: &str) -> Orders {
    Orders::new(flares::engine(), &compiled(feature), &[REGION]).expect("component instantiates")
}

/// Stats of the arena component, by name (see the WIT world).
struct ArenaStats {
    live_blocks: u64,
    lines_recycled: u64,
    resets: u64,
    failed: u64,
}

fn arena_stats(orders: &mut Orders) -> ArenaStats {
    let s = orders.arena_stats().expect("arena-stats");
    assert_eq!(s.len(), 7, "arena-stats: {s:?}");
    ArenaStats {
        live_blocks: s[2],
        lines_recycled: s[4],
        resets: s[5],
        failed: s[6],
    }
}

/// `calls` calls on one instance: every receipt checked, every 5th call also `remember`s (the
/// 64-key cache checked against a model), every 97th reads the environment through wasi-libc.
/// Pages after call 1,000 and at the end.
fn run(orders: &mut Orders, calls: u64) -> (usize, usize) {
    let mut cache: Vec<(String, String)> = Vec::new();
    let mut at_1000 = 0;
    for id in 0..calls {
        let (customer, items) = component::order(id, 12);
        let receipt = orders
            .summarize(&customer, &items)
            .unwrap_or_else(|e| panic!("call {id} trapped: {e:?}"));
        assert_eq!(receipt, component::receipt(&customer, &items), "call {id}");
        if id % 5 == 0 {
            let key = format!("key-{}", id * 11 % 90);
            let value = format!("value-{id}-{}", "v".repeat((id % 50) as usize));
            let expected = cache
                .iter()
                .position(|(k, _)| *k == key)
                .map(|at| cache.remove(at).1);
            if cache.len() == 64 {
                cache.remove(0);
            }
            cache.push((key.clone(), value.clone()));
            assert_eq!(
                orders.remember(&key, &value).unwrap(),
                expected,
                "call {id}"
            );
        }
        if id % 97 == 0 {
            assert_eq!(
                orders.env(REGION.0).unwrap().as_deref(),
                Some(REGION.1),
                "call {id}"
            );
            assert_eq!(orders.env("NOT_SET").unwrap(), None, "call {id}");
        }
        if id + 1 == 1000 {
            at_1000 = orders.memory_pages();
        }
    }
    (at_1000, orders.memory_pages())
}

fn flat_and_near_the_default_allocator(calls: u64) {
    let mut system = instance("system");
    let (_, system_pages) = run(&mut system, calls.min(20_000));
    let mut arena = instance("arena");
    let (at_1000, end) = run(&mut arena, calls);
    let stats = arena_stats(&mut arena);
    println!(
        "component, {calls} calls: flare-arena {at_1000} -> {end} pages (live blocks {}, lines recycled {}, resets {}), std's default {system_pages} pages",
        stats.live_blocks, stats.lines_recycled, stats.resets
    );
    assert!(
        end <= at_1000 + 1,
        "memory grew from {at_1000} to {end} pages"
    );
    assert!(
        end <= system_pages + 4,
        "{end} pages, std's default {system_pages}"
    );
    assert_eq!(stats.failed, 0);
    // Every summarize, remember and env call reset (arena-stats itself does not).
    assert_eq!(
        stats.resets,
        calls + calls.div_ceil(5) + 2 * calls.div_ceil(97)
    );
}

#[test]
fn a_component_keeps_its_arguments_state_and_memory_over_twenty_thousand_calls() {
    flat_and_near_the_default_allocator(20_000);
}

#[test]
#[ignore = "long: 100,000 calls (run with --ignored)"]
fn a_component_keeps_its_arguments_state_and_memory_over_a_hundred_thousand_calls() {
    flat_and_near_the_default_allocator(100_000);
}

/// Post-return frees each result: after any number of calls, the blocks still live are the
/// cache's and nothing else. If results (or arguments) leaked, the count would climb per call.
#[test]
fn post_return_frees_every_result_and_argument() {
    let mut orders = instance("arena");
    orders.remember("k", "v").unwrap();
    // The first call of each kind may leave one-time state behind (libc's copy of the
    // environment, say): warm up, then count.
    let (customer, items) = component::order(0, 12);
    orders.summarize(&customer, &items).unwrap();
    orders.env(REGION.0).unwrap();
    let before = arena_stats(&mut orders).live_blocks;
    for id in 0..500 {
        let (customer, items) = component::order(id, 12);
        orders.summarize(&customer, &items).unwrap();
        orders.env(REGION.0).unwrap();
    }
    let after = arena_stats(&mut orders).live_blocks;
    assert_eq!(before, after, "blocks leaked by 1,000 calls");
    assert!(
        before >= 2,
        "the cache's entry and its buffer are live: {before}"
    );
}

/// Arguments big enough to span many lines arrive while the previous call's lines are free to be
/// recycled: the reset at the top of the export must skip them all.
#[test]
fn large_arguments_survive_the_reset_at_the_top_of_the_export() {
    let mut orders = instance("arena");
    for round in 0..50u64 {
        let (customer, mut items) = component::order(round, 3);
        let customer = customer.repeat(1 + (round % 7) as usize * 40);
        for i in 0..200 {
            let (_, more) = component::order(round * 1000 + i, 2);
            items.extend(more);
        }
        let receipt = orders.summarize(&customer, &items).unwrap();
        assert_eq!(
            receipt,
            component::receipt(&customer, &items),
            "round {round}"
        );
    }
    assert!(arena_stats(&mut orders).lines_recycled > 0);
}
