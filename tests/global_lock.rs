//! `GlobalArena` as a value (not the global allocator): the lock wrapper, lazy native reservation,
//! the host ABI helpers, misuse handling, and several threads hammering one arena.

use core::alloc::{GlobalAlloc, Layout};
use flare_arena::{GlobalArena, Reset, abi};
use std::sync::atomic::{AtomicUsize, Ordering};

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

#[test]
fn the_first_request_reserves_the_region_and_failures_are_real_ones() {
    let arena = GlobalArena::with_max_bytes(1 << 16);
    assert_eq!(
        arena.stats().capacity,
        0,
        "nothing reserved before first use"
    );
    let p = unsafe { arena.alloc(layout(24, 8)) };
    assert!(!p.is_null());
    let stats = arena.stats();
    assert_eq!(
        (stats.capacity, stats.used, stats.live, stats.failed),
        ((1 << 16) - 8, 24, 1, 0)
    );
    assert!(unsafe { arena.alloc(layout(1 << 16, 8)) }.is_null());
    assert_eq!(arena.stats().failed, 1);
    unsafe { arena.dealloc(p, layout(24, 8)) };
    assert_eq!(arena.stats().used, 0);
}

#[test]
fn guest_alloc_from_the_first_call_and_bad_sizes() {
    let arena = GlobalArena::with_max_bytes(1 << 16);
    // Before the region is reserved nothing resolves, not even an empty slice at its start.
    // SAFETY (both): nothing resolves, so no slice is made.
    assert!(unsafe { arena.handle_bytes(8, 0) }.is_none());
    assert_eq!(
        unsafe { arena.packed_bytes(abi::encode_ptr_len(8, 0)) },
        None
    );
    assert_eq!(arena.stats().limit, (1 << 16) - 8);
    arena.reset();
    let h = arena.guest_alloc(5);
    assert!(h > 0 && h % 8 == 0);
    for bad in [0, -7, i32::MIN, i32::MAX, 1 << 16] {
        assert_eq!(arena.guest_alloc(bad), 0, "size {bad}");
    }
    assert_eq!(arena.stats().used, 8, "refusals change nothing");
    unsafe { arena.handle_bytes(h, 5) }
        .unwrap()
        .copy_from_slice(b"hello");
    let packed = abi::encode_ptr_len(h as u32, 5);
    assert_eq!(unsafe { arena.packed_bytes(packed) }, Some(&b"hello"[..]));
    assert_eq!(unsafe { arena.packed_bytes(0) }, None);
    let (ptr, len) = arena.host_arg(b"a header name");
    assert_eq!(len, 13);
    assert_eq!(
        unsafe { arena.handle_bytes(ptr, 13) }.unwrap(),
        b"a header name"
    );
    assert_eq!(arena.host_arg(b""), (0, 0));
}

#[test]
fn scope_and_invocation_reclaim_through_the_lock() {
    let arena = GlobalArena::with_max_bytes(1 << 16);
    let init = unsafe { arena.alloc(layout(8, 8)) };
    let first = arena.invocation(|| unsafe { arena.alloc(layout(100, 8)) });
    let second = arena.invocation(|| {
        let inner = arena.scope(|| {
            let p = unsafe { arena.alloc(layout(64, 16)) };
            assert_eq!(p as usize % 16, 0);
            unsafe { arena.dealloc(p, layout(64, 16)) };
            p
        });
        assert!(!inner.is_null());
        unsafe { arena.alloc(layout(100, 8)) }
    });
    // `first` was never freed, so the second invocation kept it and started above it.
    assert!(second as usize >= first as usize + 104);
    unsafe {
        arena.dealloc(first, layout(100, 8));
        arena.dealloc(second, layout(100, 8));
    }
    let third = arena.invocation(|| unsafe { arena.alloc(layout(8, 8)) });
    assert_eq!(
        third, second,
        "with nothing live, the invocation reuses the same bytes"
    );
    let stats = arena.stats();
    assert_eq!((stats.resets, stats.kept), (4, 1));
    assert!(!init.is_null());
}

#[test]
fn a_scope_that_unwinds_still_closes() {
    let arena = GlobalArena::with_max_bytes(1 << 16);
    arena.reset();
    let result = std::panic::catch_unwind(|| {
        arena.scope(|| {
            let _p = unsafe { arena.alloc(layout(8, 8)) };
            panic!("handler failed");
        })
    });
    assert!(result.is_err());
    assert_eq!(
        arena.stats().depth,
        1,
        "the scope's frame closed while unwinding"
    );
}

#[test]
fn a_checkpoint_from_another_global_arena_is_refused() {
    let one = GlobalArena::with_max_bytes(1 << 12);
    let two = GlobalArena::with_max_bytes(1 << 12);
    let cp = one.checkpoint();
    let result = std::panic::catch_unwind(|| two.reset_to(cp));
    if cfg!(debug_assertions) {
        assert!(
            result.is_err(),
            "debug builds panic on a foreign checkpoint"
        );
    } else {
        assert!(matches!(result, Ok(Reset::Refused(_))));
    }
    assert_eq!(two.stats().refused, 1);
    // The lock was released before the panic: the arena still works.
    assert!(!unsafe { two.alloc(layout(8, 8)) }.is_null());
}

#[test]
fn threads_hammering_one_arena_never_get_overlapping_blocks() {
    static ARENA: GlobalArena = GlobalArena::with_max_bytes(64 << 20);
    static RESETS: AtomicUsize = AtomicUsize::new(0);
    let (threads, rounds, per_round) = if cfg!(miri) {
        (3, 3, 20)
    } else {
        (4, 200, 200)
    };
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            std::thread::spawn(move || {
                let mut spans = Vec::new();
                for round in 0..rounds {
                    // Every thread opens and resets scopes while the others allocate in them:
                    // the checked reset must keep whatever any thread still holds.
                    let r = ARENA.scope(|| {
                        let mut mine = Vec::new();
                        for i in 0..per_round {
                            let size = 1 + (i * 7 + t * 13 + round) % 200;
                            let align = 1 << ((i + t) % 6);
                            let p = unsafe { ARENA.alloc(layout(size, align)) };
                            assert!(!p.is_null());
                            assert_eq!(p as usize % align.max(8), 0);
                            let tag = (t * 31 + i) as u8;
                            unsafe { p.write_bytes(tag, size) };
                            mine.push((p, size, align, tag));
                        }
                        for &(p, size, _, tag) in &mine {
                            let bytes = unsafe { core::slice::from_raw_parts(p, size) };
                            assert!(bytes.iter().all(|&b| b == tag), "a canary was overwritten");
                        }
                        // Free half; leave the rest live across the scope's reset.
                        for &(p, size, align, _) in mine.iter().step_by(2) {
                            unsafe { ARENA.dealloc(p, layout(size, align)) };
                        }
                        mine.into_iter().skip(1).step_by(2).collect::<Vec<_>>()
                    });
                    RESETS.fetch_add(1, Ordering::Relaxed);
                    for (p, size, _, tag) in r {
                        let bytes = unsafe { core::slice::from_raw_parts(p, size) };
                        assert!(bytes.iter().all(|&b| b == tag), "a kept block was reused");
                        spans.push((p as usize, p as usize + size));
                    }
                }
                spans
            })
        })
        .collect();
    let mut all: Vec<(usize, usize)> = workers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    // The kept halves were never freed, so they were all live at once: no two may overlap.
    all.sort_unstable();
    assert_eq!(all.len(), threads * rounds * per_round / 2);
    for pair in all.windows(2) {
        assert!(pair[0].1 <= pair[1].0, "overlapping live blocks {pair:?}");
    }
    let stats = ARENA.stats();
    assert_eq!(RESETS.load(Ordering::Relaxed), threads * rounds);
    // Scopes of different threads interleave: some ends find their scope closed by another
    // thread's reset, and are refused (never reclaiming anything) instead of counted as resets.
    assert!((stats.resets + stats.refused) as usize >= threads * rounds);
    assert!(
        stats.kept > 0,
        "the live halves forced resets to keep memory"
    );
    assert_eq!(
        stats.live,
        threads * rounds * per_round / 2,
        "live count matches what is held"
    );
}

#[test]
fn the_same_host_value_can_be_read_twice_at_once() {
    // A flare may read one header twice and hold both slices: the readers must only ever make
    // shared references (Miri caught an exclusive one being made on the way).
    let arena = GlobalArena::with_max_bytes(4096);
    arena.reset();
    let (ptr, len) = arena.host_arg(b"GET");
    let packed = abi::encode_ptr_len(ptr as u32, len as u32);
    // SAFETY (both): bytes `host_arg` wrote; nothing writes to them while the slices live.
    let first = unsafe { arena.packed_bytes(packed) }.unwrap();
    let second = unsafe { arena.packed_str(packed) }.unwrap().unwrap();
    assert_eq!(second, "GET");
    assert_eq!(first, b"GET", "the first slice is still valid");
}
