//! The line table: which lines of the region hold something live, and the search for holes.
//!
//! The region is cut into lines of [`LINE_BYTES`]. A line is free when no live counted block
//! overlaps it (RC Immix's idea: a line is reusable the moment the last block on it dies). Two
//! structures say which:
//! - a **bitmap**, a bit per line, set while something live overlaps it. Searches read it, 64 lines
//!   per word; a word of all ones is a dense stretch (a big cache, say) skipped at once.
//! - a **count** per line, of the live blocks that *start or end* in it. The lines a block covers
//!   entirely are its alone, so they need no count: their bits are set (and cleared) as a range,
//!   whatever the block's size. Only a block's first and last line, which it may share with
//!   neighbours, are counted, and a line's bit clears when its count drops to zero.
//!
//! So for every live block `[start, end)` with first line `f` and last line `l`: `f` is counted
//! once, `l` once more if it differs from `f`, and the lines between are set and counted nothing.
//! Every change to a block's extent (allocation, free, in-place resize) keeps that decomposition.
//!
//! The table lives in the region itself, after its last usable line: the counts, then the bitmap
//! in whole words. When the region grows, the table moves up to the new end and the lines it used
//! to occupy become usable.
//!
//! Owns: offsets to lines, the counts and the bitmap, where the table sits. Must never: allocate,
//! panic (counts use wrapping arithmetic; a valid program keeps one at most `LINE_BYTES / 8 + 1`),
//! report a line free while a counted block overlaps it, or touch memory outside the table.

use core::ptr;

/// log2 of [`LINE_BYTES`].
pub(crate) const LINE_SHIFT: u32 = 8;
/// Bytes per line: the unit in which freed memory becomes reusable. A block that outlives its
/// invocation keeps the lines it overlaps (at most `size / LINE_BYTES + 2`) and nothing else.
pub const LINE_BYTES: usize = 1 << LINE_SHIFT;
/// Lines per bitmap word.
const WORD_LINES: usize = 64;

/// The line containing byte `offset`.
#[inline(always)]
pub(crate) const fn line_of(offset: usize) -> usize {
    offset >> LINE_SHIFT
}

/// The first line at or after byte `offset`.
#[inline(always)]
pub(crate) const fn line_at_or_after(offset: usize) -> usize {
    offset.div_ceil(LINE_BYTES)
}

/// Where a line starts.
#[inline(always)]
pub(crate) const fn line_start(line: usize) -> usize {
    line << LINE_SHIFT
}

/// Bits `from..to` of a word (`from < to <= 64`).
#[inline(always)]
const fn bit_range(from: usize, to: usize) -> u64 {
    (u64::MAX >> (WORD_LINES - (to - from))) << from
}

// `lines_in` always leaves room for the table and `bytes_for` asks for enough: checked at compile
// time over a spread of sizes.
const _: () = {
    let mut bytes = 0;
    while bytes < 1 << 22 {
        let lines = LineTable::lines_in(bytes);
        assert!(line_start(lines) + LineTable::table_bytes(lines) <= bytes);
        assert!(LineTable::lines_in(LineTable::bytes_for(lines).unwrap()) >= lines);
        bytes += 4093;
    }
};

/// Which lines hold something live, stored in the region after its last usable line.
pub(crate) struct LineTable {
    /// The count of line 0; the bitmap follows the counts, 8-aligned. Null until the region has
    /// memory.
    counts: *mut u8,
    /// Lines the table covers: the usable part of the region is `0..line_start(lines)`.
    lines: usize,
    /// The bitmap: right after the counts, rounded up to a word.
    bits: *mut u64,
    /// A count was found zero where a live block had to be (debug builds only).
    pub(crate) misused: bool,
}

impl LineTable {
    pub(crate) const fn new() -> Self {
        LineTable {
            counts: ptr::null_mut(),
            lines: 0,
            bits: ptr::null_mut(),
            misused: false,
        }
    }

    /// Number of usable lines.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.lines
    }

    /// Bytes of the table for `lines` lines: the counts, rounded up to a word, then the bitmap.
    const fn table_bytes(lines: usize) -> usize {
        lines.next_multiple_of(8) + lines.div_ceil(WORD_LINES) * 8
    }

    /// How many lines a region of `bytes` holds once its table is taken out: the largest `n` with
    /// `line_start(n) + table_bytes(n) <= bytes` (`table_bytes(n)` is at most `2n + 15`).
    pub(crate) const fn lines_in(bytes: usize) -> usize {
        bytes.saturating_sub(16) / (LINE_BYTES + 2)
    }

    /// The region bytes needed for `lines` usable lines and their table; `None` on overflow.
    pub(crate) const fn bytes_for(lines: usize) -> Option<usize> {
        match lines.checked_mul(LINE_BYTES + 2) {
            Some(bytes) => bytes.checked_add(16),
            None => None,
        }
    }

    /// Pointer to the count of `line`.
    ///
    /// # Safety
    /// `line < self.lines`.
    #[inline(always)]
    unsafe fn count_ptr(&self, line: usize) -> *mut u8 {
        // SAFETY: the caller's promise keeps the offset inside the table's counts.
        unsafe { self.counts.add(line) }
    }

    /// Pointer to the bitmap word holding `line`'s bit.
    ///
    /// # Safety
    /// `line < self.lines`.
    #[inline(always)]
    unsafe fn word_ptr(&self, line: usize) -> *mut u64 {
        // SAFETY: the bitmap holds a bit per line (see `relocate`), so the word of a line below
        // `self.lines` is inside it.
        unsafe { self.bits.add(line / WORD_LINES) }
    }

    /// The live blocks that start or end in `line` (the lines a block covers entirely count 0).
    #[inline(always)]
    pub(crate) fn count_of(&self, line: usize) -> u8 {
        debug_assert!(line < self.lines);
        // SAFETY: every caller passes a line below `self.lines` (a line of a block).
        unsafe { *self.count_ptr(line) }
    }

    /// The bitmap word of lines `line & !63 ..`, with lines at or past `self.lines` set (so that a
    /// search never takes them for free).
    #[inline(always)]
    fn word(&self, line: usize) -> u64 {
        let first = line & !(WORD_LINES - 1);
        // SAFETY: `line < self.lines` in every caller.
        let word = unsafe { *self.word_ptr(line) };
        let past_end = self.lines - first;
        if past_end < WORD_LINES {
            word | !bit_range(0, past_end)
        } else {
            word
        }
    }

    /// Sets (`used`) or clears the bits of lines `from..to`.
    fn mark(&mut self, mut from: usize, to: usize, used: bool) {
        while from < to {
            let end = to.min((from | (WORD_LINES - 1)) + 1);
            let bits = bit_range(from % WORD_LINES, end - (from & !(WORD_LINES - 1)));
            // SAFETY: `from < to <= self.lines`: lines of a block.
            let word = unsafe { &mut *self.word_ptr(from) };
            *word = if used { *word | bits } else { *word & !bits };
            from = end;
        }
    }

    /// Lines `from..to` (below `self.len()`) hold someone else's memory: used for good. No block
    /// starts, ends or lies in them, so no free ever clears them.
    pub(crate) fn mark_foreign(&mut self, from: usize, to: usize) {
        self.mark(from, to.min(self.lines), true);
    }

    /// One more live block starts or ends in `line`; 1 if the line was free.
    #[inline(always)]
    fn inc(&mut self, line: usize) -> usize {
        // SAFETY: a line of a block in the usable lines.
        let count = unsafe { &mut *self.count_ptr(line) };
        let was = *count;
        *count = was.wrapping_add(1);
        if was == 0 {
            self.mark(line, line + 1, true);
        }
        usize::from(was == 0)
    }

    /// One live block fewer starts or ends in `line`; 1 if the line became free.
    #[inline(always)]
    fn dec(&mut self, line: usize) -> usize {
        // SAFETY: a line of a block in the usable lines.
        let count = unsafe { &mut *self.count_ptr(line) };
        let was = *count;
        *count = was.wrapping_sub(1);
        if cfg!(debug_assertions) && was == 0 {
            self.misused = true;
        }
        if was == 1 {
            self.mark(line, line + 1, false);
        }
        usize::from(was == 1)
    }

    /// `offset..offset + size` is a live block now; returns how many of its lines were free.
    /// `size > 0`, and the block lies below `line_start(self.len())`. (Out of line: every caller
    /// is a slow path; the fast paths never touch the table.)
    #[inline(never)]
    pub(crate) fn count(&mut self, offset: usize, size: usize) -> usize {
        let (first, last) = (line_of(offset), line_of(offset + size - 1));
        let used = self.inc(first);
        if last == first {
            return used;
        }
        used + self.count_tail(first, last)
    }

    #[inline(always)]
    fn count_tail(&mut self, first: usize, last: usize) -> usize {
        self.mark(first + 1, last, true);
        self.inc(last) + (last - first - 1)
    }

    /// The block `offset..offset + size` is dead now; returns how many of its lines became free.
    /// A count found zero means the block was not live (a double free): in debug builds that sets
    /// `misused`, which the arena reports once it is unlocked.
    #[inline(never)]
    pub(crate) fn uncount(&mut self, offset: usize, size: usize) -> usize {
        let (first, last) = (line_of(offset), line_of(offset + size - 1));
        let freed = self.dec(first);
        if last == first {
            return freed;
        }
        freed + self.uncount_tail(first, last)
    }

    #[inline(always)]
    fn uncount_tail(&mut self, first: usize, last: usize) -> usize {
        self.mark(first + 1, last, false);
        self.dec(last) + (last - first - 1)
    }

    /// The first free line in `line..to`.
    pub(crate) fn next_free(&self, line: usize, to: usize) -> Option<usize> {
        let to = to.min(self.lines);
        let mut from = line;
        while from < to {
            // Free lines are zero bits; those before `from` in its word do not count.
            let free = !self.word(from) & (u64::MAX << (from % WORD_LINES));
            if free != 0 {
                let found = (from & !(WORD_LINES - 1)) + free.trailing_zeros() as usize;
                return (found < to).then_some(found);
            }
            from = (from | (WORD_LINES - 1)) + 1;
        }
        None
    }

    /// The first used line in `line..to`, or `to` if there is none. Lines from `pristine` on have
    /// never been handed out (all free), so they are not looked at.
    pub(crate) fn next_used(&self, line: usize, to: usize, pristine: usize) -> usize {
        let to = to.min(self.lines);
        let end = to.min(pristine);
        let mut from = line;
        while from < end {
            let used = self.word(from) & (u64::MAX << (from % WORD_LINES));
            if used != 0 {
                let found = (from & !(WORD_LINES - 1)) + used.trailing_zeros() as usize;
                return if found < end { found } else { to };
            }
            from = (from | (WORD_LINES - 1)) + 1;
        }
        to
    }

    /// The first line of the run of free lines that ends just before `line`, stopping at `floor`.
    pub(crate) fn free_run_start(&self, mut line: usize, floor: usize) -> usize {
        while line > floor && self.word(line - 1) & (1 << ((line - 1) % WORD_LINES)) == 0 {
            line -= 1;
        }
        line
    }

    /// Places (or moves up) the table so that it covers `lines` lines of the region at `base`,
    /// keeping every count and bit; lines added are free. The first placement in a region whose
    /// fresh memory reads as zero (`zeroed`) writes nothing.
    ///
    /// # Safety
    /// `base..base + line_start(lines) + table_bytes(lines)` is region memory this core owns;
    /// `lines` is at least `self.len()`; the table so far, if any, is the one at `base` for
    /// `self.len()` lines.
    pub(crate) unsafe fn relocate(&mut self, base: *mut u8, lines: usize, zeroed: bool) {
        let old = self.lines;
        let (old_words, new_words) = (old.div_ceil(WORD_LINES) * 8, lines.div_ceil(WORD_LINES) * 8);
        let to = base.wrapping_add(line_start(lines));
        let to_bits = to.wrapping_add(lines.next_multiple_of(8));
        // SAFETY: the old table is `old` counts at `self.counts` and `old_words` bitmap bytes after
        // them; the new one has room for `lines` counts at `to` and `new_words` at `to_bits`, all
        // inside the region (the caller's promise). The bitmap moves first: its new place starts
        // past the old counts' end (the table only moves up, and the counts part grows), so it
        // cannot overwrite counts not yet moved; `ptr::copy` allows each to overlap its old place.
        // Cleared bytes are the new table's own; on a later move they may hold old data.
        unsafe {
            if old > 0 {
                ptr::copy(self.counts.add(old.next_multiple_of(8)), to_bits, old_words);
                ptr::copy(self.counts, to, old);
            }
            if old > 0 || !zeroed {
                ptr::write_bytes(to.add(old), 0, lines - old);
                ptr::write_bytes(to_bits.add(old_words), 0, new_words - old_words);
                // The old last word's bits past the old end were "used" padding in `word`, but
                // zero in memory: nothing to clear there.
            }
        }
        self.counts = to;
        // 8-aligned: the table starts at a line boundary of an 8-aligned base, and the counts
        // before the bitmap are rounded up to a word.
        self.bits = to_bits.cast::<u64>();
        self.lines = lines;
    }
}
