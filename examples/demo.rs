//! The main job: builds sample flares for wasm32 on flare-arena and on the default allocator,
//! drives each through a real wasm runtime (wasmtime) on one reused instance, and prints what the
//! arena did next to the default allocator: the realistic flare (tests/guests/flare), and a flare
//! that keeps the last 64 request URLs in a `static` (tests/guests/stateful, `lru`); then a WASI
//! component (tests/guests/component, `wasm32-wasip2`) called through wasmtime's component API,
//! on flare-arena and on std's default allocator there.
//!
//!     cargo run --release --example demo -- --help

use flare_arena_testkit::component::{self, Orders};
use flare_arena_testkit::guests::{self, ALLOCATORS};
use flare_arena_testkit::host::{self, Flare, PAGE, Request};
use std::time::Instant;

const HELP: &str = "\
flare-arena demo: sample flares, built for wasm32 on different allocators, run in wasmtime.

USAGE: cargo run --release --example demo -- [OPTIONS]

OPTIONS:
  -n, --invocations N    invocations per flare and allocator (default 100000)
      --items K          order lines per request body of the realistic flare (default 8)
      --allocators LIST  comma-separated, from: arena, dlmalloc, talc, lol-free, lol-leak
                         (default arena,dlmalloc; dlmalloc is Rust's default wasm allocator)
  -h, --help             this text

Two flares: the realistic one (headers, a JSON order, KV and JWT host calls, a JSON answer) and
one that keeps the last 64 request URLs in a static VecDeque (state that outlives every
request); then a WASI component (wasm32-wasip2) whose arguments, a string and a list of records,
arrive through cabi_realloc before its export resets, on flare-arena and on std's default. Each allocator gets one instance per flare, reused for every invocation, as an edge
host does. The tables show the median time of one call, linear memory at the start, after 1,000
invocations and at the end, and the arena's own counters: its peak, the blocks still live, the
lines (256 B) they hold, the lines the arena freed and handed out again (reuse at work), and
the bytes it reclaimed over the run (freed, and host buffers expired).";

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
    let known: Vec<&str> = ALLOCATORS.iter().map(|(feature, _)| *feature).collect();
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

/// One of the flares the demo runs: its guest package, its requests, how to set its host up.
struct Sample {
    title: &'static str,
    package: &'static str,
    request: fn(u64, usize) -> Request,
    seed_kv: &'static [(&'static str, &'static [u8])],
}

const SAMPLES: [Sample; 2] = [
    Sample {
        title: "realistic flare (tests/guests/flare)",
        package: "flare",
        request: |id, items| host::order_request(id % 1000, items),
        seed_kv: &[("tier:cust-0", b"gold")],
    },
    Sample {
        title: "stateful flare: the last 64 URLs in a static VecDeque (tests/guests/stateful, lru)",
        package: "stateful",
        request: |id, _| host::stateful_request("lru", id),
        seed_kv: &[],
    },
];

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

fn run(
    sample: &Sample,
    allocator: &str,
    options: &Options,
    engine: &wasmtime::Engine,
) -> Result<Row, String> {
    eprintln!(
        "[{} on {allocator}] building for wasm32 ...",
        sample.package
    );
    let wasm = guests::try_build(sample.package, allocator, "release")?;
    let module = host::load(engine, &wasm).map_err(|e| e.to_string())?;
    let mut flare = Flare::new(engine, &module).map_err(|e| e.to_string())?;
    for (key, value) in sample.seed_kv {
        flare.kv_set(key, value);
    }
    let start_pages = flare.memory_pages();
    let mut after_1000 = start_pages;
    let mut times = Vec::with_capacity(options.invocations as usize);
    let step = (options.invocations / 5).max(1);
    for id in 0..options.invocations {
        let request = (sample.request)(id, options.items);
        let started = Instant::now();
        let (_, response) = flare
            .handle(&request)
            .map_err(|e| format!("invocation {id}: {e:?}"))?;
        times.push(started.elapsed().as_nanos() as u64);
        if response.status != 200 {
            return Err(format!(
                "invocation {id} answered {}: {}",
                response.status,
                response.text()
            ));
        }
        if id + 1 == 1000 {
            after_1000 = flare.memory_pages();
        }
        if (id + 1) % step == 0 {
            eprintln!(
                "[{} on {allocator}] {:>3}%",
                sample.package,
                (id + 1) * 100 / options.invocations
            );
        }
    }
    times.sort_unstable();
    let quantile = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    Ok(Row {
        allocator: guests::allocator_name(allocator).into(),
        wasm_bytes: guests::size(&wasm),
        median_ns: quantile(0.5),
        p99_ns: quantile(0.99),
        pages: (start_pages, after_1000, flare.memory_pages()),
        arena: flare.arena_stats(),
        host_allocs: flare.calls().alloc,
        imports: flare.calls().total_imports(),
    })
}

fn print_table(sample: &Sample, rows: &[Row], options: &Options) {
    println!(
        "\n{}: {} invocations on one wasmtime instance each\n",
        sample.title, options.invocations
    );
    println!(
        "| allocator | .wasm bytes | median ns | p99 ns | pages at start | after 1,000 | at end | arena peak | live blocks | live lines | lines recycled | bytes reclaimed |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let na = || "n/a".to_string();
        let (peak, live, lines, recycled, reclaimed) = match r.arena {
            Some(s) => (
                format!("{} B", s.peak),
                s.live_blocks.to_string(),
                s.live_lines.to_string(),
                s.lines_recycled.to_string(),
                format!("{} B", s.bytes_reclaimed),
            ),
            None => (na(), na(), na(), na(), na()),
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {peak} | {live} | {lines} | {recycled} | {reclaimed} |",
            r.allocator, r.wasm_bytes, r.median_ns, r.p99_ns, r.pages.0, r.pages.1, r.pages.2
        );
    }
    for r in rows {
        println!(
            "{}: the host called `alloc` {} times from inside {} import calls ({:.1} per invocation); {} KiB of linear memory at the end",
            r.allocator,
            r.host_allocs,
            r.imports,
            r.imports as f64 / options.invocations as f64,
            r.pages.2 * PAGE / 1024
        );
    }
    if let (Some(arena), Some(other)) = (
        rows.iter().find(|r| r.arena.is_some()),
        rows.iter().find(|r| r.arena.is_none()),
    ) {
        let grew = |r: &Row| match r.pages.2 - r.pages.1 {
            0 => "flat after 1,000".to_string(),
            n => format!("+{n} pages after 1,000"),
        };
        println!(
            "flare-arena vs {}: {:.2}x the median time per invocation; {} pages at the end ({}) vs {} ({}).",
            other.allocator,
            arena.median_ns as f64 / other.median_ns.max(1) as f64,
            arena.pages.2,
            grew(arena),
            other.pages.2,
            grew(other),
        );
    }
}

/// The WASI component on `feature` (`arena` or `system`): (name, .wasm bytes, median ns, p99 ns,
/// pages at start / after 1,000 / at end, the arena's live blocks).
type ComponentRow = (
    &'static str,
    u64,
    u64,
    u64,
    (usize, usize, usize),
    Option<u64>,
);

fn run_component(
    feature: &str,
    options: &Options,
    engine: &wasmtime::Engine,
) -> Result<ComponentRow, String> {
    let name = if feature == "arena" {
        "flare-arena"
    } else {
        "std default (wasi-libc dlmalloc)"
    };
    eprintln!("[component on {name}] building for wasm32-wasip2 ...");
    let wasm = guests::build_for("wasm32-wasip2", "component", feature, "release")?;
    let compiled = component::load(engine, &wasm).map_err(|e| e.to_string())?;
    let mut orders = Orders::new(engine, &compiled, &[]).map_err(|e| e.to_string())?;
    let start_pages = orders.memory_pages();
    let mut after_1000 = start_pages;
    let mut times = Vec::with_capacity(options.invocations as usize);
    for id in 0..options.invocations {
        let (customer, items) = component::order(id % 1000, 12);
        let started = Instant::now();
        let receipt = orders
            .summarize(&customer, &items)
            .map_err(|e| format!("call {id}: {e:?}"))?;
        times.push(started.elapsed().as_nanos() as u64);
        if receipt != component::receipt(&customer, &items) {
            return Err(format!("call {id} answered {receipt}"));
        }
        if id + 1 == 1000 {
            after_1000 = orders.memory_pages();
        }
    }
    times.sort_unstable();
    let quantile = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    let live = orders
        .arena_stats()
        .map_err(|e| e.to_string())?
        .get(2)
        .copied();
    Ok((
        name,
        guests::size(&wasm),
        quantile(0.5),
        quantile(0.99),
        (start_pages, after_1000, orders.memory_pages()),
        live,
    ))
}

fn print_components(rows: &[ComponentRow], options: &Options) {
    println!(
        "\nWASI component (tests/guests/component, wasm32-wasip2): {} calls of `summarize` on one instance each, every receipt checked\n",
        options.invocations
    );
    println!(
        "| allocator | .wasm bytes | median ns | p99 ns | pages at start | after 1,000 | at end | live blocks |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, bytes, median, p99, (start, after, end), live) in rows {
        let live = live.map_or("n/a".to_string(), |n| n.to_string());
        println!("| {name} | {bytes} | {median} | {p99} | {start} | {after} | {end} | {live} |");
    }
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
    let mut tables = Vec::new();
    for sample in &SAMPLES {
        let mut rows = Vec::new();
        for allocator in &options.allocators {
            match run(sample, allocator, &options, &engine) {
                Ok(row) => rows.push(row),
                Err(error) => {
                    eprintln!("demo: {error}");
                    std::process::exit(1);
                }
            }
        }
        tables.push(rows);
    }
    let mut components = Vec::new();
    for feature in ["arena", "system"] {
        match run_component(feature, &options, &engine) {
            Ok(row) => components.push(row),
            Err(error) => {
                eprintln!("demo: {error}");
                std::process::exit(1);
            }
        }
    }
    for (sample, rows) in SAMPLES.iter().zip(&tables) {
        print_table(sample, rows, &options);
    }
    print_components(&components, &options);
    println!(
        "\n(Timings from one run on this machine; the criterion benches give the careful numbers.)"
    );
}
