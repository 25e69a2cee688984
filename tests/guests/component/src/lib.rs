//! A WASI 0.2 component on flare-arena. The host lowers each call's arguments into the component
//! through `cabi_realloc` (which std and wit-bindgen forward to the global allocator) *before* the
//! export body runs, so they are live blocks when `ARENA.invocation` resets at its top; the result
//! is freed by the post-return function after the host has read it.

use std::sync::Mutex;

wit_bindgen::generate!({ world: "orders", path: "wit" });

#[cfg(feature = "arena")]
#[global_allocator]
static ARENA: flare_arena::GlobalArena = flare_arena::GlobalArena::new();

/// Every export is an invocation: on the arena, a reset first.
fn invocation<T>(handler: impl FnOnce() -> T) -> T {
    #[cfg(feature = "arena")]
    return ARENA.invocation(handler);
    #[cfg(not(feature = "arena"))]
    handler()
}

/// FNV-1a over the arguments as they arrived.
fn digest(customer: &str, items: &[LineItem]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    };
    eat(customer.as_bytes());
    for item in items {
        eat(item.sku.as_bytes());
        eat(&item.quantity.to_le_bytes());
        eat(&item.unit_cents.to_le_bytes());
    }
    hash
}

/// The `remember` cache: most recently used last.
static CACHE: Mutex<Vec<(String, String)>> = Mutex::new(Vec::new());
const CACHE_KEYS: usize = 64;

struct Orders;

impl Guest for Orders {
    fn summarize(customer: String, items: Vec<LineItem>) -> String {
        let arrived = digest(&customer, &items);
        invocation(|| {
            // Scratch work that lands wherever the reset left the cursor: over the arguments, had
            // the reset reclaimed their memory.
            let mut skus: Vec<String> = items.iter().map(|item| item.sku.clone()).collect();
            skus.sort();
            let scratch = vec![0xA5u8; 2048 + 64 * items.len()];
            let total: u64 = items
                .iter()
                .map(|item| u64::from(item.quantity) * item.unit_cents)
                .sum();
            let intact = digest(&customer, &items) == arrived && scratch.iter().all(|&b| b == 0xA5);
            format!(
                "{customer}|{}|{total}|{}|{}",
                items.len(),
                if intact { "intact" } else { "CORRUPTED" },
                skus.join(",")
            )
        })
    }

    fn remember(key: String, value: String) -> Option<String> {
        invocation(|| {
            let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
            let previous = cache
                .iter()
                .position(|(k, _)| *k == key)
                .map(|at| cache.remove(at).1);
            if cache.len() == CACHE_KEYS {
                cache.remove(0);
            }
            cache.push((key, value));
            previous
        })
    }

    fn env(name: String) -> Option<String> {
        invocation(|| std::env::var(name).ok())
    }

    fn arena_stats() -> Vec<u64> {
        #[cfg(feature = "arena")]
        {
            let s = ARENA.stats();
            [s.capacity, s.peak, s.live_blocks, s.live_lines]
                .map(|n| n as u64)
                .into_iter()
                .chain([s.lines_recycled, s.resets, s.failed])
                .collect()
        }
        #[cfg(not(feature = "arena"))]
        Vec::new()
    }
}

export!(Orders);
