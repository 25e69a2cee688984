//! wasm32 throughput, driven through wasmtime: the same guest source (tests/guests/bench and the
//! realistic flare) built on each allocator, called in one run side by side.
//!
//!     cargo bench --bench wasm               # full run
//!     cargo bench --bench wasm -- --quick    # every bench, briefly
//!     python3 benches/report.py              # the README tables, from criterion's estimates
//!
//! Guest exports run N operations per call, so the wasmtime call is amortised; `call_overhead`
//! measures the call (with its reset) alone. `churn` is talc's own wasm benchmark workload
//! (`wasm-perf/src/lib.rs` in SFBdragon/talc), ported to `bench_churn` in tests/guests/bench:
//! 100,000 random allocations, frees and (in one mode) reallocs per call, the same seeds for every
//! allocator.
//!
//! `wasm_component_summarize` calls the WASI component of tests/guests/component (wasm32-wasip2,
//! wit-bindgen) through wasmtime's component API: a string and a list of records lowered through
//! `cabi_realloc` per call, on flare-arena and on std's default allocator (wasi-libc's dlmalloc);
//! its pages after 20,000 calls are printed and saved to target/criterion/flare-component.json.
//!
//! Before the timings, the bench prints the footprint table (code size of a minimal flare per
//! allocator; linear memory after 10,000 invocations of the realistic flare, after 20,000
//! requests of each stateful flare, and after the churn workload) and saves it to
//! target/criterion/flare-footprint.json.

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use flare_arena_testkit::component::{self, Orders};
use flare_arena_testkit::guests::{self, ALLOCATORS};
use flare_arena_testkit::host::{self, Flare, PAGE};
use std::time::{Duration, Instant};
use wasmtime::{Engine, Module};

/// Above this much linear memory an instance is replaced (outside the clock): the leaking
/// allocator would otherwise run out of address space over a long run.
const MEMORY_CAP: usize = 1 << 30;

struct Guest {
    module: Module,
    flare: Flare,
}

impl Guest {
    fn new(engine: &Engine, package: &str, feature: &str) -> Guest {
        let module = host::load(engine, &guests::build(package, feature, "release"))
            .expect("guest compiles");
        let flare = Flare::new(engine, &module).expect("guest instantiates");
        Guest { module, flare }
    }

    /// Replaces the instance if it grew past [`MEMORY_CAP`]; true if it did (exports fetched
    /// from the old instance are then invalid).
    fn refresh_if_big(&mut self, engine: &Engine) -> bool {
        let big = self.flare.memory_bytes() > MEMORY_CAP;
        if big {
            self.flare = Flare::new(engine, &self.module).expect("guest instantiates");
        }
        big
    }
}

/// An invocation of the host calling `alloc` 100 times: the time of the 100 calls (the call that
/// starts the invocation, and resets, is outside the clock).
fn host_allocs(flare: &mut Flare) -> Duration {
    let reset = flare.export("bench_empty").expect("bench export");
    flare.call(&reset, 0).expect("invocation");
    let start = Instant::now();
    for _ in 0..100 {
        std::hint::black_box(flare.alloc(64).expect("alloc"));
    }
    start.elapsed()
}

fn workloads(c: &mut Criterion, engine: &Engine) {
    const N: i32 = 1000;
    let mut guests: Vec<(&str, Guest)> = ALLOCATORS
        .iter()
        .map(|&(feature, name)| (name, Guest::new(engine, "bench", feature)))
        .collect();
    let cases: [(&str, &str, i32); 5] = [
        ("call_overhead", "bench_empty", 0),
        ("small_alloc_free", "bench_small", N),
        ("alloc_many_then_release", "bench_many", N),
        ("realloc_string_pass", "bench_realloc", N),
        ("vec_string_push", "bench_push", N),
    ];
    for (group_name, export, n) in cases {
        let mut group = c.benchmark_group(format!("wasm_{group_name}"));
        group.throughput(Throughput::Elements(n.max(1) as u64));
        for (name, guest) in &mut guests {
            let mut func = guest.flare.export(export).expect("bench export");
            group.bench_function(*name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let start = Instant::now();
                        std::hint::black_box(guest.flare.call(&func, n).expect("bench call"));
                        total += start.elapsed();
                        if guest.refresh_if_big(engine) {
                            func = guest.flare.export(export).expect("bench export");
                        }
                    }
                    total
                })
            });
        }
        group.finish();
    }

    // The host calling the guest's `alloc` export directly, 100 times per invocation.
    let mut group = c.benchmark_group("wasm_host_alloc_export");
    group.throughput(Throughput::Elements(100));
    for (name, guest) in &mut guests {
        group.bench_function(*name, |b| {
            b.iter_custom(|iters| (0..iters).map(|_| host_allocs(&mut guest.flare)).sum())
        });
    }
    group.finish();
}

/// talc's workload: one call is 100,000 actions (see `bench_churn`); seeds cycle over 8.
fn churn(c: &mut Criterion, engine: &Engine) {
    for (mode, name) in [(0, "wasm_churn"), (1, "wasm_churn_realloc")] {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Elements(CHURN_ACTIONS));
        group.sample_size(10);
        for &(feature, allocator) in &ALLOCATORS[..4] {
            let mut guest = Guest::new(engine, "bench", feature);
            let func = guest.flare.export("bench_churn").expect("bench export");
            let mut seed = 0;
            group.bench_function(allocator, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        seed = (seed + 1) % 8;
                        let start = Instant::now();
                        let answer = guest.flare.call(&func, (seed << 2) | mode).expect("churn");
                        total += start.elapsed();
                        assert_eq!(answer, 0, "{allocator}: churn failed");
                    }
                    total
                })
            });
        }
        group.finish();
    }
}

/// Actions per `bench_churn` call.
const CHURN_ACTIONS: u64 = 100_000;

fn flare_invocations(c: &mut Criterion, engine: &Engine) {
    let requests: Vec<_> = (0..1000).map(|id| host::order_request(id, 8)).collect();
    let mut group: BenchmarkGroup<'_, WallTime> = c.benchmark_group("wasm_flare_invocation");
    group.throughput(Throughput::Elements(1));
    for &(feature, name) in &ALLOCATORS {
        let mut guest = Guest::new(engine, "flare", feature);
        guest.flare.kv_set("tier:cust-0", b"gold");
        let mut next = 0usize;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let request = &requests[next % requests.len()];
                    next += 1;
                    let start = Instant::now();
                    let (_, response) = guest.flare.handle(request).expect("invocation");
                    total += start.elapsed();
                    assert_eq!(response.status, 200);
                    guest.refresh_if_big(engine);
                }
                total
            })
        });
    }
    group.finish();
}

/// The component's allocators: (cargo feature, name in reports).
const COMPONENT_ALLOCATORS: [(&str, &str); 2] = [
    ("arena", "flare-arena"),
    ("system", "std default (wasi-libc dlmalloc)"),
];

/// Time per `summarize` call of the WASI component (one instance per allocator, reused as a
/// host reuses one), after its pages over 20,000 calls are recorded.
fn components(c: &mut Criterion, engine: &Engine) {
    const CALLS: u64 = 20_000;
    let orders: Vec<_> = (0..1000).map(|id| component::order(id, 12)).collect();
    let mut instances = Vec::new();
    let mut rows = Vec::new();
    println!(
        "
component: pages of linear memory after {CALLS} `summarize` calls on one instance"
    );
    println!("| allocator | .wasm bytes | pages |");
    println!("|---|---:|---:|");
    for &(feature, name) in &COMPONENT_ALLOCATORS {
        let wasm = guests::build_for("wasm32-wasip2", "component", feature, "release")
            .unwrap_or_else(|e| panic!("{e}"));
        let compiled = component::load(engine, &wasm).expect("component compiles");
        let mut instance = Orders::new(engine, &compiled, &[]).expect("component instantiates");
        for id in 0..CALLS {
            let (customer, items) = &orders[(id % 1000) as usize];
            instance.summarize(customer, items).expect("summarize");
        }
        let pages = instance.memory_pages();
        println!("| {name} | {} | {pages} |", guests::size(&wasm));
        rows.push(format!(
            r#"{{"allocator":"{name}","wasm_bytes":{},"pages_after_{CALLS}":{pages}}}"#,
            guests::size(&wasm)
        ));
        instances.push((name, instance));
    }
    let dir = guests::repo().join("target").join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("flare-component.json"),
        format!("[{}]\n", rows.join(",\n")),
    );

    let mut group = c.benchmark_group("wasm_component_summarize");
    group.throughput(Throughput::Elements(1));
    for (name, instance) in &mut instances {
        let mut next = 0usize;
        group.bench_function(*name, |b| {
            b.iter(|| {
                let (customer, items) = &orders[next % orders.len()];
                next += 1;
                instance.summarize(customer, items).expect("summarize")
            })
        });
    }
    group.finish();
}

/// Linear memory of a fresh stateful flare (tests/guests/stateful) after `requests` requests in
/// `state`.
fn stateful_pages(engine: &Engine, feature: &str, state: &str, requests: u64) -> u64 {
    let module = host::load(engine, &guests::build("stateful", feature, "release")).expect("guest");
    let mut flare = Flare::new(engine, &module).expect("guest instantiates");
    flare.kv_set("config", host::STATEFUL_CONFIG);
    for id in 0..requests {
        let (_, response) = flare
            .handle(&host::stateful_request(state, id))
            .expect("request");
        assert_eq!(
            response.status,
            200,
            "{feature} {state}: {}",
            response.text()
        );
    }
    flare.memory_pages()
}

/// Linear memory of a fresh bench guest after one churn call per seed in 0..8 (`mode` 1: with
/// reallocs): its peak, since memory never shrinks.
fn churn_pages(engine: &Engine, feature: &str, mode: i32) -> u64 {
    let mut guest = Guest::new(engine, "bench", feature);
    let func = guest.flare.export("bench_churn").expect("bench export");
    for seed in 0..8 {
        assert_eq!(
            guest.flare.call(&func, (seed << 2) | mode).expect("churn"),
            0
        );
    }
    guest.flare.memory_pages()
}

/// Code size and memory, per allocator: printed and saved for benches/report.py.
fn footprint(engine: &Engine) {
    const INVOCATIONS: u64 = 10_000;
    const REQUESTS: u64 = 20_000;
    let requests: Vec<_> = (0..1000).map(|id| host::order_request(id, 8)).collect();
    let mut rows = Vec::new();
    println!(
        "\nfootprint: minimal flare size (profile `small`: opt-level z, LTO, 1 CGU, stripped); pages of linear memory after {INVOCATIONS} realistic invocations, {REQUESTS} stateful requests, 8 churn calls"
    );
    println!(
        "| allocator | minimal .wasm | realistic .wasm | realistic | stateless | counter | ttl | lru | churn | churn + realloc |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &(feature, name) in &ALLOCATORS {
        let minimal = guests::size(&guests::build("minimal", feature, "small"));
        let flare_wasm = guests::build("flare", feature, "release");
        let module = host::load(engine, &flare_wasm).expect("guest compiles");
        let mut flare = Flare::new(engine, &module).expect("guest instantiates");
        flare.kv_set("tier:cust-0", b"gold");
        for id in 0..INVOCATIONS {
            flare
                .handle(&requests[(id % 1000) as usize])
                .expect("invocation");
        }
        let pages = flare.memory_pages();
        let stateful: Vec<u64> = ["none", "counter", "ttl", "lru"]
            .iter()
            .map(|state| stateful_pages(engine, feature, state, REQUESTS))
            .collect();
        // The leaking allocator never frees: churn would take gigabytes.
        let churn: Vec<String> = [0, 1]
            .iter()
            .map(|&mode| match feature {
                "lol-leak" => "–".to_string(),
                _ => churn_pages(engine, feature, mode).to_string(),
            })
            .collect();
        println!(
            "| {name} | {minimal} | {} | {pages} | {} | {} | {} | {} | {} | {} |",
            guests::size(&flare_wasm),
            stateful[0],
            stateful[1],
            stateful[2],
            stateful[3],
            churn[0],
            churn[1],
        );
        rows.push(format!(
            r#"{{"allocator":"{name}","minimal_wasm_bytes":{minimal},"flare_wasm_bytes":{},"pages_after_{INVOCATIONS}":{pages},"stateless_pages":{},"counter_pages":{},"ttl_pages":{},"lru_pages":{},"churn_pages":"{}","churn_realloc_pages":"{}"}}"#,
            guests::size(&flare_wasm),
            stateful[0],
            stateful[1],
            stateful[2],
            stateful[3],
            churn[0],
            churn[1],
        ));
    }
    let _ = PAGE;
    let dir = guests::repo().join("target").join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("flare-footprint.json"),
        format!("[{}]\n", rows.join(",\n")),
    );
}

/// The paired table's workloads: (name, export of the bench guest, its argument, elements per
/// call, calls per turn). `bench_churn`'s argument gets the round's seed (bits 2 and up).
const PAIRED: [(&str, &str, i32, u64, usize); 6] = [
    ("small_alloc_free", "bench_small", 1000, 1000, 40),
    ("alloc_many_then_release", "bench_many", 1000, 1000, 40),
    ("realloc_string_pass", "bench_realloc", 1000, 1000, 40),
    ("vec_string_push", "bench_push", 1000, 1000, 40),
    ("churn", "bench_churn", 0, CHURN_ACTIONS, 1),
    ("churn_realloc", "bench_churn", 1, CHURN_ACTIONS, 1),
];

/// Median time per element of every allocator on the same workloads, the allocators taking
/// turns, a few calls each, round after round (each round starting with the next allocator).
/// criterion measures one allocator after the other, seconds apart: on a shared machine whose
/// speed drifts, that moves a ratio by more than the effects being measured, where taking turns
/// exposes every allocator to the same drift. Printed and saved for benches/report.py.
fn paired(engine: &Engine, rounds: usize) {
    let mut guests: Vec<(&str, &str, Guest)> = ALLOCATORS
        .iter()
        .map(|&(feature, name)| (feature, name, Guest::new(engine, "bench", feature)))
        .collect();
    let mut flares: Vec<Guest> = ALLOCATORS
        .iter()
        .map(|&(feature, _)| {
            let mut guest = Guest::new(engine, "flare", feature);
            guest.flare.kv_set("tier:cust-0", b"gold");
            guest
        })
        .collect();
    let requests: Vec<_> = (0..1000).map(|id| host::order_request(id, 8)).collect();
    let names: Vec<&str> = guests.iter().map(|g| g.1).collect();
    println!(
        "\npaired: median ns per element over {rounds} rounds, the allocators taking turns (x: that allocator's time / flare-arena's)"
    );
    println!("| workload | {} |", names.join(" | "));
    println!("|---|{}", "---:|".repeat(names.len()));
    let mut rows = Vec::new();
    let workloads = PAIRED.len() + 2;
    for workload in 0..workloads {
        let mut samples = vec![Vec::new(); guests.len()];
        let mut name = "";
        for round in 0..rounds {
            for turn in 0..guests.len() {
                let i = (round + turn) % guests.len();
                let (feature, _, guest) = &mut guests[i];
                let ns = if let Some(&(case, export, arg, elements, calls)) = PAIRED.get(workload) {
                    name = case;
                    // The leaking allocator never frees: churn would take gigabytes.
                    if export == "bench_churn" && *feature == "lol-leak" {
                        continue;
                    }
                    let arg = if export == "bench_churn" {
                        arg | (round as i32 % 8) << 2
                    } else {
                        arg
                    };
                    let func = guest.flare.export(export).expect("bench export");
                    let start = Instant::now();
                    for _ in 0..calls {
                        std::hint::black_box(guest.flare.call(&func, arg).expect("bench call"));
                    }
                    let ns = start.elapsed().as_nanos() as f64 / (calls as u64 * elements) as f64;
                    guest.refresh_if_big(engine);
                    ns
                } else if workload == PAIRED.len() {
                    name = "host_alloc_export";
                    let clocked: Duration = (0..40).map(|_| host_allocs(&mut guest.flare)).sum();
                    clocked.as_nanos() as f64 / 4000.0
                } else {
                    name = "flare_invocation";
                    let flare = &mut flares[i].flare;
                    let start = Instant::now();
                    for call in 0..20 {
                        let request = &requests[(round * 20 + call) % requests.len()];
                        let (_, response) = flare.handle(request).expect("invocation");
                        assert_eq!(response.status, 200);
                    }
                    start.elapsed().as_nanos() as f64 / 20.0
                };
                samples[i].push(ns);
            }
        }
        let medians: Vec<Option<f64>> = samples
            .iter_mut()
            .map(|s| {
                s.sort_by(f64::total_cmp);
                (!s.is_empty()).then(|| s[s.len() / 2])
            })
            .collect();
        let ours = medians[0].expect("flare-arena ran");
        let cells: Vec<String> = medians
            .iter()
            .enumerate()
            .map(|(i, m)| match m {
                None => "–".to_string(),
                Some(ns) if i == 0 => format!("{ns:.2}"),
                Some(ns) => format!("{ns:.2} ({:.2}×)", ns / ours),
            })
            .collect();
        println!("| {name} | {} |", cells.join(" | "));
        for (i, m) in medians.iter().enumerate() {
            if let Some(ns) = m {
                rows.push(format!(
                    r#"{{"workload":"{name}","allocator":"{}","ns_per_element":{ns:.3},"rounds":{rounds}}}"#,
                    names[i]
                ));
            }
        }
    }
    let dir = guests::repo().join("target").join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("flare-paired.json"),
        format!("[{}]\n", rows.join(",\n")),
    );
}

fn main() {
    let engine = host::engine();
    if std::env::var_os("FLARE_SKIP_FOOTPRINT").is_none() {
        footprint(&engine);
    }
    if std::env::var_os("FLARE_SKIP_PAIRED").is_none() {
        // Under `cargo test --benches` (no `--bench`), one round: the code runs, nothing is measured.
        let benching = std::env::args().any(|arg| arg == "--bench");
        paired(&engine, if benching { 21 } else { 1 });
    }
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    workloads(&mut criterion, &engine);
    churn(&mut criterion, &engine);
    flare_invocations(&mut criterion, &engine);
    components(&mut criterion, &engine);
    criterion.final_summary();
}
