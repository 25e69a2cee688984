//! The README's flare without `std`: the arena as `#[global_allocator]`, the host `alloc` export,
//! and one `handle_request` that builds a `String` per invocation, with the panic handler a
//! `no_std` wasm module needs. It builds for every wasm32 target, WebAssembly 1.0 included:
//!
//!     cargo build --release --example minimal_flare --target wasm32-unknown-unknown
//!     cargo build --release --example minimal_flare --target wasm32v1-none
//!
//! On native targets it builds too (as a `cdylib` with nothing exported), so `cargo test` checks
//! it; `tests/wasm/runtime.rs` runs both wasm builds on wasmtime.
#![no_std]

extern crate alloc;

use alloc::string::String;
use flare_arena::GlobalArena;

#[global_allocator]
static ARENA: GlobalArena = GlobalArena::new();

flare_arena::export_alloc!(ARENA);

/// Respond (1) in the high 32 bits, per the host contract.
const RESPOND: i64 = 1 << 32;

#[unsafe(no_mangle)]
pub extern "C" fn handle_request() -> i64 {
    ARENA.invocation(|| {
        let mut body = String::new(); // comes from the arena
        body.push_str("hello"); // grows in place: it is the last block
        if body.len() == 5 { RESPOND } else { 0 }
    })
}

#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
