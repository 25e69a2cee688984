//! The main job: builds the sample flare (tests/guests/flare) for wasm32 on flare-arena and on the
//! default allocator, drives each through a real wasm runtime (wasmtime) for N invocations on one
//! reused instance, and prints what the arena did next to the default allocator.
//!
//!     cargo run --release --example demo -- --help

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::Instant;
use support::guests;
use support::host::{self, Flare, PAGE};

const HELP: &str = "\
flare-arena demo: one sample flare, built for wasm32 on different allocators, run in wasmtime.

USAGE: cargo run --release --example demo -- [OPTIONS]

OPTIONS:
  -n, --invocations N    invocations per allocator (default 100000)
      --items K          order lines per request body (default 8)
      --allocators LIST  comma-separated, from: arena, dlmalloc, talc, lol-free, lol-leak
                         (default arena,dlmalloc; dlmalloc is Rust's default wasm allocator)
  -h, --help             this text

Each allocator gets one instance, reused for every invocation, as an edge host does. The table
shows the median time of one handle_request call, linear memory before and after, and the
arena's own counters (high water, live blocks, resets that had to keep memory).";

struct Options {
    invocations: u64,
    items: usize,
    allocators: Vec<String>,
}

fn parse() -> Result<Options, String> {
    let mut options = Options {
        invocations: 100_000,
        items: 8,
        allocators: vec!["arena".into(), "dlmalloc".into()],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            "-n" | "--invocations" => {
                options.invocations = value(&arg)?.parse().map_err(|e| format!("{arg}: {e}"))?
            }
            "--items" => options.items = value(&arg)?.parse().map_err(|e| format!("{arg}: {e}"))?,
            "--allocators" => {
                options.allocators = value(&arg)?.split(',').map(str::to_string).collect()
            }
            other => return Err(format!("unknown option {other} (try --help)")),
        }
    }
    let known = ["arena", "dlmalloc", "talc", "lol-free", "lol-leak"];
    if let Some(bad) = options
        .allocators
        .iter()
        .find(|a| !known.contains(&a.as_str()))
    {
        return Err(format!(
            "unknown allocator {bad}; choose from {}",
            known.join(", ")
        ));
    }
    if options.invocations == 0 || options.items == 0 {
        return Err("--invocations and --items must be at least 1".into());
    }
    Ok(options)
}

struct Row {
    allocator: String,
    wasm_bytes: u64,
    median_ns: u64,
    p99_ns: u64,
    pages: (u64, u64, u64),
    arena: Option<host::ArenaStats>,
    host_allocs: u64,
    imports: u64,
}

fn run(allocator: &str, options: &Options, engine: &wasmtime::Engine) -> Result<Row, String> {
    eprintln!("[{allocator}] building the flare for wasm32 ...");
    let wasm = guests::try_build("flare", allocator, "release")?;
    let module = host::load(engine, &wasm).map_err(|e| e.to_string())?;
    let mut flare = Flare::new(engine, &module).map_err(|e| e.to_string())?;
    flare.kv_set("tier:cust-0", b"gold");
    let start_pages = flare.memory_pages();
    let mut after_100 = start_pages;
    let requests: Vec<_> = (0..1000)
        .map(|id| host::order_request(id, options.items))
        .collect();
    let mut times = Vec::with_capacity(options.invocations as usize);
    let step = (options.invocations / 10).max(1);
    for id in 0..options.invocations {
        let request = &requests[(id % 1000) as usize];
        let started = Instant::now();
        let (_, response) = flare
            .handle(request)
            .map_err(|e| format!("invocation {id}: {e:?}"))?;
        times.push(started.elapsed().as_nanos() as u64);
        if response.status != 200 {
            return Err(format!(
                "invocation {id} answered {}: {}",
                response.status,
                response.text()
            ));
        }
        if id == 99 {
            after_100 = flare.memory_pages();
        }
        if (id + 1) % step == 0 {
            eprintln!(
                "[{allocator}] {:>3}% ({} invocations)",
                (id + 1) * 100 / options.invocations,
                id + 1
            );
        }
    }
    times.sort_unstable();
    let quantile = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    Ok(Row {
        allocator: allocator.into(),
        wasm_bytes: guests::size(&wasm),
        median_ns: quantile(0.5),
        p99_ns: quantile(0.99),
        pages: (start_pages, after_100, flare.memory_pages()),
        arena: flare.arena_stats(),
        host_allocs: flare.calls().alloc,
        imports: flare.calls().total_imports(),
    })
}

fn main() {
    let options = match parse() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("demo: {error}");
            std::process::exit(2);
        }
    };
    let engine = host::engine();
    let mut rows = Vec::new();
    for allocator in &options.allocators {
        match run(allocator, &options, &engine) {
            Ok(row) => rows.push(row),
            Err(error) => {
                eprintln!("demo: {error}");
                std::process::exit(1);
            }
        }
    }
    println!();
    println!(
        "sample flare: {} invocations on one wasmtime instance each, {} order lines per JSON body",
        options.invocations, options.items
    );
    println!();
    println!(
        "| allocator | .wasm bytes | median ns/inv | p99 ns/inv | pages start | after 100 | end | memory at end | arena high water | live | resets | resets kept |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let (hw, live, resets, kept) = match r.arena {
            Some(s) => (
                format!("{} B", s.high_water),
                s.live.to_string(),
                s.resets.to_string(),
                s.kept.to_string(),
            ),
            None => ("n/a".into(), "n/a".into(), "n/a".into(), "n/a".into()),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} KiB | {hw} | {live} | {resets} | {kept} |",
            r.allocator,
            r.wasm_bytes,
            r.median_ns,
            r.p99_ns,
            r.pages.0,
            r.pages.1,
            r.pages.2,
            r.pages.2 * PAGE / 1024
        );
    }
    println!();
    for r in &rows {
        println!(
            "{}: the host called `alloc` {} times from inside {} import calls ({:.1} per invocation)",
            r.allocator,
            r.host_allocs,
            r.imports,
            r.imports as f64 / options.invocations as f64
        );
    }
    if let (Some(arena), Some(other)) = (
        rows.iter().find(|r| r.arena.is_some()),
        rows.iter().find(|r| r.arena.is_none()),
    ) {
        println!(
            "\nflare-arena vs {}: {:.2}x the median time per invocation, {} vs {} pages of linear memory at the end.",
            other.allocator,
            arena.median_ns as f64 / other.median_ns.max(1) as f64,
            arena.pages.2,
            other.pages.2
        );
        println!(
            "(Timings from one run on this machine; the criterion benches give the careful numbers.)"
        );
    }
}
