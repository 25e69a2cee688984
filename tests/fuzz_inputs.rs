//! Replays the fuzzers' checked-in inputs through the very code the fuzz targets run
//! (`tests/support/fuzzing.rs`): the seed corpus in `fuzz/corpus/<target>/` and every input that once
//! made a target fail, kept in `fuzz/regressions/<target>/`. A failure here names the file; replay
//! it under the fuzzer with `cargo +nightly-2026-05-20 fuzz run <target> <file>`.
#![cfg(not(miri))] // reads files; Miri runs the same interpreter from `tests/model.rs`

use flare_arena_testkit::fuzzing;
use flare_arena_testkit::model::Misuse;
use std::path::{Path, PathBuf};

fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join(kind)
        .join(target);
    let mut files: Vec<PathBuf> = match std::fs::read_dir(&dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect(),
        Err(_) => Vec::new(),
    };
    files.sort();
    files
}

fn replay(target: &str, run: impl Fn(&[u8])) {
    let corpus = inputs("corpus", target);
    assert!(
        corpus.len() >= 10,
        "fuzz/corpus/{target} holds {} inputs",
        corpus.len()
    );
    for path in corpus.iter().chain(&inputs("regressions", target)) {
        let data = std::fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data)));
        assert!(outcome.is_ok(), "{} fails", path.display());
    }
}

#[test]
fn arena_ops_inputs_pass() {
    replay("arena_ops", |data| {
        fuzzing::arena_ops(data, Misuse::of_this_build())
    });
}

#[test]
fn global_alloc_inputs_pass() {
    replay("global_alloc", |data| {
        fuzzing::global_alloc(data, Misuse::of_this_build())
    });
}

#[test]
fn abi_inputs_pass() {
    replay("abi", fuzzing::abi);
}
