//! The line table: which lines of the region hold something live, and the search for holes.
//!
//! The region is cut into lines of [`LINE_BYTES`]. A line is free when nothing live overlaps it
//! (RC Immix's idea: a line is reusable the moment the last block on it dies). Two structures say
//! which:
//! - a **count** per line of the live 8-byte words in it (0 to [`LINE_WORDS`]). Blocks are
//!   8-aligned multiples of 8 bytes, so a span of live bytes adds its words to the lines it
//!   overlaps, and its death takes them off again. Counting words rather than blocks makes
//!   counting additive: a run of blocks bumped one after another can be counted as one span when
//!   the cursor leaves it, and freed block by block later; growing a block in place counts just
//!   the bytes it gained.
//! - a **bitmap**, a bit per line, set while its count is not zero. Searches read it, 64 lines per
//!   word; a word of all ones is a dense stretch (a big cache, say) skipped at once.
//!
//! A line a span covers entirely holds nothing else, so its count goes from 0 to `LINE_WORDS`
//! and back as a range fill, whatever the span's size; only a span's first and last line are
//! added to and taken from one by one.
//!
//! The table lives in the region itself, after its last usable line: the counts, then the bitmap
//! in whole words. When the region grows, the table moves up to the new end and the lines it used
//! to occupy become usable.
//!
//! Owns: offsets to lines, the counts and the bitmap, where the table sits. Must never: allocate,
//! panic (counts use wrapping arithmetic; a valid program keeps each at most [`LINE_WORDS`]),
//! report a line free while a counted span overlaps it, or touch memory outside the table.

use core::ptr;

/// log2 of [`LINE_BYTES`].
pub(crate) const LINE_SHIFT: u32 = 8;
/// Bytes per line: the unit in which freed memory becomes reusable. A block that outlives its
/// invocation keeps the lines it overlaps (at most `size / LINE_BYTES + 2`) and nothing else.
pub const LINE_BYTES: usize = 1 << LINE_SHIFT;
/// 8-byte words per line: the most a line's count can be.
pub(crate) const LINE_WORDS: u8 = (LINE_BYTES / 8) as u8;
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
    /// A count was found smaller than the words a dying span had in its line: the span was not
    /// live (debug builds only).
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

    /// The live words in `line`.
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

    /// `words` live words more (`live`) or fewer in `line`; its bit follows its count. 1 if the
    /// line changed between free and used.
    #[inline(always)]
    fn step(&mut self, line: usize, words: u8, live: bool) -> usize {
        // SAFETY: a line of a span in the usable lines.
        let count = unsafe { &mut *self.count_ptr(line) };
        let was = *count;
        let now = if live {
            was.wrapping_add(words)
        } else {
            was.wrapping_sub(words)
        };
        *count = now;
        if cfg!(debug_assertions) && !live && was < words {
            self.misused = true;
        }
        let bit = 1 << (line % WORD_LINES);
        // SAFETY: as above.
        let word = unsafe { &mut *self.word_ptr(line) };
        *word = if now != 0 { *word | bit } else { *word & !bit };
        usize::from((was == 0) != (now == 0))
    }

    /// [`LineTable::recount`] of a dying span, with the common case (a span inside one line)
    /// inline: it is the whole of a free's work on the table.
    #[inline(always)]
    pub(crate) fn release(&mut self, offset: usize, size: usize) -> usize {
        let first = line_of(offset);
        if first == line_of(offset + size - 1) {
            return self.step(first, (size / 8) as u8, false);
        }
        self.recount(offset, size, false)
    }

    /// The span `offset..offset + size` (8-aligned, `size` a non-zero multiple of 8, below
    /// `line_start(self.len())`) becomes live (`live`) or dead; returns how many lines changed
    /// between free and used. A span that dies where fewer words were live was not live (a double
    /// free, or a layout other than the block's): in debug builds that sets `misused`, which the
    /// arena reports once it is unlocked. (One function for both directions, out of line: it is the
    /// table's only writer, and a flare ships one copy of it.)
    #[inline(never)]
    pub(crate) fn recount(&mut self, offset: usize, size: usize, live: bool) -> usize {
        let end = offset + size;
        let (first, last) = (line_of(offset), line_of(end - 1));
        if first == last {
            return self.step(first, (size / 8) as u8, live);
        }
        let head = (line_start(first + 1) - offset) / 8;
        let tail = (end - line_start(last)) / 8;
        let ends = self.step(first, head as u8, live) + self.step(last, tail as u8, live);
        let between = last - first - 1;
        if between > 0 {
            // The lines between are the span's alone: full while it lives, empty once it is dead.
            // SAFETY: `first < last < self.lines`: counts inside the table.
            unsafe {
                ptr::write_bytes(
                    self.count_ptr(first + 1),
                    LINE_WORDS * u8::from(live),
                    between,
                )
            };
            self.mark(first + 1, last, live);
        }
        ends + between
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
