//! The sparse offset index of one segment.
//!
//! The file is a sequence of 8-byte entries, each a big-endian `u32` offset relative to the
//! segment's base offset and a big-endian `u32` byte position in the segment log where a batch
//! with that base offset starts. An entry is written for the first batch that starts at least
//! `index_interval_bytes` after the previous entry (or after the segment start), so a lookup
//! scans at most about that many bytes of batch headers.

/// Size of one index entry on disk.
pub(crate) const ENTRY_LEN: usize = 8;

/// One index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    /// Base offset of the batch, minus the segment's base offset.
    pub(crate) rel_offset: u32,
    /// Byte position of the batch in the segment log.
    pub(crate) position: u32,
}

impl IndexEntry {
    /// The on-disk form.
    pub(crate) fn encode(self) -> [u8; ENTRY_LEN] {
        let mut out = [0; ENTRY_LEN];
        out[..4].copy_from_slice(&self.rel_offset.to_be_bytes());
        out[4..].copy_from_slice(&self.position.to_be_bytes());
        out
    }
}

/// Decodes an index file, or `None` when it is damaged: a partial entry, entries that are not
/// strictly increasing in both fields, or a position at or past `log_len`.
pub(crate) fn decode(bytes: &[u8], log_len: u64) -> Option<Vec<IndexEntry>> {
    let chunks = bytes.chunks_exact(ENTRY_LEN);
    if !chunks.remainder().is_empty() {
        return None;
    }
    let mut entries = Vec::with_capacity(bytes.len() / ENTRY_LEN);
    let mut prev: Option<IndexEntry> = None;
    for chunk in chunks {
        let entry = IndexEntry {
            rel_offset: u32::from_be_bytes(chunk[..4].try_into().ok()?),
            position: u32::from_be_bytes(chunk[4..].try_into().ok()?),
        };
        if u64::from(entry.position) >= log_len {
            return None;
        }
        if prev.is_some_and(|p| p.rel_offset >= entry.rel_offset || p.position >= entry.position) {
            return None;
        }
        prev = Some(entry);
        entries.push(entry);
    }
    Some(entries)
}

/// Encodes entries into the on-disk form.
pub(crate) fn encode_all(entries: &[IndexEntry]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.encode()).collect()
}

/// The byte position to start scanning from for a batch containing `rel_offset`: the position
/// of the last entry at or below it, or 0.
pub(crate) fn lookup(entries: &[IndexEntry], rel_offset: u64) -> u64 {
    let after = entries.partition_point(|e| u64::from(e.rel_offset) <= rel_offset);
    match after {
        0 => 0,
        n => u64::from(entries[n - 1].position),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(rel_offset: u32, position: u32) -> IndexEntry {
        IndexEntry {
            rel_offset,
            position,
        }
    }

    #[test]
    fn round_trip_and_lookup() {
        let entries = vec![e(5, 100), e(9, 250), e(20, 600)];
        let bytes = encode_all(&entries);
        assert_eq!(decode(&bytes, 601), Some(entries.clone()));
        assert_eq!(lookup(&entries, 0), 0);
        assert_eq!(lookup(&entries, 5), 100);
        assert_eq!(lookup(&entries, 8), 100);
        assert_eq!(lookup(&entries, 100), 600);
        assert_eq!(lookup(&[], 100), 0);
    }

    #[test]
    fn damage_is_detected() {
        let bytes = encode_all(&[e(5, 100), e(9, 250)]);
        assert_eq!(decode(&bytes[..12], 1000), None);
        assert_eq!(decode(&bytes, 250), None);
        assert_eq!(decode(&encode_all(&[e(9, 100), e(5, 250)]), 1000), None);
        assert_eq!(decode(&encode_all(&[e(5, 300), e(9, 250)]), 1000), None);
        assert_eq!(decode(&[], 0), Some(vec![]));
    }
}
