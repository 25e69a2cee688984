//! Flares that keep a little state across requests (tests/guests/stateful: a counter map over 256
//! clients, a config value cached for 100 requests, the last 64 URLs), written as anyone would:
//! plain `static`s and std collections, nothing allocator-specific. On flare-arena their memory
//! must be flat after warm-up and within a few pages of the default allocator's, and every answer
//! right.

use flare_arena_testkit::flares::instance_for;
use flare_arena_testkit::guests::TARGET;
use flare_arena_testkit::host::{self, Flare};
use std::collections::{HashMap, VecDeque};

const STATES: [&str; 4] = ["none", "counter", "ttl", "lru"];

/// What the stateful flare must answer to request `id` (the `n`th it has seen, from 1), tracking
/// the state it keeps.
#[derive(Default)]
struct Expected {
    requests: u64,
    hits: HashMap<String, u64>,
    config_at: Option<u64>,
    recent: VecDeque<String>,
}

impl Expected {
    fn answer(&mut self, state: &str, id: u64) -> String {
        self.requests += 1;
        let client = format!("client-{:03}", id * 7 % 256);
        let sum: u64 = (0..1 + id % 6).map(|i| id * 31 + i).sum();
        let note = if id.is_multiple_of(3) {
            format!("request {id} says hi").len()
        } else {
            0
        };
        let kept = match state {
            "counter" => {
                let hits = self.hits.entry(client.clone()).or_default();
                *hits += 1;
                let hits = *hits;
                format!(r#""hits":{hits},"clients":{}"#, self.hits.len())
            }
            "ttl" => {
                let at = self
                    .config_at
                    .filter(|at| self.requests - at < 100)
                    .unwrap_or(self.requests);
                self.config_at = Some(at);
                format!(
                    r#""config_len":{},"config_age":{}"#,
                    host::STATEFUL_CONFIG.len(),
                    self.requests - at
                )
            }
            "lru" => {
                let url = format!("https://edge.example/items/{}?v=1", id * 13 % 500);
                let seen = self.recent.iter().filter(|u| **u == url).count();
                self.recent.push_back(url);
                if self.recent.len() > 64 {
                    self.recent.pop_front();
                }
                format!(r#""seen":{seen},"recent":{}"#, self.recent.len())
            }
            _ => String::from(r#""stateless":true"#),
        };
        format!(r#"{{"client":"{client}","sum":{sum},"note":{note},{kept}}}"#)
    }
}

/// Pages of linear memory after request 1,000 and after the last, checking every answer.
fn run(feature: &str, state: &str, requests: u64) -> (u64, u64, Flare) {
    run_on(TARGET, feature, state, requests)
}

/// [`run`] for the flare built for `target`; on a WASI target each answer also carries the
/// environment variable the flare reads through wasi-libc.
fn run_on(target: &str, feature: &str, state: &str, requests: u64) -> (u64, u64, Flare) {
    let mut flare = instance_for(target, "stateful", feature);
    flare.kv_set("config", host::STATEFUL_CONFIG);
    let mut expected = Expected::default();
    let mut at_1000 = 0;
    for id in 0..requests {
        let (action, response) = flare
            .handle(&host::stateful_request(state, id))
            .unwrap_or_else(|e| panic!("{feature} {state}: request {id} trapped: {e:?}"));
        assert_eq!(
            (action, response.status),
            (1 << 32, 200),
            "{feature} {state}: request {id}"
        );
        assert_eq!(
            response.text(),
            expected.answer(state, id),
            "{feature} {state}: request {id}"
        );
        if target.starts_with("wasm32-wasi") {
            assert_eq!(
                response.header("x-region"),
                Some(host::WASI_REGION),
                "{feature} {state} on {target}: request {id}"
            );
            assert_eq!(
                response.header("x-libc"),
                Some("intact"),
                "{feature} {state} on {target}: libc's blocks, request {id}"
            );
        }
        if id + 1 == 1000 {
            at_1000 = flare.memory_pages();
        }
    }
    (at_1000, flare.memory_pages(), flare)
}

fn flat_and_near_the_default_allocator(requests: u64) {
    let mut report = Vec::new();
    for state in STATES {
        let (_, default_pages, _) = run("dlmalloc", state, requests.min(20_000));
        let (at_1000, end, mut flare) = run("arena", state, requests);
        let stats = flare.arena_stats().unwrap();
        report.push(format!(
            "{state:>8}: flare-arena {at_1000} -> {end} pages, the default allocator {default_pages}; {stats:?}"
        ));
        assert!(
            end <= at_1000 + 1,
            "{state}: memory grew from {at_1000} to {end} pages: {stats:?}"
        );
        assert!(
            end <= default_pages + 4,
            "{state}: {end} pages, the default allocator {default_pages}"
        );
        let live = match state {
            "none" => 0..=0,
            "counter" => 257..=600, // a key per client and the map's table
            "ttl" => 1..=1,
            _ => 65..=65, // 64 URLs and the deque's buffer
        };
        assert!(
            live.contains(&(stats.live_blocks as usize)),
            "{state}: {stats:?}"
        );
    }
    println!("{}", report.join("\n"));
}

#[test]
fn stateful_flares_stay_flat_over_twenty_thousand_requests() {
    flat_and_near_the_default_allocator(20_000);
}

#[test]
#[ignore = "long: 100,000 requests per flare (run with --ignored)"]
fn stateful_flares_stay_flat_over_a_hundred_thousand_requests() {
    flat_and_near_the_default_allocator(100_000);
}

/// The same flare built for `wasm32-wasip1`, a reactor whose export resets with `invocation`, and
/// which reads its environment through wasi-libc (whose own `malloc` lives beside the arena) on
/// every request. In its first 1,000 requests libc's `malloc` and the arena grow memory in turn,
/// so the arena's growths step over libc's pages: both heaps' blocks must stay intact.
#[test]
fn a_wasip1_reactor_stays_flat_and_its_libc_allocations_stay_intact() {
    const WASIP1: &str = "wasm32-wasip1";
    for state in ["none", "lru"] {
        let (_, default_pages, _) = run_on(WASIP1, "dlmalloc", state, 5_000);
        let (at_1000, end, mut flare) = run_on(WASIP1, "arena", state, 5_000);
        let stats = flare.arena_stats().unwrap();
        assert!(
            end <= at_1000 + 1,
            "{state} on {WASIP1}: memory grew from {at_1000} to {end} pages: {stats:?}"
        );
        // Two heaps side by side each keep their own slack (the arena grows 4 pages at a time,
        // libc's malloc by what it needs), and each growth of the arena after libc's leaves a
        // partial line or two beside libc's pages: a few pages more than one heap, not a leak.
        assert!(
            end <= default_pages + 8,
            "{state} on {WASIP1}: {end} pages, the default allocator {default_pages}"
        );
        assert_eq!(stats.failed, 0, "{state} on {WASIP1}: {stats:?}");
        println!(
            "{state} on {WASIP1}: flare-arena {at_1000} -> {end} pages, the default allocator {default_pages}"
        );
    }
}
