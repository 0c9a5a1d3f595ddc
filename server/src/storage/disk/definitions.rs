//! The durable definitions log: `definitions.log`.
//!
//! Records (framed as in [`super::record_log`]) store or remove one opaque definition by key.
//! The log is replayed at start (the last write wins), a torn tail is cut, and the file is
//! rewritten compactly at start when it holds more than twice the live entries plus 8.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use portask_engine::storage::StorageError;
use serde::{Deserialize, Serialize};

use super::record_log::{self, LogFile, cbor_bytes, encode_into};

/// Live definitions by key.
pub(crate) type Definitions = BTreeMap<String, Bytes>;

/// One entry of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Record {
    /// The definition under `key` is `value`.
    Put {
        key: String,
        #[serde(with = "cbor_bytes")]
        value: Bytes,
    },
    /// The definition under `key` is gone.
    Delete { key: String },
}

/// The open definitions log.
pub(crate) struct DefinitionsLog {
    log: LogFile,
}

impl DefinitionsLog {
    /// Opens (or creates) `dir/definitions.log` and replays it.
    pub(crate) fn open(dir: &Path) -> Result<(Self, Definitions), StorageError> {
        let path = dir.join("definitions.log");
        let mut defs = Definitions::new();
        let replayed = record_log::replay(&path, |r: Record, _, _| {
            match r {
                Record::Put { key, value } => defs.insert(key, value),
                Record::Delete { key } => defs.remove(&key),
            };
            Ok(())
        })?;
        let log = record_log::settle(&path, &replayed, defs.len(), || {
            let mut out = Vec::new();
            for (key, value) in &defs {
                let record = Record::Put {
                    key: key.clone(),
                    value: value.clone(),
                };
                encode_into(&record, &mut out);
            }
            out
        })?;
        Ok((Self { log }, defs))
    }

    /// Stores (`Some`) or removes (`None`) the definition under `key`.
    pub(crate) fn put(&mut self, key: &str, value: Option<&Bytes>) -> Result<(), StorageError> {
        let key = key.to_owned();
        let record = match value {
            Some(v) => Record::Put {
                key,
                value: v.clone(),
            },
            None => Record::Delete { key },
        };
        let mut out = Vec::new();
        encode_into(&record, &mut out);
        self.log.append(&out).map(drop)
    }

    /// Fsyncs what was written since the last sync.
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
        self.log.sync()
    }
}
