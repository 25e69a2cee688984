//! wasm threads: one arena shared by several threads of one module, through its default lock.
//!
//! The guest (tests/guests/threads) is built for `wasm32-wasip1-threads`, whose modules import a
//! shared memory and start threads through the `wasi` `thread-spawn` import. The host here is
//! that import: each new thread is a new instance of the module, in a store of its own on a host
//! thread of its own, over the same shared memory, entered at `wasi_thread_start` (the
//! wasi-threads convention). Without a real lock the threads' allocations race in the arena's
//! core: blocks overlap, and its bookkeeping breaks. The guest fills every block with bytes of its
//! own thread and counts any byte that changed; every store runs on a budget of fuel, so a core
//! broken into an endless loop fails the test instead of hanging it.

use flare_arena_testkit::guests;
use flare_arena_testkit::wasmtime_wasi::{self, p1::WasiP1Ctx};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use wasmtime::{Config, Engine, Instance, Linker, Module, Result, SharedMemory, Store};

const TARGET: &str = "wasm32-wasip1-threads";

/// Instructions one store may run: ten times what the test's main thread takes (0.46 billion),
/// sixty times a thread it starts.
const FUEL: u64 = 5_000_000_000;

/// What every thread of one module shares.
struct Process {
    module: Module,
    memory: SharedMemory,
    next_thread_id: AtomicI32,
    /// Host threads running guest threads; each answers whether its guest thread ended cleanly.
    threads: Mutex<Vec<JoinHandle<Result<()>>>>,
}

/// An engine that may create shared memories (off by default in wasmtime), and counts fuel.
fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut config = Config::new();
        config
            .wasm_threads(true)
            .shared_memory(true)
            .consume_fuel(true);
        Engine::new(&config).expect("an engine with wasm threads")
    })
}

impl Process {
    fn new() -> Arc<Self> {
        let wasm = guests::build_for(TARGET, "threads", "arena", "release")
            .unwrap_or_else(|e| panic!("{e}"));
        let module = Module::from_file(engine(), &wasm).expect("guest compiles");
        let memory_type = module
            .imports()
            .find_map(|import| import.ty().memory().cloned())
            .expect("the module imports its memory");
        let memory = SharedMemory::new(engine(), memory_type).expect("a shared memory");
        Arc::new(Process {
            module,
            memory,
            next_thread_id: AtomicI32::new(1),
            threads: Mutex::new(Vec::new()),
        })
    }

    /// A new instance of the module over the shared memory, in a store of its own.
    fn instance(self: &Arc<Self>) -> Result<(Store<WasiP1Ctx>, Instance)> {
        let mut store = Store::new(engine(), wasmtime_wasi::WasiCtx::builder().build_p1());
        store.set_fuel(FUEL)?;
        let mut linker = Linker::new(engine());
        wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |ctx| ctx)?;
        linker.define(&store, "env", "memory", self.memory.clone())?;
        let process = self.clone();
        linker.func_wrap("wasi", "thread-spawn", move |start_arg: i32| {
            process.spawn(start_arg)
        })?;
        let instance = linker.instantiate(&mut store, &self.module)?;
        Ok((store, instance))
    }

    /// `wasi` `thread-spawn`: runs `wasi_thread_start(id, start_arg)` in a new instance on a new
    /// host thread; the new thread's id.
    fn spawn(self: &Arc<Self>, start_arg: i32) -> i32 {
        let id = self.next_thread_id.fetch_add(1, Ordering::Relaxed);
        let process = self.clone();
        let thread = std::thread::spawn(move || {
            let (mut store, instance) = process.instance()?;
            let start =
                instance.get_typed_func::<(i32, i32), ()>(&mut store, "wasi_thread_start")?;
            start.call(&mut store, (id, start_arg))
        });
        self.threads.lock().unwrap().push(thread);
        id
    }

    /// Waits for every guest thread started so far; the first error any of them ended with.
    fn join_all(&self) -> Result<()> {
        let threads: Vec<_> = self.threads.lock().unwrap().drain(..).collect();
        for thread in threads {
            thread.join().expect("a host thread panicked")?;
        }
        Ok(())
    }
}

/// Four threads allocate, grow, free, hand blocks to each other and reset the one arena at the
/// same time, six times over: no block is ever written by another thread, no request is refused,
/// and the blocks they freed are gone from the arena's count. (On the code whose default lock on
/// wasm32 was decided by `cfg(target_feature = "atomics")` alone, which stable rustc never sets,
/// the arena had no lock here: the first call with two threads trapped or looped.)
#[test]
fn threads_sharing_one_arena_never_share_a_block() {
    let process = Process::new();
    let (mut store, instance) = process.instance().expect("guest instantiates");
    let export = |store: &mut Store<WasiP1Ctx>, name: &str| {
        let func = instance.get_typed_func::<(), i64>(&mut *store, name);
        func.unwrap()
            .call(&mut *store, ())
            .expect("the export runs")
    };
    let initialize = instance.get_typed_func::<(), ()>(&mut store, "_initialize");
    initialize
        .unwrap()
        .call(&mut store, ())
        .expect("constructors run");
    let hammer = instance
        .get_typed_func::<(i32, i32), i64>(&mut store, "hammer")
        .unwrap();
    let live_before = export(&mut store, "arena_live_blocks");
    for (call, threads) in [2, 4, 4, 4, 4, 4].into_iter().enumerate() {
        let wrong = hammer.call(&mut store, (threads, 20_000));
        let ended = process.join_all();
        let wrong = wrong.expect("hammer runs");
        ended.expect("every guest thread ends cleanly");
        assert_eq!(wrong, 0, "call {call}: bytes written by another thread");
        assert_eq!(
            export(&mut store, "arena_failed"),
            0,
            "call {call}: refusals"
        );
    }
    // std's own records of finished threads may stay behind; the workers' blocks (up to 48 per
    // thread at a time) may not.
    let live_after = export(&mut store, "arena_live_blocks");
    assert!(
        live_after <= live_before + 24,
        "{live_before} blocks live before the calls, {live_after} after"
    );
    assert_eq!(
        process.next_thread_id.load(Ordering::Relaxed),
        1 + 1 + 5 * 3,
        "the guest started every thread through the host"
    );
    println!(
        "4 threads, 20,000 steps each, 6 times: {} fuel left of {FUEL} in the main thread",
        store.get_fuel().unwrap()
    );
}
