//! `GlobalArena` as a value (not the global allocator): the lock wrapper and both locks, the host
//! ABI helpers, misuse handling, and several threads hammering one arena.

use core::alloc::{GlobalAlloc, Layout};
use flare_arena::{ArenaLock, GlobalArena, LINE_BYTES, NoThreads, Reset, SystemRegion, abi};
use std::sync::atomic::{AtomicUsize, Ordering};

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

/// Allocates `layout` from `arena` (a non-zero size, as `GlobalAlloc` requires).
fn alloc<R: ArenaLock>(arena: &GlobalArena<R, SystemRegion>, layout: Layout) -> *mut u8 {
    assert!(layout.size() > 0);
    // SAFETY: the size is non-zero.
    unsafe { arena.alloc(layout) }
}

/// Frees a block of `arena`.
fn free<R: ArenaLock>(arena: &GlobalArena<R, SystemRegion>, ptr: *mut u8, layout: Layout) {
    // SAFETY: every caller passes a live block of `arena` with its own layout, once.
    unsafe { arena.dealloc(ptr, layout) }
}

#[test]
fn nothing_is_reserved_before_the_first_request() {
    let arena = GlobalArena::with_max_bytes(1 << 16);
    assert_eq!(
        arena.stats().capacity,
        0,
        "nothing reserved before first use"
    );
    // The limit is known up front: the maximum, less the line table (under 1%), in whole lines.
    let limit = arena.stats().limit;
    assert!(
        limit.is_multiple_of(LINE_BYTES) && ((1 << 16) * 98 / 100..=1 << 16).contains(&limit),
        "{limit}"
    );
    let p = alloc(&arena, layout(24, 8));
    assert!(!p.is_null());
    let stats = arena.stats();
    assert_eq!(
        (
            stats.capacity,
            stats.live_blocks,
            stats.live_lines,
            stats.failed
        ),
        (stats.limit, 1, 1, 0)
    );
    assert!(alloc(&arena, layout(1 << 16, 8)).is_null());
    assert_eq!(arena.stats().failed, 1);
    free(&arena, p, layout(24, 8));
    assert_eq!(arena.stats().live_blocks, 0);
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
    // Bad sizes are refused without reserving anything.
    for bad in [0, -7, i32::MIN] {
        assert_eq!(arena.guest_alloc(bad), 0, "size {bad}");
    }
    assert_eq!((arena.stats().capacity, arena.stats().failed), (0, 3));
    let _ = arena.reset();
    let h = arena.guest_alloc(5);
    assert!(h > 0 && h % 8 == 0);
    for bad in [0, -7, i32::MIN, i32::MAX, 1 << 16] {
        assert_eq!(arena.guest_alloc(bad), 0, "size {bad}");
    }
    // SAFETY: `h` is a fresh host buffer of 5 bytes that nothing else references.
    unsafe { arena.handle_bytes(h, 5) }
        .unwrap()
        .copy_from_slice(b"hello");
    let packed = abi::encode_ptr_len(h as u32, 5);
    // SAFETY: bytes just written; nothing writes to them while the slice is held.
    assert_eq!(unsafe { arena.packed_bytes(packed) }, Some(&b"hello"[..]));
    // SAFETY: 0 is "none": no slice is made.
    assert_eq!(unsafe { arena.packed_bytes(0) }, None);
    let (ptr, len) = arena.host_arg(b"a header name");
    assert_eq!(len, 13);
    // SAFETY: the bytes `host_arg` wrote; read while nothing writes.
    assert_eq!(
        unsafe { arena.handle_bytes(ptr, 13) }.unwrap(),
        b"a header name"
    );
    assert_eq!(arena.host_arg(b""), (0, 0));
}

#[test]
fn invocations_and_scopes_reuse_memory_around_what_is_live() {
    let arena = GlobalArena::with_max_bytes(1 << 16);
    let init = alloc(&arena, layout(8, 8));
    let first = arena.invocation(|| alloc(&arena, layout(100, 8)));
    let second = arena.invocation(|| {
        let inner = arena.scope(|| {
            let p = alloc(&arena, layout(64, 16));
            assert_eq!(p as usize % 16, 0);
            free(&arena, p, layout(64, 16));
            p
        });
        assert!(!inner.is_null());
        alloc(&arena, layout(100, 8))
    });
    // `first` and `init` were never freed: the second invocation placed its block around them.
    assert!(second as usize >= first as usize + 104 || second as usize + 104 <= init as usize);
    free(&arena, first, layout(100, 8));
    free(&arena, second, layout(100, 8));
    let third = arena.invocation(|| alloc(&arena, layout(100, 8)));
    assert!(
        (third as usize) < second as usize,
        "freed lines are reused: {third:?} {second:?}"
    );
    let stats = arena.stats();
    assert_eq!((stats.resets, stats.live_blocks), (4, 2));
}

#[test]
fn a_scope_that_unwinds_still_rewinds() {
    let arena = GlobalArena::with_max_bytes(1 << 16);
    let _ = arena.reset();
    let resets = arena.stats().resets;
    let result = std::panic::catch_unwind(|| {
        arena.scope(|| {
            let _p = alloc(&arena, layout(8, 8));
            panic!("handler failed");
        })
    });
    assert!(result.is_err());
    assert_eq!(
        arena.stats().resets,
        resets + 1,
        "the scope's reset ran while unwinding"
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
    assert!(!alloc(&two, layout(8, 8)).is_null());
}

#[test]
fn a_free_of_a_foreign_pointer_panics_in_debug_builds_after_unlocking() {
    let arena = GlobalArena::with_max_bytes(1 << 12);
    let kept = alloc(&arena, layout(8, 8));
    let mut outside = 0u64;
    let stray: *mut u8 = (&raw mut outside).cast();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        // SAFETY: not a block of the arena: the misuse under test, which it must ignore.
        unsafe { arena.dealloc(stray, layout(8, 8)) }
    }));
    assert_eq!(result.is_err(), cfg!(debug_assertions));
    assert_eq!(arena.stats().live_blocks, 1, "nothing was freed");
    // The lock was released before the panic: the arena still works.
    assert!(!alloc(&arena, layout(8, 8)).is_null());
    assert!(!kept.is_null());
}

#[test]
fn an_arena_without_a_lock_works_for_the_thread_that_owns_it() {
    // `NoThreads` is wasm32's default without atomics; natively it is not `Sync` (see its docs),
    // so such an arena stays with one thread, which is all it needs.
    let arena: GlobalArena<NoThreads, SystemRegion> =
        GlobalArena::with_region(SystemRegion::new(1 << 16));
    let _ = arena.reset();
    let p = alloc(&arena, layout(40, 8));
    // SAFETY: `p` is a fresh block of 40 bytes.
    unsafe { p.write_bytes(1, 40) };
    free(&arena, p, layout(40, 8));
    assert_eq!(
        alloc(&arena, layout(40, 8)),
        p,
        "the same memory, given back and taken again"
    );
    let cp = arena.checkpoint();
    let scratch: Vec<*mut u8> = (0..100).map(|_| alloc(&arena, layout(200, 8))).collect();
    for &s in &scratch {
        free(&arena, s, layout(200, 8));
    }
    assert!(!arena.reset_to(cp).is_refused());
    // Rewound: the scratch memory is reused, from the first line the live block does not share.
    let next = alloc(&arena, layout(200, 8)) as usize;
    assert!(
        next > scratch[0] as usize && next < scratch[99] as usize,
        "reused: {next:#x}"
    );
    assert!(!arena.reset().is_refused());
}

#[test]
fn threads_hammering_one_arena_never_get_overlapping_blocks() {
    static ARENA: GlobalArena = GlobalArena::with_max_bytes(64 << 20);
    static SCOPES: AtomicUsize = AtomicUsize::new(0);
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
                    // Every thread rewinds scopes while the others allocate: a reset must never
                    // hand out what any thread still holds.
                    let kept = ARENA.scope(|| {
                        let mut mine = Vec::new();
                        for i in 0..per_round {
                            let size = 1 + (i * 7 + t * 13 + round) % 200;
                            let align = 1 << ((i + t) % 6);
                            let p = alloc(&ARENA, layout(size, align));
                            assert!(!p.is_null());
                            assert_eq!(p as usize % align.max(8), 0);
                            let tag = (t * 31 + i) as u8;
                            // SAFETY: a fresh block of `size` bytes.
                            unsafe { p.write_bytes(tag, size) };
                            mine.push((p, size, align, tag));
                        }
                        for &(p, size, _, tag) in &mine {
                            // SAFETY: this thread's live block, written above.
                            let bytes = unsafe { core::slice::from_raw_parts(p, size) };
                            assert!(bytes.iter().all(|&b| b == tag), "a canary was overwritten");
                        }
                        // Free half; leave the rest live across the scope's reset.
                        for &(p, size, align, _) in mine.iter().step_by(2) {
                            free(&ARENA, p, layout(size, align));
                        }
                        mine.into_iter().skip(1).step_by(2).collect::<Vec<_>>()
                    });
                    SCOPES.fetch_add(1, Ordering::Relaxed);
                    for (p, size, _, tag) in kept {
                        // SAFETY: this thread's live block, never freed.
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
    assert_eq!(SCOPES.load(Ordering::Relaxed), threads * rounds);
    assert!(stats.resets as usize >= threads * rounds);
    assert_eq!(
        stats.live_blocks,
        threads * rounds * per_round / 2,
        "live count matches what is held"
    );
}

#[test]
fn the_same_host_value_can_be_read_twice_at_once() {
    // A flare may read one header twice and hold both slices: the readers must only ever make
    // shared references (Miri caught an exclusive one being made on the way).
    let arena = GlobalArena::with_max_bytes(4096);
    let _ = arena.reset();
    let (ptr, len) = arena.host_arg(b"GET");
    let packed = abi::encode_ptr_len(ptr as u32, len as u32);
    // SAFETY (both): bytes `host_arg` wrote; nothing writes to them while the slices live.
    let first = unsafe { arena.packed_bytes(packed) }.unwrap();
    let second = unsafe { arena.packed_str(packed) }.unwrap().unwrap();
    assert_eq!(second, "GET");
    assert_eq!(first, b"GET", "the first slice is still valid");
}

#[test]
fn debug_output_shows_the_counters() {
    let arena = GlobalArena::with_max_bytes(4096);
    let _ = alloc(&arena, layout(8, 8));
    let shown = format!("{arena:?}");
    assert!(
        shown.contains("GlobalArena") && shown.contains("live_blocks: 1"),
        "{shown}"
    );
}
