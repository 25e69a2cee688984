//! flare-arena inside a real wasm runtime: guest flares compiled to wasm32-unknown-unknown, hosted
//! on wasmtime through the `flaron/v1` contract (tests/support/host.rs), one instance reused
//! across invocations as in production. The guests are built by the tests themselves.

use flare_arena_testkit::flares::{engine, instance, probe};
use flare_arena_testkit::guests;
use flare_arena_testkit::host::{self, Flare, PAGE, Request};

#[test]
fn alloc_export_honours_the_contract_seen_from_the_host() {
    let mut flare = instance("probe", "arena");
    assert_eq!(probe(&mut flare, "hello"), "hello"); // the host calls alloc only inside invocations
    for bad in [0, -1, -4096, i32::MIN, i32::MAX, 1 << 30] {
        assert_eq!(flare.alloc(bad).unwrap(), 0, "alloc({bad}) must be 0");
    }
    let mut spans = Vec::new();
    for size in (1..300).step_by(7) {
        let ptr = flare.alloc(size).unwrap();
        assert_ne!(ptr, 0);
        assert_eq!(ptr % 8, 0, "8-aligned");
        assert!(
            ptr as usize + size as usize <= flare.memory_bytes(),
            "inside memory"
        );
        flare.write(ptr, &vec![size as u8; size as usize]).unwrap();
        spans.push((ptr as usize, size as usize));
    }
    for &(ptr, size) in &spans {
        assert!(
            flare
                .read(ptr as i32, size)
                .iter()
                .all(|&b| b == size as u8),
            "host buffers stay intact"
        );
    }
    spans.sort_unstable();
    assert!(
        spans.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0),
        "disjoint"
    );
    let stats = flare.arena_stats().unwrap();
    assert_eq!(stats.live_blocks, 0, "host buffers are not counted as live");
    assert!(stats.failed >= 2, "refusals are counted: {stats:?}");
}

#[test]
fn exhaustion_returns_zero_and_the_next_invocation_works_again() {
    let mut flare = instance("probe", "arena-small"); // 1 MiB maximum
    assert_eq!(probe(&mut flare, "hello"), "hello");
    let mut granted = 0;
    while flare.alloc(64 << 10).unwrap() != 0 {
        granted += 1;
        assert!(
            granted <= 16,
            "a 1 MiB arena cannot hand out more than 16 x 64 KiB"
        );
    }
    assert!(
        granted >= 12,
        "most of the 1 MiB was usable, got {granted} x 64 KiB"
    );
    assert_eq!(flare.alloc(64 << 10).unwrap(), 0);
    // The host would now fail its import call; the next invocation starts from a reset arena.
    assert_eq!(probe(&mut flare, "hello"), "hello");
    assert_ne!(flare.alloc(64 << 10).unwrap(), 0);
    let pages = flare.memory_pages();
    for _ in 0..100 {
        assert_eq!(probe(&mut flare, "hello"), "hello");
        while flare.alloc(64 << 10).unwrap() != 0 {}
    }
    assert_eq!(
        flare.memory_pages(),
        pages,
        "exhausting it over and over does not grow memory"
    );
}

#[test]
fn a_host_memory_limit_below_the_arenas_maximum_is_used_to_its_last_page() {
    // An edge host caps each instance's memory, often below the arena's maximum (256 MiB): the
    // arena grows a few pages and a thirty-second of its size at a time, but near the cap it
    // takes what is missing, so requests are refused only when the cap itself is reached.
    // (Several caps: a growth step may happen to end right at one of them.)
    for extra_pages in [100, 197, 198, 199, 200, 201, 202, 203] {
        let mut flare = instance("probe", "arena");
        assert_eq!(probe(&mut flare, "hello"), "hello");
        let cap_pages = flare.memory_pages() as usize + extra_pages;
        flare.cap_memory(cap_pages << 16);
        let mut granted = 0;
        while flare.alloc(16 << 10).unwrap() != 0 {
            granted += 1;
        }
        assert_eq!(
            flare.memory_pages() as usize,
            cap_pages,
            "grew to the cap ({granted} buffers of 16 KiB)"
        );
        let stats = flare.arena_stats().unwrap();
        assert!(stats.failed >= 1, "{stats:?}");
        assert_eq!(
            probe(&mut flare, "hello"),
            "hello",
            "the next invocation works"
        );
    }
}

#[test]
fn host_buffers_and_guest_allocations_share_one_region() {
    let mut flare = instance("probe", "arena");
    let answer = probe(&mut flare, "interleave");
    let addrs: Vec<usize> = answer.split(' ').map(|a| a.parse().unwrap()).collect();
    let [host1, guest1, host2, guest2] = addrs[..] else {
        panic!("{answer}")
    };
    assert!(
        host1 < guest1 && guest1 < host2 && host2 < guest2,
        "interleaved: {answer}"
    );
    assert!(
        guest2 - host1 < 4096,
        "one region, bumped in order: {answer}"
    );
    // And a second invocation reuses the same addresses.
    assert_eq!(probe(&mut flare, "interleave"), answer);
}

#[test]
fn a_hundred_thousand_invocations_stay_correct_and_flat() {
    const N: u64 = 100_000;
    let mut report = Vec::new();
    for feature in ["arena", "dlmalloc"] {
        let mut flare = instance("flare", feature);
        flare.kv_set("tier:cust-0", b"gold");
        let start_pages = flare.memory_pages();
        let mut pages_at_100 = 0;
        let mut peak_at_100 = 0;
        for id in 0..N {
            let items = 1 + (id % 8) as usize;
            let (action, response) = flare.handle(&host::order_request(id, items)).unwrap();
            assert_eq!(
                (action, response.status),
                (1 << 32, 200),
                "invocation {id}: {}",
                response.text()
            );
            let (total, units) = host::expected_total(id, items);
            let body = response.text();
            assert!(
                body.contains(&format!("\"total_cents\":{total},")),
                "invocation {id}: {body}"
            );
            assert!(
                body.contains(&format!("\"units\":{units},")),
                "invocation {id}: {body}"
            );
            assert!(
                body.contains(&format!("\"request_id\":\"req-{id:08}\"")),
                "invocation {id}: {body}"
            );
            assert_eq!(
                response.header("x-request-id"),
                Some(format!("req-{id:08}").as_str())
            );
            if id == 99 {
                pages_at_100 = flare.memory_pages();
                peak_at_100 = flare.arena_stats().map_or(0, |s| s.peak);
            }
            if feature == "arena" && id >= 100 && id % 1000 == 0 {
                assert_eq!(
                    flare.memory_pages(),
                    pages_at_100,
                    "memory grew at invocation {id}"
                );
                let stats = flare.arena_stats().unwrap();
                // Stable: it may rise only by a line or so as longer numbers take more bytes (visit
                // counts gain digits over the run), never with the number of invocations.
                assert!(
                    stats.peak <= peak_at_100 + 256,
                    "the peak grew at invocation {id}: {stats:?}"
                );
            }
        }
        let visits = flare.kv_get("visits:cust-3").unwrap();
        assert_eq!(
            visits,
            (N / 10).to_string().as_bytes(),
            "KV round trips through the arena"
        );
        let end_pages = flare.memory_pages();
        let stats = flare.arena_stats();
        if feature == "arena" {
            assert_eq!(
                end_pages, pages_at_100,
                "linear memory never grew after invocation 100"
            );
            let stats = stats.unwrap();
            assert_eq!(stats.resets as u64, N);
            assert_eq!(
                stats.live_blocks, 0,
                "nothing outlives an invocation in this flare"
            );
            assert!(stats.peak <= peak_at_100 + 256, "{stats:?}");
            // What every invocation freed, and its host buffers, were reclaimed: over the run, far
            // more than the arena ever held at once (about 1 KB per invocation, against a peak of
            // 17 KB).
            assert!(
                stats.bytes_reclaimed > 1000 * stats.peak,
                "memory is reclaimed invocation after invocation: {stats:?}"
            );
            assert_eq!(flare.calls().alloc_violations, 0);
        }
        report.push(format!(
            "{feature:>9}: {N} invocations, pages {start_pages} -> {pages_at_100} (after 100) -> {end_pages}, \
             {} KiB of linear memory, {} alloc calls by the host, arena {stats:?}",
            end_pages * PAGE / 1024,
            flare.calls().alloc
        ));
    }
    println!("{}", report.join("\n"));
}

#[test]
fn a_lazily_filled_static_survives_ten_thousand_resets() {
    let mut flare = instance("probe", "arena");
    let first = probe(&mut flare, "cache");
    let [state, ptr, _] = first.split(' ').collect::<Vec<_>>()[..] else {
        panic!("{first}")
    };
    assert_eq!(state, "intact");
    let pages = flare.memory_pages();
    for i in 0..10_000 {
        let answer = probe(&mut flare, "cache");
        assert_eq!(answer, format!("intact {ptr} 50"), "invocation {i}");
    }
    let stats = flare.arena_stats().unwrap();
    assert_eq!(
        stats.live_blocks, 1,
        "the cache's Vec is the one live block: {stats:?}"
    );
    assert!(
        stats.live_lines <= 4096 / 256 + 1,
        "and it holds its own lines only: {stats:?}"
    );
    assert_eq!(flare.memory_pages(), pages, "memory stayed flat");
}

#[test]
fn a_body_of_several_mebibytes_is_handled_and_its_memory_reused() {
    let mut flare = instance("probe", "arena");
    let body: Vec<u8> = (0..6 << 20)
        .map(|i| b"abcdefghijklmnopqrstuvwxyz 0123456789\n"[i % 38])
        .collect();
    let upper: Vec<u8> = body.iter().map(u8::to_ascii_uppercase).collect();
    let sum = upper
        .iter()
        .fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
    let request = Request::new("POST", "https://probe.example/upload")
        .header("x-probe", "big")
        .body(body);
    let (_, response) = flare.handle(&request).unwrap();
    assert_eq!(response.text(), format!("{} {sum}", 6 << 20));
    let pages = flare.memory_pages();
    assert!(
        pages * PAGE > 12 << 20,
        "the region grew past the seed's 256 KiB to hold body and copy"
    );
    // The first big request grew the region to fit it exactly; the next one is placed in holes
    // that a small request left cut short (a hole runs 16 KiB past the request that opened it),
    // and may need one more growth step (4 pages and a thirty-second of the region). From then on
    // nothing grows.
    let big_request = |flare: &mut _| {
        assert_eq!(probe(flare, "hello"), "hello");
        let (_, response) = Flare::handle(flare, &request).unwrap();
        assert_eq!(response.text(), format!("{} {sum}", 6 << 20));
    };
    big_request(&mut flare);
    let settled = flare.memory_pages();
    assert!(
        settled <= pages + 4 + pages / 32,
        "the second big request grows one step at most: {pages} -> {settled} pages"
    );
    for _ in 0..20 {
        big_request(&mut flare);
    }
    assert_eq!(
        flare.memory_pages(),
        settled,
        "later big requests reuse the same memory"
    );
    let stats = flare.arena_stats().unwrap();
    assert_eq!((stats.live_blocks, stats.live_lines), (0, 0));
}

/// 200 host buffers of 16 KiB (3.2 MiB in all), none of them refused and none overlapping
/// `foreign`, someone else's pages.
fn host_buffers_avoid(flare: &mut Flare, foreign: std::ops::Range<usize>) {
    for _ in 0..200 {
        let ptr = flare.alloc(16 << 10).unwrap();
        assert_ne!(ptr, 0, "host buffers of 16 KiB, 3.2 MiB in all");
        let start = ptr as u32 as usize;
        assert!(
            start + (16 << 10) <= foreign.start || start >= foreign.end,
            "a host buffer at {start:#x} overlaps the pages at {foreign:#x?}"
        );
    }
}

#[test]
fn memory_grown_behind_the_arenas_back_is_stepped_over_and_never_touched() {
    let mut flare = instance("probe", "arena");
    assert_eq!(probe(&mut flare, "hello"), "hello");
    let foreign: usize = probe(&mut flare, "foreign")
        .parse()
        .expect("the page address");
    let foreign_range = foreign..foreign + 65536;
    let pages = flare.memory_pages();
    // The arena grows past the foreign page (someone else's, as libc's malloc would take on
    // WASI) and never hands out a byte of it.
    host_buffers_avoid(&mut flare, foreign_range);
    assert!(
        flare.read(foreign as i32, 65536).iter().all(|&b| b == 0xF0),
        "the foreign page was written"
    );
    assert!(
        flare.memory_pages() > pages + 40,
        "the arena grew memory past the foreign page"
    );
    assert_eq!(flare.arena_stats().unwrap().failed, 0);
    // Invocations still work within the memory the arena has.
    for _ in 0..100 {
        assert_eq!(probe(&mut flare, "interleave").split(' ').count(), 4);
    }
    assert!(flare.read(foreign as i32, 65536).iter().all(|&b| b == 0xF0));
}

#[test]
fn memory_grown_before_the_first_allocation_is_never_claimed() {
    // The arena claims the initial memory's free space (from `__heap_base` to `__heap_end`), not
    // whatever the memory has grown to by its first allocation.
    let mut flare = instance("probe", "arena");
    let grow_first = flare
        .export("grow_first")
        .expect("the probe's grow_first export");
    let foreign = flare.call(&grow_first, 2).unwrap();
    assert!(foreign > 0, "grown");
    let foreign = foreign as usize;
    let foreign_range = foreign..foreign + (2 << 16);
    host_buffers_avoid(&mut flare, foreign_range);
    for _ in 0..100 {
        assert_eq!(probe(&mut flare, "interleave").split(' ').count(), 4);
    }
    assert!(
        flare
            .read(foreign as i32, 2 << 16)
            .iter()
            .all(|&b| b == 0xF1),
        "the pages grown before the arena started were written"
    );
}

#[test]
fn a_trap_in_a_handler_leaves_the_host_able_to_start_a_fresh_instance() {
    let mut flare = instance("probe", "arena");
    assert_eq!(probe(&mut flare, "hello"), "hello");
    let request = Request::new("GET", "https://probe.example/").header("x-probe", "trap");
    let error = flare.handle(&request).expect_err("a panic traps");
    assert!(format!("{error:?}").contains("unreachable"), "{error:?}");
    let mut fresh = instance("probe", "arena");
    assert_eq!(probe(&mut fresh, "hello"), "hello");
    assert_eq!(probe(&mut fresh, "interleave").split(' ').count(), 4);
}

#[test]
fn websocket_exports_reset_the_arena_the_same_way() {
    let mut flare = instance("probe", "arena");
    assert_eq!(flare.ws(0, b"").unwrap(), vec![b"open".to_vec()]);
    let resets = flare.arena_stats().unwrap().resets;
    let mut peak = 0;
    for i in 0..1000 {
        let message = format!("message number {i}");
        let sent = flare.ws(1, message.as_bytes()).unwrap();
        let expected: Vec<u8> = message.bytes().rev().collect();
        assert_eq!(sent, vec![expected]);
        let stats = flare.arena_stats().unwrap();
        if i == 10 {
            peak = stats.peak;
        }
        if i > 10 {
            assert_eq!(stats.peak, peak, "message {i}");
        }
    }
    flare.ws(2, b"").unwrap();
    let stats = flare.arena_stats().unwrap();
    assert_eq!(stats.resets, resets + 1001, "every event reset first");
    // The realistic flare's WebSocket exports too.
    let mut flare = instance("flare", "arena");
    assert_eq!(flare.ws(0, b"").unwrap(), vec![b"welcome".to_vec()]);
    assert_eq!(flare.ws(1, b"ping").unwrap(), vec![b"PING".to_vec()]);
    flare.ws(2, b"").unwrap();
    assert_eq!(flare.logs(), ["closed"]);
    assert_eq!(flare.arena_stats().unwrap().resets, 3);
}

/// Builds `examples/minimal_flare.rs` (a `no_std` flare) for `target`; the `.wasm`'s path.
fn build_minimal_example(target: &str) -> std::path::PathBuf {
    guests::build_example(target, "minimal_flare").unwrap_or_else(|e| panic!("{e}"))
}

fn run_minimal_example(engine: &wasmtime::Engine, path: &std::path::Path) {
    let module = host::load(engine, path).unwrap();
    let exports: Vec<String> = module.exports().map(|e| e.name().to_string()).collect();
    assert!(
        exports.iter().any(|e| e == "alloc"),
        "export_alloc! emitted `alloc`: {exports:?}"
    );
    let mut flare = Flare::new(engine, &module).unwrap();
    for _ in 0..1000 {
        let (action, _) = flare.handle(&Request::new("GET", "/")).unwrap();
        assert_eq!(action, 1 << 32);
    }
    let ptr = flare.alloc(16).unwrap();
    assert!(ptr != 0 && ptr % 8 == 0);
    assert_eq!(
        flare.memory_pages(),
        17,
        "the example's 16 pages of stack and data, and one of arena"
    );
}

#[test]
fn the_minimal_example_flare_exports_alloc_and_answers() {
    run_minimal_example(engine(), &build_minimal_example(guests::TARGET));
}

/// `wasm32v1-none` is WebAssembly 1.0 (no bulk memory, no sign extension, no reference types):
/// the same example, built there, runs on an engine that refuses every later proposal, so
/// nothing in the arena lowers to an instruction such an engine lacks.
#[test]
fn the_minimal_example_runs_on_webassembly_1_0() {
    use wasmtime::WasmFeatures as F;
    let mut config = wasmtime::Config::new();
    let later = F::BULK_MEMORY
        | F::REFERENCE_TYPES
        | F::MULTI_VALUE
        | F::SIGN_EXTENSION
        | F::SATURATING_FLOAT_TO_INT
        | F::SIMD
        | F::RELAXED_SIMD
        | F::MULTI_MEMORY
        | F::EXTENDED_CONST;
    config.wasm_features(later, false);
    let engine = wasmtime::Engine::new(&config).unwrap();
    let path = build_minimal_example("wasm32v1-none");
    run_minimal_example(&engine, &path);
    // The engine does refuse later instructions, so the run above is not vacuous.
    let bulk = wat_module_using_memory_fill();
    assert!(
        wasmtime::Module::new(&engine, bulk).is_err(),
        "bulk memory is off"
    );
}

fn wat_module_using_memory_fill() -> &'static [u8] {
    // (module (memory 1) (func i32.const 0 i32.const 0 i32.const 8 memory.fill))
    &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: () -> ()
        0x03, 0x02, 0x01, 0x00, // function section
        0x05, 0x03, 0x01, 0x00, 0x01, // memory section: min 1
        0x0a, 0x0f, 0x01, 0x0d, 0x00, // code section: one body of 13 bytes, no locals
        0x41, 0x00, 0x41, 0x00, 0x41, 0x08, // i32.const 0, 0, 8
        0xfc, 0x0b, 0x00, // memory.fill 0
        0x0b, // end
    ]
}
