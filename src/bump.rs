//! The bump core: a cursor bumping through holes of free lines, and resets that only rewind it.
//!
//! Owns every decision about where a block goes: the fast path (bump within the current hole),
//! counting what was bumped on its lines, LIFO give-back and in-place `realloc`, finding the next
//! hole when the current one runs out (the slow paths, in [`holes`]: next-fit over free lines
//! below the peak, then first-fit from the start, before the peak moves up and the region grows),
//! host buffers (uncounted, and never reused before the next invocation), checkpoints and resets,
//! and the counters behind [`Stats`].
//!
//! The blocks bumped since the cursor last moved elsewhere, `run_start..cursor`, are the *run*:
//! live, and not yet in the line table. The fast paths work on the run alone (a bump, a LIFO free
//! or an in-place resize of its last block moves only the cursor; a free of its first block moves
//! only its start, so blocks freed in the order they came never reach the table); a free inside
//! the run counts the blocks before it and leaves the rest the run; whatever reads the table or
//! moves the cursor elsewhere counts the run first, as one span (see [`Bump::flush`]). Counting
//! whole runs instead of single blocks is what keeps the table off the allocation fast path.
//!
//! Why every reset is safe: a line is handed out again only when its count is zero (no counted
//! block overlaps it), it lies at or past `host_end` (no host buffer of this invocation is in it),
//! and the run has been counted. A reset just moves the cursor back; live blocks stay where they
//! are and the search skips their lines. So a reset is O(1) whatever was allocated and whatever is
//! still live.
//!
//! Must never: lock, claim `Sync`, allocate, panic (the global wrapper calls it with its lock held;
//! arithmetic on sizes is checked), or hand out a byte of a live block or an unexpired host buffer.
//!
//! Memory is addressed as *offsets* from `base`, the region's base; pointers are made with
//! `wrapping_add` on that base so they keep its provenance (Miri checks this). A fresh core is all
//! zeroes, so a `static` arena costs no initialised data in a flare's `.wasm`.

mod holes;

use core::alloc::Layout;
use core::ptr;

use crate::lines::{LineTable, line_at_or_after, line_of, line_start};
use crate::region::{MIN_ALIGN, Region};
use crate::scope::{Checkpoint, CheckpointError, Reset};
use crate::stats::Stats;

/// Byte written over freed memory in debug builds (and with the `poison` feature).
pub const POISON_BYTE: u8 = 0xDE;

const POISON: bool = cfg!(any(debug_assertions, feature = "poison"));

/// The offset the slow paths answer when a request cannot be placed (no offset is this large: the
/// region is at most `isize::MAX` bytes). Not an `Option`, which would cost the fast paths a stack
/// frame on wasm32 to receive it.
const NOWHERE: usize = usize::MAX;

/// The bytes a block of `size` bytes takes: rounded up to [`MIN_ALIGN`], at least one word, so that
/// no two blocks share an address. (A Layout's size is at most `isize::MAX`: no overflow.)
#[inline(always)]
fn block_size(size: usize) -> usize {
    ((size + MIN_ALIGN - 1) & !(MIN_ALIGN - 1)).max(MIN_ALIGN)
}

/// [`block_size`] of any size: `None` where rounding up would overflow.
#[inline(always)]
fn round_size(size: usize) -> Option<usize> {
    (size <= usize::MAX - (MIN_ALIGN - 1)).then(|| block_size(size))
}

/// A misuse seen in a call that cannot panic: reported by the wrappers after they unlock (debug
/// builds only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Misuse {
    /// A free (or realloc) of a block whose lines held fewer live words than it: a double free,
    /// or a layout other than the block's. (Seen when its lines are otherwise short of live words,
    /// as when it is alone in them; not when its neighbours' words make up the difference.)
    NotLive,
    /// A free (or realloc) of a pointer outside the arena's region: not one of its blocks.
    NotOurs,
}

impl Misuse {
    /// The debug panic for it; callers holding a lock must release it first.
    #[cold]
    #[track_caller]
    pub(crate) fn report(self) {
        match self {
            Misuse::NotLive => panic!(
                "flare-arena: a block was freed that was not live (double free, or a layout other than its own)"
            ),
            Misuse::NotOurs => panic!(
                "flare-arena: a pointer was freed or resized that this arena never handed out"
            ),
        }
    }
}

/// Single-threaded allocator over one [`Region`].
pub(crate) struct Bump<G: Region> {
    region: G,
    /// The region base; null until the region answers.
    base: *mut u8,
    /// The current hole is `cursor..limit`: free bytes, bumped through by the fast path. The run,
    /// `run_start..cursor`, is live blocks not yet counted in the table.
    /// Invariant: `host_end <= run_start <= cursor <= limit <= min(peak, line_start(lines.len()))`.
    run_start: usize,
    cursor: usize,
    limit: usize,
    lines: LineTable,
    /// End of the last host buffer of this invocation: no host buffer of this invocation lies at
    /// or past it, and nothing below it is reused before the next invocation.
    host_end: usize,
    /// The furthest any hole has reached (a hole runs past it at most what `holes::HOLE_LINES`
    /// allows past the request that opened it). Lines from `line_at_or_after(peak)` on have never
    /// been used. Kept in the slow paths only.
    peak: usize,
    /// Blocks allocated and not freed.
    live_blocks: usize,
    /// With `run_start`, the table's live bytes and `host_bytes`, the bytes reclaimed in this
    /// invocation (see [`Bump::reclaimed`]); moved wherever a run starts elsewhere (the bytes
    /// in between neither died nor were handed out), and where a block grows into free lines.
    jumped: usize,
    /// Bytes of this invocation's host buffers: reclaimed when it ends.
    host_bytes: usize,
    /// Bytes reclaimed in the invocations before this one.
    reclaimed_before: u64,
    /// A free or realloc of a pointer outside the region was seen (debug builds only).
    stray_pointer: bool,
    invocation: u32,
    resets: u64,
    failed: u64,
    refused: u64,
    recycled: u64,
}

impl<G: Region> Bump<G> {
    /// A core over `region`; nothing is asked of the region until the first allocation.
    pub(crate) const fn new(region: G) -> Self {
        Bump {
            region,
            base: ptr::null_mut(),
            run_start: 0,
            cursor: 0,
            limit: 0,
            lines: LineTable::new(),
            host_end: 0,
            peak: 0,
            live_blocks: 0,
            jumped: 0,
            host_bytes: 0,
            reclaimed_before: 0,
            stray_pointer: false,
            invocation: 0,
            resets: 0,
            failed: 0,
            refused: 0,
            recycled: 0,
        }
    }

    /// Takes the misuse seen since the last call, for the wrapper to report once unlocked.
    pub(crate) fn take_misuse(&mut self) -> Option<Misuse> {
        if core::mem::take(&mut self.lines.misused) {
            return Some(Misuse::NotLive);
        }
        core::mem::take(&mut self.stray_pointer).then_some(Misuse::NotOurs)
    }

    /// Allocates a block: it is live until `dealloc`. Null on failure.
    #[inline]
    pub(crate) fn alloc(&mut self, layout: Layout) -> *mut u8 {
        let size = block_size(layout.size());
        let offset = self.cursor;
        if layout.align() > MIN_ALIGN || size > self.limit - offset {
            return self.alloc_slow(size, layout.align());
        }
        // The block joins the run.
        self.cursor = offset + size;
        self.live_blocks += 1;
        self.base.wrapping_add(offset)
    }

    #[cold]
    #[inline(never)]
    fn alloc_slow(&mut self, size: usize, align: usize) -> *mut u8 {
        let offset = self.place(size, align, usize::MAX);
        if offset == NOWHERE {
            return ptr::null_mut();
        }
        self.live_blocks += 1;
        self.base.wrapping_add(offset)
    }

    /// Counts the run in the line table, as one span: from here on the table is exact.
    #[inline(always)]
    fn flush(&mut self) {
        if self.run_start != self.cursor {
            self.flush_run();
        }
    }

    #[inline(never)]
    fn flush_run(&mut self) {
        self.count(self.run_start, self.cursor - self.run_start);
        self.run_start = self.cursor;
    }

    /// Allocates an uncounted host buffer: valid until the next invocation, never reused before it.
    /// Its end stays at or below `max_end`. Returns its offset, or `None` (no block changes; see
    /// [`Bump::place`]).
    #[inline]
    pub(crate) fn alloc_host(&mut self, size: usize, max_end: usize) -> Option<usize> {
        let size = round_size(size)?;
        // Host buffers are not counted: the run ends here.
        self.flush();
        let mut offset = self.cursor;
        if size > self.limit.min(max_end).saturating_sub(offset) {
            offset = self.place(size, MIN_ALIGN, max_end);
            if offset == NOWHERE {
                return None;
            }
        } else {
            self.cursor = offset + size;
        }
        self.host_end = self.cursor;
        self.run_start = self.cursor;
        // (No overflow: this invocation's host buffers are disjoint bytes of the region.)
        self.host_bytes += size;
        Some(offset)
    }

    /// Counts a refused request (also one refused before it reached the core: a host `alloc` of
    /// size <= 0). (One copy of the count: inlined, each refusal cost 17 bytes.)
    #[cold]
    #[inline(never)]
    pub(crate) fn refuse(&mut self) -> usize {
        self.failed += 1;
        NOWHERE
    }

    /// Offset of `ptr` from the base, if it is inside the usable lines (else `None`: see
    /// [`Bump::is_ours`]).
    #[inline(always)]
    fn offset_of(&mut self, ptr: *mut u8) -> Option<usize> {
        let offset = ptr.addr().wrapping_sub(self.base.addr());
        self.is_ours(offset).then_some(offset)
    }

    /// Whether `offset` is inside the usable lines. A pointer outside them was never handed out:
    /// freeing or resizing it is a misuse, noted here for a debug panic once unlocked.
    #[inline(always)]
    fn is_ours(&mut self, offset: usize) -> bool {
        let ours = offset < line_start(self.lines.len());
        if cfg!(debug_assertions) && !ours {
            self.stray_pointer = true;
        }
        ours
    }

    /// Frees a block. A block ending at the cursor gives its bytes back at once, and so does the
    /// run's first block; the lines of any other become reusable when nothing else live overlaps
    /// them.
    #[inline]
    pub(crate) fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        let offset = ptr.addr().wrapping_sub(self.base.addr());
        let size = block_size(layout.size());
        if offset >= self.run_start {
            if offset.wrapping_add(size) == self.cursor {
                // The run's last block: never counted, the cursor just steps back over it.
                self.cursor = offset;
            } else if offset == self.run_start && size <= self.cursor - offset {
                // The run's first block (blocks freed in the order they came): never counted,
                // the run now starts after it.
                self.run_start = offset + size;
            } else {
                return self.dealloc_counted(offset, size);
            }
            self.live_blocks -= 1;
            if POISON {
                self.poison(offset, size);
            }
            return;
        }
        self.dealloc_counted(offset, size);
    }

    /// `dealloc` of any block but the run's first and last.
    #[inline(never)]
    fn dealloc_counted(&mut self, offset: usize, size: usize) {
        if !self.is_ours(offset) {
            return; // ignored (a debug panic once unlocked)
        }
        if offset >= self.run_start && offset < self.cursor && size <= self.cursor - offset {
            // A block inside the run: the blocks before it are counted, the run goes on after it,
            // and its own bytes are never counted. (So blocks freed in the order they came cost
            // the table nothing: the next one is the run's first.)
            if offset != self.run_start {
                self.count(self.run_start, offset - self.run_start);
            }
            self.run_start = offset + size;
        } else {
            // `uncount`, with a one-line span's work inline: this is every free's path, and the
            // slow paths that also uncount keep the out-of-line call (smaller code).
            self.lines.release(offset, size);
            if offset + size == self.cursor {
                // The hole now starts at the block (it ended at the cursor, and was live until
                // now).
                self.cursor = offset;
                self.run_start = offset;
            }
        }
        self.live_blocks = self.live_blocks.wrapping_sub(1);
        if POISON {
            self.poison(offset, size);
        }
    }

    /// The bytes `offset..offset + size` are a counted block's now.
    #[inline(always)]
    fn count(&mut self, offset: usize, size: usize) {
        self.lines.recount(offset, size, true);
    }

    /// The bytes `offset..offset + size` of a counted block are dead now.
    #[inline(always)]
    fn uncount(&mut self, offset: usize, size: usize) {
        self.lines.recount(offset, size, false);
    }

    /// Resizes a block: in place when it shrinks or the bytes it grows into are free (the rest of
    /// the hole for a block ending at the cursor, free lines after any other); otherwise by
    /// allocate, copy and free. Null (and the old block untouched) on failure.
    ///
    /// # Safety
    /// `ptr` must be a live counted block of this core allocated with `layout`.
    #[inline]
    pub(crate) unsafe fn realloc(
        &mut self,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
    ) -> *mut u8 {
        let offset = ptr.addr().wrapping_sub(self.base.addr());
        if let Some(new) = round_size(new_size) {
            // The run's last block (never counted): only the cursor moves.
            if offset >= self.run_start
                && offset.wrapping_add(block_size(layout.size())) == self.cursor
                && new <= self.limit - offset
            {
                self.cursor = offset + new;
                return ptr;
            }
        }
        // SAFETY: forwarded from this function's contract.
        unsafe { self.realloc_slow(ptr, layout, new_size) }
    }

    /// `realloc` when the block is not the last one, or the hole is too small.
    ///
    /// # Safety
    /// As for [`Bump::realloc`].
    #[cold]
    #[inline(never)]
    unsafe fn realloc_slow(&mut self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let (Some(offset), Some(new)) = (self.offset_of(ptr), round_size(new_size)) else {
            self.refuse();
            return ptr::null_mut();
        };
        self.flush();
        let old = block_size(layout.size());
        if self.resize_in_place(offset, old, new) {
            return ptr;
        }
        // (No block is larger than the region, itself at most isize::MAX bytes: a size the
        // caller's layout could not describe fails here.)
        let new_ptr = self.alloc_slow(new, layout.align());
        if !new_ptr.is_null() {
            // SAFETY: the caller guarantees `ptr` is a live block of `layout.size()` bytes;
            // `new_ptr` is a fresh block of `new_size` bytes placed in free lines or the current
            // hole, so it does not overlap the old one; both derive from the region base.
            unsafe { ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size)) };
            // The old block was counted (flushed above); the new one is the run.
            self.uncount(offset, old);
            self.live_blocks -= 1;
            if POISON {
                self.poison(offset, old);
            }
        }
        new_ptr
    }

    /// Resizes the counted block `offset..offset + old` to `new` bytes where it is, if the bytes
    /// it grows into are free: true if it did.
    fn resize_in_place(&mut self, offset: usize, old: usize, new: usize) -> bool {
        let (old_end, Some(new_end)) = (offset + old, offset.checked_add(new)) else {
            return false;
        };
        let at_cursor = old_end == self.cursor;
        if new > old
            && !if at_cursor {
                self.extend_hole(new_end, true)
            } else {
                self.free_after(offset, old_end, new_end)
            }
        {
            return false;
        }
        // Only the bytes gained (or lost) change the table; a shrunk tail is poisoned in debug
        // builds, and given back at once when the block ends at the cursor.
        if new != old {
            let grew = new > old;
            let (from, len) = if grew {
                (old_end, new - old)
            } else {
                (new_end, old - new)
            };
            self.lines.recount(from, len, grew);
            if POISON && !grew {
                self.poison(from, len);
            }
        }
        if at_cursor {
            self.cursor = new_end;
            self.run_start = new_end;
        }
        true
    }

    /// A checkpoint at the cursor: where a [`Bump::reset_to`] will take it back to.
    pub(crate) fn checkpoint(&mut self, owner: usize) -> Checkpoint {
        Checkpoint {
            owner,
            invocation: self.invocation,
            offset: self.cursor,
            reclaimed: self.reclaimed(),
        }
    }

    /// Rewinds the cursor to `cp` (never below `host_end`): whatever was freed since is reusable;
    /// live blocks stay where they are and are skipped. Refuses checkpoints of another arena or of
    /// an earlier invocation (nothing changes).
    pub(crate) fn reset_to(&mut self, cp: Checkpoint, owner: usize) -> Reset {
        self.flush();
        let error = if cp.owner != owner {
            CheckpointError::ForeignArena
        } else if cp.invocation != self.invocation {
            CheckpointError::Stale
        } else {
            if self.cursor != cp.offset {
                // Nothing after `cp` in its line is known to be dead: start at the next line. (When
                // everything since was given back, the cursor is at `cp` already and keeps its hole.)
                let target = line_at_or_after(cp.offset.max(self.host_end));
                self.move_cursor(line_start(target.min(self.lines.len())));
            }
            return self.rewound(self.reclaimed().wrapping_sub(cp.reclaimed));
        };
        self.refused += 1;
        Reset::Refused(error)
    }

    /// Starts a new invocation: host buffers expire, the cursor goes back to the start of the
    /// region, and every line that nothing live overlaps is reusable.
    pub(crate) fn reset_invocation(&mut self) -> Reset {
        self.flush();
        self.host_end = 0;
        self.host_bytes = 0;
        self.invocation = self.invocation.wrapping_add(1);
        let reclaimed = self.reclaimed();
        self.reclaimed_before = self.reclaimed_before.wrapping_add(reclaimed as u64);
        // An empty hole at 0, and the count of bytes reclaimed starting again from 0 there.
        // (Not `move_cursor`: its call to `start_run` made the 32-byte alloc+free loop after
        // the reset 30% slower in wasmtime, though the loop's own wasm stayed the same.)
        self.jumped = self.lines.live_bytes;
        (self.run_start, self.cursor, self.limit) = (0, 0, 0);
        self.rewound(reclaimed)
    }

    /// Bytes reclaimed in this invocation: blocks freed and tails of blocks shrunk, but for those
    /// given back at the cursor, and (once it has ended) its host buffers. Worked out, not
    /// counted, so that no fast path pays for it: the run's start moves up over each block freed
    /// from the run's front or middle, and over each span counted into the table, whose live
    /// bytes go up by as much (and down by a block's bytes when it is freed). So `run_start -
    /// live_bytes - host_bytes` rises by exactly the bytes freed, but where a run starts
    /// elsewhere or a block grows into free lines, which `jumped` evens out; a block given back
    /// at the cursor takes the run's start (or only the cursor) back with it, and counts nothing.
    /// (Wrapping: on wasm32, an invocation that reclaims 4 GiB or more counts modulo 4 GiB.)
    fn reclaimed(&self) -> usize {
        (self.jumped.wrapping_add(self.run_start))
            .wrapping_sub(self.lines.live_bytes)
            .wrapping_sub(self.host_bytes)
    }

    fn rewound(&mut self, reclaimed: usize) -> Reset {
        self.resets += 1;
        Reset::Rewound {
            reclaimed,
            live: self.lines.live_bytes,
            live_blocks: self.live_blocks,
        }
    }

    /// Starts a run at `offset`, away from the current one: the bytes in between neither died
    /// nor were handed out, so the count of bytes reclaimed must not move. (Out of line: it is
    /// only ever on slow paths, and inlined it cost 35 bytes at each of them.)
    #[inline(never)]
    fn start_run(&mut self, offset: usize) {
        self.jumped = self
            .jumped
            .wrapping_add(self.run_start.wrapping_sub(offset));
        self.run_start = offset;
    }

    /// Lines that live blocks overlap, the run's included.
    fn live_lines(&self) -> usize {
        let used = self.lines.used_lines();
        if self.run_start == self.cursor {
            return used;
        }
        // The lines counting the run would make used: those between its ends (which hold nothing
        // else) and its end lines if they hold nothing yet.
        let (first, end) = (line_of(self.run_start), line_at_or_after(self.cursor));
        let free = |line: usize| usize::from(self.lines.count_of(line) == 0);
        let ends = free(first) + if end - 1 > first { free(end - 1) } else { 0 };
        used.wrapping_add(ends)
            .wrapping_add((end - first).saturating_sub(2))
    }

    /// An empty hole at `offset`: the next allocation searches from there.
    fn move_cursor(&mut self, offset: usize) {
        self.start_run(offset);
        self.cursor = offset;
        self.limit = offset;
    }

    /// Fills `len` bytes at `offset` with [`POISON_BYTE`] (debug builds and the `poison` feature).
    fn poison(&mut self, offset: usize, len: usize) {
        // SAFETY: callers pass bytes inside the usable lines that nothing live uses: a block just
        // freed (or its tail), or a hole of free lines below the peak.
        unsafe { ptr::write_bytes(self.base.wrapping_add(offset), POISON_BYTE, len) };
    }

    /// Address of offset 0 (0 before the region has memory).
    pub(crate) fn base_addr(&self) -> usize {
        self.base.addr()
    }

    /// Pointer to `len` bytes at `offset` if they lie in the part of the region handed out so far.
    pub(crate) fn used_bytes(&self, offset: usize, len: usize) -> Option<*mut u8> {
        let end = offset.checked_add(len)?;
        // Before the region answers, `base` is null and not even an empty slice may start there.
        (end <= self.peak && !self.base.is_null()).then(|| self.base.wrapping_add(offset))
    }

    /// A snapshot of the counters.
    pub(crate) fn stats(&self) -> Stats {
        let peak = self.peak;
        Stats {
            capacity: line_start(self.lines.len()),
            limit: line_start(LineTable::lines_in(self.region.limit())),
            peak,
            live_blocks: self.live_blocks,
            live_bytes: (self.lines.live_bytes).wrapping_add(self.cursor - self.run_start),
            live_lines: self.live_lines(),
            lines_recycled: self.recycled,
            bytes_reclaimed: (self.reclaimed_before).wrapping_add(self.reclaimed() as u64),
            resets: self.resets,
            failed: self.failed,
            refused: self.refused,
        }
    }
}
