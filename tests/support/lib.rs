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

/// The WASI host the tests link guests built for WASI targets against (the wasip1 reactor, the
/// threads guest).
#[cfg(feature = "host")]
pub use wasmtime_wasi;

/// `u64` storage seen as bytes: an 8-aligned buffer whose length tests know exactly.
pub fn words_as_bytes(words: &mut [u64]) -> &mut [u8] {
    // SAFETY: u64 has no padding and every byte pattern is a valid u8; the length is exact, and
    // the returned slice borrows `words` mutably, so nothing else reaches them meanwhile.
    unsafe { core::slice::from_raw_parts_mut(words.as_mut_ptr().cast(), words.len() * 8) }
}

/// The workload of live data growing through a region that frees keep fragmenting, shared by the
/// tests that hold the core to it and the native bench that times it: 1,000-byte blocks, every
/// seventh allocation freeing an older one (its 2-3 freed lines are too few for the next block),
/// until `stop`, asked before each allocation, says so. Returns the blocks still live, for the
/// caller to release.
pub fn grow_through_fragments<H: ?Sized>(
    heap: &mut H,
    alloc: impl Fn(&mut H, core::alloc::Layout) -> *mut u8,
    dealloc: impl Fn(&mut H, *mut u8, core::alloc::Layout),
    mut stop: impl FnMut(&H) -> bool,
) -> Vec<(*mut u8, core::alloc::Layout)> {
    let block = core::alloc::Layout::from_size_align(1000, 8).unwrap();
    let mut live = Vec::new();
    let mut i = 0;
    while !stop(heap) {
        let p = alloc(heap, block);
        assert!(!p.is_null(), "allocation {i} failed");
        live.push((p, block));
        if i % 7 == 3 {
            let (older, layout) = live.swap_remove(i / 2 % live.len());
            dealloc(heap, older, layout);
        }
        i += 1;
    }
    live
}
