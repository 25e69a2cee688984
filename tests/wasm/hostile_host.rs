//! A hostile host, from the wasm side: guest flares compiled to wasm32 on wasmtime, driven by a
//! host that calls `alloc` with every edge value, floods it thousands of times inside one import
//! until it is refused, calls it before any export has run, and calls the exports in orders no
//! sane host would. Nothing traps, nothing corrupts, every refusal is a 0, and the next ordinary
//! request works.

use flare_arena_testkit::flares::{instance, probe};
use flare_arena_testkit::host::{Flare, order_request};
use flare_arena_testkit::model::{Choices, Rng};

/// The contract's edge sizes, which must always be answered 0.
const EDGES: [i32; 5] = [0, -1, -4096, i32::MIN, i32::MAX];

/// The largest host buffer `alloc` grants right after a `hello` request: found by bisection, each
/// try after the same request again (the guest is deterministic, so the state is the same).
fn largest_after_hello(flare: &mut Flare) -> i32 {
    let (mut fits, mut too_big) = (0i32, i32::MAX);
    while too_big - fits > 1 {
        let size = fits + (too_big - fits) / 2;
        assert_eq!(probe(flare, "hello"), "hello");
        if flare.alloc(size).unwrap() != 0 {
            fits = size;
        } else {
            too_big = size;
        }
    }
    assert_eq!(probe(flare, "hello"), "hello");
    fits
}

/// The memory the probe guest answers from stays the same over many ordinary requests.
fn assert_ordinary_requests_work(flare: &mut Flare) {
    assert_eq!(probe(flare, "hello"), "hello");
    assert_eq!(probe(flare, "canary"), "intact, method GET");
    let pages = flare.memory_pages();
    let answer = probe(flare, "interleave");
    for _ in 0..200 {
        assert_eq!(
            probe(flare, "interleave"),
            answer,
            "every request reuses the same bytes"
        );
    }
    assert_eq!(flare.memory_pages(), pages);
}

#[test]
fn alloc_at_every_edge_and_just_above_what_is_left() {
    let mut flare = instance("probe", "arena-small"); // 1 MiB maximum
    let left = largest_after_hello(&mut flare);
    assert!(
        left > 1_000_000 - 4096,
        "nearly all of the 1 MiB is left: {left}"
    );
    let failed = flare.arena_stats().unwrap().failed;
    for size in EDGES {
        assert_eq!(flare.alloc(size).unwrap(), 0, "alloc({size})");
    }
    let pages = flare.memory_pages();
    assert_eq!(flare.alloc(left + 1).unwrap(), 0, "one byte too many");
    assert_eq!(flare.memory_pages(), pages, "a refusal grows nothing");
    assert_eq!(
        flare.arena_stats().unwrap().failed,
        failed + EDGES.len() as i64 + 1
    );

    // Exactly what is left is granted, and every byte of it is writable.
    let all = flare.alloc(left).unwrap();
    assert!(all != 0 && all % 8 == 0, "alloc({left}) = {all}");
    let end = all as u32 as usize + left as usize;
    assert!(end <= flare.memory_bytes());
    flare.write(all, &[0xA5; 16]).unwrap();
    flare.write((end - 16) as i32, &[0xA5; 16]).unwrap();
    assert_eq!(flare.alloc(1).unwrap(), 0, "nothing left");
    assert_eq!(flare.alloc(8).unwrap(), 0);

    // The default arena (256 MiB) refuses one byte past its maximum without growing memory.
    let mut big = instance("probe", "arena");
    let limit = big.arena_stats().unwrap().limit;
    assert_eq!(probe(&mut big, "hello"), "hello");
    let pages = big.memory_pages();
    assert_eq!(big.alloc(i32::try_from(limit).unwrap() + 1).unwrap(), 0);
    assert_eq!(big.memory_pages(), pages);

    assert_ordinary_requests_work(&mut flare);
    assert_ordinary_requests_work(&mut big);
}

#[test]
fn a_host_flooding_alloc_inside_one_import_gets_zero_and_breaks_nothing() {
    let mut flare = instance("probe", "arena-small");
    assert_eq!(probe(&mut flare, "canary"), "intact, method GET");
    for size in [1, 24, 1000, 65536] {
        flare.flood_next("req_method", size);
        // The guest's own blocks survive; the method comes through if the few bytes the flood left
        // hold it, and is "none" (the import failed cleanly) if not.
        let answer = probe(&mut flare, "canary");
        assert!(
            ["intact, method refused", "intact, method GET"].contains(&answer.as_str()),
            "size {size}: {answer}"
        );
        if size == 1 {
            assert_eq!(
                answer, "intact, method refused",
                "8-byte floods leave nothing"
            );
        }
        let report = flare.take_flood_report().expect("the host flooded");
        assert!(
            report.violations.is_empty(),
            "size {size}: {:?}",
            report.violations
        );
        let rounded = (size as u64).div_ceil(8) * 8;
        let expected = (1 << 20) / rounded;
        assert!(
            report.granted + 2 >= expected * 9 / 10 && report.granted <= expected,
            "size {size}: {} granted, about {expected} fit in 1 MiB",
            report.granted
        );
        if size == 24 {
            assert!(report.granted > 10_000, "thousands of calls in one import");
        }
        assert_ordinary_requests_work(&mut flare);
    }
    assert_eq!(flare.calls().alloc_violations, 0);
}

#[test]
fn alloc_before_any_export_has_run() {
    let mut flare = instance("probe", "arena-small");
    for size in EDGES {
        assert_eq!(
            flare.alloc(size).unwrap(),
            0,
            "alloc({size}) on a fresh instance"
        );
    }
    // The host takes every byte before the first export runs (ABI.md says it never does).
    let first = flare.alloc(100).unwrap();
    assert!(first != 0 && first % 8 == 0);
    flare.write(first, &[0x77; 100]).unwrap();
    let mut granted = 1;
    while flare.alloc(4096).unwrap() != 0 {
        granted += 1;
    }
    assert!(granted > 200, "{granted} buffers of 4 KiB in 1 MiB");
    assert_eq!(flare.read(first, 100), vec![0x77; 100]);
    // The first export reclaims all of it: nothing the guest holds is in there.
    assert_ordinary_requests_work(&mut flare);
    let stats = flare.arena_stats().unwrap();
    assert_eq!(stats.live_blocks, 0, "init kept nothing: {stats:?}");
    // And a lazily filled static still works after that.
    assert!(probe(&mut flare, "cache").starts_with("intact"));
    assert!(probe(&mut flare, "cache").starts_with("intact"));
}

#[test]
fn exports_called_in_odd_orders_never_trap() {
    let mut flare = instance("probe", "arena");
    assert_eq!(
        flare.ws(2, b"").unwrap(),
        Vec::<Vec<u8>>::new(),
        "ws_close before ws_open"
    );
    assert_eq!(
        flare.ws(1, b"abc").unwrap(),
        vec![b"cba".to_vec()],
        "ws_message before ws_open"
    );
    assert_eq!(flare.ws(0, b"").unwrap(), vec![b"open".to_vec()]);
    assert_eq!(
        flare.ws(0, b"").unwrap(),
        vec![b"open".to_vec()],
        "ws_open twice"
    );
    flare.ws(2, b"").unwrap();
    flare.ws(2, b"").unwrap();
    assert_eq!(
        flare.ws(1, b"xy").unwrap(),
        vec![b"yx".to_vec()],
        "ws_message after ws_close"
    );
    assert_ordinary_requests_work(&mut flare);
    assert_eq!(
        flare.ws(1, b"z").unwrap(),
        vec![b"z".to_vec()],
        "a message between requests"
    );
    let stats = flare.arena_stats().unwrap();
    assert_eq!((stats.live_blocks, stats.live_lines), (0, 0), "{stats:?}");

    // The realistic flare, too: WebSocket events around HTTP requests in any order.
    let mut flare = instance("flare", "arena");
    flare.kv_set("tier:cust-0", b"gold");
    assert!(flare.ws(2, b"").unwrap().is_empty());
    assert_eq!(flare.ws(1, b"ping").unwrap(), vec![b"PING".to_vec()]);
    let (action, response) = flare.handle(&order_request(1, 3)).unwrap();
    assert_eq!((action >> 32, response.status), (1, 200));
    assert_eq!(flare.ws(1, b"pong").unwrap(), vec![b"PONG".to_vec()]);
    flare.ws(2, b"").unwrap();
    assert_eq!(flare.ws(0, b"").unwrap(), vec![b"welcome".to_vec()]);
    let (_, again) = flare.handle(&order_request(1, 3)).unwrap();
    assert_eq!(again.status, 200);
    let expected = response.text().replace(r#""visits":1"#, r#""visits":2"#);
    assert_eq!(again.text(), expected, "the same answer, one visit later");
    assert_eq!(flare.logs(), ["closed", "closed"]);
}

/// A host whose every move is random: `alloc` of any size between exports (writing what it gets),
/// floods inside imports, requests in every probe mode, WebSocket events in any order. Before each
/// export the host buffers it still holds must read back intact (they expire at that export's
/// reset); every answer must be right; memory never grows past the arena's maximum.
#[test]
fn a_random_hostile_host_never_breaks_the_guest() {
    let mut flare = instance("probe", "arena-small");
    let mut rng = Rng(0x2545_F491_4F6C_DD1D);
    let mut next = move |n: u64| rng.below(n);
    let mut held: Vec<(i32, Vec<u8>)> = Vec::new();
    let max_pages = flare.memory_pages() + (1 << 20) / 65536 + 1;
    for step in 0..3000 {
        match next(10) {
            0..=4 => {
                let size = match next(8) {
                    0 => EDGES[next(EDGES.len() as u64) as usize],
                    1 => {
                        // About what is left at the top of the region.
                        let stats = flare.arena_stats().unwrap();
                        let left = i32::try_from(stats.limit - stats.peak).unwrap();
                        left.saturating_add(next(3) as i32 - 1)
                    }
                    2 => next(1 << 17) as i32,
                    _ => 1 + next(200) as i32,
                };
                let ptr = flare.alloc(size).unwrap();
                if ptr == 0 {
                    continue;
                }
                assert!(
                    size > 0 && ptr % 8 == 0,
                    "step {step}: alloc({size}) = {ptr}"
                );
                let content: Vec<u8> = (0..size.min(4096)).map(|_| next(256) as u8).collect();
                flare.write(ptr, &content).unwrap();
                held.push((ptr, content));
            }
            kind => {
                for (ptr, content) in held.drain(..) {
                    assert_eq!(
                        flare.read(ptr, content.len()),
                        content,
                        "step {step}: host buffer"
                    );
                }
                match kind {
                    5 => {
                        flare.flood_next("req_method", 1 + next(3000) as i32);
                        let answer = probe(&mut flare, "canary");
                        assert!(
                            answer.starts_with("intact, method"),
                            "step {step}: {answer}"
                        );
                        let report = flare.take_flood_report().unwrap();
                        assert!(
                            report.violations.is_empty(),
                            "step {step}: {:?}",
                            report.violations
                        );
                    }
                    6 => assert_eq!(probe(&mut flare, "canary"), "intact, method GET"),
                    7 => assert_eq!(probe(&mut flare, "interleave").split(' ').count(), 4),
                    8 => assert!(probe(&mut flare, "cache").starts_with("intact")),
                    _ => {
                        let event = next(3) as usize;
                        let sent = flare.ws(event, b"hostile").unwrap();
                        let expected: &[&[u8]] = match event {
                            0 => &[b"open"],
                            1 => &[b"elitsoh"],
                            _ => &[],
                        };
                        assert_eq!(sent, expected, "step {step}: ws event {event}");
                    }
                }
            }
        }
        assert!(
            flare.memory_pages() <= max_pages,
            "step {step}: memory grew past the maximum"
        );
    }
    let stats = flare.arena_stats().unwrap();
    assert_eq!(
        stats.live_blocks, 1,
        "only the lazily filled cache is live: {stats:?}"
    );
    assert!(stats.failed > 0 && stats.resets > 1000, "{stats:?}");
    assert_ordinary_requests_work(&mut flare);
}
