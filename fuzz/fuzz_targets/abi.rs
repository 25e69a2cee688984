//! Pointer/length packing and the host-value readers (`packed_bytes`, `packed_str`,
//! `handle_bytes`, `host_arg`) with arbitrary packed values and handles: each answers exactly
//! when the bytes lie in the used part of the arena, and never panics.
#![no_main]

#[path = "../../tests/support"]
mod support {
    pub mod abi_model;
    pub mod fuzzing;
    pub mod model;
}

use libfuzzer_sys::fuzz_target;
use support::fuzzing;

fuzz_target!(|data: &[u8]| fuzzing::abi(data));
