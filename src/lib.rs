#![doc = include_str!("../README.md")]
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
