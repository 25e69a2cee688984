//! The native region is reserved lazily: a large maximum costs address space, not resident memory.
//! (A test binary of its own, so that the process's peak RSS is this test's alone.)
#![cfg(all(target_os = "linux", target_pointer_width = "64", not(miri)))]

use core::alloc::{GlobalAlloc, Layout};
use flare_arena::GlobalArena;

/// The process's peak resident set so far, in KiB (`VmHWM` in `/proc/self/status`).
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    line.split_whitespace()
        .nth(1)
        .and_then(|kib| kib.parse().ok())
        .expect("a number")
}

#[test]
fn a_four_gibibyte_arena_is_not_resident_after_it_is_used() {
    let arena = GlobalArena::with_max_bytes(4 << 30);
    let block = Layout::from_size_align(1000, 8).unwrap();
    let mut blocks = Vec::new();
    for _ in 0..1000 {
        // SAFETY: a non-zero size.
        let p = unsafe { arena.alloc(block) };
        assert!(!p.is_null());
        // SAFETY: a fresh block of 1000 bytes.
        unsafe { p.write_bytes(7, 1000) };
        blocks.push(p);
    }
    let stats = arena.stats();
    assert!(stats.capacity > 4_000_000_000, "{stats}");
    let peak = peak_rss_kib();
    assert!(
        peak < 64 * 1024,
        "peak RSS {peak} KiB after using 1 MB of a 4 GiB arena"
    );
    for p in blocks {
        // SAFETY: each block once, with its layout.
        unsafe { arena.dealloc(p, block) };
    }
}
