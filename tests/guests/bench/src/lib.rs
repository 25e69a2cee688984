//! Allocation workloads for the wasm benches. Every export is an invocation (it resets the
//! per-invocation memory first, as the host contract requires) running `n` operations, so the
//! cost of the call itself is amortised; `bench_empty` measures that cost alone.

use std::alloc::{Layout, alloc, dealloc, realloc};
use std::hint::black_box;

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// Sizes of a request-like stream: mostly small, some medium.
fn mixed(i: usize) -> usize {
    const SIZES: [usize; 16] = [8, 24, 16, 40, 32, 8, 64, 16, 120, 24, 48, 8, 256, 32, 16, 500];
    SIZES[i % 16]
}

/// The call alone: `n` iterations of nothing.
#[unsafe(no_mangle)]
pub extern "C" fn bench_empty(n: i32) -> i32 {
    sdk::invocation(|| (0..n).fold(0i32, |acc, i| black_box(acc ^ i)))
}

/// Small alloc + immediate free, `n` times (32 bytes).
#[unsafe(no_mangle)]
pub extern "C" fn bench_small(n: i32) -> i32 {
    sdk::invocation(|| {
        let mut acc = 0usize;
        for _ in 0..n {
            // SAFETY: non-zero size; the block is freed once, with its layout.
            unsafe {
                let p = alloc(layout(32));
                acc ^= black_box(p) as usize;
                dealloc(p, layout(32));
            }
        }
        acc as i32
    })
}

/// `n` allocations of mixed sizes, kept, then all freed (peers free each; flare-arena's frees are
/// counted and its next reset reclaims the lot).
#[unsafe(no_mangle)]
pub extern "C" fn bench_many(n: i32) -> i32 {
    sdk::invocation(|| {
        let mut blocks = Vec::with_capacity(n as usize);
        for i in 0..n as usize {
            // SAFETY: non-zero size.
            let p = unsafe { alloc(layout(mixed(i))) };
            // SAFETY: `p` has at least one byte.
            unsafe { p.write(i as u8) };
            blocks.push(p);
        }
        let mut acc = 0u8;
        for (i, p) in blocks.into_iter().enumerate() {
            // SAFETY: each block is freed once, with the layout it was allocated with.
            unsafe {
                acc ^= p.read();
                dealloc(p, layout(mixed(i)));
            }
        }
        acc as i32
    })
}

/// A wasm-bindgen-style string pass, `n` times: malloc, grow, write, shrink, free.
#[unsafe(no_mangle)]
pub extern "C" fn bench_realloc(n: i32) -> i32 {
    sdk::invocation(|| {
        let mut acc = 0usize;
        for i in 0..n as usize {
            // SAFETY: every pointer is the live block of the size passed alongside it.
            unsafe {
                let p = alloc(layout(64));
                let p = realloc(p, layout(64), 256);
                p.add(200).write(i as u8);
                let p = realloc(p, layout(256), 100 + i % 50);
                acc ^= black_box(p) as usize;
                dealloc(p, layout(100 + i % 50));
            }
        }
        acc as i32
    })
}

/// A `Vec<u64>` grown by `n` pushes, and a `String` of `n` small pieces.
#[unsafe(no_mangle)]
pub extern "C" fn bench_push(n: i32) -> i32 {
    sdk::invocation(|| {
        let mut v = Vec::new();
        let mut s = String::new();
        for i in 0..n as u64 {
            v.push(i);
            s.push_str(if i % 2 == 0 { "ab" } else { "cde" });
        }
        black_box(&v);
        (v.len() + s.len()) as i32
    })
}

/// A small seeded PRNG (wyrand): the same sequence on every allocator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(self.0) * u128::from(self.0 ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) ^ t) as u64
    }
    /// A number in `0..n`.
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next()) * n as u128) >> 64) as usize
    }
}

/// Churn: the workload of talc's own wasm benchmark (`wasm-perf/src/lib.rs` in SFBdragon/talc),
/// ported. `ACTIONS` random actions on a set of live blocks kept at 50 or more: allocate 1..=10000
/// bytes aligned to 8..=2048 (8 half the time, each doubling half as likely), free a random block,
/// or (`realloc` mode) resize a random block to 1..=10000 bytes; all left are freed at the end.
/// `arg`: bit 0 realloc mode, bit 1 canaries (every live block is filled with its own byte and
/// checked in full when it is freed or resized), the rest the seed. Returns the number of canary
/// bytes found changed (0 without canaries), or -1 if an allocation failed.
#[unsafe(no_mangle)]
pub extern "C" fn bench_churn(arg: i32) -> i32 {
    const ACTIONS: usize = 100_000;
    const MIN_LIVE: usize = 50;
    let (with_realloc, canaries) = (arg & 1 != 0, arg & 2 != 0);
    let mut rng = Rng(0x5eed ^ (arg as u64 >> 2));
    sdk::invocation(|| {
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::with_capacity(10_000);
        let mut broken = 0usize;
        let check = |ptr: *mut u8, len: usize, fill: u8| {
            // SAFETY: `ptr` is a live block of at least `len` bytes, all filled with `fill`.
            unsafe { std::slice::from_raw_parts(ptr, len) }.iter().filter(|&&b| b != fill).count()
        };
        let mut done = 0;
        while done < ACTIONS {
            let action = rng.below(4 + usize::from(with_realloc));
            if live.len() < MIN_LIVE || action < 2 {
                let size = 1 + rng.below(10_000);
                let align = 8 << ((rng.next() as u16).trailing_zeros() / 2);
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: non-zero size.
                let ptr = unsafe { alloc(layout) };
                if ptr.is_null() {
                    return -1;
                }
                let fill = done as u8;
                if canaries {
                    // SAFETY: a fresh block of `size` bytes.
                    unsafe { ptr.write_bytes(fill, size) };
                }
                live.push((ptr, layout, fill));
            } else if action < 4 {
                let (ptr, layout, fill) = live.swap_remove(rng.below(live.len()));
                if canaries {
                    broken += check(ptr, layout.size(), fill);
                }
                // SAFETY: a live block with its own layout, freed once.
                unsafe { dealloc(ptr, layout) };
            } else {
                let i = rng.below(live.len());
                let (ptr, layout, fill) = live[i];
                let new_size = 1 + rng.below(10_000);
                // SAFETY: a live block with its own layout; a non-zero size valid for its alignment.
                let new = unsafe { realloc(ptr, layout, new_size) };
                if new.is_null() {
                    return -1;
                }
                let fill_now = done as u8;
                if canaries {
                    broken += check(new, layout.size().min(new_size), fill);
                    // SAFETY: the block now has `new_size` bytes.
                    unsafe { new.write_bytes(fill_now, new_size) };
                }
                live[i] = (new, Layout::from_size_align(new_size, layout.align()).unwrap(), fill_now);
            }
            done += 1;
        }
        for (ptr, layout, fill) in live {
            if canaries {
                broken += check(ptr, layout.size(), fill);
            }
            // SAFETY: each remaining block, freed once with its layout.
            unsafe { dealloc(ptr, layout) };
        }
        broken as i32
    })
}
