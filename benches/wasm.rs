//! wasm32 throughput, driven through wasmtime: the same guest source (tests/guests/bench and the
//! realistic flare) built on each allocator, called in one run side by side.
//!
//!     cargo bench --bench wasm               # full run
//!     cargo bench --bench wasm -- --quick    # every bench, briefly
//!     python3 benches/report.py              # the README tables, from criterion's estimates
//!
//! Guest exports run N operations per call, so the wasmtime call is amortised; `call_overhead`
//! measures the call (with its reset) alone. Before the timings, the bench prints the footprint
//! table (code size of a minimal flare per allocator, linear memory after 10,000 invocations of
//! the realistic flare) and saves it to target/criterion/flare-footprint.json.

#[path = "../tests/support/mod.rs"]
mod support;

use criterion::{BenchmarkGroup, Criterion, Throughput, measurement::WallTime};
use std::time::{Duration, Instant};
use support::guests;
use support::host::{self, Flare, PAGE};
use wasmtime::{Engine, Module};

/// (cargo feature of the guests, name in the report)
const ALLOCATORS: [(&str, &str); 5] = [
    ("arena", "flare-arena"),
    ("dlmalloc", "dlmalloc (Rust default)"),
    ("talc", "talc"),
    ("lol-free", "lol_alloc FreeList"),
    ("lol-leak", "lol_alloc Leaking"),
];

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
            b.iter_custom(|iters| {
                let reset = guest.flare.export("bench_empty").expect("bench export");
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    guest.flare.call(&reset, 0).expect("invocation");
                    let start = Instant::now();
                    for _ in 0..100 {
                        std::hint::black_box(guest.flare.alloc(64).expect("alloc"));
                    }
                    total += start.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

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

/// Code size and memory, per allocator: printed and saved for benches/report.py.
fn footprint(engine: &Engine) {
    const INVOCATIONS: u64 = 10_000;
    let requests: Vec<_> = (0..1000).map(|id| host::order_request(id, 8)).collect();
    let mut rows = Vec::new();
    println!(
        "\nfootprint: minimal flare size (profile `small`: opt-level z, LTO, 1 CGU, stripped); realistic flare memory after {INVOCATIONS} invocations"
    );
    println!(
        "| allocator | minimal flare .wasm bytes | realistic flare .wasm bytes | pages after {INVOCATIONS} invocations | KiB |"
    );
    println!("|---|---:|---:|---:|---:|");
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
        println!(
            "| {name} | {minimal} | {} | {pages} | {} |",
            guests::size(&flare_wasm),
            pages * PAGE / 1024
        );
        rows.push(format!(
            r#"{{"allocator":"{name}","minimal_wasm_bytes":{minimal},"flare_wasm_bytes":{},"pages_after_{INVOCATIONS}":{pages}}}"#,
            guests::size(&flare_wasm)
        ));
    }
    let dir = guests::repo().join("target").join("criterion");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(
        dir.join("flare-footprint.json"),
        format!("[{}]\n", rows.join(",\n")),
    );
}

fn main() {
    let engine = host::engine();
    footprint(&engine);
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    workloads(&mut criterion, &engine);
    flare_invocations(&mut criterion, &engine);
    criterion.final_summary();
}
