//! The line table: one live count per line of the region, and the search for holes.
//!
//! The region is cut into lines of [`LINE_BYTES`]. Each line has a byte counting the live counted
//! blocks that overlap it; a line whose count is zero holds nothing live (RC Immix's idea: a line
//! is reusable the moment its count drops to zero). Lines are grouped by 64; a group's bit says "all
//! of its lines are live", so a search skips a dense stretch (a big cache, say) 64 lines at a time.
//! The bit is set only by a search that has just seen the whole group live, and cleared whenever one
//! of its counts drops to zero, so it can be stale only in the safe direction (clear while full).
//!
//! The table lives in the region itself, right after the last usable line: `lines` count bytes
//! (rounded up to 8), then the group bits. When the region grows, the table moves up to the new end
//! and the lines it used to occupy become usable.
//!
//! Owns: offsets to lines, the counts, the group bits, where the table sits. Must never: allocate,
//! panic (every count is updated with wrapping arithmetic; a valid program keeps a count at most
//! `LINE_BYTES / 8`), report a line free while a counted block overlaps it, or touch memory outside
//! the table.

use core::ptr;

/// log2 of [`LINE_BYTES`].
pub(crate) const LINE_SHIFT: u32 = 8;
/// Bytes per line: the unit in which freed memory becomes reusable. A block that outlives its
/// invocation keeps the lines it overlaps (at most `size / LINE_BYTES + 2`) and nothing else.
pub const LINE_BYTES: usize = 1 << LINE_SHIFT;
/// log2 of the lines per group.
const GROUP_SHIFT: u32 = 6;
const GROUP_LINES: usize = 1 << GROUP_SHIFT;
/// Counts read at once by a search.
const WORD: usize = 8;
const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

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

/// Words of group bits: one bit per group of 64 lines, for the first `64 * 64 * 32` lines
/// (32 MiB of region). Groups past them are never marked full: a search just looks at their lines.
const FULL_WORDS: usize = 32;

/// Counts per line (stored in the region after its last usable line) and "group live" bits.
pub(crate) struct LineTable {
    /// The count of line 0; null until the region has memory.
    counts: *mut u8,
    /// Lines the table covers: the usable part of the region is `0..line_start(lines)`.
    lines: usize,
    /// Bit `g % 64` of word `g / 64`: every line of group `g` is live.
    full: [u64; FULL_WORDS],
    /// A count was found zero where a live block had to be (debug builds only).
    pub(crate) misused: bool,
}

impl LineTable {
    pub(crate) const fn new() -> Self {
        LineTable {
            counts: ptr::null_mut(),
            lines: 0,
            full: [0; FULL_WORDS],
            misused: false,
        }
    }

    /// Number of usable lines.
    #[inline(always)]
    pub(crate) fn len(&self) -> usize {
        self.lines
    }

    /// How many lines a region of `bytes` holds once its table (a byte per line, padded to whole
    /// words, so that a search can read it a word at a time) is taken out.
    pub(crate) const fn lines_in(bytes: usize) -> usize {
        bytes.saturating_sub(WORD) / (LINE_BYTES + 1)
    }

    /// The region bytes needed for `lines` usable lines and their table; `None` on overflow.
    pub(crate) const fn bytes_for(lines: usize) -> Option<usize> {
        match lines.checked_mul(LINE_BYTES + 1) {
            Some(bytes) => bytes.checked_add(WORD),
            None => None,
        }
    }

    /// The counts of lines `line..line + 8` (`line` a multiple of 8), the first in the low byte.
    #[inline(always)]
    fn word(&self, line: usize) -> u64 {
        debug_assert!(line % WORD == 0 && line < self.lines);
        // SAFETY: the table starts 8-aligned (at a line boundary of an 8-aligned base) and is padded
        // to whole words inside the region (`lines_in`), so the word at a multiple of 8 below
        // `self.lines` is initialised region memory of the table.
        u64::from_le(unsafe { self.counts.add(line).cast::<u64>().read() })
    }

    /// Pointer to the count of `line`.
    ///
    /// # Safety
    /// `line < self.lines`.
    #[inline(always)]
    unsafe fn count_ptr(&self, line: usize) -> *mut u8 {
        // SAFETY: the caller's promise keeps the offset inside the table.
        unsafe { self.counts.add(line) }
    }

    #[inline(always)]
    pub(crate) fn count_of(&self, line: usize) -> u8 {
        debug_assert!(line < self.lines);
        // SAFETY: every caller passes a line below `self.lines` (a line of a block, or one a search
        // bounded by `self.lines` is looking at).
        unsafe { *self.count_ptr(line) }
    }

    /// Whether every line of `group` is known to be live.
    fn is_full(&self, group: usize) -> bool {
        self.full
            .get(group >> 6)
            .is_some_and(|word| word & (1 << (group & 63)) != 0)
    }

    /// Marks `group` as all live (or not).
    #[inline(always)]
    fn set_full(&mut self, group: usize, full: bool) {
        if let Some(word) = self.full.get_mut(group >> 6) {
            let bit = 1 << (group & 63);
            *word = if full { *word | bit } else { *word & !bit };
        }
    }

    /// Adds one to the count of every line that `offset..offset + size` overlaps; returns how many
    /// of them were free. `size > 0`, and the block lies below `line_start(self.len())`.
    ///
    /// Lines the block covers entirely are its alone (no other block can overlap them), so their
    /// count goes from exactly 0 to exactly 1: they are filled in one go, and only the two lines at
    /// its ends, which it may share, are counted one by one.
    #[inline(always)]
    pub(crate) fn count(&mut self, offset: usize, size: usize) -> usize {
        let (first, last) = (line_of(offset), line_of(offset + size - 1));
        // SAFETY: the block lies in the usable lines, so `first` and `last` are below `self.lines`.
        let head = unsafe { &mut *self.count_ptr(first) };
        let mut used = usize::from(*head == 0);
        *head = head.wrapping_add(1);
        if last != first {
            used += self.count_tail(first, last);
        }
        used
    }

    #[inline(never)]
    fn count_tail(&mut self, first: usize, last: usize) -> usize {
        // SAFETY: `first < last < self.lines` (see `count`); the lines between are the block's own.
        unsafe {
            ptr::write_bytes(self.count_ptr(first + 1), 1, last - first - 1);
            let tail = &mut *self.count_ptr(last);
            let used = usize::from(*tail == 0);
            *tail = tail.wrapping_add(1);
            used + (last - first - 1)
        }
    }

    /// Takes one off the count of every line that `offset..offset + size` overlaps (a block was
    /// freed, or a block's tail); returns how many of them became free. A count found zero means
    /// the block was not live (a double free): in debug builds that sets `misused`, which the
    /// arena reports once it is unlocked.
    #[inline(always)]
    pub(crate) fn uncount(&mut self, offset: usize, size: usize) -> usize {
        let (first, last) = (line_of(offset), line_of(offset + size - 1));
        // SAFETY: the block lies in the usable lines, so `first` and `last` are below `self.lines`.
        let head = unsafe { &mut *self.count_ptr(first) };
        let was = *head;
        *head = was.wrapping_sub(1);
        if cfg!(debug_assertions) && was == 0 {
            self.misused = true;
        }
        let mut freed = usize::from(was == 1);
        if last != first {
            freed += self.uncount_tail(first, last);
        }
        if freed > 0 {
            // Those lines' groups are no longer all live.
            let group = first >> GROUP_SHIFT;
            if group == last >> GROUP_SHIFT {
                self.set_full(group, false);
            } else {
                self.groups_not_full(group, last >> GROUP_SHIFT);
            }
        }
        freed
    }

    #[inline(never)]
    fn uncount_tail(&mut self, first: usize, last: usize) -> usize {
        // SAFETY: `first < last < self.lines` (see `uncount`); the lines between were the block's
        // own, counted exactly 1.
        unsafe {
            ptr::write_bytes(self.count_ptr(first + 1), 0, last - first - 1);
            let tail = &mut *self.count_ptr(last);
            let was = *tail;
            *tail = was.wrapping_sub(1);
            if cfg!(debug_assertions) && was == 0 {
                self.misused = true;
            }
            usize::from(was == 1) + (last - first - 1)
        }
    }

    #[inline(never)]
    fn groups_not_full(&mut self, first: usize, last: usize) {
        for group in first..=last {
            self.set_full(group, false);
        }
    }

    /// The first free line (count zero) in `line..to`, skipping groups known to be all live and
    /// marking the groups it finds all live on the way. Reads eight counts at a time.
    pub(crate) fn next_free(&mut self, mut line: usize, to: usize) -> Option<usize> {
        let to = to.min(self.lines);
        // Where the run of live lines being walked began.
        let mut live_from = line;
        while line < to {
            if line % GROUP_LINES == 0 && self.is_full(line >> GROUP_SHIFT) {
                line += GROUP_LINES;
                live_from = line;
                continue;
            }
            if line % WORD != 0 {
                if self.count_of(line) == 0 {
                    return Some(line);
                }
                line += 1;
            } else {
                // A zero byte of `w` sets the high bit of the same byte here; the lowest one set is
                // exactly the first zero count (the ones above it may be false).
                let w = self.word(line);
                let zeros = w.wrapping_sub(ONES) & !w & HIGHS;
                if zeros != 0 {
                    let free = line + (zeros.trailing_zeros() / 8) as usize;
                    return (free < to).then_some(free);
                }
                line += WORD;
            }
            if line % GROUP_LINES == 0 && line - live_from >= GROUP_LINES {
                // The whole group just walked is live.
                self.set_full((line >> GROUP_SHIFT) - 1, true);
            }
        }
        None
    }

    /// The first line in `line..to` whose count is not zero, or `to` if there is none. Lines from
    /// `pristine` on have never been handed out (all zero), so they are not looked at.
    pub(crate) fn next_used(&self, mut line: usize, to: usize, pristine: usize) -> usize {
        let to = to.min(self.lines);
        let end = to.min(pristine);
        while line < end {
            if line % WORD != 0 {
                if self.count_of(line) != 0 {
                    return line;
                }
                line += 1;
            } else {
                let w = self.word(line);
                if w != 0 {
                    let used = line + (w.trailing_zeros() / 8) as usize;
                    return if used < end { used } else { to };
                }
                line += WORD;
            }
        }
        to
    }

    /// The first line of the run of free lines that ends just before `line`, stopping at `floor`.
    pub(crate) fn free_run_start(&self, mut line: usize, floor: usize) -> usize {
        while line > floor && self.count_of(line - 1) == 0 {
            line -= 1;
        }
        line
    }

    /// Places (or moves up) the table so that it covers `lines` lines of the region at `base`,
    /// keeping every count; lines added are free. The first placement in a region whose fresh
    /// memory reads as zero (`zeroed`) writes nothing.
    ///
    /// # Safety
    /// `base..base + line_start(lines) + lines` is region memory this core owns; `lines` is at
    /// least `self.len()`; the table so far, if any, is the one at `base` for `self.len()` lines.
    pub(crate) unsafe fn relocate(&mut self, base: *mut u8, lines: usize, zeroed: bool) {
        let old = self.lines;
        let to = base.wrapping_add(line_start(lines));
        // SAFETY: the old table is `old` counts at `self.counts`, the new one has room for `lines`
        // at `to`, both inside the region (the caller's promise); `ptr::copy` allows them to overlap
        // (the table moves up by less than its size when the region grows by little). Cleared
        // bytes are the new table's own; on a later move they may hold old counts or old data.
        unsafe {
            if old > 0 {
                ptr::copy(self.counts, to, old);
            }
            if old > 0 || !zeroed {
                ptr::write_bytes(to.add(old), 0, lines - old);
            }
        }
        self.counts = to;
        self.lines = lines;
    }
}
