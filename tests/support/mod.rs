//! Shared by the runtime tests, the demo (`examples/demo.rs`) and the wasm benches: building guest
//! flares for wasm32 and hosting them on wasmtime.
#![allow(dead_code)]

pub mod flares;
pub mod guests;
pub mod host;
