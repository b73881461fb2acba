//! The match keys an import has met so far: a file may name a record once.

use std::collections::hash_map::{Entry, HashMap, RandomState};
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};

/// Match keys, as 64-bit hashes, with the line of the row that first had each (a collision
/// would need billions of rows). A million-row file holds a million of them, so an entry
/// takes 12 bytes (the hash as two 4-byte halves, the line as 4) where `HashMap<u64, u64>`
/// takes 16, and the table is sized once from the expected row count: growing by doubling
/// holds the old and the new table at once, 1.5 times the final size. Keys are hashed with
/// this process's random keys (`RandomState`), so a file cannot be made of keys that collide.
pub struct SeenKeys {
    keys: RandomState,
    table: HashMap<KeyHash, u32, BuildHasherDefault<AlreadyHashed>>,
}

impl SeenKeys {
    pub fn with_expected_rows(rows: usize) -> Self {
        SeenKeys {
            keys: RandomState::new(),
            table: HashMap::with_capacity_and_hasher(rows, Default::default()),
        }
    }

    fn hash(&self, key: &str) -> KeyHash {
        KeyHash::from(self.keys.hash_one(key))
    }

    /// Notes that `line` has `key`; returns the line that had it first when one did.
    pub fn first_line(&mut self, key: &str, line: u64) -> Option<u64> {
        let hash = self.hash(key);
        match self.table.entry(hash) {
            Entry::Occupied(first) => Some(u64::from(*first.get())),
            Entry::Vacant(slot) => {
                slot.insert(line_number(line));
                None
            }
        }
    }

    /// Notes a row read before (a resumed import); the first line with a key stays its line.
    pub fn remember(&mut self, key: &str, line: u64) {
        let hash = self.hash(key);
        self.table.entry(hash).or_insert_with(|| line_number(line));
    }
}

/// The most rows a table is sized for up front; a larger file's table grows past it. The
/// estimate comes from the uploader's bytes (a file of empty lines would ask for gigabytes).
const MAX_PRESIZED_ROWS: usize = 1 << 20;

/// Rows expected in a file of `file_bytes` from the lines of its first bytes (`sample`), with
/// a sixteenth more for longer rows further down, at most `MAX_PRESIZED_ROWS`.
pub fn expected_rows(file_bytes: u64, sample: &[u8]) -> usize {
    if sample.is_empty() {
        return 0;
    }
    let sample_lines = sample.iter().filter(|&&b| b == b'\n').count();
    let rows = sample_lines as u128 * u128::from(file_bytes) / sample.len() as u128;
    let rows = usize::try_from(rows).unwrap_or(usize::MAX);
    rows.saturating_add(rows / 16).min(MAX_PRESIZED_ROWS)
}

/// Lines past `u32::MAX` (a file far over any upload limit) all read as the last one.
fn line_number(line: u64) -> u32 {
    u32::try_from(line).unwrap_or(u32::MAX)
}

#[derive(PartialEq, Eq, Clone, Copy)]
struct KeyHash([u32; 2]);

impl From<u64> for KeyHash {
    fn from(hash: u64) -> Self {
        KeyHash([(hash >> 32) as u32, hash as u32])
    }
}

impl Hash for KeyHash {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64((u64::from(self.0[0]) << 32) | u64::from(self.0[1]));
    }
}

/// The table's hasher: the keys are hashes already, so it passes them through.
#[derive(Default)]
struct AlreadyHashed(u64);

impl Hasher for AlreadyHashed {
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; any other input still hashes deterministically.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_of_a_key_is_kept() {
        let mut seen = SeenKeys::with_expected_rows(4);
        assert_eq!(seen.first_line("ada@example.com", 2), None);
        assert_eq!(seen.first_line("bob@example.com", 3), None);
        assert_eq!(seen.first_line("ada@example.com", 9), Some(2));
        seen.remember("carol@example.com", 5);
        seen.remember("carol@example.com", 8);
        assert_eq!(seen.first_line("carol@example.com", 12), Some(5));
    }

    #[test]
    fn an_entry_takes_twelve_bytes() {
        assert_eq!(std::mem::size_of::<(KeyHash, u32)>(), 12);
    }

    #[test]
    fn the_row_count_is_estimated_from_the_first_chunk() {
        let sample = b"a,b\n1,2\n3,4\n5,6\n";
        assert_eq!(expected_rows(16 * 1000, sample), 4000 + 250);
        assert_eq!(expected_rows(0, b""), 0);
        // A file of empty lines does not size a table for its byte count.
        assert_eq!(expected_rows(100 << 20, b"\n\n\n\n"), MAX_PRESIZED_ROWS);
    }
}
