//! Test support for flare-arena, shared by its tests, benches, demo, fuzz targets and Miri runs:
//! - [`model`]: a reference model and an interpreter of random operation sequences;
//! - [`abi_model`]: the host-value readers under arbitrary values;
//! - [`fuzzing`]: the fuzz targets' bodies (so `cargo test` replays their corpus);
//! - [`fake_memory`]: a linear memory in native memory, for `WasmRegion` off wasm32;
//! - with feature `host`: [`guests`] (building the guest flares for wasm32), [`host`] (a
//!   `flaron/v1` host on wasmtime), [`component`] (a host for the WASI component guest) and
//!   [`flares`] (compiled guests, cached per test binary).

pub mod abi_model;
pub mod fake_memory;
pub mod fuzzing;
pub mod model;

#[cfg(feature = "host")]
pub mod component;
#[cfg(feature = "host")]
pub mod flares;
#[cfg(feature = "host")]
pub mod guests;
#[cfg(feature = "host")]
pub mod host;

/// `u64` storage seen as bytes: an 8-aligned buffer whose length tests know exactly.
pub fn words_as_bytes(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: u64 has no padding and every byte pattern is a valid u8; the length is exact, and
    // the returned slice borrows `words` mutably, so nothing else reaches them meanwhile.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) }
}
