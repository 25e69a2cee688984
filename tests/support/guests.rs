//! Builds the guests of `tests/guests` with `cargo` (flares for `wasm32-unknown-unknown`, and the
//! same flares for `wasm32-wasip1` or `wasm32v1-none`, the component for `wasm32-wasip2`), in a
//! target directory of their own (`target/guests`) so the outer build's lock is never contended.
//! Adds the target with rustup first if it is missing, so a fresh machine needs no manual step.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

pub const TARGET: &str = "wasm32-unknown-unknown";

/// Guests are built one at a time within a process; cargo's own lock covers other processes.
static BUILDING: Mutex<()> = Mutex::new(());

/// The repository's root (this crate lives in `tests/support`).
pub fn repo() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.join("../..").canonicalize().unwrap_or(here)
}

pub fn target_dir() -> PathBuf {
    repo().join("target").join("guests")
}

/// Makes sure the flares' wasm target is installed for the toolchain this repo pins.
pub fn ensure_wasm_target() -> Result<(), String> {
    ensure_target(TARGET)
}

/// Makes sure `target` is installed for the toolchain this repo pins.
pub fn ensure_target(target: &str) -> Result<(), String> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(repo())
        .output();
    let Ok(installed) = installed else {
        return Ok(()); // no rustup: assume a toolchain that has the target; cargo will say if not
    };
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|l| l.trim() == target)
    {
        return Ok(());
    }
    eprintln!("flare-arena: adding the {target} target with rustup (needed to build guests)");
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .current_dir(repo())
        .status();
    match status {
        Ok(s) if s.success() => Ok(()),
        _ => Err(format!(
            "could not add the {target} target; run `rustup target add {target}` in {}",
            repo().display()
        )),
    }
}

/// Builds guest `package` with allocator `feature` under cargo profile `profile` and returns the
/// path of its `.wasm` (copied to `target/guests/out/<package>-<feature>[-<profile>].wasm`).
pub fn build(package: &str, feature: &str, profile: &str) -> PathBuf {
    try_build(package, feature, profile).unwrap_or_else(|e| panic!("{e}"))
}

pub fn try_build(package: &str, feature: &str, profile: &str) -> Result<PathBuf, String> {
    build_for(TARGET, package, feature, profile)
}

/// Builds guest `package` for `target` (a wasm32 target); the `.wasm` is copied to
/// `target/guests/out/<package>-<feature>[-<profile>][-<target>].wasm`.
pub fn build_for(
    target: &str,
    package: &str,
    feature: &str,
    profile: &str,
) -> Result<PathBuf, String> {
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let target_dir = target_dir();
    cargo_build(
        &repo().join("tests").join("guests"),
        target,
        &[
            "--profile",
            profile,
            "-p",
            package,
            "--no-default-features",
            "--features",
            feature,
        ],
        &target_dir,
    )
    .map_err(|e| format!("building guest {package} ({feature}, {profile}) failed:\n{e}"))?;
    let built = target_dir
        .join(target)
        .join(if profile == "dev" { "debug" } else { profile })
        .join(format!("{package}.wasm"));
    let out_dir = target_dir.join("out");
    std::fs::create_dir_all(&out_dir).map_err(|e| e.to_string())?;
    let mut suffix = if profile == "release" {
        String::new()
    } else {
        format!("-{profile}")
    };
    if target != TARGET {
        suffix += &format!("-{target}");
    }
    let out = out_dir.join(format!("{package}-{feature}{suffix}.wasm"));
    std::fs::copy(&built, &out).map_err(|e| format!("copying {}: {e}", built.display()))?;
    Ok(out)
}

/// Builds example `name` of this repository (a `cdylib`) for `target`, release; its `.wasm`.
pub fn build_example(target: &str, name: &str) -> Result<PathBuf, String> {
    let _one_at_a_time = BUILDING.lock().unwrap_or_else(|e| e.into_inner());
    let target_dir = target_dir().join("examples");
    cargo_build(
        &repo(),
        target,
        &["--release", "--example", name],
        &target_dir,
    )
    .map_err(|e| format!("building example {name} for {target} failed:\n{e}"))?;
    Ok(target_dir
        .join(target)
        .join("release/examples")
        .join(format!("{name}.wasm")))
}

/// `cargo build --target <target>` in `dir` with `args`, into `target_dir`, after adding the
/// target if it is missing; cargo's stderr on failure.
fn cargo_build(dir: &Path, target: &str, args: &[&str], target_dir: &Path) -> Result<(), String> {
    ensure_target(target)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(&cargo)
        .current_dir(dir)
        .args(["build", "--quiet", "--target", target])
        .args(args)
        .arg("--target-dir")
        .arg(target_dir)
        // Flags meant for the native build (coverage, sanitizers) must not reach the wasm build.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .map_err(|e| format!("could not run {cargo}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// Size of a file in bytes.
pub fn size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// Every allocator a guest can be built on: (cargo feature of the guests, name in reports).
/// The benches, the demo and the tests take their lists from here.
pub const ALLOCATORS: [(&str, &str); 5] = [
    ("arena", "flare-arena"),
    ("dlmalloc", "dlmalloc (Rust default)"),
    ("talc", "talc"),
    ("lol-free", "lol_alloc FreeList"),
    ("lol-leak", "lol_alloc Leaking"),
];

/// The report name of an allocator feature.
pub fn allocator_name(feature: &str) -> &'static str {
    ALLOCATORS
        .iter()
        .find(|(f, _)| *f == feature)
        .map_or("?", |(_, name)| name)
}
