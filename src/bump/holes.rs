//! Holes: where a request goes when the current hole cannot take it, and how the region grows.
//!
//! Owns the core's slow-path placement: stretching the current hole over the free lines right
//! after it (for the next request, or for the block at the cursor as it grows), a fit in the rest
//! of the current hole, next-fit over the holes below the peak, first-fit from `host_end` on, and,
//! when nothing below the peak will do, a hole past it, the region growing (and the line table
//! moving up) to make room; and whether the lines after an inner block are free for it to grow
//! into. Holes are found by reading the line table ([`LineTable`]'s searches) where it is exact:
//! with the run counted, or (stretching the current hole) only past the run's lines.
//!
//! Must never: give the cursor a line whose count is not zero, or one below `host_end` (this
//! invocation's host buffers); let a hole run on past the peak while a hole below it might do (the
//! touched part of the region follows what is live); allocate, or panic (the global wrapper holds
//! its lock).

use super::{Bump, NOWHERE, POISON};
use crate::lines::{LineTable, line_at_or_after, line_of, line_start};
use crate::region::{MIN_ALIGN, Region};

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

impl<G: Region> Bump<G> {
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
    pub(super) fn place(&mut self, size: usize, align: usize, max_end: usize) -> usize {
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
            self.start_run(offset);
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
                self.start_run(offset);
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

    /// Whether the bytes `old_end..new_end` after a counted block that does not end at the cursor
    /// are free: outside the current hole (which the cursor hands out next) and this invocation's
    /// host buffers, in lines below the peak that no other block uses. (Past the peak the block
    /// moves instead, to a hole below it if there is one: growing in place into never-used lines
    /// raised the peak a little on every churn.) Raises the peak to the end of its last line,
    /// and, when they are free, counts them as handed out (see `Bump::reclaimed`): the caller
    /// counts them live next.
    pub(super) fn free_after(&mut self, offset: usize, old_end: usize, new_end: usize) -> bool {
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
        // Free bytes are handed out, not reclaimed ones reused: the count of bytes reclaimed
        // must not go down when the block's words are counted.
        self.jumped = self.jumped.wrapping_add(new_end - old_end);
        true
    }

    /// Moves the cursor to `new_end` if the current hole can be made to reach it: the hole
    /// starting where it ends must hold the rest, below the peak, or (`grow`) past it, the region
    /// growing if that is the hole at its end. That hole becomes the current one, and the run
    /// goes on over it. True if it did.
    pub(super) fn extend_hole(&mut self, new_end: usize, grow: bool) -> bool {
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
            self.start_run(run_start);
        }
        self.cursor = new_end;
        true
    }
}
