//! Tells the crate whether the wasm code it is compiled into runs on one thread only, for the
//! default lock (src/lock.rs): `cfg(flare_arena_wasm_single_thread)`, the one place that is
//! decided. (Without this script, say under a build system that does not run it, the cfg is
//! never set and every target gets a real lock: sound, if slower.)
//!
//! A wasm module has threads only if its memory is shared, and a shared memory needs every object
//! in the module compiled with the `atomics` target feature. rustc hides that feature from `cfg`
//! on stable (it is an unstable feature): `cfg(target_feature = "atomics")` is false there even on
//! `wasm32-wasip1-threads`, whose code does have it. So this script looks where cargo says how the
//! crate is compiled: the `cfg` target features (complete on nightly), the target's name (the
//! `-threads` targets), and the flags passed to rustc (`-C target-feature=+atomics`, or a
//! `target-cpu` whose features include it). When unsure it says "threads": a real lock is always
//! sound, a missing one is not.
//!
//! Must never: run cargo or rustc, or read anything but cargo's environment.

use std::env;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(flare_arena_wasm_single_thread)");
    println!("cargo::rerun-if-changed=build.rs");
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_ARCH") != "wasm32" {
        return;
    }
    let features = var("CARGO_CFG_TARGET_FEATURE");
    let flags = var("CARGO_ENCODED_RUSTFLAGS").replace('\u{1f}', " ");
    // CPUs without atomics; any other one (`bleeding-edge`, a future one) may have them.
    let cpu_without_atomics = |flags: &str| {
        flags.split("target-cpu=").skip(1).all(|cpu| {
            ["generic", "mvp", "lime1"]
                .iter()
                .any(|c| cpu.starts_with(c))
        })
    };
    let threads = features.split(',').any(|feature| feature == "atomics")
        || var("TARGET").contains("threads")
        || flags.contains("+atomics")
        || !cpu_without_atomics(&flags);
    if !threads {
        println!("cargo::rustc-cfg=flare_arena_wasm_single_thread");
    }
}
