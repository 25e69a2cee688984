//! The host memory ABI (`../shared/ABI.md`): packed `(ptr, len)` results, `alloc` handles, and how a
//! native mock host finds the bytes behind them.
//!
//! Owns the translation between arena offsets and the `i32` handles the host sees: on wasm32 a
//! handle is the absolute linear-memory address; on native targets, where a pointer does not fit
//! an `i32`, it is the offset from the region base (the region's first word is reserved, so no
//! handle is 0; core offsets start after it).
//!
//! Must never: panic, call a host import, or count a host buffer as live (host buffers are
//! transient by contract: valid until the next reset).

use crate::bump::{Bump, RESERVED};
use crate::region::Region;

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

/// The handle of the block at core offset `offset`, whose offset 0 is at `base_addr`.
fn handle_of(base_addr: usize, offset: usize) -> u32 {
    if cfg!(target_arch = "wasm32") {
        base_addr.wrapping_add(offset) as u32
    } else {
        (offset + RESERVED) as u32
    }
}

/// The core offset a handle names, if it can name one.
fn offset_of(base_addr: usize, handle: u32) -> Option<usize> {
    if cfg!(target_arch = "wasm32") {
        (handle as usize).checked_sub(base_addr)
    } else {
        (handle as usize).checked_sub(RESERVED)
    }
}

/// The largest core offset a host buffer may end at so that its handle is representable.
fn handle_limit() -> usize {
    if cfg!(target_arch = "wasm32") {
        usize::MAX
    } else {
        // Native handles are offsets returned as an `i32`: keep them non-negative.
        i32::MAX as usize - RESERVED
    }
}

/// The host's `alloc(size)`: 0 for `size <= 0` or when the block cannot be had; otherwise a
/// non-zero, 8-aligned handle to `size` bytes valid until the next reset.
pub(crate) fn guest_alloc<G: Region>(bump: &mut Bump<G>, size: i32) -> i32 {
    if size <= 0 {
        bump.refuse_bad_request();
        return 0;
    }
    match bump.alloc_transient(size as usize, handle_limit()) {
        Some(offset) => handle_of(bump.base_addr(), offset) as i32,
        None => 0,
    }
}

/// The bytes `handle .. handle + len` if they lie in the used part of the arena.
pub(crate) fn resolve<G: Region>(bump: &Bump<G>, handle: u32, len: usize) -> Option<*mut u8> {
    bump.used_bytes(offset_of(bump.base_addr(), handle)?, len)
}

/// Splits a packed result into a handle and length; `None` for 0 ("none").
pub(crate) fn unpack(packed: i64) -> Option<(u32, usize)> {
    let (ptr, len) = decode_ptr_len(packed);
    (packed != 0).then_some((ptr, len as usize))
}
