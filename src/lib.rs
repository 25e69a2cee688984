//! # flare-arena
//!
//! A bump arena for WebAssembly request handlers ("flares") that an edge host instantiates once
//! and calls thousands of times. Every `Vec`, `String` and `Box` a flare builds, and every buffer
//! the host writes into it through the guest's `alloc` export, come from one 8-byte-aligned region
//! that is reset at the top of every invocation.
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
//! ## The safety model
//! A reset of a global allocator is unsound if anything allocated since its checkpoint is still in
//! use. So every scope counts its live allocations, and a reset reclaims a range only when that
//! count is zero; otherwise it *keeps* the memory (see [`Reset::Kept`]). Buffers the host gets from
//! `alloc` are valid until the next reset by contract and are not counted.
//!
//! ## Modules
//! - [`bump`]: the single-threaded core (no lock, no `Sync`), the fast path and checked resets.
//! - [`region`]: where memory comes from (a buffer, wasm `memory.grow`, or one system block).
//! - [`scope`]: checkpoints, frames and their live counts.
//! - [`global`]: the `lock_api` wrapper that is the `GlobalAlloc`.
//! - [`arena`]: the same core over a borrowed buffer, without a lock.
//! - [`abi`]: the host contract's `alloc` handles and packed `(ptr, len)` values.
//! - [`stats`]: printable counters.
#![no_std]
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn, clippy::undocumented_unsafe_blocks)]

// `std` is only needed natively (to reserve the region); wasm flares stay `no_std`.
#[cfg(all(feature = "std", not(target_arch = "wasm32")))]
extern crate std;

pub mod abi;
pub mod arena;
pub mod bump;
pub mod global;
pub mod region;
pub mod scope;
pub mod stats;

pub use arena::Arena;
pub use bump::POISON_BYTE;
pub use global::{DEFAULT_MAX_BYTES, DefaultLock, GlobalArena};
pub use region::MIN_ALIGN;
pub use scope::{Checkpoint, CheckpointError, MAX_FRAMES, Reset};
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
