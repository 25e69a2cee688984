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
