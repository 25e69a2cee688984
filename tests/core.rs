//! Unit tests of the bump core through the standalone `Arena` (no lock, no globals, Miri-clean).

use core::alloc::Layout;
use flare_arena::{Arena, CheckpointError, MAX_FRAMES, POISON_BYTE, Reset};

fn layout(size: usize, align: usize) -> Layout {
    Layout::from_size_align(size, align).unwrap()
}

/// An 8-aligned buffer of `words * 8` bytes, so tests know exactly how much is usable.
fn buffer(words: usize) -> Vec<u64> {
    vec![0u64; words]
}

fn bytes(buf: &mut [u64]) -> &mut [u8] {
    // SAFETY: u64 has no padding and every byte pattern is a valid u8; the length is exact.
    unsafe { core::slice::from_raw_parts_mut(buf.as_mut_ptr().cast(), buf.len() * 8) }
}

#[test]
fn every_size_and_alignment_is_honoured_without_overlap() {
    let mut storage = buffer(1 << 15);
    let range = {
        let b = bytes(&mut storage);
        b.as_ptr() as usize..b.as_ptr() as usize + b.len()
    };
    let mut arena = Arena::new(bytes(&mut storage));
    let sizes = [
        0usize, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 100, 127, 128, 129, 1000,
    ];
    let aligns = (0..=12).map(|shift| 1usize << shift);
    let mut last_end = 0usize;
    let cp = arena.checkpoint();
    for align in aligns {
        for &size in &sizes {
            let ptr = arena.alloc(layout(size, align));
            assert!(!ptr.is_null(), "size {size} align {align}");
            let addr = ptr as usize;
            assert_eq!(addr % align.max(8), 0, "size {size} align {align}");
            assert!(range.contains(&addr) && addr + size <= range.end);
            // Blocks placed one after another never overlap.
            let q = arena.alloc(layout(1, 1));
            assert!(
                q as usize >= addr + size.max(1),
                "next block overlaps size {size} align {align}"
            );
            last_end = last_end.max(q as usize);
            unsafe {
                arena.dealloc(q, layout(1, 1));
                arena.dealloc(ptr, layout(size, align));
            }
            assert!(arena.reset_to(cp).reclaimed());
        }
    }
    assert!(last_end > 0);
}

#[test]
fn lifo_free_gives_bytes_back_and_other_frees_wait_for_reset() {
    let mut storage = buffer(64);
    let mut arena = Arena::new(bytes(&mut storage));
    let a = arena.alloc(layout(24, 8));
    let b = arena.alloc(layout(10, 8));
    assert_eq!(b as usize, a as usize + 24);
    unsafe { arena.dealloc(b, layout(10, 8)) };
    assert_eq!(
        arena.stats().used,
        24,
        "freeing the last block gives its bytes back"
    );
    let c = arena.alloc(layout(16, 8));
    assert_eq!(c, b, "the freed bytes are handed out again");
    unsafe { arena.dealloc(a, layout(24, 8)) };
    assert_eq!(
        arena.stats().used,
        40,
        "a block that is not last waits for a reset"
    );
    assert_eq!(arena.stats().live, 1);
}

#[test]
fn realloc_of_the_last_block_grows_and_shrinks_in_place() {
    let mut storage = buffer(128);
    let mut arena = Arena::new(bytes(&mut storage));
    let p = arena.alloc(layout(8, 8));
    unsafe { p.write_bytes(0xAB, 8) };
    let grown = unsafe { arena.realloc(p, layout(8, 8), 200) };
    assert_eq!(grown, p);
    assert_eq!(arena.stats().used, 200);
    let shrunk = unsafe { arena.realloc(grown, layout(200, 8), 3) };
    assert_eq!(shrunk, p);
    assert_eq!(arena.stats().used, 8);
    assert_eq!(unsafe { *shrunk.add(2) }, 0xAB);
    assert_eq!(arena.stats().live, 1, "realloc in place keeps the count");
}

#[test]
fn realloc_of_an_inner_block_shrinks_in_place_and_grows_by_copying() {
    let mut storage = buffer(128);
    let mut arena = Arena::new(bytes(&mut storage));
    let a = arena.alloc(layout(32, 8));
    unsafe { a.copy_from_nonoverlapping(b"0123456789abcdef0123456789abcdef".as_ptr(), 32) };
    let _b = arena.alloc(layout(8, 8));
    let same = unsafe { arena.realloc(a, layout(32, 8), 16) };
    assert_eq!(same, a);
    let moved = unsafe { arena.realloc(a, layout(16, 8), 64) };
    assert_ne!(moved, a);
    let copied = unsafe { core::slice::from_raw_parts(moved, 16) };
    assert_eq!(copied, b"0123456789abcdef");
    assert_eq!(arena.stats().live, 2);
}

#[test]
fn realloc_that_cannot_fit_returns_null_and_keeps_the_block() {
    let mut storage = buffer(16);
    let mut arena = Arena::new(bytes(&mut storage));
    let a = arena.alloc(layout(8, 8));
    unsafe { a.write_bytes(7, 8) };
    let _b = arena.alloc(layout(8, 8));
    let before = arena.stats();
    let fail = unsafe { arena.realloc(a, layout(8, 8), 1 << 20) };
    assert!(fail.is_null());
    assert_eq!(unsafe { *a }, 7);
    let after = arena.stats();
    assert_eq!(
        (after.used, after.live, after.failed),
        (before.used, before.live, before.failed + 1)
    );
    let huge = unsafe { arena.realloc(a, layout(8, 8), isize::MAX as usize - 8) };
    assert!(huge.is_null());
}

#[test]
fn checked_reset_reclaims_when_everything_since_is_dead() {
    let mut storage = buffer(128);
    let mut arena = Arena::new(bytes(&mut storage));
    let keep = arena.alloc(layout(8, 8));
    let cp = arena.checkpoint();
    let a = arena.alloc(layout(40, 8));
    let b = arena.alloc(layout(40, 8));
    unsafe {
        arena.dealloc(a, layout(40, 8));
        arena.dealloc(b, layout(40, 8));
    }
    assert_eq!(arena.reset_to(cp), Reset::Reclaimed { bytes: 40 });
    assert_eq!(arena.alloc(layout(8, 8)), a, "reclaimed bytes are reused");
    assert!(!keep.is_null());
    let stats = arena.stats();
    assert_eq!((stats.resets, stats.kept), (1, 0));
}

#[test]
fn checked_reset_keeps_memory_that_is_still_live() {
    let mut storage = buffer(128);
    let mut arena = Arena::new(bytes(&mut storage));
    let cp = arena.checkpoint();
    let live = arena.alloc(layout(16, 8));
    unsafe { live.write_bytes(0x5A, 16) };
    let dead = arena.alloc(layout(16, 8));
    unsafe { arena.dealloc(dead, layout(16, 8)) };
    assert_eq!(arena.reset_to(cp), Reset::Kept { live: 1, bytes: 16 });
    let next = arena.alloc(layout(16, 8));
    assert!(
        next as usize >= live as usize + 16,
        "a kept block is never handed out again"
    );
    assert_eq!(unsafe { *live.add(15) }, 0x5A);
    assert_eq!(arena.stats().kept, 1);
    // The checkpoint now starts above the kept block: freeing the newer one lets it reclaim.
    unsafe { arena.dealloc(next, layout(16, 8)) };
    assert_eq!(arena.reset_to(cp), Reset::Reclaimed { bytes: 0 });
    // The kept block joined the enclosing scope: freeing it is counted there.
    unsafe { arena.dealloc(live, layout(16, 8)) };
    assert_eq!(arena.stats().live, 0);
}

#[test]
fn scopes_nest_and_each_level_reclaims_its_own() {
    let mut storage = buffer(4096);
    let mut arena = Arena::new(bytes(&mut storage));
    fn nest(arena: &mut Arena<'_>, level: usize, seen: &mut Vec<usize>) {
        if level == 0 {
            return;
        }
        arena.scope(|arena| {
            let p = arena.alloc(layout(8 * level, 8));
            seen.push(p as usize);
            nest(arena, level - 1, seen);
            unsafe { arena.dealloc(p, layout(8 * level, 8)) };
        });
    }
    let before = arena.stats().used;
    let mut seen = Vec::new();
    nest(&mut arena, 20, &mut seen);
    assert_eq!(seen.len(), 20);
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "each level allocates above its parent"
    );
    let stats = arena.stats();
    assert_eq!((stats.used, stats.depth, stats.kept), (before, 0, 0));
    assert_eq!(stats.resets, 20);
}

#[test]
fn a_scope_keeps_what_escapes_it_and_its_parent_can_reclaim_after_the_free() {
    let mut storage = buffer(256);
    let mut arena = Arena::new(bytes(&mut storage));
    let outer = arena.checkpoint();
    let escaped = arena.scope(|arena| {
        let _dead = arena.alloc(layout(8, 8));
        arena.alloc(layout(8, 8))
    });
    assert_eq!(arena.stats().kept, 1);
    assert_eq!(
        arena.stats().depth,
        1,
        "the scope closed even though it kept memory"
    );
    assert!(
        !arena.reset_to(outer).reclaimed(),
        "the escaped block now belongs to the outer scope"
    );
    unsafe { arena.dealloc(escaped, layout(8, 8)) };
    assert!(arena.reset_to(outer).reclaimed());
}

#[test]
fn deep_nesting_past_the_limit_is_refused_not_corrupting() {
    let mut storage = buffer(64);
    let mut arena = Arena::new(bytes(&mut storage));
    let mut cps = Vec::new();
    for _ in 1..MAX_FRAMES {
        cps.push(arena.checkpoint());
    }
    assert_eq!(cps.len(), MAX_FRAMES - 1);
    assert_eq!(arena.stats().depth, MAX_FRAMES - 1);
    if cfg!(debug_assertions) {
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| arena.checkpoint()));
        assert!(
            result.is_err(),
            "debug builds panic on too many open scopes"
        );
    } else {
        let extra = arena.checkpoint();
        assert_eq!(
            arena.reset_to(extra),
            Reset::Refused(CheckpointError::TooDeep)
        );
    }
    assert!(arena.reset_to(cps[0]).reclaimed());
    assert_eq!(arena.stats().depth, 1);
}

/// Runs `f`, expecting a debug-build panic; in release builds returns its result.
fn refused<T>(f: impl FnOnce() -> T) -> Option<T> {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    if cfg!(debug_assertions) {
        let message = result.err().expect("misuse must panic in debug builds");
        let text = message
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(text.contains("flare-arena"), "clear message, got {text:?}");
        None
    } else {
        Some(result.expect("release builds refuse without panicking"))
    }
}

#[test]
fn a_checkpoint_from_another_arena_is_refused() {
    let (mut s1, mut s2) = (buffer(64), buffer(64));
    let mut one = Arena::new(bytes(&mut s1));
    let mut two = Arena::new(bytes(&mut s2));
    let foreign = one.checkpoint();
    let _ = two.checkpoint();
    let p = two.alloc(layout(8, 8));
    unsafe { two.dealloc(p, layout(8, 8)) };
    let before = two.stats();
    if let Some(result) = refused(|| two.reset_to(foreign)) {
        assert_eq!(result, Reset::Refused(CheckpointError::ForeignArena));
    }
    assert_eq!(two.stats().used, before.used);
    assert_eq!(two.stats().refused, before.refused + 1);
}

#[test]
fn a_checkpoint_already_reset_past_is_refused() {
    let mut storage = buffer(64);
    let mut arena = Arena::new(bytes(&mut storage));
    let outer = arena.checkpoint();
    let inner = arena.checkpoint();
    let _ = arena.alloc(layout(8, 8));
    assert_eq!(arena.reset_to(outer), Reset::Kept { live: 1, bytes: 8 });
    let used = arena.stats().used;
    if let Some(result) = refused(|| arena.reset_to(inner)) {
        assert_eq!(result, Reset::Refused(CheckpointError::Stale));
    }
    assert_eq!(arena.stats().used, used);
    // A reset to a checkpoint keeps it open: it can be used again.
    assert!(!matches!(arena.reset_to(outer), Reset::Refused(_)));
}

#[test]
fn invocations_reuse_memory_but_never_reclaim_init() {
    let mut storage = buffer(256);
    let mut arena = Arena::new(bytes(&mut storage));
    let init = arena.alloc(layout(8, 8));
    unsafe { init.write_bytes(0x11, 8) };
    unsafe { arena.dealloc(init, layout(8, 8)) }; // dead, but init: never reclaimed
    let _ = arena.alloc(layout(8, 8)); // LIFO reused it before any invocation: fine
    let mut first = None;
    for _ in 0..5 {
        arena.invocation(|arena| {
            let p = arena.alloc(layout(64, 8));
            assert!(p as usize > init as usize);
            assert_eq!(
                *first.get_or_insert(p),
                p,
                "every invocation starts at the same mark"
            );
            unsafe { arena.dealloc(p, layout(64, 8)) };
        });
    }
    let stats = arena.stats();
    assert_eq!((stats.resets, stats.kept, stats.high_water), (5, 0, 72));
}

#[test]
fn the_first_invocation_reclaims_init_when_nothing_there_is_live() {
    let mut storage = buffer(64);
    let mut arena = Arena::new(bytes(&mut storage));
    // A host that calls `alloc` before any export has run (ABI.md says it never does), and init
    // code that allocates and frees: none of it is live at the first invocation.
    let scratch = arena.alloc(layout(16, 8));
    // SAFETY: the block just allocated with this layout, freed once.
    unsafe { arena.dealloc(scratch, layout(16, 8)) };
    while arena.guest_alloc(40) != 0 {}
    while arena.guest_alloc(8) != 0 {}
    assert!(
        arena.alloc(layout(8, 8)).is_null(),
        "the host buffers took everything"
    );
    assert_eq!(arena.stats().used, arena.stats().limit);
    assert_eq!(
        arena.reset(),
        Reset::Reclaimed { bytes: 504 },
        "all of it comes back"
    );
    assert_eq!(arena.stats().used, 0);
    let p = arena.alloc(layout(16, 8));
    assert!(!p.is_null());
    // SAFETY: the block just allocated with this layout, freed once.
    unsafe { arena.dealloc(p, layout(16, 8)) };
    // Later invocations start from the same mark.
    assert!(arena.reset().reclaimed());
    assert_eq!(arena.alloc(layout(16, 8)), p);
}

#[test]
fn scopes_opened_during_init_join_init_at_the_first_invocation() {
    let mut storage = buffer(64);
    let mut arena = Arena::new(bytes(&mut storage));
    let _first = arena.alloc(layout(8, 8));
    let _init_scope = arena.checkpoint();
    let late = arena.alloc(layout(8, 8));
    assert!(
        arena.reset().reclaimed(),
        "the first invocation only sets its mark"
    );
    assert_eq!(
        arena.stats().depth,
        1,
        "init scopes closed; the invocation frame is open"
    );
    // A block from init is freed during an invocation: it is found and counted in init.
    unsafe { arena.dealloc(late, layout(8, 8)) };
    assert_eq!(arena.stats().live, 1);
    let p = arena.alloc(layout(8, 8));
    assert!(
        p as usize >= late as usize + 8,
        "init memory is never handed out again"
    );
}

#[test]
fn a_live_block_across_invocations_is_kept_and_the_mark_rises_above_it() {
    let mut storage = buffer(256);
    let mut arena = Arena::new(bytes(&mut storage));
    arena.reset();
    let cache = arena.alloc(layout(32, 8));
    unsafe { cache.write_bytes(0xCA, 32) };
    let r = arena.reset();
    assert_eq!(r, Reset::Kept { live: 1, bytes: 32 });
    for _ in 0..10 {
        arena.invocation(|arena| {
            let p = arena.alloc(layout(32, 8));
            assert!(p as usize >= cache as usize + 32);
            unsafe { p.write_bytes(0, 32) };
            unsafe { arena.dealloc(p, layout(32, 8)) };
        });
    }
    let cached = unsafe { core::slice::from_raw_parts(cache, 32) };
    assert!(cached.iter().all(|&b| b == 0xCA));
    assert_eq!(
        arena.stats().kept,
        1,
        "kept once; later invocations reclaim normally"
    );
}

#[test]
fn guest_alloc_follows_the_host_contract() {
    let mut storage = buffer(512);
    let mut arena = Arena::new(bytes(&mut storage));
    arena.reset(); // the host only calls `alloc` from inside an export
    for bad in [0, -1, i32::MIN, i32::MAX, 4097] {
        let before = arena.stats();
        assert_eq!(arena.guest_alloc(bad), 0, "size {bad}");
        let after = arena.stats();
        assert_eq!(after.used, before.used);
        assert_eq!(
            after.failed,
            before.failed + 1,
            "size {bad} is counted as refused"
        );
    }
    // Just above what is left is refused; exactly what is left is granted, up to the last byte.
    let remaining = arena.stats().limit - arena.stats().used;
    assert_eq!(arena.guest_alloc(remaining as i32 + 1), 0);
    let all = arena.guest_alloc(remaining as i32);
    assert_ne!(all, 0);
    assert_eq!(arena.stats().used, arena.stats().limit);
    assert_eq!(arena.guest_alloc(1), 0);
    arena.reset();
    let mut handles = Vec::new();
    for size in [1, 5, 8, 13, 100] {
        let h = arena.guest_alloc(size);
        assert_ne!(h, 0);
        assert_eq!(h % 8, 0);
        let slot = unsafe { arena.handle_bytes(h, size as usize) }.expect("inside the arena");
        slot.fill(size as u8);
        handles.push((h, size));
    }
    assert!(
        handles.windows(2).all(|w| w[1].0 >= w[0].0 + w[0].1),
        "disjoint and ascending"
    );
    for (h, size) in &handles {
        let packed = flare_arena::abi::encode_ptr_len(*h as u32, *size as u32);
        let read = arena.packed_bytes(packed).unwrap();
        assert!(read.iter().all(|&b| b == *size as u8));
    }
    assert_eq!(
        arena.stats().live,
        0,
        "host buffers are not counted as live"
    );
    assert!(arena.packed_bytes(0).is_none(), "0 means none");
    assert!(unsafe { arena.handle_bytes(handles[4].0, 10_000) }.is_none());
    arena.reset();
    assert_eq!(
        arena.guest_alloc(8),
        handles[0].0,
        "host buffers are reclaimed by the next reset"
    );
}

#[test]
fn bad_layouts_get_null_and_change_nothing() {
    let mut storage = buffer(128);
    let mut arena = Arena::new(bytes(&mut storage));
    let _ = arena.alloc(layout(8, 8));
    let before = arena.stats();
    let bad = [
        layout(isize::MAX as usize - 7, 8),
        layout(isize::MAX as usize - 4095, 4096),
        layout(1, 1 << 30),
        layout(1 << 40, 1),
        layout(2000, 8),
        Layout::from_size_align(0, 1 << 62).unwrap(),
    ];
    for (i, l) in bad.iter().enumerate() {
        assert!(arena.alloc(*l).is_null(), "layout {l:?}");
        let after = arena.stats();
        assert_eq!((after.used, after.live), (before.used, before.live));
        assert_eq!(after.failed, before.failed + i as u64 + 1);
    }
}

#[test]
fn an_empty_or_tiny_buffer_refuses_everything() {
    let mut empty: [u8; 0] = [];
    let mut arena = Arena::new(&mut empty);
    assert!(arena.alloc(layout(1, 1)).is_null());
    assert_eq!(arena.guest_alloc(1), 0);
    let mut tiny = [0u8; 15];
    let mut arena = Arena::new(&mut tiny);
    assert!(arena.alloc(layout(8, 8)).is_null());
    assert!(arena.reset().reclaimed());
}

#[test]
fn zero_sized_blocks_get_distinct_addresses() {
    let mut storage = buffer(16);
    let mut arena = Arena::new(bytes(&mut storage));
    let a = arena.alloc(layout(0, 1));
    let b = arena.alloc(layout(0, 1));
    assert!(!a.is_null() && !b.is_null());
    assert_ne!(a, b);
}

#[test]
fn frees_of_foreign_pointers_are_ignored() {
    let mut storage = buffer(16);
    let mut arena = Arena::new(bytes(&mut storage));
    let a = arena.alloc(layout(8, 8));
    let mut outside = 0u64;
    unsafe { arena.dealloc((&raw mut outside).cast(), layout(8, 8)) };
    let stats = arena.stats();
    assert_eq!((stats.live, stats.used), (1, 8));
    unsafe { arena.dealloc(a, layout(8, 8)) };
    assert_eq!(arena.stats().live, 0);
}

#[test]
fn stats_track_capacity_use_and_high_water() {
    let mut storage = buffer(16);
    let mut arena = Arena::new(bytes(&mut storage));
    let s = arena.stats();
    assert_eq!((s.capacity, s.used, s.high_water, s.live), (0, 0, 0, 0));
    let cp = arena.checkpoint();
    let a = arena.alloc(layout(50, 8));
    let s = arena.stats();
    assert_eq!((s.capacity, s.used, s.live, s.depth), (120, 56, 1, 1));
    assert_eq!(
        s.limit, 120,
        "a buffer cannot grow: its limit is its capacity"
    );
    unsafe { arena.dealloc(a, layout(50, 8)) };
    let _ = arena.reset_to(cp);
    let s = arena.stats();
    assert_eq!((s.used, s.high_water, s.live, s.resets), (0, 56, 0, 1));
    assert!(s.to_string().contains("high water 56 B"));
}

#[test]
fn reclaimed_memory_is_poisoned_in_debug_builds() {
    let mut storage = buffer(16);
    let mut arena = Arena::new(bytes(&mut storage));
    let expected = cfg!(any(debug_assertions, feature = "poison"));
    // By a reset:
    let cp = arena.checkpoint();
    let h = arena.guest_alloc(16);
    unsafe { arena.handle_bytes(h, 16) }.unwrap().fill(0);
    assert!(arena.reset_to(cp).reclaimed());
    let h = arena.guest_alloc(16);
    let seen = unsafe { arena.handle_bytes(h, 16) }.unwrap();
    assert_eq!(seen.iter().all(|&b| b == POISON_BYTE), expected);
    // By a LIFO free:
    let p = arena.alloc(layout(16, 8));
    unsafe { p.write_bytes(0, 16) };
    unsafe { arena.dealloc(p, layout(16, 8)) };
    let h = arena.guest_alloc(16);
    let seen = unsafe { arena.handle_bytes(h, 16) }.unwrap();
    assert_eq!(seen.iter().all(|&b| b == POISON_BYTE), expected);
}

#[test]
fn close_resets_and_closes_a_checkpoint() {
    let mut storage = buffer(32);
    let mut arena = Arena::new(bytes(&mut storage));
    let cp = arena.checkpoint();
    let p = arena.alloc(layout(16, 8));
    unsafe { arena.dealloc(p, layout(16, 8)) };
    assert!(arena.close(cp).reclaimed());
    assert_eq!(arena.stats().depth, 0);
    if let Some(result) = refused(|| arena.close(cp)) {
        assert_eq!(result, Reset::Refused(CheckpointError::Stale));
    }
}

#[test]
fn unchecked_reset_reclaims_even_with_live_blocks() {
    let mut storage = buffer(32);
    let mut arena = Arena::new(bytes(&mut storage));
    let cp = arena.checkpoint();
    let p = arena.alloc(layout(16, 8));
    // SAFETY: `p` is never used again.
    let r = unsafe { arena.reset_to_unchecked(cp) };
    assert_eq!(r, Reset::Reclaimed { bytes: 16 });
    assert_eq!(arena.stats().live, 0);
    assert_eq!(arena.alloc(layout(16, 8)), p);
}
