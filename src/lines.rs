//! The line table: which lines of the region hold something live, and the search for holes.
//!
//! The region is cut into lines of [`LINE_BYTES`]. A line is free when nothing live overlaps it
//! (RC Immix's idea: a line is reusable the moment the last block on it dies). The table keeps a
//! **count** per line of the live 8-byte words in it (0 to [`LINE_WORDS`]). Blocks are 8-aligned
//! multiples of 8 bytes, so a span of live bytes adds its words to the lines it overlaps, and its
//! death takes them off again. Counting words rather than blocks makes counting additive: a run of
//! blocks bumped one after another can be counted as one span when the cursor leaves it, and freed
//! block by block later; growing a block in place counts just the bytes it gained.
//!
//! A line a span covers entirely holds nothing else, so its count goes from 0 to `LINE_WORDS`
//! and back as a range fill, whatever the span's size; only a span's first and last line are
//! added to and taken from one by one. Searches read the counts 8 lines to a 64-bit word (an
//! addition per word flags the bytes that are not zero, without carries between bytes), so a
//! dense stretch is passed 8 lines per step. (A separate bitmap would search 64 lines per step,
//! but it cost every free a second write and the smallest flare about 600 bytes of code.)
//!
//! The table lives in the region itself, after its last usable line. When the region grows, the
//! table moves up to the new end and the lines it used to occupy become usable.
//!
//! Owns: offsets to lines, the counts, where the table sits. Must never: allocate, panic (counts
//! use wrapping arithmetic; a valid program keeps each at most [`LINE_WORDS`]), report a line free
//! while a counted span overlaps it, or touch memory outside the table.

use core::ptr;

/// log2 of [`LINE_BYTES`].
pub(crate) const LINE_SHIFT: u32 = 8;
/// Bytes per line: the unit in which freed memory becomes reusable. A block that outlives its
/// invocation keeps the lines it overlaps (at most `size / LINE_BYTES + 2`) and nothing else.
pub const LINE_BYTES: usize = 1 << LINE_SHIFT;
/// 8-byte words per line: the most a line's count can be.
pub(crate) const LINE_WORDS: u8 = (LINE_BYTES / 8) as u8;
/// Lines per 64-bit word of counts.
const WORD_LINES: usize = 8;
/// The top bit of every byte of a word.
const TOP_BITS: u64 = 0x8080_8080_8080_8080;

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
    /// The count of line 0, 8-aligned; the counts run on to a whole word. Null until the region
    /// has memory.
    counts: *mut u8,
    /// Lines the table covers: the usable part of the region is `0..line_start(lines)`.
    lines: usize,
    /// Bytes of the spans counted live: 8 times the sum of the counts, someone else's lines
    /// aside. (Which lines are used is not kept as a number: that cost every free two compares
    /// and a store, 7% of a free-heavy loop in wasm. [`LineTable::used_lines`] counts them.)
    pub(crate) live_bytes: usize,
    /// Lines marked as someone else's (see [`LineTable::mark_foreign`]).
    foreign_lines: usize,
    /// A count was found smaller than the words a dying span had in its line: the span was not
    /// live (debug builds only).
    pub(crate) misused: bool,
}

impl LineTable {
    pub(crate) const fn new() -> Self {
        LineTable {
            counts: ptr::null_mut(),
            lines: 0,
            live_bytes: 0,
            foreign_lines: 0,
            misused: false,
        }
    }

    /// Number of usable lines.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.lines
    }

    /// Bytes of the table for `lines` lines: the counts, rounded up to a whole word.
    const fn table_bytes(lines: usize) -> usize {
        lines.next_multiple_of(WORD_LINES)
    }

    /// How many lines a region of `bytes` holds once its table is taken out: the largest `n` with
    /// `line_start(n) + table_bytes(n) <= bytes` (`table_bytes(n)` is at most `n + 7`).
    pub(crate) const fn lines_in(bytes: usize) -> usize {
        bytes.saturating_sub(WORD_LINES - 1) / (LINE_BYTES + 1)
    }

    /// The region bytes needed for `lines` usable lines and their table; `None` on overflow.
    pub(crate) const fn bytes_for(lines: usize) -> Option<usize> {
        match lines.checked_mul(LINE_BYTES + 1) {
            Some(bytes) => bytes.checked_add(WORD_LINES - 1),
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

    /// The live words in `line`.
    #[inline(always)]
    pub(crate) fn count_of(&self, line: usize) -> u8 {
        debug_assert!(line < self.lines);
        // SAFETY: every caller passes a line below `self.lines` (a line of a block).
        unsafe { *self.count_ptr(line) }
    }

    /// The top bit of each byte of the counts word holding `line` whose line is used (`used`)
    /// or free, the lines before `line` left out. Lines past `self.lines` in the last word read
    /// as free: callers bound what they find by `self.lines`.
    #[inline(always)]
    fn lines_in_word(&self, line: usize, used: bool) -> u64 {
        // SAFETY: `line < self.lines` in every caller, and the counts run on to a whole word
        // (`table_bytes`), 8-aligned (see `relocate`).
        let word =
            u64::from_le(unsafe { *self.counts.add(line & !(WORD_LINES - 1)).cast::<u64>() });
        // A count is at most `LINE_WORDS` < 0x80: adding 0x7F sets a byte's top bit exactly when
        // the byte is not zero, and never carries into the next byte. (A count wrapped by a double
        // free is garbage whatever the search makes of it: adding the neighbours' words back can
        // take it to zero.)
        let nonzero = word.wrapping_add(!TOP_BITS) & TOP_BITS;
        let hits = if used { nonzero } else { nonzero ^ TOP_BITS };
        hits & (u64::MAX << (line % WORD_LINES * 8))
    }

    /// The first line in `line..to` (`to <= self.len()`) that is used (`used`) or free, or `to`.
    fn find(&self, mut line: usize, to: usize, used: bool) -> usize {
        while line < to {
            let hits = self.lines_in_word(line, used);
            if hits != 0 {
                let found = (line & !(WORD_LINES - 1)) + hits.trailing_zeros() as usize / 8;
                return found.min(to);
            }
            line = (line | (WORD_LINES - 1)) + 1;
        }
        to
    }

    /// Lines `from..to` (`from < to`, `from` below `self.len()`) hold someone else's memory: used
    /// for good. No block starts, ends or lies in them, so no free ever clears them.
    pub(crate) fn mark_foreign(&mut self, from: usize, to: usize) {
        let to = to.min(self.lines);
        self.fill(from, to, LINE_WORDS);
        self.foreign_lines += to - from;
    }

    /// Lines whose count is not zero, someone else's aside: a read of the whole table.
    pub(crate) fn used_lines(&self) -> usize {
        let mut used = 0;
        let mut line = 0;
        while line < self.lines {
            // Lines past `self.lines` in the last word read as free.
            used += self.lines_in_word(line, true).count_ones() as usize;
            line += WORD_LINES;
        }
        // (Someone else's lines are always among the used ones; saturating all the same: this
        // runs with the arena's lock held, where nothing may panic.)
        used.saturating_sub(self.foreign_lines)
    }

    /// Sets the counts of lines `from..to` (`from <= to <= self.len()`).
    fn fill(&mut self, from: usize, to: usize, count: u8) {
        // SAFETY: `from <= to <= self.lines` (every caller's promise): counts inside the table.
        unsafe { ptr::write_bytes(self.count_ptr(from), count, to - from) };
    }

    /// `words` live words more (`live`) or fewer in `line`.
    #[inline(always)]
    fn step(&mut self, line: usize, words: u8, live: bool) {
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
    }

    /// `size` bytes more (`live`) or fewer counted. (Wrapping: after a double free it may be off,
    /// never a panic.)
    #[inline(always)]
    fn add_live(&mut self, size: usize, live: bool) {
        self.live_bytes = if live {
            self.live_bytes.wrapping_add(size)
        } else {
            self.live_bytes.wrapping_sub(size)
        };
    }

    /// [`LineTable::recount`] of a dying span, with the common case (a span inside one line)
    /// inline: it is the whole of a free's work on the table.
    #[inline(always)]
    pub(crate) fn release(&mut self, offset: usize, size: usize) {
        let first = line_of(offset);
        if first == line_of(offset + size - 1) {
            self.add_live(size, false);
            return self.step(first, (size / 8) as u8, false);
        }
        self.recount(offset, size, false);
    }

    /// The span `offset..offset + size` (8-aligned, `size` a non-zero multiple of 8, below
    /// `line_start(self.len())`) becomes live (`live`) or dead. A span that dies where fewer words were live was not live (a double
    /// free, or a layout other than the block's): in debug builds that sets `misused`, which the
    /// arena reports once it is unlocked. (One function for both directions, out of line: it is the
    /// table's only writer, and a flare ships one copy of it.)
    #[inline(never)]
    pub(crate) fn recount(&mut self, offset: usize, size: usize, live: bool) {
        self.add_live(size, live);
        let end = offset + size;
        let (first, last) = (line_of(offset), line_of(end - 1));
        if first == last {
            return self.step(first, (size / 8) as u8, live);
        }
        let head = (line_start(first + 1) - offset) / 8;
        let tail = (end - line_start(last)) / 8;
        self.step(first, head as u8, live);
        self.step(last, tail as u8, live);
        // The lines between are the span's alone: full while it lives, empty once it is dead.
        self.fill(first + 1, last, LINE_WORDS * u8::from(live));
    }

    /// The first free line in `line..to`.
    pub(crate) fn next_free(&self, line: usize, to: usize) -> Option<usize> {
        let to = to.min(self.lines);
        let found = self.find(line, to, false);
        (found < to).then_some(found)
    }

    /// The first used line in `line..to`, or `to` if there is none. Lines from `pristine` on have
    /// never been handed out (all free), so they are not looked at.
    pub(crate) fn next_used(&self, line: usize, to: usize, pristine: usize) -> usize {
        let to = to.min(self.lines);
        let end = to.min(pristine);
        let found = self.find(line, end, true);
        if found < end { found } else { to }
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
        let to = base.wrapping_add(line_start(lines));
        // SAFETY: the old counts are `old` bytes at `self.counts`; the new table has room for
        // `lines` counts at `to`, inside the region (the caller's promise); `ptr::copy` allows the
        // two to overlap. The new table's bytes past the old counts lie past the old table's end
        // (it moves up by at least a line per line added): never written, so zero in a region that
        // hands out zeroed memory.
        unsafe {
            if old > 0 {
                ptr::copy(self.counts, to, old);
            }
            if !zeroed {
                ptr::write_bytes(to.add(old), 0, Self::table_bytes(lines) - old);
            }
        }
        // 8-aligned: the table starts at a line boundary of an 8-aligned base.
        self.counts = to;
        self.lines = lines;
    }
}
