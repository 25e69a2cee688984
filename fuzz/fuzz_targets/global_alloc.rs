//! The same operation sequences through `GlobalAlloc` on a `GlobalArena` (the lock, the
//! lazily reserved region, the scope API), with Vec-like realloc growth, against the same model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use flare_arena_testkit::{fuzzing, model::Misuse};

fuzz_target!(|data: &[u8]| fuzzing::global_alloc(data, Misuse::under_a_fuzzer()));
