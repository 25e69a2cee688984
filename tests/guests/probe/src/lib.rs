//! Behaviours for the runtime tests, picked by the request header `x-probe`:
//! - `interleave`: host value, guest Box, host value, guest String; answers their four addresses.
//! - `cache`: a `static` filled lazily on the first request; answers whether it is intact.
//! - `big`: reads the (large) body, copies and transforms it; answers its length and checksum.
//! - `foreign`: grows linear memory by one page behind the arena's back and fills that page with
//!   0xF0; answers the page's address.
//! - `canary`: allocates a Vec and a Box, calls `req_method` (where a hostile host may flood
//!   `alloc`), then, without allocating again, answers whether both are intact and what the method
//!   call returned.
//! - `trap`: panics (a trap on wasm).
//!
//! And one export besides `handle_request`: `grow_first(pages)`, which grows linear memory by
//! `pages` pages without allocating (called on a fresh instance, before the arena has taken any
//! memory) and fills them with 0xF1; it answers their address, or -1.
//! - anything else: answers `hello`.

use std::sync::OnceLock;

static CACHE: OnceLock<Vec<u8>> = OnceLock::new();

fn pattern(i: usize) -> u8 {
    (i % 251) as u8
}

fn respond(body: &[u8]) -> i64 {
    sdk::set_status(200);
    sdk::set_body(body);
    sdk::RESPOND
}

#[unsafe(no_mangle)]
pub extern "C" fn handle_request() -> i64 {
    sdk::invocation(|| {
        let probe = sdk::req_header("x-probe");
        match probe.as_deref().unwrap_or(b"") {
            b"interleave" => {
                let host1 = sdk::req_method().map_or(0, |v| v.as_ptr() as usize);
                let guest1 = Box::new([7u8; 24]);
                let host2 = sdk::req_url().map_or(0, |v| v.as_ptr() as usize);
                let mut guest2 = String::with_capacity(8);
                guest2.push_str("guest two");
                let answer = format!("{host1} {} {host2} {}", guest1.as_ptr() as usize, guest2.as_ptr() as usize);
                respond(answer.as_bytes())
            }
            b"cache" => {
                let cache = CACHE.get_or_init(|| (0..4096).map(pattern).collect());
                let intact = cache.iter().enumerate().all(|(i, &b)| b == pattern(i));
                // Churn: allocations that the next reset must be able to reclaim around the cache.
                let churn: Vec<String> = (0..50).map(|i| format!("churn {i}")).collect();
                let answer = format!("{} {} {}", if intact { "intact" } else { "corrupt" }, cache.as_ptr() as usize, churn.len());
                respond(answer.as_bytes())
            }
            b"big" => {
                let body = sdk::req_body().unwrap_or_default();
                let upper: Vec<u8> = body.iter().map(u8::to_ascii_uppercase).collect();
                let sum = upper.iter().fold(0u64, |s, &b| s.wrapping_mul(31).wrapping_add(b as u64));
                respond(format!("{} {sum}", upper.len()).as_bytes())
            }
            b"foreign" => {
                let old_pages = core::arch::wasm32::memory_grow(0, 1);
                if old_pages == usize::MAX {
                    return respond(b"grow failed");
                }
                let page = old_pages * 65536;
                // SAFETY: the page was just added to linear memory and nothing else knows of it.
                unsafe { core::ptr::write_bytes(page as *mut u8, 0xF0, 65536) };
                respond(page.to_string().as_bytes())
            }
            b"canary" => {
                let canary: Vec<u8> = (0..1000).map(pattern).collect();
                let boxed = Box::new([0x5Au8; 64]);
                let method = sdk::req_method();
                // Nothing allocates from here on: the host may have taken every byte left.
                let intact = canary.iter().enumerate().all(|(i, &b)| b == pattern(i)) && boxed.iter().all(|&b| b == 0x5A);
                let answer: &[u8] = match (intact, method) {
                    (false, _) => b"corrupt",
                    (true, None) => b"intact, method refused",
                    (true, Some(b"GET")) => b"intact, method GET",
                    (true, Some(_)) => b"intact, method wrong",
                };
                respond(answer)
            }
            b"trap" => panic!("the handler failed"),
            _ => respond(b"hello"),
        }
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn ws_open() -> i32 {
    sdk::invocation(|| i32::from(!sdk::ws_send(b"open")))
}

#[unsafe(no_mangle)]
pub extern "C" fn ws_message() -> i32 {
    sdk::invocation(|| {
        let data = sdk::ws_event_data().unwrap_or_default();
        let reversed: Vec<u8> = data.iter().rev().copied().collect();
        i32::from(!sdk::ws_send(&reversed))
    })
}

#[unsafe(no_mangle)]
pub extern "C" fn ws_close() -> i32 {
    sdk::invocation(|| 0)
}

/// Someone else taking memory before the arena's first allocation (see the module's doc).
#[unsafe(no_mangle)]
pub extern "C" fn grow_first(pages: i32) -> i32 {
    let old_pages = core::arch::wasm32::memory_grow(0, pages as usize);
    if old_pages == usize::MAX {
        return -1;
    }
    let start = old_pages * 65536;
    // SAFETY: the pages were just added to linear memory and nothing else knows of them.
    unsafe { core::ptr::write_bytes(start as *mut u8, 0xF1, pages as usize * 65536) };
    start as i32
}
