//! Records as the engine sees them, independent of any wire protocol.

use bytes::Bytes;

/// One record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Timestamp in ms since the epoch (-1 on produce: stamp with the broker's wall clock).
    pub timestamp: i64,
    /// Optional key.
    pub key: Option<Bytes>,
    /// Optional value (`None` is a tombstone).
    pub value: Option<Bytes>,
    /// Headers, in order.
    pub headers: Vec<RecordHeader>,
}

/// One record header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordHeader {
    /// Header key.
    pub key: String,
    /// Header value.
    pub value: Option<Bytes>,
}

impl Record {
    /// A record with a value and nothing else (handy in tests).
    pub fn with_value(timestamp: i64, value: impl Into<Bytes>) -> Self {
        Self {
            timestamp,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
        }
    }

    /// Rough size in bytes, for fetch accounting.
    pub fn approx_size(&self) -> usize {
        let opt = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
        16 + opt(&self.key)
            + opt(&self.value)
            + self
                .headers
                .iter()
                .map(|h| h.key.len() + opt(&h.value))
                .sum::<usize>()
    }
}
