//! Everything that runs guest flares compiled to wasm32 on wasmtime, in one test binary (wasmtime
//! is linked once): the host contract, a hostile host, flares that keep state, and churn.
//! The guests (tests/guests) are built by the tests themselves, for `wasm32-unknown-unknown`.
#![cfg(not(miri))]

mod churn;
mod hostile_host;
mod runtime;
mod stateful;
