//! Threads sharing one arena. A `wasm32-wasip1-threads` reactor: that target has the `atomics`
//! feature, so its memory is shared between threads and `GlobalArena`'s default lock is a real one.
//! `hammer` runs workers on several threads at once, each allocating, growing, freeing and
//! resetting through the one global arena, handing blocks to each other, and checking that no
//! other thread ever wrote into its blocks. (libc's own `malloc`, which gives each thread its
//! stack, grows the same memory meanwhile: the arena steps over its pages.)

use std::sync::{Barrier, Mutex};

#[global_allocator]
static ARENA: flare_arena::GlobalArena = flare_arena::GlobalArena::new();

/// At most this many threads: each fills its blocks with bytes no other thread uses.
const MAX_THREADS: u32 = 5;
/// Bytes per thread: thread `t` fills its blocks with `t * TAGS + 1 ..= t * TAGS + TAGS`.
const TAGS: u32 = 50;

/// A block and the byte every one of its bytes must hold.
type Tagged = (Vec<u8>, u8);

/// Blocks one thread allocated and another frees.
static HANDED_OVER: Mutex<Vec<Tagged>> = Mutex::new(Vec::new());

/// Bytes of `block` that are not `tag`.
fn wrong_bytes(block: &[u8], tag: u8) -> u64 {
    block.iter().filter(|&&byte| byte != tag).count() as u64
}

/// One thread's work: `rounds` random steps over up to 48 live blocks of its own. It allocates
/// (1 to 600 bytes), frees in any order, grows a block by up to 900 bytes (in place or moved),
/// hands a block to the other threads or frees one they handed over, and now and then resets the
/// arena while every other thread's blocks are live. Every block is checked whole before it is
/// grown or freed, and at the end. Returns the wrong bytes seen.
fn worker(thread: u32, rounds: u32) -> u64 {
    let mut state = (0x9E37_79B9 ^ thread.wrapping_mul(0x85EB_CA6B)) | 1;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    let mut live: Vec<Tagged> = Vec::with_capacity(48);
    let mut wrong = 0;
    for round in 0..rounds {
        let r = random();
        let tag = (thread * TAGS + round % TAGS + 1) as u8;
        let pick = (r >> 8) as usize;
        match r % 16 {
            0..=6 if live.len() < 48 => {
                let len = 1 + (r >> 20) as usize % 600;
                live.push((vec![tag; len], tag));
            }
            0..=9 if !live.is_empty() => {
                let (block, tag) = live.swap_remove(pick % live.len());
                wrong += wrong_bytes(&block, tag);
            }
            10..=12 if !live.is_empty() => {
                let i = pick % live.len();
                let (block, tag) = &mut live[i];
                wrong += wrong_bytes(block, *tag);
                block.resize(block.len() + 1 + (r >> 20) as usize % 900, *tag);
            }
            13 if !live.is_empty() => {
                let block = live.swap_remove(pick % live.len());
                HANDED_OVER.lock().unwrap().push(block);
            }
            14 => {
                let block = HANDED_OVER.lock().unwrap().pop();
                if let Some((block, tag)) = block {
                    wrong += wrong_bytes(&block, tag);
                }
            }
            _ if round % 7 == 0 => {
                // Every other thread is in the middle of its work: what it holds stays live.
                let _ = ARENA.reset();
            }
            _ => {}
        }
    }
    for (block, tag) in &live {
        wrong += wrong_bytes(block, *tag);
    }
    wrong
}

/// Runs `worker` on `threads` threads at once (this one and `threads - 1` spawned, at most
/// [`MAX_THREADS`]), `rounds` steps each; then frees what they handed over. Returns the wrong
/// bytes seen, or -1 if a thread panicked.
#[unsafe(no_mangle)]
pub extern "C" fn hammer(threads: i32, rounds: i32) -> i64 {
    let threads = threads.clamp(1, MAX_THREADS as i32) as u32;
    let rounds = rounds.max(0) as u32;
    let start = std::sync::Arc::new(Barrier::new(threads as usize));
    let spawned: Vec<_> = (1..threads)
        .map(|thread| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                worker(thread, rounds)
            })
        })
        .collect();
    start.wait();
    let mut wrong = worker(0, rounds);
    for thread in spawned {
        match thread.join() {
            Ok(seen) => wrong += seen,
            Err(_) => return -1,
        }
    }
    for (block, tag) in HANDED_OVER.lock().unwrap().drain(..) {
        wrong += wrong_bytes(&block, tag);
    }
    wrong as i64
}

/// A reactor's entry point, called once by the host in the first instance only: sets up
/// wasi-libc's record of the main thread (which its thread functions walk), then runs the
/// constructors, as wasi-libc's own reactor entry does. (Without an `_initialize`, wasm-ld wraps
/// every export, `wasi_thread_start` included, in calls of the constructors and destructors.)
#[unsafe(no_mangle)]
pub extern "C" fn _initialize() {
    unsafe extern "C" {
        fn __wasi_init_tp();
        fn __wasm_call_ctors();
    }
    // SAFETY: called once, by the host, before any other export (the reactor convention), on
    // the main thread.
    unsafe {
        __wasi_init_tp();
        __wasm_call_ctors();
    }
}

/// Requests the arena refused so far.
#[unsafe(no_mangle)]
pub extern "C" fn arena_failed() -> i64 {
    ARENA.stats().failed as i64
}

/// Blocks live in the arena now.
#[unsafe(no_mangle)]
pub extern "C" fn arena_live_blocks() -> i64 {
    ARENA.stats().live_blocks as i64
}
