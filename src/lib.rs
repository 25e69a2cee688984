//! # flare-arena
//!
//! The memory allocator of WebAssembly request handlers ("flares") that an edge host instantiates
//! once and calls thousands of times. Every `Vec`, `String` and `Box` a flare builds, and every
//! buffer the host writes into it through the guest's `alloc` export, come from one 8-byte-aligned
//! bump region whose cursor goes back to the start at the top of every invocation.
//!
//! ```no_run
//! use flare_arena::GlobalArena;
//!
//! #[global_allocator]
//! static ARENA: GlobalArena = GlobalArena::new();
//!
//! flare_arena::export_alloc!(ARENA);
//!
//! #[unsafe(no_mangle)]
//! pub extern "C" fn handle_request() -> i64 {
//!     ARENA.invocation(|| {
//!         let mut body = String::new(); // comes from the arena
//!         body.push_str("hello"); // grows in place: it is the last block
//!         1i64 << 32 // Respond
//!     })
//! }
//! # fn main() {}
//! ```
//!
//! ## How it stays safe and small
//! The region is cut into lines of [`LINE_BYTES`]; each line counts the live blocks that overlap
//! it. Allocation bumps a cursor through a *hole* (a run of free lines); a reset just moves the
//! cursor back, and the next hole search skips every line something live still overlaps. So a reset
//! never hands out memory still in use, and memory follows what is live: a block that outlives its
//! invocation keeps its own lines, nothing more.
#![no_std]
#![warn(missing_docs)]
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    missing_debug_implementations
)]

// `std` is only needed natively (to reserve the region); wasm flares stay `no_std`.
#[cfg(all(feature = "std", not(target_arch = "wasm32")))]
extern crate std;

pub mod abi;
mod arena;
mod bump;
mod global;
mod lines;
mod lock;
mod region;
mod scope;
mod stats;

pub use arena::Arena;
pub use bump::POISON_BYTE;
pub use global::GlobalArena;
pub use lines::LINE_BYTES;
pub use lock::{ArenaLock, DefaultLock, NoThreads};
#[cfg(all(not(target_arch = "wasm32"), feature = "std"))]
pub use region::SystemRegion;
pub use region::{
    DEFAULT_MAX_BYTES, LinearMemory, MIN_ALIGN, PlatformRegion, Region, SliceRegion, WASM_PAGE,
    Wasm32Memory, WasmRegion,
};
pub use scope::{Checkpoint, CheckpointError, Reset};
pub use stats::Stats;

/// Emits the guest's `alloc` export, routed to `$arena.guest_alloc`, on wasm32; nothing elsewhere.
///
/// ```
/// static ARENA: flare_arena::GlobalArena = flare_arena::GlobalArena::new();
/// flare_arena::export_alloc!(ARENA);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! export_alloc {
    ($arena:path) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            /// The host contract's `alloc(size) -> ptr` (0 = cannot take it).
            #[unsafe(export_name = "alloc")]
            extern "C" fn __flare_arena_alloc(size: i32) -> i32 {
                $arena.guest_alloc(size)
            }
        };
    };
}
