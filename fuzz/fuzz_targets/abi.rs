//! Pointer/length packing and the host-value readers (`packed_bytes`, `packed_str`,
//! `handle_bytes`, `host_arg`) with arbitrary packed values and handles: each answers exactly
//! when the bytes lie in the used part of the arena, and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use flare_arena_testkit::fuzzing;

fuzz_target!(|data: &[u8]| fuzzing::abi(data));
