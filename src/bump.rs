//! The bump core: a cursor bumping through holes of free lines, and resets that only rewind it.
//!
//! Owns every decision about where a block goes: the fast path (bump within the current hole),
//! counting what was bumped on its lines, LIFO give-back and in-place `realloc`, finding the next
//! hole when the current one runs out (next-fit over free lines below the peak, then first-fit
//! from the start, before the peak moves up and the region grows), host buffers (uncounted, and
//! never reused before the next invocation), checkpoints and resets, and the counters behind
//! [`Stats`].
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

/// A hole that must go past the peak (the region's end, or a first-fit pass that found nothing
/// below it) is cut off this many lines (16 KiB), or a sixteenth of the peak if that is more, past
/// what the request needs (the block at the cursor growing past its hole takes a hole the same
/// way): the peak, and the region with it, grows by what is needed and some room for the next
/// requests, not by the whole free tail. Room in proportion to the peak because every time the
/// cursor comes back to the top, the first-fit pass reads the table from the start: with a
/// sixteenth, a read of the table (a byte per line) serves at least a sixteenth of the peak of
/// new allocations. (While live data grew through a fragmented region natively, 1,000-byte
/// allocations took 0.46, 1.9 and 6.4 µs each up to 16, 64 and 256 MiB when the room past the
/// peak was capped at [`HOLE_REACH`]; 68-75 ns at all three with a sixteenth.)
const HOLE_LINES: usize = 64;

/// Below the peak a hole runs to the next used line, to the peak, or this many lines (64 KiB)
/// past what the request needs (in a pass that may go past the peak, this and [`HOLE_LINES`]'s
/// room), whichever comes first; a hole never runs on past the peak while anything below it might
/// do. The reach bounds what a search reads: the first allocation after a reset, in a region whose
/// last big request left it mostly free, reads this much of the table, not all of it. (Holes cut
/// 16 lines past their request made talc's churn search on most allocations, 8-15% slower in
/// wasm; 64 lines, 3-4% slower than 256. Unbounded, the first allocation of every invocation read
/// the whole free region: the host `alloc` export after talc's churn took twice as long.)
const HOLE_REACH: usize = 256;

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
    /// The furthest any hole has reached (a hole runs past it at most what [`HOLE_LINES`] allows
    /// past the request that opened it). Lines from `line_at_or_after(peak)` on have never been
    /// used. Kept in the slow paths only.
    peak: usize,
    /// Blocks allocated and not freed.
    live_blocks: usize,
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
            invocation: 0,
            resets: 0,
            failed: 0,
            refused: 0,
            recycled: 0,
        }
    }

    /// Takes the misuse seen since the last call, for the wrapper to report once unlocked.
    pub(crate) fn take_misuse(&mut self) -> Option<Misuse> {
        core::mem::take(&mut self.lines.misused).then_some(Misuse::NotLive)
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
        Some(offset)
    }

    /// Places `size` bytes (a multiple of 8) aligned to `align` (a power of two) ending at or below
    /// `max_end`, and moves the cursor past them: at the cursor if the hole goes on over free lines
    /// right after its end (8-aligned requests; the run goes on), else (a new run starts with them)
    /// in the current hole if they fit there, else in the next hole that fits below the peak (from
    /// the current one on), else in the first hole from `host_end` on, growing the region if that
    /// hole is the one at its end; holes below the peak first, so that the touched part of the
    /// region follows what is live. [`NOWHERE`] if they cannot be placed: no block changes, and the
    /// region and its table change only where a growth stepped over someone else's pages and the
    /// room past them still fell short (the region keeps what it took there, for later requests).
    #[cold]
    #[inline(never)]
    fn place(&mut self, size: usize, align: usize, max_end: usize) -> usize {
        // Free lines right after the current hole, where the next-fit search below would start
        // anyway: the hole goes on over them, and so does the run (its blocks stay uncounted, so
        // freeing them in the order they came still costs the table nothing). (No overflow: an
        // offset is below the region's size, a block's size at most `isize::MAX`.)
        let offset = self.cursor;
        if align == MIN_ALIGN && offset + size <= max_end && self.extend_hole(offset + size, false)
        {
            return offset;
        }
        self.flush();
        let offset = self.fit(self.cursor, self.limit.min(max_end), size, align);
        if offset != NOWHERE {
            self.run_start = offset;
            self.cursor = offset + size;
            return offset;
        }
        // Next-fit below the peak; then from `host_end` on, which also grows the hole at the
        // region's end if nothing before it fits. (The current hole may end inside a host buffer's
        // last line only where a handle limit cut it: never search below `host_end`.)
        let floor = line_at_or_after(self.host_end);
        let pristine = line_at_or_after(self.peak);
        if self.take_hole(
            line_of(self.limit).max(floor),
            pristine,
            size,
            align,
            max_end,
            false,
        ) || self.take_hole(floor, usize::MAX, size, align, max_end, true)
        {
            return self.run_start;
        }
        self.refuse()
    }

    /// Where `size` bytes (at least 8) aligned to `align` would go in `from..to`, or [`NOWHERE`]
    /// if they do not fit. (Not an `Option`, which wasm32 returns through the stack: 20 bytes of
    /// stack handling in each caller.)
    fn fit(&self, from: usize, to: usize, size: usize, align: usize) -> usize {
        let padding = self.base.addr().wrapping_add(from).wrapping_neg() & (align - 1);
        let offset = from.wrapping_add(padding);
        // Neither the padding nor the block may wrap around the address space.
        if offset >= from && to.checked_sub(offset).is_some_and(|room| size <= room) {
            offset
        } else {
            NOWHERE
        }
    }

    /// Makes the first hole starting in lines `from..to` (it may run on past `to`) where the
    /// request fits below `max_end` the current one, with the request as its run: true if there
    /// was one. Without `grow`, holes end at the peak; with `grow`, they may run on past it, and
    /// the hole at the region's end (or, if the last line is used, the region's end itself), if
    /// it starts in `from..to`, is grown to fit, the region growing with it. (A next-fit pass that
    /// let a hole near the top run on past the peak raised it on every sweep of the cursor while
    /// holes below went unused: in a large region, the peak crept up for as long as the arena
    /// churned.)
    #[inline(never)]
    fn take_hole(
        &mut self,
        from: usize,
        to: usize,
        size: usize,
        align: usize,
        max_end: usize,
        grow: bool,
    ) -> bool {
        let mut line = from;
        loop {
            let len = self.lines.len();
            let start = match self.lines.next_free(line, to) {
                Some(start) => start,
                // (The hole at the region's end, if it starts in `from..to`.)
                None if grow && (line..to).contains(&len) => len,
                None => return false,
            };
            let hole_start = line_start(start);
            // (Before the region has answered, `base` is null and the padding is a guess: the
            // region grows, and the hole is looked at again with the real base.)
            let offset = self.fit(hole_start, usize::MAX, size, align);
            if offset == NOWHERE {
                return false;
            }
            // The lines the request needs from `start`; the hole runs on to the next used line,
            // the peak or `HOLE_REACH`, or (past the peak) to some room after the request.
            let needed = line_at_or_after(offset + size);
            let pristine = line_at_or_after(self.peak);
            let room = HOLE_LINES.max(pristine / 16);
            let reach = HOLE_REACH + usize::from(grow) * room;
            let end = self.lines.next_used(start, needed + reach, pristine);
            if grow && end == len && end < needed {
                // The hole runs to the region's end: grow the region, and look at it again. (Lines
                // of someone else's pages the growth stepped over are used from now on: the hole
                // then ends below them, and the search goes on above them.) Each round grows the
                // region or fails.
                if !self.grow_lines(needed) {
                    return false;
                }
                continue;
            }
            let end = end.min(if grow {
                (needed + room).max(pristine)
            } else {
                pristine
            });
            let limit = line_start(end).min(max_end);
            if offset + size <= limit {
                self.recycled += pristine.min(end).saturating_sub(start) as u64;
                if POISON {
                    let used_before = line_start(pristine.min(end)).saturating_sub(hole_start);
                    self.poison(hole_start, used_before);
                }
                self.run_start = offset;
                self.cursor = offset + size;
                self.limit = limit;
                self.peak = self.peak.max(limit);
                return true;
            }
            line = end.max(start + 1);
        }
    }

    /// Asks the region for room for `lines` usable lines (and their table); true if it now has it.
    #[inline(never)]
    fn grow_lines(&mut self, lines: usize) -> bool {
        let mut want = lines;
        while want > self.lines.len() {
            let Some((base, end)) = LineTable::bytes_for(want).and_then(|b| self.region.grow(b))
            else {
                return false;
            };
            // The table sits at the span's end: it must land above someone else's pages, so grow
            // again if it would not (each round grows the region, or fails).
            let (foreign_from, foreign_to) = self.region.foreign();
            let lines_now = LineTable::lines_in(end);
            want = line_at_or_after(foreign_to);
            if lines_now < want {
                continue;
            }
            // The region answers with `end >=` the bytes asked for and, once it has answered, the
            // same base (its contract): blocks already handed out stay where they are.
            // SAFETY: `base..base + end` is region memory this core owns, but for the foreign range,
            // which lies below `line_start(lines_now)` (just checked), so the table, placed from
            // there up, never touches it; `lines_in(end)` lines with their table fit in the span;
            // the region never shrinks, so `lines_now` is at least the table's; the table so far
            // sits at this same base.
            unsafe { self.lines.relocate(base, lines_now, G::ZEROED) };
            self.base = base;
            if foreign_from < foreign_to {
                // Used for good, so no search hands them out; and below the peak, so that no search
                // takes them for never-used lines.
                self.lines.mark_foreign(line_of(foreign_from), want);
                self.peak = self.peak.max(line_start(want));
                self.region.forget_foreign();
            }
        }
        true
    }

    /// Counts a refused request (also one refused before it reached the core: a host `alloc` of
    /// size <= 0). (One copy of the count: inlined, each refusal cost 17 bytes.)
    #[cold]
    #[inline(never)]
    pub(crate) fn refuse(&mut self) -> usize {
        self.failed += 1;
        NOWHERE
    }

    /// Offset of `ptr` from the base, if it is inside the usable lines (else `None`: the pointer is
    /// not ours, and a free of it is ignored).
    #[inline(always)]
    fn offset_of(&self, ptr: *mut u8) -> Option<usize> {
        let offset = ptr.addr().wrapping_sub(self.base.addr());
        (offset < line_start(self.lines.len())).then_some(offset)
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
        if offset >= line_start(self.lines.len()) {
            return; // not ours: ignored
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

    /// Whether the bytes `old_end..new_end` after a counted block that does not end at the cursor
    /// are free: outside the current hole (which the cursor hands out next) and this invocation's
    /// host buffers, in lines below the peak that no other block uses. (Past the peak the block
    /// moves instead, to a hole below it if there is one: growing in place into never-used lines
    /// raised the peak a little on every churn.) Raises the peak to the end of its last line.
    fn free_after(&mut self, offset: usize, old_end: usize, new_end: usize) -> bool {
        if old_end < self.host_end || (old_end < self.limit && new_end > self.cursor) {
            return false;
        }
        // The rest of the block's last line is free when the block's own words are all it holds.
        let in_last_line = old_end - line_start(line_of(old_end)).max(offset);
        if in_last_line != 0
            && usize::from(self.lines.count_of(line_of(old_end))) != in_last_line / 8
        {
            return false;
        }
        let (from, to) = (line_at_or_after(old_end), line_at_or_after(new_end));
        let pristine = line_at_or_after(self.peak);
        if to > pristine || self.lines.next_used(from, to, pristine) < to {
            return false;
        }
        self.peak = self.peak.max(line_start(to));
        true
    }

    /// Moves the cursor to `new_end` if the current hole can be made to reach it: the hole
    /// starting where it ends must hold the rest, below the peak, or (`grow`) past it, the region
    /// growing if that is the hole at its end. That hole becomes the current one, and the run
    /// goes on over it. True if it did.
    fn extend_hole(&mut self, new_end: usize, grow: bool) -> bool {
        if new_end > self.limit {
            let from = line_of(self.limit);
            if line_start(from) != self.limit {
                return false; // a hole cut short by a handle limit: leave it be
            }
            // (A refusal is counted by whatever the caller tries next.)
            let run_start = self.run_start;
            let rest = new_end - self.limit;
            if !self.take_hole(from, from + 1, rest, MIN_ALIGN, usize::MAX, grow) {
                return false;
            }
            self.run_start = run_start;
        }
        self.cursor = new_end;
        true
    }

    /// A checkpoint at the cursor: where a [`Bump::reset_to`] will take it back to.
    pub(crate) fn checkpoint(&mut self, owner: usize) -> Checkpoint {
        Checkpoint {
            owner,
            invocation: self.invocation,
            offset: self.cursor,
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
            return self.rewound();
        };
        self.refused += 1;
        Reset::Refused(error)
    }

    /// Starts a new invocation: host buffers expire, the cursor goes back to the start of the
    /// region, and every line that nothing live overlaps is reusable.
    pub(crate) fn reset_invocation(&mut self) -> Reset {
        self.flush();
        self.move_cursor(0);
        self.host_end = 0;
        self.invocation = self.invocation.wrapping_add(1);
        self.rewound()
    }

    fn rewound(&mut self) -> Reset {
        self.resets += 1;
        Reset::Rewound {
            live: self.lines.live_bytes,
            live_blocks: self.live_blocks,
        }
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
        self.run_start = offset;
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
            resets: self.resets,
            failed: self.failed,
            refused: self.refused,
        }
    }
}
