//! Append-only logs of framed CBOR records, shared by `groups/offsets.log`,
//! `definitions.log` and the queue message logs.
//!
//! Each record is a big-endian `u32` payload length, a big-endian `u32` CRC-32C of the payload
//! and the payload, a CBOR value. A log is replayed front to back at start; an invalid record
//! followed by nothing but zeros is a torn tail and is cut, anything else is corruption.

use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use portask_engine::storage::StorageError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::fsutil::{atomic_write, fsync_failed, sync_dir};

/// Bytes before each record's payload.
pub(crate) const FRAME_LEN: u64 = 8;

/// Appends the framed record to `out`.
pub(crate) fn encode_into<T: Serialize>(record: &T, out: &mut Vec<u8>) {
    let mut payload = Vec::new();
    ciborium::into_writer(record, &mut payload).expect("writing CBOR to a Vec cannot fail");
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(&crc32c::crc32c(&payload).to_be_bytes());
    out.extend_from_slice(&payload);
}

/// Decodes one framed record read back from a log, checking its length and CRC.
pub(crate) fn decode_frame<T: DeserializeOwned>(frame: &[u8]) -> Option<T> {
    let (head, payload) = frame.split_at_checked(FRAME_LEN as usize)?;
    let len = u32::from_be_bytes(head[..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_be_bytes(head[4..].try_into().expect("4 bytes"));
    (len == payload.len() && crc32c::crc32c(payload) == crc)
        .then(|| ciborium::from_reader(payload).ok())
        .flatten()
}

/// What a replay found.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Replayed {
    /// Valid records.
    pub(crate) records: usize,
    /// Length of the valid prefix.
    pub(crate) valid_len: u64,
    /// Length of the file.
    pub(crate) file_len: u64,
}

/// Streams the records of `path` (a missing file is empty) into `apply`, with each record's
/// file offset and framed length.
pub(crate) fn replay<T: DeserializeOwned>(
    path: &Path,
    mut apply: impl FnMut(T, u64, u64) -> Result<(), StorageError>,
) -> Result<Replayed, StorageError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Replayed::default()),
        Err(e) => return Err(e.into()),
    };
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::new(file);
    let mut out = Replayed {
        file_len,
        ..Replayed::default()
    };
    let mut payload = Vec::new();
    while out.valid_len < file_len {
        let rest = file_len - out.valid_len;
        let mut head = [0u8; FRAME_LEN as usize];
        let mut frame = rest;
        let mut record = None;
        if rest >= FRAME_LEN {
            reader.read_exact(&mut head)?;
            let len = u64::from(u32::from_be_bytes(head[..4].try_into().expect("4 bytes")));
            frame = (FRAME_LEN + len).min(rest);
            if len <= rest - FRAME_LEN {
                payload.resize(len as usize, 0);
                reader.read_exact(&mut payload)?;
                let crc = u32::from_be_bytes(head[4..].try_into().expect("4 bytes"));
                if crc32c::crc32c(&payload) == crc {
                    record = ciborium::from_reader::<T, _>(&payload[..]).ok();
                }
            }
        }
        let Some(record) = record else {
            let frame_end = out.valid_len + frame;
            if zeros_from(&mut reader, frame_end)? {
                return Ok(out);
            }
            let msg = format!(
                "{}: invalid record at byte {}",
                path.display(),
                out.valid_len
            );
            return Err(StorageError::Corrupt(msg));
        };
        apply(record, out.valid_len, frame)?;
        out.valid_len += frame;
        out.records += 1;
    }
    Ok(out)
}

/// Whether everything from `pos` to the end of the file is zero.
fn zeros_from(reader: &mut BufReader<File>, pos: u64) -> io::Result<bool> {
    reader.seek(SeekFrom::Start(pos))?;
    let mut buf = [0u8; 8192];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(true);
        }
        if buf[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
    }
}

/// Cuts the torn tail a replay found, if any, and logs it.
pub(crate) fn cut_torn_tail(path: &Path, replayed: &Replayed) -> Result<(), StorageError> {
    if !log_torn_tail(path, replayed) {
        return Ok(());
    }
    let file = OpenOptions::new().write(true).open(path)?;
    file.set_len(replayed.valid_len)?;
    file.sync_all().map_err(fsync_failed)
}

/// Logs a torn tail; returns whether there was one.
fn log_torn_tail(path: &Path, replayed: &Replayed) -> bool {
    let torn = replayed.valid_len < replayed.file_len;
    if torn {
        eprintln!(
            "portask: storage: truncated torn tail of {} at byte {} ({} bytes cut)",
            path.display(),
            replayed.valid_len,
            replayed.file_len - replayed.valid_len
        );
    }
    torn
}

/// Finishes opening a replayed key-value log holding `live` entries: rewrites it with
/// `rewrite()` (atomically) when it holds more than `2 * live + 8` records, else cuts a torn
/// tail; then opens it for appending.
pub(crate) fn settle(
    path: &Path,
    replayed: &Replayed,
    live: usize,
    rewrite: impl FnOnce() -> Vec<u8>,
) -> Result<LogFile, StorageError> {
    if replayed.records > 2 * live + 8 {
        log_torn_tail(path, replayed);
        atomic_write(path, &rewrite())?;
    } else {
        cut_torn_tail(path, replayed)?;
    }
    let log = LogFile::open(path)?;
    sync_dir(path.parent().unwrap_or(Path::new("."))).map_err(fsync_failed)?;
    Ok(log)
}

/// An open log file written at its end.
pub(crate) struct LogFile {
    path: PathBuf,
    file: File,
    size: u64,
    dirty: bool,
}

impl LogFile {
    /// Opens (or creates) `path` for appending.
    pub(crate) fn open(path: &Path) -> Result<Self, StorageError> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_owned(),
            file,
            size,
            dirty: false,
        })
    }

    /// Current length of the file.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Appends `bytes` with one write and returns the offset they start at. A failed write is
    /// cut back off; when even that fails the store is poisoned.
    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<u64, StorageError> {
        self.dirty = true;
        if let Err(e) = self.file.write_all(bytes) {
            if let Err(e2) = self.file.set_len(self.size) {
                let path = self.path.display();
                eprintln!("portask: storage: cannot undo a failed append to {path}: {e2}");
                return Err(StorageError::Poisoned);
            }
            return Err(e.into());
        }
        let at = self.size;
        self.size += bytes.len() as u64;
        Ok(at)
    }

    /// Reads `len` bytes at `offset`.
    pub(crate) fn read_at(&self, offset: u64, len: u64) -> io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0; len as usize];
        self.file.read_exact_at(&mut buf, offset)?;
        Ok(buf)
    }

    /// Fsyncs what was appended since the last sync.
    pub(crate) fn sync(&mut self) -> Result<(), StorageError> {
        if self.dirty {
            self.file.sync_data().map_err(fsync_failed)?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// Serde adapter storing [`bytes::Bytes`] as a CBOR byte string.
pub(crate) mod cbor_bytes {
    use bytes::Bytes;
    use serde::{Deserializer, Serializer, de};

    /// Writes a byte string.
    pub(crate) fn serialize<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(b)
    }

    /// Reads a byte string (as a buffer: ciborium only lends short ones).
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a byte string")
            }
            fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                Ok(Bytes::copy_from_slice(v))
            }
            fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
                Ok(Bytes::from(v))
            }
        }
        d.deserialize_byte_buf(V)
    }
}
