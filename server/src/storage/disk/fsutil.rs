//! Small filesystem helpers: atomic file replacement, directory fsync, names.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use portask_engine::storage::StorageError;

/// Suffix of a file being written before it is renamed into place.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// Fsyncs a directory, making creations, renames and removals in it durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Turns a failed fsync into [`StorageError::Poisoned`] after logging it: once the kernel has
/// reported a writeback error, what reached the disk is unknown.
pub(crate) fn fsync_failed(e: io::Error) -> StorageError {
    eprintln!("portask: storage: fsync failed, refusing further writes: {e}");
    StorageError::Poisoned
}

/// Replaces `path` with `bytes` atomically: write a temporary file, fsync it, rename it over
/// `path`, fsync the directory.
pub(crate) fn atomic_write(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let tmp = tmp_path(path);
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all().map_err(fsync_failed)?;
    drop(file);
    fs::rename(&tmp, path)?;
    sync_dir(path.parent().unwrap_or(Path::new("."))).map_err(fsync_failed)
}

/// The temporary sibling of `path` used by [`atomic_write`].
pub(crate) fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(TMP_SUFFIX);
    path.with_file_name(name)
}

/// Reads a file holding one decimal `i64`, or `None` when it does not exist.
pub(crate) fn read_i64_file(path: &Path) -> Result<Option<i64>, StorageError> {
    match fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|_| {
            StorageError::Corrupt(format!("{} does not hold a number", path.display()))
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Reads a file holding two decimal `i64`s separated by a space, or `None` when it does not
/// exist.
pub(crate) fn read_i64_pair(path: &Path) -> Result<Option<(i64, i64)>, StorageError> {
    let text = match fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut parts = text.split_whitespace().map(str::parse::<i64>);
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(a)), Some(Ok(b)), None) => Ok(Some((a, b))),
        _ => Err(StorageError::Corrupt(format!(
            "{} does not hold two numbers",
            path.display()
        ))),
    }
}

/// Checks that `name` is a Kafka topic name (`[a-zA-Z0-9._-]`, 1 to 249 characters, not `.`
/// or `..`), which makes it a safe directory name.
pub(crate) fn check_topic_name(name: &str) -> Result<(), StorageError> {
    let valid_chars = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if name.is_empty() || name.len() > 249 || !valid_chars || name == "." || name == ".." {
        return Err(StorageError::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid topic name {name:?}"),
        )));
    }
    Ok(())
}

/// File name of the segment log starting at `base_offset`.
pub(crate) fn log_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.log")
}

/// File name of the sparse index of the segment starting at `base_offset`.
pub(crate) fn index_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.index")
}

/// File name of the sparse time index of the segment starting at `base_offset`.
pub(crate) fn timeindex_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.timeindex")
}

/// File name of the note that the segment starting at `base_offset` was compacted: when it
/// was first cleaned and whether tombstones are left in it.
pub(crate) fn cleaned_file_name(base_offset: i64) -> String {
    format!("{base_offset:020}.cleaned")
}

/// Parses a segment log file name back into its base offset.
pub(crate) fn parse_log_file_name(name: &str) -> Option<i64> {
    let digits = name.strip_suffix(".log")?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(check_topic_name("orders.v1_x-y").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", &"x".repeat(250)] {
            assert!(check_topic_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(log_file_name(42), "00000000000000000042.log");
        assert_eq!(parse_log_file_name(&log_file_name(42)), Some(42));
        assert_eq!(parse_log_file_name("42.log"), None);
        assert_eq!(parse_log_file_name(&index_file_name(42)), None);
    }

    #[test]
    fn atomic_write_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        atomic_write(&path, b"1").unwrap();
        atomic_write(&path, b"22").unwrap();
        assert_eq!(read_i64_file(&path).unwrap(), Some(22));
        assert!(!tmp_path(&path).exists());
        assert_eq!(read_i64_file(&dir.path().join("none")).unwrap(), None);
    }
}
