//! Per-topic zstd dictionaries: sampling, training, the keep-or-drop measurement, and the
//! durable form stored under `dict/<topic>/<id>` with [`crate::Storage::put_definition`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use zstd::dict::DecoderDictionary;

use crate::batch::CompressionMode;
use crate::compression::policy::DictionaryConfig;

/// Prefix of the definition keys dictionaries are stored under.
pub const KEY_PREFIX: &str = "dict/";
const STORED_VERSION: u8 = 1;
/// Sampled values longer than this are skipped (dictionaries help small values).
const MAX_SAMPLE_LEN: usize = 64 << 10;
/// Held-out values per group when measuring a dictionary for bulk mode.
const BULK_GROUP: usize = 8;

/// A trained zstd dictionary.
pub struct Dictionary {
    id: u32,
    created: i64,
    bytes: Bytes,
    decoder: DecoderDictionary<'static>,
}

impl std::fmt::Debug for Dictionary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dictionary")
            .field("id", &self.id)
            .field("created", &self.created)
            .field("len", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

impl Dictionary {
    /// A dictionary from its raw zstd bytes; `created` orders dictionaries of one topic.
    pub fn new(id: u32, created: i64, bytes: Bytes) -> Self {
        let decoder = DecoderDictionary::copy(&bytes);
        Self {
            id,
            created,
            bytes,
            decoder,
        }
    }

    /// The id batches refer to it by.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// When it was trained (wall ms).
    pub fn created(&self) -> i64 {
        self.created
    }

    /// The raw zstd dictionary.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The dictionary prepared for decompression.
    pub fn decoder(&self) -> &DecoderDictionary<'static> {
        &self.decoder
    }

    /// The definition key of a topic's dictionary.
    pub fn key(topic: &str, id: u32) -> String {
        format!("{KEY_PREFIX}{topic}/{id}")
    }

    /// The stored form: version, creation time, raw bytes.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(9 + self.bytes.len());
        out.put_u8(STORED_VERSION);
        out.put_i64(self.created);
        out.put_slice(&self.bytes);
        out.freeze()
    }

    /// Reads a stored dictionary back from its key and value; `None` if they are not one.
    pub fn decode(key: &str, value: &Bytes) -> Option<(String, Dictionary)> {
        let rest = key.strip_prefix(KEY_PREFIX)?;
        let (topic, id) = rest.rsplit_once('/')?;
        let id = id.parse().ok()?;
        let mut v = value.clone();
        if v.len() < 9 || v.get_u8() != STORED_VERSION {
            return None;
        }
        let created = v.get_i64();
        Some((topic.to_string(), Dictionary::new(id, created, v)))
    }
}

/// The payload samples of one topic, until a dictionary is trained or rejected.
#[derive(Debug, Default, Clone)]
pub struct Sampler {
    samples: Vec<Vec<u8>>,
    bytes: usize,
    /// Training happened (or cannot help); sample nothing more.
    pub done: bool,
}

impl Sampler {
    /// Adds a value; returns true once enough are collected to train.
    pub fn add(&mut self, value: &[u8], cfg: &DictionaryConfig) -> bool {
        if !self.done && !value.is_empty() && value.len() <= MAX_SAMPLE_LEN {
            self.samples.push(value.to_vec());
            self.bytes += value.len();
        }
        !self.done && self.samples.len() >= cfg.sample_records.max(8)
    }

    /// Takes the samples, marking the sampler done.
    pub fn take(&mut self) -> (Vec<Vec<u8>>, usize) {
        self.done = true;
        (
            std::mem::take(&mut self.samples),
            std::mem::take(&mut self.bytes),
        )
    }
}

/// The outcome of a training attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trial {
    /// Held-out bytes compressed without the dictionary.
    pub without: usize,
    /// Held-out bytes compressed with it.
    pub with: usize,
    /// The dictionary, when it helps by the configured margin.
    pub dictionary: Option<Vec<u8>>,
}

fn compressed_len(
    held_out: &[&[u8]],
    level: i32,
    mode: CompressionMode,
    dict: Option<&[u8]>,
) -> Option<usize> {
    let mut c = match dict {
        Some(d) => zstd::bulk::Compressor::with_dictionary(level, d).ok()?,
        None => zstd::bulk::Compressor::new(level).ok()?,
    };
    match mode {
        CompressionMode::Single => held_out
            .iter()
            .map(|s| c.compress(s).ok().map(|v| v.len().min(s.len())))
            .sum(),
        // Bulk batches of chatty producers hold a few records each: measure groups of that
        // size rather than one large block (where a dictionary rarely matters).
        CompressionMode::Bulk => held_out
            .chunks(BULK_GROUP)
            .map(|g| c.compress(&g.concat()).ok().map(|v| v.len()))
            .sum(),
    }
}

/// Trains a dictionary on four fifths of `samples` and measures it on the other fifth, as the
/// topic would use it (`mode`, zstd `level`). `None` when training fails.
pub fn train(
    samples: &[Vec<u8>],
    total_bytes: usize,
    level: i32,
    mode: CompressionMode,
    cfg: &DictionaryConfig,
) -> Option<Trial> {
    if total_bytes < cfg.min_sample_bytes {
        return None;
    }
    let (mut train, mut held_out) = (Vec::new(), Vec::new());
    for (i, s) in samples.iter().enumerate() {
        if i % 5 == 4 {
            held_out.push(s.as_slice());
        } else {
            train.push(s.as_slice());
        }
    }
    let dict = zstd::dict::from_samples(&train, cfg.max_size.max(256)).ok()?;
    let without = compressed_len(&held_out, level, mode, None)?;
    let with = compressed_len(&held_out, level, mode, Some(&dict))?;
    let gain = u64::from(100 - cfg.min_gain_percent.min(100));
    let helps = (with as u64) * 100 <= (without as u64) * gain;
    Some(Trial {
        without,
        with,
        dictionary: helps.then_some(dict),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_form_round_trips() {
        let d = Dictionary::new(7, 1234, Bytes::from_static(b"not really a dictionary"));
        let key = Dictionary::key("a/b", 7);
        let (topic, back) = Dictionary::decode(&key, &d.encode()).unwrap();
        assert_eq!(
            (topic.as_str(), back.id(), back.created()),
            ("a/b", 7, 1234)
        );
        assert_eq!(back.bytes(), d.bytes());
        assert!(Dictionary::decode("queue/x", &d.encode()).is_none());
    }
}
