//! Kafka record batches to engine records and back.

use bytes::{Bytes, BytesMut};
use portask_engine::{FetchedBatch, ProduceBatch, Record, RecordHeader};
use portask_kafka::records::{self, Compression, RecordBatch};

/// The engine batch for one Kafka record batch, timestamps made absolute.
pub(crate) fn to_engine(batch: RecordBatch) -> ProduceBatch {
    let base_timestamp = batch.base_timestamp;
    let records = batch
        .records
        .into_iter()
        .map(|r| Record {
            timestamp: base_timestamp.saturating_add(r.timestamp_delta),
            key: r.key,
            value: r.value,
            headers: r
                .headers
                .into_iter()
                .map(|h| RecordHeader {
                    key: h.key,
                    value: h.value,
                })
                .collect(),
        })
        .collect();
    ProduceBatch {
        producer_id: batch.producer_id,
        producer_epoch: batch.producer_epoch,
        base_sequence: batch.base_sequence,
        records,
    }
}

/// Encodes engine batches as uncompressed Kafka record batches, one per engine batch.
pub(crate) fn to_kafka(batches: Vec<FetchedBatch>) -> Bytes {
    let mut out = BytesMut::new();
    for batch in batches {
        let Some((first_offset, first)) = batch.records.first() else {
            continue;
        };
        let (base_offset, base_timestamp) = (*first_offset, first.timestamp);
        let max_timestamp = batch
            .records
            .iter()
            .map(|(_, r)| r.timestamp)
            .max()
            .unwrap_or(-1);
        let last_offset = batch.records.last().map_or(base_offset, |(o, _)| *o);
        // Records trimmed off the front of a stored batch keep their sequence numbers.
        let base_sequence = match batch.base_sequence {
            -1 => -1,
            s => s.wrapping_add((base_offset - batch.base_offset) as i32),
        };
        let kafka = RecordBatch {
            base_offset,
            partition_leader_epoch: 0,
            last_offset_delta: (last_offset - base_offset) as i32,
            base_timestamp,
            max_timestamp,
            producer_id: batch.producer_id,
            producer_epoch: batch.producer_epoch,
            base_sequence,
            records: batch
                .records
                .into_iter()
                .map(|(offset, r)| records::Record {
                    offset_delta: (offset - base_offset) as i32,
                    timestamp_delta: r.timestamp - base_timestamp,
                    key: r.key,
                    value: r.value,
                    headers: r
                        .headers
                        .into_iter()
                        .map(|h| records::RecordHeader {
                            key: h.key,
                            value: h.value,
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        // Encoding an in-memory batch without compression cannot fail.
        let _ = kafka.encode(Compression::None, &mut out);
    }
    out.freeze()
}
