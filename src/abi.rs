//! The host memory ABI: packed `(ptr, len)` results, `alloc` handles, and how a native mock host
//! finds the bytes behind them. The contract itself is `docs/ABI.md`.
//!
//! Owns the translation between core offsets and the `i32` handles the host sees: on wasm32 a
//! handle is the absolute linear-memory address (never 0: address 0 is never in a region); on native
//! targets, where a pointer does not fit an `i32`, it is the offset plus 8, so that no handle is 0.
//!
//! Must never: panic, call a host import, or count a host buffer as live (host buffers are transient
//! by contract: valid until the next invocation).
#![forbid(unsafe_code)]

use crate::bump::Bump;
use crate::region::{MIN_ALIGN, Region};

/// Packs `(ptr, len)` the way the host returns data: `ptr` in the high 32 bits, `len` in the low.
///
/// ```
/// use flare_arena::abi::{decode_ptr_len, encode_ptr_len};
/// let packed = encode_ptr_len(0x1000, 42);
/// assert_eq!(packed, 0x1000_0000_002a);
/// assert_eq!(decode_ptr_len(packed), (0x1000, 42));
/// ```
pub const fn encode_ptr_len(ptr: u32, len: u32) -> i64 {
    (((ptr as u64) << 32) | len as u64) as i64
}

/// Splits a packed host result into `(ptr, len)`; both halves are unsigned.
pub const fn decode_ptr_len(packed: i64) -> (u32, u32) {
    let packed = packed as u64;
    ((packed >> 32) as u32, packed as u32)
}

/// Native handles are offsets shifted by this, so that offset 0 is not handle 0 ("none").
const NATIVE_HANDLE_BIAS: usize = MIN_ALIGN;

/// The handle of the bytes at core offset `offset`, whose offset 0 is at `base_addr`.
fn handle_of(base_addr: usize, offset: usize) -> u32 {
    if cfg!(target_arch = "wasm32") {
        base_addr.wrapping_add(offset) as u32
    } else {
        (offset + NATIVE_HANDLE_BIAS) as u32
    }
}

/// The core offset a handle names, if it can name one.
fn offset_of(base_addr: usize, handle: u32) -> Option<usize> {
    if cfg!(target_arch = "wasm32") {
        (handle as usize).checked_sub(base_addr)
    } else {
        (handle as usize).checked_sub(NATIVE_HANDLE_BIAS)
    }
}

/// The largest core offset a host buffer may end at so that its handle is representable.
fn handle_limit() -> usize {
    if cfg!(target_arch = "wasm32") {
        usize::MAX
    } else {
        // Native handles are offsets returned as an `i32`: keep them non-negative.
        i32::MAX as usize - NATIVE_HANDLE_BIAS
    }
}

/// The guest's `alloc(size)`: 0 for `size <= 0` or when the buffer cannot be had; otherwise a
/// non-zero, 8-aligned handle to `size` bytes valid until the next invocation.
pub(crate) fn guest_alloc<G: Region>(bump: &mut Bump<G>, size: i32) -> i32 {
    if size <= 0 {
        bump.refuse();
        return 0;
    }
    match bump.alloc_host(size as usize, handle_limit()) {
        Some(offset) => handle_of(bump.base_addr(), offset) as i32,
        None => 0,
    }
}

/// The bytes `handle .. handle + len` if they lie in the part of the arena handed out so far.
pub(crate) fn resolve<G: Region>(bump: &Bump<G>, handle: u32, len: usize) -> Option<*mut u8> {
    bump.used_bytes(offset_of(bump.base_addr(), handle)?, len)
}

/// Splits a packed result into a handle and length; `None` for 0 ("none").
pub(crate) fn unpack(packed: i64) -> Option<(u32, usize)> {
    let (ptr, len) = decode_ptr_len(packed);
    (packed != 0).then_some((ptr, len as usize))
}
