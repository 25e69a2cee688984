//! The host ABI under arbitrary values: host buffers from `alloc`, arguments passed with
//! `host_arg`, and every reader (`packed_bytes`, `packed_str`, `handle_bytes`) fed packed values
//! and handles from the exact to the absurd. A reader answers `Some` exactly when the bytes lie in
//! the part of the arena handed out so far, at the address the handle names; otherwise `None`,
//! never a panic. What was written through a handle reads back unchanged until the next
//! invocation, and a host `alloc` is refused only when the rest of the region cannot hold it.

use crate::model::{Choices, Global, base_of};
use flare_arena::abi::{decode_ptr_len, encode_ptr_len};
use flare_arena::{GlobalArena, LINE_BYTES};

/// Where the `len` bytes behind `handle` must be, if a reader may hand them out.
fn expected_addr(arena: &GlobalArena, handle: u32, len: usize) -> Option<usize> {
    let base = base_of(&mut Global(arena))?;
    let offset = (handle as usize).checked_sub(8)?;
    (offset.checked_add(len)? <= arena.stats().peak).then_some(base + offset)
}

/// Whether `len` more bytes can be refused: only when they do not fit between the line after this
/// invocation's last host value and the arena's limit.
fn may_refuse(arena: &GlobalArena, known: &[(i32, Vec<u8>)], len: usize) -> bool {
    let host_end = known
        .iter()
        .map(|(handle, content)| *handle as usize - 8 + content.len().next_multiple_of(8).max(8));
    let floor = host_end.max().unwrap_or(0).next_multiple_of(LINE_BYTES);
    len == 0 || len.next_multiple_of(8) > arena.stats().limit.saturating_sub(floor)
}

fn check_packed(arena: &GlobalArena, packed: i64, known: &[(i32, Vec<u8>)]) {
    let expected = match packed {
        0 => None, // "none"
        _ => {
            let (handle, len) = decode_ptr_len(packed);
            expected_addr(arena, handle, len as usize)
        }
    };
    // SAFETY: every byte of the used part was written (the region is
    // reserved zeroed and the model writes only `u8`s), and nothing writes while it is held.
    let bytes = unsafe { arena.packed_bytes(packed) };
    assert_eq!(
        bytes.map(|b| b.as_ptr() as usize),
        expected,
        "packed_bytes({packed:#x})"
    );
    // SAFETY: as for `packed_bytes` just above.
    let text = unsafe { arena.packed_str(packed) };
    match (bytes, text) {
        (None, None) => {}
        (Some(bytes), Some(text)) => match core::str::from_utf8(bytes) {
            Ok(valid) => assert_eq!(text, Ok(valid)),
            Err(_) => assert!(text.is_err(), "packed_str({packed:#x}) accepted bad UTF-8"),
        },
        (bytes, text) => panic!("packed_bytes {bytes:?} but packed_str {text:?}"),
    }
    if let Some(bytes) = bytes {
        for (handle, content) in known {
            if encode_ptr_len(*handle as u32, content.len() as u32) == packed {
                assert_eq!(bytes, &content[..], "a host value changed");
            }
        }
    }
}

/// Runs up to `budget` operations on a fresh `arena`.
pub fn run_abi(arena: &GlobalArena, rng: &mut impl Choices, budget: u64) {
    let mut known: Vec<(i32, Vec<u8>)> = Vec::new();
    for _ in 0..budget {
        if rng.exhausted() {
            break;
        }
        let used = arena.stats().peak as u64;
        match rng.below(12) {
            0..=2 => {
                let len = match rng.below(8) {
                    0 => rng.next() as i32,
                    1 => 1 + rng.below(5000) as i32,
                    _ => 1 + rng.below(100) as i32,
                };
                let handle = arena.guest_alloc(len);
                if handle != 0 {
                    assert!(len > 0 && handle % 8 == 0, "alloc({len}) = {handle}");
                    let content: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
                    // SAFETY: a fresh host buffer that nothing else references.
                    let target = unsafe { arena.handle_bytes(handle, content.len()) }
                        .expect("a fresh host buffer resolves");
                    assert_eq!(
                        Some(target.as_ptr() as usize),
                        expected_addr(arena, handle as u32, content.len())
                    );
                    target.copy_from_slice(&content);
                    known.push((handle, content));
                } else {
                    assert!(
                        len <= 0 || may_refuse(arena, &known, len as usize),
                        "alloc({len}) refused"
                    );
                }
            }
            3 => {
                let data: Vec<u8> = (0..rng.below(100)).map(|_| rng.below(256) as u8).collect();
                let (ptr, len) = arena.host_arg(&data);
                if ptr == 0 {
                    assert_eq!(len, 0);
                    assert!(
                        may_refuse(arena, &known, data.len()),
                        "host_arg of {} B",
                        data.len()
                    );
                } else {
                    assert_eq!(len as usize, data.len());
                    let packed = encode_ptr_len(ptr as u32, len as u32);
                    // SAFETY: bytes `host_arg` just wrote; read while nothing writes.
                    assert_eq!(unsafe { arena.packed_bytes(packed) }, Some(&data[..]));
                    known.push((ptr, data));
                }
            }
            4..=7 => {
                let packed = match rng.below(5) {
                    0 => rng.next() as i64,
                    1 | 2 if !known.is_empty() => {
                        let (handle, content) = &known[rng.below(known.len() as u64) as usize];
                        let (mut handle, mut len) = (*handle as u32, content.len() as u32);
                        if rng.chance(50) {
                            // Off by a little: past the end, before the start, misaligned.
                            handle = handle.wrapping_add(rng.below(33) as u32).wrapping_sub(16);
                            len = len.wrapping_add(rng.below(33) as u32).wrapping_sub(16);
                        }
                        encode_ptr_len(handle, len)
                    }
                    // Near and around the used part, including handles 0..8 (below offset 0).
                    _ => encode_ptr_len(rng.below(used + 64) as u32, rng.below(128) as u32),
                };
                check_packed(arena, packed, &known);
            }
            8 | 9 => {
                let handle = match rng.below(3) {
                    0 => rng.next() as i32,
                    _ => rng.below(used + 64) as i32,
                };
                let len = match rng.below(4) {
                    0 => rng.next() as usize,
                    1 => usize::MAX - rng.below(16) as usize,
                    _ => rng.below(256) as usize,
                };
                // SAFETY: only the address is kept; no reference outlives this line.
                let got = unsafe { arena.handle_bytes(handle, len) }.map(|b| b.as_ptr() as usize);
                assert_eq!(
                    got,
                    expected_addr(arena, handle as u32, len),
                    "handle_bytes({handle}, {len})"
                );
            }
            10 => {
                let (ptr, len) = (rng.next() as u32, rng.next() as u32);
                assert_eq!(decode_ptr_len(encode_ptr_len(ptr, len)), (ptr, len));
                let packed = rng.next() as i64;
                let (ptr, len) = decode_ptr_len(packed);
                assert_eq!(encode_ptr_len(ptr, len), packed);
            }
            _ => {
                assert!(!arena.reset().is_refused());
                known.clear(); // host values expire at the next invocation
            }
        }
        for (handle, content) in &known {
            // SAFETY: bytes this model wrote; the slice is dropped before any other
            // access.
            let bytes = unsafe { arena.handle_bytes(*handle, content.len()) };
            assert_eq!(
                bytes.as_deref(),
                Some(&content[..]),
                "host value at {handle}"
            );
        }
    }
}
