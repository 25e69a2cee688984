//! The lock around a `GlobalArena`'s core, and which one it is by default.
//!
//! A `GlobalArena` is generic over any [`lock_api::RawMutex`]. The default depends on the target:
//! - wasm32 *without* the `atomics` target feature has no threads at all (no shared memory, so no
//!   second thread can ever run on this memory): [`NoThreadsLock`], a flag that is set while the core
//!   is in use and traps if it is taken twice. That is all exclusion needs there, and it is what std
//!   itself does on such targets ("this platform has no threads"). It costs a load, a branch and
//!   two stores per call, where a spin lock's compare-and-swap loop costs several times that.
//! - everywhere else (native, wasm32 with `atomics`): [`spin::Mutex`], a real lock.
//!
//! Must never: allocate, or let two holders in at once.

use core::cell::Cell;

use lock_api::{GuardNoSend, RawMutex};

/// The lock a `GlobalArena` uses when none is named.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
pub type DefaultLock = NoThreadsLock;
/// The lock a `GlobalArena` uses when none is named.
#[cfg(not(all(target_arch = "wasm32", not(target_feature = "atomics"))))]
pub type DefaultLock = spin::Mutex<()>;

/// A lock for a target without threads: a flag, checked so that taking it twice (re-entering the
/// arena from inside itself, which this crate never does) stops the program instead of aliasing.
///
/// It is `Sync` only on wasm32 without the `atomics` target feature, where no second thread exists;
/// elsewhere it can still guard a `GlobalArena` that one thread owns (tests use it that way).
#[derive(Debug)]
pub struct NoThreadsLock(Cell<bool>);

// SAFETY: this impl exists only on wasm32 without the `atomics` target feature. There, a module's
// memory cannot be shared (shared memories need `atomics`), so every access to a `NoThreadsLock` comes
// from the one thread that runs the module: sharing `&NoThreadsLock` between "threads" shares it with
// nobody.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
unsafe impl Sync for NoThreadsLock {}

// SAFETY: `lock` succeeds only when the flag was clear and sets it; `try_lock` likewise; `unlock` clears
// it. So while it is held, any other `lock` (which on this lock's targets can only be a re-entrant
// one: there is one thread) traps instead of acquiring, and `try_lock` fails: the mutex is
// exclusive. `Cell` makes it `!Sync` wherever threads may exist (see the `Sync` impl above).
unsafe impl RawMutex for NoThreadsLock {
    #[allow(clippy::declare_interior_mutable_const)] // the trait's way to make a fresh lock
    const INIT: Self = NoThreadsLock(Cell::new(false));
    type GuardMarker = GuardNoSend;

    #[inline]
    fn lock(&self) {
        if self.0.replace(true) {
            locked_twice();
        }
    }

    #[inline]
    fn try_lock(&self) -> bool {
        !self.0.replace(true)
    }

    #[inline]
    unsafe fn unlock(&self) {
        self.0.set(false);
    }

    #[inline]
    fn is_locked(&self) -> bool {
        self.0.get()
    }
}

/// Taking a held `NoThreadsLock` again: on wasm32 there is no other thread that could release it,
/// so waiting would hang forever; stop instead.
#[cold]
fn locked_twice() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    panic!("flare-arena: NoThreadsLock taken twice");
}
