//! The sparse time index of one segment.
//!
//! The file is a sequence of 12-byte entries, each a big-endian `i64` timestamp and a
//! big-endian `u32` offset relative to the segment's base offset. An entry is written beside
//! every entry of the offset index (see [`super::index`]), with the same relative offset; its
//! timestamp is the largest batch max timestamp of the segment up to and including the batch
//! at that offset. So the entries are non-decreasing in timestamp and the file has exactly as
//! many entries as the offset index: a time index that does not pair up with its offset index
//! is damaged and both are rebuilt from the log.
//!
//! Lookup of the first batch with a max timestamp at or after `t`: every batch up to and
//! including the one at the last entry whose timestamp is below `t` is older than `t`, so the
//! scan starts there instead of at the segment start.

use super::index::IndexEntry;

/// Size of one time index entry on disk.
pub(crate) const ENTRY_LEN: usize = 12;

/// One time index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeEntry {
    /// Largest max timestamp of the batches up to and including the one at `rel_offset`.
    pub(crate) timestamp: i64,
    /// Base offset of that batch, minus the segment's base offset.
    pub(crate) rel_offset: u32,
}

impl TimeEntry {
    /// The on-disk form.
    pub(crate) fn encode(self) -> [u8; ENTRY_LEN] {
        let mut out = [0; ENTRY_LEN];
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..].copy_from_slice(&self.rel_offset.to_be_bytes());
        out
    }
}

/// Decodes a time index file, or `None` when it is damaged: a partial entry, decreasing
/// timestamps, or offsets that are not strictly increasing.
pub(crate) fn decode(bytes: &[u8]) -> Option<Vec<TimeEntry>> {
    let chunks = bytes.chunks_exact(ENTRY_LEN);
    if !chunks.remainder().is_empty() {
        return None;
    }
    let mut entries: Vec<TimeEntry> = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    for chunk in chunks {
        let entry = TimeEntry {
            timestamp: i64::from_be_bytes(chunk[..8].try_into().ok()?),
            rel_offset: u32::from_be_bytes(chunk[8..].try_into().ok()?),
        };
        if entries
            .last()
            .is_some_and(|p| p.timestamp > entry.timestamp || p.rel_offset >= entry.rel_offset)
        {
            return None;
        }
        entries.push(entry);
    }
    Some(entries)
}

/// Whether a time index pairs up with the offset index it was written beside.
pub(crate) fn matches(entries: &[TimeEntry], offsets: &[IndexEntry]) -> bool {
    entries.len() == offsets.len()
        && entries
            .iter()
            .zip(offsets)
            .all(|(t, o)| t.rel_offset == o.rel_offset)
}

/// Encodes entries into the on-disk form.
pub(crate) fn encode_all(entries: &[TimeEntry]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.encode()).collect()
}

/// The relative offset to start scanning from for the first batch with a max timestamp at
/// or after `timestamp`: that of the last entry whose timestamp is below it, or `None` (scan
/// from the segment start).
pub(crate) fn lookup(entries: &[TimeEntry], timestamp: i64) -> Option<u32> {
    let below = entries.partition_point(|e| e.timestamp < timestamp);
    below.checked_sub(1).map(|i| entries[i].rel_offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(timestamp: i64, rel_offset: u32) -> TimeEntry {
        TimeEntry {
            timestamp,
            rel_offset,
        }
    }

    #[test]
    fn round_trip_and_lookup() {
        let entries = vec![t(100, 5), t(100, 9), t(250, 20)];
        let bytes = encode_all(&entries);
        assert_eq!(bytes.len(), 3 * ENTRY_LEN);
        assert_eq!(decode(&bytes), Some(entries.clone()));
        assert_eq!(lookup(&entries, 50), None);
        assert_eq!(lookup(&entries, 100), None);
        assert_eq!(lookup(&entries, 101), Some(9));
        assert_eq!(lookup(&entries, 250), Some(9));
        assert_eq!(lookup(&entries, 251), Some(20));
        assert_eq!(lookup(&[], 1), None);
    }

    #[test]
    fn damage_is_detected() {
        let bytes = encode_all(&[t(100, 5), t(200, 9)]);
        assert_eq!(decode(&bytes[..20]), None);
        assert_eq!(decode(&encode_all(&[t(200, 5), t(100, 9)])), None);
        assert_eq!(decode(&encode_all(&[t(100, 9), t(200, 9)])), None);
        assert_eq!(decode(&[]), Some(vec![]));
    }

    #[test]
    fn pairs_with_the_offset_index() {
        let offsets = [
            IndexEntry {
                rel_offset: 5,
                position: 100,
            },
            IndexEntry {
                rel_offset: 9,
                position: 300,
            },
        ];
        assert!(matches(&[t(1, 5), t(2, 9)], &offsets));
        assert!(!matches(&[t(1, 5)], &offsets));
        assert!(!matches(&[t(1, 5), t(2, 10)], &offsets));
    }
}
