//! How a `GlobalArena` keeps its core exclusive, and which lock it uses by default.
//!
//! A `GlobalArena` locks through [`ArenaLock`], which every [`lock_api::RawMutex`] implements; the
//! default depends on the target:
//! - wasm32 code compiled *without* the `atomics` target feature has no threads at all: a module's
//!   memory cannot be shared unless all its code has `atomics`, so no second thread can ever run
//!   on it. The default there is [`NoThreads`], which does nothing: there is nobody to exclude.
//!   (std makes the same call on such targets: "this platform has no threads".) It is not a
//!   `RawMutex`, so it cannot guard anything but an arena, and an arena never takes its own lock
//!   twice.
//! - everywhere else (native, wasm32 with `atomics`, such as `wasm32-wasip1-threads`):
//!   [`spin::Mutex`], a real lock.
//!
//! Which wasm32 code has `atomics` is decided by the build script (`build.rs`): stable rustc
//! leaves the feature out of `cfg(target_feature)` even where the code has it, so the script
//! also reads the target's name and the flags rustc is given, and says
//! `flare_arena_wasm_single_thread` only when it rules the feature out.
//!
//! Must never: allocate, or let two threads hold a lock at once.

use core::cell::Cell;
use core::marker::PhantomData;

use lock_api::RawMutex;

/// What a `GlobalArena` locks with: any [`lock_api::RawMutex`], or [`NoThreads`].
///
/// # Safety
/// Between a call of `lock` and the matching `unlock`, no other thread may return from `lock` on
/// the same value. (A `GlobalArena` never calls `lock` twice without `unlock` in between on one
/// thread: nothing it does while locked can call back into it.)
pub unsafe trait ArenaLock {
    /// A lock in its unlocked state.
    const INIT: Self;
    /// Takes the lock, waiting for other threads if need be.
    fn lock(&self);
    /// Releases the lock.
    ///
    /// # Safety
    /// Only by the thread that holds it.
    unsafe fn unlock(&self);
}

// SAFETY: a `RawMutex` is exclusive (its own contract): `lock` returns on one thread at a time.
unsafe impl<R: RawMutex> ArenaLock for R {
    #[allow(clippy::declare_interior_mutable_const)] // the way a fresh lock is made
    const INIT: Self = <R as RawMutex>::INIT;

    #[inline]
    fn lock(&self) {
        RawMutex::lock(self);
    }

    #[inline]
    unsafe fn unlock(&self) {
        // SAFETY: forwarded: the caller holds the lock.
        unsafe { RawMutex::unlock(self) }
    }
}

/// The lock of a target without threads: it does nothing, because there is no other thread to
/// exclude. `Sync` only on wasm32 code without the `atomics` target feature, the one target where
/// that holds; elsewhere (natively, or on `wasm32-wasip1-threads`) an arena with it can be used,
/// but not shared, by the thread that owns it:
///
/// ```compile_fail
/// fn shared<T: Sync>(_: &T) {}
/// let arena: flare_arena::GlobalArena<flare_arena::NoThreads, flare_arena::SystemRegion> =
///     flare_arena::GlobalArena::with_region(flare_arena::SystemRegion::new(4096));
/// shared(&arena); // natively there may be threads: not `Sync`
/// ```
#[derive(Debug)]
pub struct NoThreads(PhantomData<Cell<()>>);

#[cfg(flare_arena_wasm_single_thread)]
// SAFETY: this impl exists only on wasm32 code without the `atomics` target feature, which the
// build script rules out from everything cargo says about the build (stable rustc hides the
// feature from `cfg`; see the module docs). A module's memory cannot be shared unless all its
// code has `atomics` (wasm-ld refuses a shared memory otherwise), so every access to a value in
// it comes from the one thread that runs the module: sharing `&NoThreads` shares it with nobody.
unsafe impl Sync for NoThreads {}

// SAFETY: `NoThreads` is `Sync` only where there are no threads (see above); elsewhere it is
// `!Sync`, so a value holding it is reached by one thread at a time. Either way no other thread can
// return from `lock` while one holds it, which is all `ArenaLock` asks.
unsafe impl ArenaLock for NoThreads {
    const INIT: Self = NoThreads(PhantomData);

    #[inline(always)]
    fn lock(&self) {}

    #[inline(always)]
    unsafe fn unlock(&self) {}
}

/// The lock a `GlobalArena` uses when none is named.
#[cfg(flare_arena_wasm_single_thread)]
pub type DefaultLock = NoThreads;
/// The lock a `GlobalArena` uses when none is named.
#[cfg(not(flare_arena_wasm_single_thread))]
pub type DefaultLock = spin::Mutex<()>;
