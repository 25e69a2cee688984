//! The same operation sequences through `GlobalAlloc` on a `GlobalArena` (the lock, the
//! lazily reserved region, the scope API), with Vec-like realloc growth, against the same model.
#![no_main]

#[path = "../../tests/support"]
mod support {
    pub mod abi_model;
    pub mod fuzzing;
    pub mod model;
}

use libfuzzer_sys::fuzz_target;
use support::{fuzzing, model::Misuse};

fuzz_target!(|data: &[u8]| fuzzing::global_alloc(data, Misuse::under_a_fuzzer()));
