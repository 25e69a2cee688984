//! Everything that runs guest flares compiled to wasm32 on wasmtime, in one test binary (wasmtime
//! is linked once): the host contract, a hostile host, flares that keep state, churn,
//! and the other hosts: a WASI component and a wasip1 reactor.
//! The guests (tests/guests) are built by the tests themselves, for `wasm32-unknown-unknown`
//! (flares), `wasm32-wasip1` (a reactor flare), `wasm32-wasip2` (a component) and `wasm32v1-none`.
#![cfg(not(miri))]

mod churn;
mod component;
mod hostile_host;
mod runtime;
mod stateful;
mod threads;
