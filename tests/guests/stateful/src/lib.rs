//! Flares that keep a little state across requests, written as anyone would write them: plain
//! `static`s, std collections, no allocator-specific code. The request header `x-state` picks one:
//! - `none`: stateless (the reference);
//! - `counter`: a hit counter per client in a `static Mutex<HashMap<String, u64>>`;
//! - `ttl`: a config value fetched from KV and cached in a `static`, refreshed every 100 requests;
//! - `lru`: the last 64 request URLs in a `static Mutex<VecDeque<String>>`.
//!
//! Every request parses a small JSON body and answers a small JSON body. Built for `wasm32-wasip1`
//! (a reactor), it also answers the environment variable `FLARE_REGION` in the header `x-region`,
//! read through wasi-libc on every request: libc allocates with its own malloc beside the arena.
//! During its first 1,000 requests it also grows both heaps in turn (64 KiB from libc's `malloc`,
//! 48 KiB more kept by the flare), so the arena's growths have to step over pages libc took; the
//! header `x-libc` says whether libc's blocks kept their contents.

use serde::Deserialize;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

#[derive(Deserialize)]
struct Event<'a> {
    client: &'a str,
    values: Vec<u64>,
    #[serde(default)]
    note: Option<String>,
}

static COUNTERS: Mutex<Option<HashMap<String, u64>>> = Mutex::new(None);
/// (the request number it was fetched at, the value)
static CONFIG: Mutex<Option<(u64, String)>> = Mutex::new(None);
static RECENT: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
static REQUESTS: Mutex<u64> = Mutex::new(0);

const CONFIG_TTL: u64 = 100;
const RECENT_URLS: usize = 64;

fn text(bytes: &Option<sdk::HostBytes>) -> &str {
    bytes.as_deref().and_then(|b| std::str::from_utf8(b).ok()).unwrap_or("")
}

fn handle() -> Result<String, u16> {
    let request = {
        let mut requests = REQUESTS.lock().unwrap();
        *requests += 1;
        *requests
    };
    #[cfg(target_os = "wasi")]
    sdk::set_header("x-libc", interleave_heaps(request));
    let state = sdk::req_header("x-state");
    let url = sdk::req_url();
    let body = sdk::req_body().ok_or(400u16)?;
    let event: Event = serde_json::from_slice(&body).map_err(|_| 400u16)?;
    let sum: u64 = event.values.iter().sum();
    let note = event.note.as_deref().map_or(0, str::len);
    let kept = match text(&state) {
        "counter" => {
            let mut counters = COUNTERS.lock().unwrap();
            let counters = counters.get_or_insert_with(HashMap::new);
            match counters.get_mut(event.client) {
                Some(count) => *count += 1,
                None => {
                    counters.insert(event.client.to_string(), 1);
                }
            }
            format!(r#""hits":{},"clients":{}"#, counters[event.client], counters.len())
        }
        "ttl" => {
            let mut config = CONFIG.lock().unwrap();
            if config.as_ref().is_none_or(|(at, _)| request - at >= CONFIG_TTL) {
                let fresh = sdk::spark_get("config").map(|(_, v)| String::from_utf8_lossy(&v).into_owned());
                *config = Some((request, fresh.unwrap_or_default()));
            }
            let (at, value) = config.as_ref().map(|(at, v)| (*at, v.len())).unwrap_or_default();
            format!(r#""config_len":{value},"config_age":{}"#, request - at)
        }
        "lru" => {
            let mut recent = RECENT.lock().unwrap();
            let url = text(&url);
            let seen = recent.iter().filter(|u| *u == url).count();
            recent.push_back(url.to_string());
            if recent.len() > RECENT_URLS {
                recent.pop_front();
            }
            format!(r#""seen":{seen},"recent":{}"#, recent.len())
        }
        "none" => String::from(r#""stateless":true"#),
        _ => return Err(400),
    };
    Ok(format!(r#"{{"client":"{}","sum":{sum},"note":{note},{kept}}}"#, event.client))
}

/// Both heaps grown in turn, every 50th of the first 1,000 requests; whether every block libc
/// handed out still holds its pattern.
#[cfg(target_os = "wasi")]
fn interleave_heaps(request: u64) -> &'static str {
    unsafe extern "C" {
        fn malloc(size: usize) -> *mut u8;
    }
    const LIBC_BLOCK: usize = 64 << 10;
    static LIBC_BLOCKS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
    let mut blocks = LIBC_BLOCKS.lock().unwrap();
    if request <= 1000 && request % 50 == 0 {
        // SAFETY: libc's malloc, any size; the block is only used below, within its size.
        let block = unsafe { malloc(LIBC_BLOCK) };
        if !block.is_null() {
            let pattern = blocks.len() as u8 ^ 0x5A;
            // SAFETY: a fresh block of LIBC_BLOCK bytes, never freed.
            unsafe { block.write_bytes(pattern, LIBC_BLOCK) };
            blocks.push(block.expose_provenance());
        }
        KEPT.lock().unwrap().push(vec![0xC3; 48 << 10]);
    }
    let intact = blocks.iter().enumerate().all(|(i, &addr)| {
        // SAFETY: a live block of LIBC_BLOCK bytes from libc's malloc, written above.
        let block = unsafe { std::slice::from_raw_parts(std::ptr::with_exposed_provenance::<u8>(addr), LIBC_BLOCK) };
        block.iter().all(|&b| b == i as u8 ^ 0x5A)
    }) && KEPT.lock().unwrap().iter().all(|kept| kept.iter().all(|&b| b == 0xC3));
    if intact { "intact" } else { "CORRUPTED" }
}

#[unsafe(no_mangle)]
pub extern "C" fn handle_request() -> i64 {
    sdk::invocation(|| {
        match handle() {
            Ok(body) => {
                sdk::set_status(200);
                sdk::set_header("content-type", "application/json");
                #[cfg(target_os = "wasi")]
                sdk::set_header("x-region", &std::env::var("FLARE_REGION").unwrap_or_default());
                sdk::set_body(body.as_bytes());
            }
            Err(status) => sdk::set_status(status as u16),
        }
        sdk::RESPOND
    })
}
