//! The host's `alloc(size)` with arbitrary sizes (including <= 0, i32::MAX and everything past
//! the maximum) interleaved with resets and GlobalAlloc requests of arbitrary layouts: it must
//! never panic, every success must be non-zero, 8-aligned and inside the arena, and every refusal
//! must leave the arena unchanged.
#![no_main]

use core::alloc::{GlobalAlloc, Layout};
use flare_arena::GlobalArena;
use libfuzzer_sys::fuzz_target;

static ARENA: GlobalArena = GlobalArena::with_max_bytes(1 << 20);

fuzz_target!(|data: &[u8]| {
    ARENA.reset();
    for chunk in data.chunks_exact(9) {
        let word = i64::from_le_bytes(chunk[1..9].try_into().unwrap());
        let before = ARENA.stats();
        match chunk[0] % 4 {
            0 | 1 => {
                let size = word as i32;
                let handle = ARENA.guest_alloc(size);
                if handle == 0 {
                    assert_eq!(ARENA.stats().used, before.used, "a refusal changed the arena");
                } else {
                    assert!(size > 0 && handle % 8 == 0, "alloc({size}) = {handle}");
                    // SAFETY: a fresh host buffer of `size` bytes, used by nobody else.
                    let bytes = unsafe { ARENA.handle_bytes(handle, size as usize) }.expect("inside the arena");
                    bytes.fill(0xAB);
                }
            }
            2 => {
                let size = (word as u64 >> 8) as usize;
                let align = 1usize << (word as u8 % 64);
                if let Ok(layout) = Layout::from_size_align(size, align) {
                    if layout.size() == 0 {
                        continue;
                    }
                    // SAFETY: a non-zero-sized layout.
                    let p = unsafe { ARENA.alloc(layout) };
                    if p.is_null() {
                        assert_eq!(ARENA.stats().used, before.used, "a refusal changed the arena");
                    } else {
                        assert_eq!(p as usize % align.max(8), 0);
                        // SAFETY: `p` is a live block of `layout`, freed once.
                        unsafe { ARENA.dealloc(p, layout) };
                    }
                }
            }
            _ => {
                ARENA.reset();
            }
        }
    }
});
