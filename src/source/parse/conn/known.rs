//! Rows counted by their bytes: a table of the real server and state fields already read.
//!
//! Nearly every row of a large connection table repeats, byte for byte, the real server, port and
//! state of a row before it (a few hundred real servers, a few states). Once a row's bytes from
//! offset 32 (the real server's address) to 58 (the space after the state) have been read and
//! checked the long way, they are kept here with what they meant; a later row with the same bytes
//! is counted by comparing them, without decoding or checking them again.

use super::{chunk, slot_of};

/// The bytes of a fixed-offset IPv4 row from its real server's address to the space after its
/// state, offsets 32..58, as two overlapping 16-byte words (32..48 and 42..58).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RowKey(u128, u128);

impl RowKey {
    /// The key of a row of at least 58 bytes.
    #[inline(always)]
    pub(super) fn of<const N: usize>(row: &[u8; N]) -> Self {
        Self(word(row, 32), word(row, 42))
    }

    /// Where the key starts probing in a table of `len` slots, a power of two.
    #[inline(always)]
    fn slot(self, len: usize) -> usize {
        let folded = (self.0 as u64)
            ^ ((self.0 >> 64) as u64).rotate_left(17)
            ^ (self.1 as u64).rotate_left(31)
            ^ ((self.1 >> 64) as u64).rotate_left(47);
        slot_of(folded, len)
    }
}

/// The 16 bytes of `row` from `at` (a constant: this folds to one load), 0xFF past its end.
#[inline(always)]
fn word<const N: usize>(row: &[u8; N], at: usize) -> u128 {
    u128::from_le_bytes(chunk(row, at))
}

/// A free slot's key: no key is all 0xFF, as keys are checked ASCII before they are kept.
const FREE: RowKey = RowKey(u128::MAX, u128::MAX);
/// How far a lookup probes past a key's slot.
const PROBES: usize = 8;
/// The table starts with this many slots and doubles while keys fill more than half of it.
const FIRST_SLOTS: usize = 1 << 9;
/// The most slots (3 MiB); past half this many keys (32,768), new keys are no longer kept and
/// their rows take the long way.
const MAX_SLOTS: usize = 1 << 16;

/// Keys already read, and how many rows each has had since.
#[derive(Debug, Default)]
pub(super) struct KnownRows {
    /// Open addressing, probing linearly. A key and its count share a slot, so that a row
    /// touches one cache line here.
    slots: Vec<Slot>,
    /// For each slot, the index of its key's meaning in `meanings`.
    meaning_of: Vec<u32>,
    /// The real server and state indexes of each key.
    meanings: Vec<(usize, usize)>,
    /// Rows of keys that no longer found a slot when the table grew.
    orphans: Vec<(u32, u64)>,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    key: RowKey,
    /// Rows not yet handed over.
    rows: u64,
}

const FREE_SLOT: Slot = Slot { key: FREE, rows: 0 };

impl KnownRows {
    /// Counts a row with `key` if the key is known; false if not.
    #[inline(always)]
    pub(super) fn count(&mut self, key: RowKey) -> bool {
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = key.slot(self.slots.len());
        for _ in 0..PROBES {
            match self.slots.get_mut(at) {
                Some(slot) if slot.key == key => {
                    slot.rows += 1;
                    return true;
                }
                Some(slot) if slot.key != FREE => at = (at + 1) & mask,
                _ => return false,
            }
        }
        false
    }

    /// Keeps `key`, whose row was read the long way and found to be for real server `real` and
    /// state `state` (that row is already counted). Nothing is kept once the table holds as many
    /// keys as it can, or when the key's slots are taken.
    #[cold]
    pub(super) fn learn(&mut self, key: RowKey, real: usize, state: usize) {
        if key == FREE || (self.meanings.len() + 1) * 2 > MAX_SLOTS {
            return;
        }
        if (self.meanings.len() + 1) * 2 > self.slots.len() {
            self.grow();
        }
        let Ok(meaning) = u32::try_from(self.meanings.len()) else {
            return;
        };
        if self.place(Slot { key, rows: 0 }, meaning) {
            self.meanings.push((real, state));
        }
    }

    /// Puts `slot` in the first free slot of its key's probe run; false when there is none, or
    /// the key is already there.
    fn place(&mut self, slot: Slot, meaning: u32) -> bool {
        let mask = self.slots.len().wrapping_sub(1);
        let mut at = slot.key.slot(self.slots.len());
        for _ in 0..PROBES {
            match self.slots.get_mut(at) {
                Some(s) if s.key == FREE => {
                    *s = slot;
                    if let Some(m) = self.meaning_of.get_mut(at) {
                        *m = meaning;
                    }
                    return true;
                }
                Some(s) if s.key == slot.key => return false,
                Some(_) => at = (at + 1) & mask,
                None => return false,
            }
        }
        false
    }

    /// Twice the slots (or the first ones), every key placed again. The rows of a key that finds
    /// no slot are kept aside; its later rows take the long way.
    fn grow(&mut self) {
        let len = (self.slots.len() * 2).clamp(FIRST_SLOTS, MAX_SLOTS);
        if len == self.slots.len() {
            return;
        }
        let old = std::mem::replace(&mut self.slots, vec![FREE_SLOT; len]);
        let old_meanings = std::mem::replace(&mut self.meaning_of, vec![0; len]);
        for (slot, meaning) in old.into_iter().zip(old_meanings) {
            if slot.key != FREE && !self.place(slot, meaning) && slot.rows > 0 {
                self.orphans.push((meaning, slot.rows));
            }
        }
    }

    /// `(real, state, rows)` for the rows counted since the last call, which start again from 0.
    pub(super) fn drain(&mut self) -> impl Iterator<Item = (usize, usize, u64)> + '_ {
        let meanings = &self.meanings;
        let counted = self
            .slots
            .iter_mut()
            .zip(&self.meaning_of)
            .filter(|(s, _)| s.rows > 0)
            .map(|(s, &m)| (m, std::mem::take(&mut s.rows)));
        counted
            .chain(self.orphans.drain(..))
            .filter_map(move |(m, rows)| {
                let &(real, state) = meanings.get(m as usize)?;
                Some((real, state, rows))
            })
    }
}
