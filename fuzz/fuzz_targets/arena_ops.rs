//! Operation sequences on a standalone `Arena` (alloc of any size and alignment up to 64 KiB,
//! free, realloc, host `alloc` of any i32, checkpoints, nested scopes, stale and foreign resets,
//! invocations), checked after every step against the reference model: overlap, misalignment,
//! blocks outside the region, lost bytes (use-after-reset), wrong reset decisions, spurious or
//! missing refusals and wrong stats all panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use flare_arena_testkit::{fuzzing, model::Misuse};

fuzz_target!(|data: &[u8]| fuzzing::arena_ops(data, Misuse::under_a_fuzzer()));
