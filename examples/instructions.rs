//! Runs one export of a guest flare `reps` times with argument `arg`, for counting instructions
//! with `valgrind --tool=callgrind` (deterministic on a noisy machine). Run it twice, with `reps`
//! and with 0, and subtract: what is left is the export's own work.
//!
//!     cargo build --release --example instructions
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!         target/release/examples/instructions bench arena bench_small 1000 100

use flare_arena_testkit::{guests, host};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [package, feature, export, arg, reps] = &args[..] else {
        eprintln!("usage: instructions PACKAGE FEATURE EXPORT ARG REPS");
        std::process::exit(2);
    };
    let engine = host::engine();
    // `WASM=path` runs a prebuilt guest instead (another version of the crate, say).
    let wasm = match std::env::var_os("WASM") {
        Some(path) => path.into(),
        None => guests::build(package, feature, "release"),
    };
    let module = host::load(&engine, &wasm).expect("guest");
    let mut flare = host::Flare::new(&engine, &module).expect("instance");
    let func = flare.export(export).expect("export");
    // One call outside the count's difference: compiles lazily-touched code, grows memory.
    flare.call(&func, arg.parse().unwrap()).expect("call");
    for _ in 0..reps.parse::<u32>().unwrap() {
        flare.call(&func, arg.parse().unwrap()).expect("call");
    }
}
