//! Native throughput: flare-arena next to the allocators a user would pick instead, same
//! workloads, same run.
//!
//!     cargo bench --bench native             # full run (a few minutes)
//!     cargo bench --bench native -- --quick  # every bench, briefly
//!     python3 benches/report.py              # the README tables, from criterion's estimates
//!
//! Every subject releases memory the way it is meant to be used: heaps (`System`, mimalloc) free
//! each block; bump arenas (bumpalo, bump-scope, blink-alloc) reset; flare-arena frees each block
//! (as `Drop` would) and then resets, because its reset is checked and only reclaims dead memory.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::NonNull;
use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use std::hint::black_box;
use std::time::{Duration, Instant};

use flare_arena::{Arena, GlobalArena};
use flare_arena_testkit::grow_through_fragments;

static FLARE: GlobalArena = GlobalArena::with_max_bytes(1 << 30);
static BLINK: blink_alloc::GlobalBlinkAlloc = blink_alloc::GlobalBlinkAlloc::new();

/// One allocator under test, seen through the operations the workloads need.
trait Subject {
    fn alloc(&mut self, layout: Layout) -> *mut u8;
    /// # Safety
    /// `ptr` is a live block of this subject with `layout`.
    unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout);
    /// # Safety
    /// `ptr` is a live block of this subject with `layout`.
    unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8;
    /// Releases every block in `blocks` (all of this subject's live blocks) the intended way.
    fn release(&mut self, blocks: &mut Vec<(*mut u8, Layout)>);
    /// Whether `release` is a reset (O(1)) rather than a free per block.
    fn resets(&self) -> bool {
        true
    }
    /// Whether blocks must be freed before a reset (flare-arena's checked reset reclaims only dead
    /// memory; blink-alloc asserts it in debug builds).
    fn frees_before_reset(&self) -> bool {
        false
    }
}

/// How a `GlobalAlloc` subject releases a batch of blocks.
#[derive(Clone, Copy)]
enum Release {
    /// A heap: free every block.
    FreeEach,
    /// Free every block (as `Drop` would), then reset: flare-arena (its checked reset reclaims
    /// only dead memory) and blink-alloc (whose debug builds assert it).
    FreeEachThenReset(fn()),
}

/// Any allocator through the `GlobalAlloc` trait (with whatever lock it has).
struct Global<A: GlobalAlloc + 'static>(&'static A, Release);

impl<A: GlobalAlloc> Subject for Global<A> {
    fn alloc(&mut self, layout: Layout) -> *mut u8 {
        unsafe { self.0.alloc(layout) }
    }
    unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        unsafe { self.0.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
    fn release(&mut self, blocks: &mut Vec<(*mut u8, Layout)>) {
        for (ptr, layout) in blocks.drain(..) {
            unsafe { self.0.dealloc(ptr, layout) }
        }
        if let Release::FreeEachThenReset(reset) = self.1 {
            reset();
        }
    }
    fn resets(&self) -> bool {
        !matches!(self.1, Release::FreeEach)
    }
    fn frees_before_reset(&self) -> bool {
        matches!(self.1, Release::FreeEachThenReset(_))
    }
}

fn flare_reset() {
    let _ = FLARE.reset();
}

/// `GlobalBlinkAlloc` starts in "direct mode" (every call forwarded to `System`); the benches
/// measure its blink (bump) mode. (Its direct-mode `realloc` also has grow and shrink swapped in
/// 0.3.1, which trips an `allocator-api2` debug assertion.)
fn blink() -> Global<blink_alloc::GlobalBlinkAlloc> {
    static BLINK_MODE: std::sync::Once = std::sync::Once::new();
    // SAFETY: the benches run on one thread and nothing was allocated from BLINK before this.
    BLINK_MODE.call_once(|| unsafe { BLINK.blink_mode() });
    Global(&BLINK, Release::FreeEachThenReset(blink_reset))
}

fn blink_reset() {
    // SAFETY: the benches drop every block handed out since the last reset before calling it.
    unsafe { BLINK.reset() };
}

static SYSTEM: std::alloc::System = std::alloc::System;
static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// flare-arena's standalone `Arena` (same core, no lock).
struct FlareArena<'buf>(Arena<'buf>);

impl FlareArena<'static> {
    fn new() -> Self {
        let buffer: &'static mut [u8] = Box::leak(vec![0u8; 256 << 20].into_boxed_slice());
        FlareArena(Arena::new(buffer))
    }
}

impl Subject for FlareArena<'_> {
    fn alloc(&mut self, layout: Layout) -> *mut u8 {
        self.0.alloc(layout)
    }
    unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        unsafe { self.0.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
    fn release(&mut self, blocks: &mut Vec<(*mut u8, Layout)>) {
        for (ptr, layout) in blocks.drain(..) {
            unsafe { self.0.dealloc(ptr, layout) }
        }
        let _ = self.0.reset();
    }
    fn frees_before_reset(&self) -> bool {
        true
    }
}

struct Bumpalo(bumpalo::Bump);

impl Subject for Bumpalo {
    fn alloc(&mut self, layout: Layout) -> *mut u8 {
        self.0.alloc_layout(layout).as_ptr()
    }
    unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        use allocator_api2::alloc::Allocator;
        unsafe { (&self.0).deallocate(NonNull::new_unchecked(ptr), layout) }
    }
    unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        use allocator_api2::alloc::Allocator;
        let new = Layout::from_size_align(new_size, layout.align()).unwrap();
        let ptr = unsafe { NonNull::new_unchecked(ptr) };
        let result = if new_size >= layout.size() {
            unsafe { (&self.0).grow(ptr, layout, new) }
        } else {
            unsafe { (&self.0).shrink(ptr, layout, new) }
        };
        result.map_or(core::ptr::null_mut(), |p| p.as_ptr().cast())
    }
    fn release(&mut self, blocks: &mut Vec<(*mut u8, Layout)>) {
        blocks.clear();
        self.0.reset();
    }
}

struct BumpScope(bump_scope::Bump);

impl Subject for BumpScope {
    fn alloc(&mut self, layout: Layout) -> *mut u8 {
        self.0.alloc_layout(layout).as_ptr()
    }
    unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        use bump_scope::alloc::Allocator;
        unsafe { self.0.deallocate(NonNull::new_unchecked(ptr), layout) }
    }
    unsafe fn realloc(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        use bump_scope::alloc::Allocator;
        let new = Layout::from_size_align(new_size, layout.align()).unwrap();
        let ptr = unsafe { NonNull::new_unchecked(ptr) };
        let result = if new_size >= layout.size() {
            unsafe { self.0.grow(ptr, layout, new) }
        } else {
            unsafe { self.0.shrink(ptr, layout, new) }
        };
        result.map_or(core::ptr::null_mut(), |p| p.as_ptr().cast())
    }
    fn release(&mut self, blocks: &mut Vec<(*mut u8, Layout)>) {
        blocks.clear();
        self.0.reset();
    }
}

/// Runs `bench` once per subject, in one group, so the report can put them side by side.
fn each_subject(
    group: &mut BenchmarkGroup<'_, WallTime>,
    mut bench: impl FnMut(&mut BenchmarkGroup<'_, WallTime>, &str, &mut dyn Subject),
) {
    bench(
        group,
        "flare-arena (GlobalAlloc)",
        &mut Global(&FLARE, Release::FreeEachThenReset(flare_reset)),
    );
    bench(group, "flare-arena (Arena)", &mut FlareArena::new());
    bench(group, "bumpalo", &mut Bumpalo(bumpalo::Bump::new()));
    bench(group, "bump-scope", &mut BumpScope(bump_scope::Bump::new()));
    bench(group, "blink-alloc (GlobalAlloc)", &mut blink());
    bench(group, "mimalloc", &mut Global(&MIMALLOC, Release::FreeEach));
    bench(
        group,
        "System (glibc)",
        &mut Global(&SYSTEM, Release::FreeEach),
    );
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 8).unwrap()
}

/// A fixed stream of mixed request-like sizes: mostly small, a few large.
fn mixed_sizes() -> Vec<Layout> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..256)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let size = match x % 16 {
                0..=9 => 8 + (x >> 8) as usize % 56,
                10..=13 => 64 + (x >> 8) as usize % 448,
                _ => 512 + (x >> 8) as usize % 3584,
            };
            Layout::from_size_align(size, if x.is_multiple_of(7) { 16 } else { 8 }).unwrap()
        })
        .collect()
}

/// Times `count` allocations only; the release happens outside the clock.
fn time_allocations(
    subject: &mut dyn Subject,
    iters: u64,
    layouts: &[Layout],
    count: usize,
) -> Duration {
    let mut blocks = Vec::with_capacity(count);
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let start = Instant::now();
        for i in 0..count {
            let l = layouts[i % layouts.len()];
            blocks.push((black_box(subject.alloc(l)), l));
        }
        total += start.elapsed();
        subject.release(&mut blocks);
    }
    total
}

fn small_allocations(c: &mut Criterion) {
    const COUNT: usize = 1000;
    for size in [8, 16, 32, 64, 128] {
        let mut group = c.benchmark_group(format!("alloc_small_{size}B"));
        group.throughput(Throughput::Elements(COUNT as u64));
        each_subject(&mut group, |g, name, s| {
            g.bench_function(name, |b| {
                b.iter_custom(|iters| time_allocations(s, iters, &[layout(size)], COUNT))
            });
        });
        group.finish();
    }
    let mixed = mixed_sizes();
    let mut group = c.benchmark_group("alloc_mixed");
    group.throughput(Throughput::Elements(COUNT as u64));
    each_subject(&mut group, |g, name, s| {
        g.bench_function(name, |b| {
            b.iter_custom(|iters| time_allocations(s, iters, &mixed, COUNT))
        });
    });
    group.finish();
}

fn lifo_and_batches(c: &mut Criterion) {
    const COUNT: usize = 1000;
    let mut group = c.benchmark_group("alloc_free_lifo");
    group.throughput(Throughput::Elements(COUNT as u64));
    each_subject(&mut group, |g, name, s| {
        let mut none = Vec::new();
        g.bench_function(name, |b| {
            b.iter(|| {
                for _ in 0..COUNT {
                    let p = black_box(s.alloc(layout(32)));
                    unsafe { s.dealloc(p, layout(32)) };
                }
                s.release(&mut none);
            })
        });
    });
    group.finish();

    const MANY: usize = 10_000;
    let mixed = mixed_sizes();
    let mut group = c.benchmark_group("alloc_many_then_release");
    group.throughput(Throughput::Elements(MANY as u64));
    each_subject(&mut group, |g, name, s| {
        let mut blocks = Vec::with_capacity(MANY);
        g.bench_function(name, |b| {
            b.iter(|| {
                for i in 0..MANY {
                    let l = mixed[i % mixed.len()];
                    blocks.push((black_box(s.alloc(l)), l));
                }
                s.release(&mut blocks);
            })
        });
    });
    group.finish();

    // A request-shaped batch: a few hundred mixed allocations, some freed early, some grown.
    const BATCH: usize = 300;
    let mut group = c.benchmark_group("request_batch");
    group.throughput(Throughput::Elements(BATCH as u64));
    each_subject(&mut group, |g, name, s| {
        let mut blocks = Vec::with_capacity(BATCH);
        g.bench_function(name, |b| {
            b.iter(|| {
                for i in 0..BATCH {
                    let l = mixed[i % mixed.len()];
                    let p = s.alloc(l);
                    match i % 10 {
                        0 | 1 => unsafe { s.dealloc(p, l) },
                        2 => {
                            let grown = unsafe { s.realloc(p, l, l.size() * 2) };
                            blocks.push((
                                grown,
                                Layout::from_size_align(l.size() * 2, l.align()).unwrap(),
                            ));
                        }
                        _ => blocks.push((black_box(p), l)),
                    }
                }
                s.release(&mut blocks);
            })
        });
    });
    group.finish();
}

/// A `Vec<T>`'s growth policy, on a subject: push `count` items of `item` bytes each.
fn simulated_vec(s: &mut dyn Subject, count: usize, item: usize) {
    let mut cap = 0usize;
    let mut ptr = core::ptr::null_mut();
    for len in 0..count {
        if len == cap {
            let new_cap = (cap * 2).max(8 / item.min(8)).max(4);
            ptr = if cap == 0 {
                s.alloc(layout(new_cap * item))
            } else {
                unsafe { s.realloc(ptr, layout(cap * item), new_cap * item) }
            };
            cap = new_cap;
        }
        unsafe { ptr.add(len * item).write(len as u8) };
    }
    black_box(ptr);
    let mut blocks = vec![(ptr, layout(cap * item))];
    s.release(&mut blocks);
}

fn growth(c: &mut Criterion) {
    const PUSHES: usize = 10_000;
    let mut group = c.benchmark_group("vec_push_u64");
    group.throughput(Throughput::Elements(PUSHES as u64));
    each_subject(&mut group, |g, name, s| {
        g.bench_function(name, |b| b.iter(|| simulated_vec(s, PUSHES, 8)));
    });
    group.finish();
    let mut group = c.benchmark_group("string_push_bytes");
    group.throughput(Throughput::Elements(PUSHES as u64));
    each_subject(&mut group, |g, name, s| {
        g.bench_function(name, |b| b.iter(|| simulated_vec(s, PUSHES, 1)));
    });
    group.finish();
}

fn reset_cost(c: &mut Criterion) {
    for count in [10usize, 1000, 100_000] {
        let mut group = c.benchmark_group(format!("reset_after_{count}"));
        group.throughput(Throughput::Elements(1));
        each_subject(&mut group, |g, name, s| {
            if !s.resets() {
                return; // a heap has no reset: its "reset" is a free per block
            }
            // Each sample times one reset (so it includes the clock's own ~20-40 ns).
            g.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let mut blocks: Vec<_> = (0..count)
                            .map(|_| (s.alloc(layout(32)), layout(32)))
                            .collect();
                        // Drop the blocks first where the reset requires it, as a program's
                        // `Drop`s would, so that the timed reset is a reclaiming one.
                        if s.frees_before_reset() {
                            for (p, l) in blocks.drain(..) {
                                unsafe { s.dealloc(p, l) };
                            }
                        }
                        let start = Instant::now();
                        s.release(&mut blocks);
                        total += start.elapsed();
                    }
                    total
                })
            });
        });
        group.finish();
    }
}

fn two_threads(c: &mut Criterion) {
    const PER_THREAD: usize = 10_000;
    let mut group = c.benchmark_group("two_threads_alloc_free");
    group.throughput(Throughput::Elements(2 * PER_THREAD as u64));
    fn hammer<A: GlobalAlloc + Sync>(a: &A, reset: impl Fn()) -> Duration {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..2 {
                scope.spawn(|| {
                    for i in 0..PER_THREAD {
                        let l = layout(16 + i % 48);
                        let p = unsafe { a.alloc(l) };
                        black_box(p);
                        unsafe { a.dealloc(p, l) };
                    }
                });
            }
        });
        let elapsed = start.elapsed();
        reset();
        elapsed
    }
    group.bench_function("flare-arena (GlobalAlloc)", |b| {
        b.iter_custom(|iters| {
            (0..iters)
                .map(|_| {
                    hammer(&FLARE, || {
                        let _ = FLARE.reset();
                    })
                })
                .sum()
        })
    });
    group.bench_function("mimalloc", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| hammer(&mimalloc::MiMalloc, || ())).sum())
    });
    group.bench_function("System (glibc)", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| hammer(&std::alloc::System, || ())).sum())
    });
    group.finish();
}

/// Live data growing through a region that frees keep fragmenting: 1,000-byte blocks, every
/// seventh allocation freeing an older one (the holes it leaves are mostly too small for the next
/// block), from nothing up to 16 or 64 MiB live. If allocation cost does not grow with the region,
/// the time per allocation is the same in both groups. flare-arena and bumpalo start each run
/// fresh (a new `Arena` over the same buffer, a new `Bump`), so every run grows; the heaps run
/// warm, as a long-lived process's would. (The static `GlobalArena` cannot start fresh: after its
/// first run everything below its peak is free, which is the easy case.)
fn growing_live_data(c: &mut Criterion) {
    fn grow(s: &mut dyn Subject, count: usize) -> (Duration, Vec<(*mut u8, Layout)>) {
        let mut made = 0;
        let start = Instant::now();
        let live = grow_through_fragments(
            s,
            |s, l| black_box(s.alloc(l)),
            // SAFETY: the workload frees each of its live blocks once, with its layout.
            |s, p, l| unsafe { s.dealloc(p, l) },
            |_| {
                made += 1;
                made > count
            },
        );
        (start.elapsed(), live)
    }
    let mut buffer = vec![0u8; 128 << 20];
    for mib in [16usize, 64] {
        let count = (mib << 20) / 1000;
        let mut group = c.benchmark_group(format!("grow_through_fragments_{mib}MiB"));
        group.throughput(Throughput::Elements(count as u64));
        group.sample_size(10);
        group.bench_function("flare-arena (Arena)", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| grow(&mut FlareArena(Arena::new(&mut buffer)), count).0)
                    .sum()
            })
        });
        group.bench_function("bumpalo", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| grow(&mut Bumpalo(bumpalo::Bump::new()), count).0)
                    .sum()
            })
        });
        let mut mimalloc = Global(&MIMALLOC, Release::FreeEach);
        let mut system = Global(&SYSTEM, Release::FreeEach);
        let heaps: [(&str, &mut dyn Subject); 2] =
            [("mimalloc", &mut mimalloc), ("System (glibc)", &mut system)];
        for (name, heap) in heaps {
            group.bench_function(name, |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| {
                            let (time, mut blocks) = grow(heap, count);
                            heap.release(&mut blocks);
                            time
                        })
                        .sum()
                })
            });
        }
        group.finish();
    }
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(40)
}

criterion_group! {
    name = benches;
    config = config();
    targets = small_allocations, lifo_and_batches, growth, growing_live_data, reset_cost, two_threads
}
criterion_main!(benches);
