//! A small guest SDK for the test and bench flares: the `flaron/v1` imports, typed helpers, and
//! the allocator a flare is built on (chosen by feature), so the same flare source can be built on
//! flare-arena or on the baseline it replaces.
//!
//! - `arena`: flare-arena is the global allocator *and* the `alloc` export; host values are read in
//!   place from the arena (no copy), and every export resets the arena first.
//! - everything else: the named global allocator for `Vec`/`String`, plus the seed SDK's model for
//!   host values: a fixed 256 KiB bump buffer reset per invocation, values copied out (`to_vec`).

#[cfg(feature = "arena")]
#[global_allocator]
pub static ARENA: flare_arena::GlobalArena = flare_arena::GlobalArena::with_max_bytes(
    if cfg!(feature = "arena-small") { 1 << 20 } else { flare_arena::DEFAULT_MAX_BYTES },
);
#[cfg(feature = "arena")]
flare_arena::export_alloc!(ARENA);

#[cfg(feature = "talc")]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[cfg(feature = "lol-leak")]
#[global_allocator]
static LOL: lol_alloc::AssumeSingleThreaded<lol_alloc::LeakingAllocator> =
    // SAFETY: wasm32-unknown-unknown without the atomics feature is single-threaded.
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::LeakingAllocator::new()) };

#[cfg(feature = "lol-free")]
#[global_allocator]
static LOL: lol_alloc::AssumeSingleThreaded<lol_alloc::FreeListAllocator> =
    // SAFETY: wasm32-unknown-unknown without the atomics feature is single-threaded.
    unsafe { lol_alloc::AssumeSingleThreaded::new(lol_alloc::FreeListAllocator::new()) };

/// The seed SDK's host-value arena (baseline builds only): 256 KiB, bump, reset per invocation.
#[cfg(not(feature = "arena"))]
mod seed_host_arena {
    use core::cell::UnsafeCell;

    const SIZE: usize = 256 * 1024;

    #[repr(C, align(8))]
    struct Buffer(UnsafeCell<[u8; SIZE]>, UnsafeCell<usize>);
    // SAFETY: wasm32-unknown-unknown guests are single-threaded.
    unsafe impl Sync for Buffer {}
    static BUFFER: Buffer = Buffer(UnsafeCell::new([0; SIZE]), UnsafeCell::new(0));

    pub fn reset() {
        // SAFETY: single-threaded; no reference to the offset outlives this call.
        unsafe { *BUFFER.1.get() = 0 };
    }

    #[unsafe(export_name = "alloc")]
    extern "C" fn alloc(size: i32) -> i32 {
        if size <= 0 {
            return 0;
        }
        // SAFETY: single-threaded; the offset is only touched here and in `reset`.
        let offset = unsafe { &mut *BUFFER.1.get() };
        let start = (*offset + 7) & !7;
        match start.checked_add(size as usize) {
            Some(end) if end <= SIZE => {
                *offset = end;
                (BUFFER.0.get() as usize + start) as i32
            }
            _ => 0,
        }
    }
}

/// Runs one invocation: resets the per-invocation memory first, as the host contract requires.
pub fn invocation<T>(f: impl FnOnce() -> T) -> T {
    #[cfg(feature = "arena")]
    return ARENA.invocation(f);
    #[cfg(not(feature = "arena"))]
    {
        seed_host_arena::reset();
        f()
    }
}

/// A value the host returned: borrowed in place from the arena (valid until the end of the
/// invocation) with flare-arena, copied out as the seed SDK does otherwise.
#[cfg(feature = "arena")]
pub type HostBytes = &'static [u8];
/// A value the host returned, copied out of the seed's host arena.
#[cfg(not(feature = "arena"))]
pub type HostBytes = Vec<u8>;

fn host_value(packed: i64) -> Option<HostBytes> {
    if packed == 0 {
        return None;
    }
    #[cfg(feature = "arena")]
    // SAFETY: the host just wrote this value through `alloc`; it lives until the next reset, i.e.
    // past the end of this invocation, and nothing writes to it meanwhile.
    return unsafe { ARENA.packed_bytes(packed) };
    #[cfg(not(feature = "arena"))]
    {
        let (ptr, len) = ((packed as u64 >> 32) as usize, packed as u32 as usize);
        // SAFETY: the host wrote `len` bytes at `ptr` in our memory during this import call.
        Some(unsafe { core::slice::from_raw_parts(ptr as *const u8, len) }.to_vec())
    }
}

fn arg(data: &[u8]) -> (i32, i32) {
    (data.as_ptr() as i32, data.len() as i32)
}

mod ffi {
    #[link(wasm_import_module = "flaron/v1")]
    unsafe extern "C" {
        pub fn req_method() -> i64;
        pub fn req_url() -> i64;
        pub fn req_header_get(name_ptr: i32, name_len: i32) -> i64;
        pub fn req_body() -> i64;
        pub fn resp_set_status(status: i32);
        pub fn resp_header_set(np: i32, nl: i32, vp: i32, vl: i32) -> i32;
        pub fn resp_body_set(ptr: i32, len: i32) -> i32;
        pub fn spark_get(kp: i32, kl: i32) -> i64;
        pub fn spark_set(kp: i32, kl: i32, vp: i32, vl: i32, ttl: i32) -> i32;
        pub fn log_info(ptr: i32, len: i32);
        pub fn crypto_sign_jwt(json_ptr: i32, json_len: i32) -> i64;
        pub fn ws_event_data() -> i64;
        pub fn ws_send(ptr: i32, len: i32) -> i32;
    }
}

/// The request method.
pub fn req_method() -> Option<HostBytes> {
    // SAFETY: a host import with no arguments.
    host_value(unsafe { ffi::req_method() })
}
/// The request URL.
pub fn req_url() -> Option<HostBytes> {
    // SAFETY: a host import with no arguments.
    host_value(unsafe { ffi::req_url() })
}
/// A request header by name.
pub fn req_header(name: &str) -> Option<HostBytes> {
    let (p, l) = arg(name.as_bytes());
    // SAFETY: the pointer and length describe `name`, alive for the call.
    host_value(unsafe { ffi::req_header_get(p, l) })
}
/// The request body.
pub fn req_body() -> Option<HostBytes> {
    // SAFETY: a host import with no arguments.
    host_value(unsafe { ffi::req_body() })
}
/// Sets the response status.
pub fn set_status(status: u16) {
    // SAFETY: a host import taking a plain integer.
    unsafe { ffi::resp_set_status(status as i32) }
}
/// Sets a response header.
pub fn set_header(name: &str, value: &str) -> bool {
    let ((np, nl), (vp, vl)) = (arg(name.as_bytes()), arg(value.as_bytes()));
    // SAFETY: both pairs describe live slices; the host copies during the call.
    unsafe { ffi::resp_header_set(np, nl, vp, vl) == 0 }
}
/// Sets the response body (the host copies it during the call).
pub fn set_body(body: &[u8]) -> bool {
    let (p, l) = arg(body);
    // SAFETY: `body` is alive for the call; the host copies it.
    unsafe { ffi::resp_body_set(p, l) == 0 }
}
/// A KV value: its TTL (4 bytes LE in the host's answer) and the value.
pub fn spark_get(key: &str) -> Option<(u32, HostBytes)> {
    let (p, l) = arg(key.as_bytes());
    // SAFETY: the pair describes `key`, alive for the call.
    let raw = host_value(unsafe { ffi::spark_get(p, l) })?;
    if raw.len() < 4 {
        return None;
    }
    let ttl = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    #[cfg(feature = "arena")]
    return Some((ttl, &raw[4..]));
    #[cfg(not(feature = "arena"))]
    Some((ttl, raw[4..].to_vec()))
}
/// Stores a KV value.
pub fn spark_set(key: &str, value: &[u8], ttl: u32) -> bool {
    let ((kp, kl), (vp, vl)) = (arg(key.as_bytes()), arg(value));
    // SAFETY: both pairs describe live slices; the host copies during the call.
    unsafe { ffi::spark_set(kp, kl, vp, vl, ttl as i32) == 0 }
}
/// Logs a line on the host.
pub fn log(line: &str) {
    let (p, l) = arg(line.as_bytes());
    // SAFETY: the pair describes `line`, alive for the call.
    unsafe { ffi::log_info(p, l) }
}
/// Asks the host to sign a JWT with these claims.
pub fn sign_jwt(claims_json: &[u8]) -> Option<HostBytes> {
    let (p, l) = arg(claims_json);
    // SAFETY: the pair describes `claims_json`, alive for the call.
    host_value(unsafe { ffi::crypto_sign_jwt(p, l) })
}
/// The payload of the current WebSocket event.
pub fn ws_event_data() -> Option<HostBytes> {
    // SAFETY: a host import with no arguments.
    host_value(unsafe { ffi::ws_event_data() })
}
/// Sends a WebSocket message.
pub fn ws_send(data: &[u8]) -> bool {
    let (p, l) = arg(data);
    // SAFETY: the pair describes `data`, alive for the call.
    unsafe { ffi::ws_send(p, l) == 0 }
}

/// Arena counters for the host (not a handler: it does not reset). -1 on baseline builds.
/// 0 capacity, 1 peak, 2 live blocks, 3 live lines, 4 lines recycled, 5 resets, 6 failed,
/// 7 refused, 8 limit, 9 bytes reclaimed.
#[cfg(feature = "stats")]
#[unsafe(no_mangle)]
pub extern "C" fn flare_stat(which: i32) -> i64 {
    #[cfg(feature = "arena")]
    {
        let s = ARENA.stats();
        let values = [
            s.capacity as i64,
            s.peak as i64,
            s.live_blocks as i64,
            s.live_lines as i64,
            s.lines_recycled as i64,
            s.resets as i64,
            s.failed as i64,
            s.refused as i64,
            s.limit as i64,
            s.bytes_reclaimed as i64,
        ];
        return values.get(which as usize).copied().unwrap_or(-1);
    }
    #[cfg(not(feature = "arena"))]
    {
        let _ = which;
        -1
    }
}

/// The action in the high 32 bits of `handle_request`'s result.
pub const RESPOND: i64 = 1 << 32;
