//! The AMQP durability side of [`DiskStorage`]: durable definitions and the message logs of
//! durable queues.
//!
//! `definitions.log` holds records `{key, value or delete}` (see [`super::definitions`]); the
//! last write wins, and it is rewritten compactly at start when it holds more than twice its
//! live entries plus 8. Each durable queue has a directory `queues/<name>/`, where `<name>` is
//! the lowercase hex of the queue key's UTF-8 bytes (long keys: a hex prefix and a hash; see
//! [`dir_name`]), holding `messages.log`: a header record with the key itself, one
//! `Append {id, bytes}` record per message and `Remove {ids}` records. Only an index of the
//! live messages stays in memory, and a log is rewritten with only the live messages once more
//! than half of it is dead (see [`super::queue_log`]). Deleting a queue renames its directory
//! to `<name>.deleted`, fsyncs `queues/`, then removes it; leftovers are removed at start.

use std::fs;
use std::path::PathBuf;

use bytes::Bytes;
use portask_engine::storage::{RecoveredState, StorageError};

use super::DiskStorage;
use super::definitions::DefinitionsLog;
use super::fsutil::{fsync_failed, sync_dir};
use super::queue_log::{LOG_NAME, QueueLog, dir_name};

/// Suffix of a queue directory being deleted.
const DELETED_SUFFIX: &str = ".deleted";

impl DiskStorage {
    fn queues_dir(&self) -> PathBuf {
        self.dir.join("queues")
    }

    fn definitions_log(&mut self) -> Result<&mut DefinitionsLog, StorageError> {
        if self.definitions.is_none() {
            self.definitions = Some(DefinitionsLog::open(&self.dir)?.0);
        }
        Ok(self.definitions.as_mut().expect("opened above"))
    }

    /// Loads the definitions and what every queue's log holds (not the messages); removes leftovers of
    /// interrupted queue deletions and creations.
    pub(super) fn recover_durable(
        &mut self,
        state: &mut RecoveredState,
    ) -> Result<(), StorageError> {
        let (log, definitions) = DefinitionsLog::open(&self.dir)?;
        self.definitions = Some(log);
        state.definitions = definitions;
        self.queues.clear();
        self.dirty_queues.clear();
        let dir = self.queues_dir();
        fs::create_dir_all(&dir)?;
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            let path = entry.path();
            if entry
                .file_name()
                .to_string_lossy()
                .ends_with(DELETED_SUFFIX)
            {
                fs::remove_dir_all(&path)?;
            } else if entry.file_type()?.is_dir() {
                let Some((queue, stored)) = QueueLog::recover(&path)? else {
                    eprintln!(
                        "portask: storage: removing {} without a queue header",
                        path.display()
                    );
                    fs::remove_dir_all(&path)?;
                    continue;
                };
                state.queues.insert(queue.key().to_owned(), stored);
                self.queues.insert(queue.key().to_owned(), queue);
            }
        }
        Ok(())
    }

    /// The open log of `queue`, created (or picked up from disk) when missing.
    fn queue_log(&mut self, queue: &str) -> Result<&mut QueueLog, StorageError> {
        if !self.queues.contains_key(queue) {
            let dir = self.queues_dir().join(dir_name(queue));
            let log = match dir.join(LOG_NAME).exists() {
                true => QueueLog::recover(&dir)?.map(|(log, _)| log),
                false => None,
            };
            let log = match log {
                Some(log) => log,
                None => QueueLog::create(&dir, queue)?,
            };
            self.queues.insert(queue.to_owned(), log);
        }
        Ok(self.queues.get_mut(queue).expect("inserted above"))
    }

    /// [`portask_engine::storage::Storage::put_definition`].
    pub(super) fn durable_put_definition(
        &mut self,
        key: &str,
        value: Option<&Bytes>,
    ) -> Result<(), StorageError> {
        self.writable()?;
        let sync = self.opts.sync_on_append;
        let r = self.definitions_log().and_then(|log| {
            log.put(key, value)?;
            if sync { log.sync() } else { Ok(()) }
        });
        self.watch(r)
    }

    /// [`portask_engine::storage::Storage::queue_append`].
    pub(super) fn durable_queue_append(
        &mut self,
        queue: &str,
        messages: &[(u64, Bytes)],
    ) -> Result<(), StorageError> {
        self.writable()?;
        let sync = self.opts.sync_on_append;
        let r = self.queue_log(queue).and_then(|log| {
            log.append(messages)?;
            if sync { log.sync() } else { Ok(()) }
        });
        if !sync {
            self.dirty_queues.insert(queue.to_owned());
        }
        self.watch(r)
    }

    /// [`portask_engine::storage::Storage::queue_remove`].
    pub(super) fn durable_queue_remove(
        &mut self,
        queue: &str,
        ids: &[u64],
    ) -> Result<(), StorageError> {
        self.writable()?;
        let Some(log) = self.queues.get_mut(queue) else {
            return Ok(());
        };
        let r = log.remove(ids);
        self.dirty_queues.insert(queue.to_owned());
        self.watch(r)
    }

    /// [`portask_engine::storage::Storage::queue_read`].
    pub(super) fn durable_queue_read(
        &self,
        queue: &str,
        after: Option<u64>,
        max_messages: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Bytes)>, StorageError> {
        match self.queues.get(queue) {
            Some(log) => log.read(after, max_messages, max_bytes),
            None => Ok(Vec::new()),
        }
    }

    /// [`portask_engine::storage::Storage::queue_remove_from`].
    pub(super) fn durable_queue_remove_from(
        &mut self,
        queue: &str,
        from: u64,
    ) -> Result<(), StorageError> {
        let ids = match self.queues.get(queue) {
            Some(log) => log.ids_from(from),
            None => return Ok(()),
        };
        self.durable_queue_remove(queue, &ids)
    }

    /// [`portask_engine::storage::Storage::queue_delete`]: rename the directory aside, make
    /// that durable, then remove it.
    pub(super) fn durable_queue_delete(&mut self, queue: &str) -> Result<(), StorageError> {
        self.writable()?;
        self.queues.remove(queue);
        self.dirty_queues.remove(queue);
        let name = dir_name(queue);
        let dir = self.queues_dir().join(&name);
        if !dir.exists() {
            return Ok(());
        }
        let trash = self.queues_dir().join(format!("{name}{DELETED_SUFFIX}"));
        if trash.exists() {
            fs::remove_dir_all(&trash)?;
        }
        fs::rename(&dir, &trash)?;
        let r = sync_dir(&self.queues_dir()).map_err(fsync_failed);
        self.watch(r)?;
        fs::remove_dir_all(&trash)?;
        Ok(())
    }

    /// Fsyncs the queue logs and the definitions log written since the last sync.
    pub(super) fn sync_durable(&mut self) -> Result<(), StorageError> {
        while let Some(queue) = self.dirty_queues.pop_first() {
            if let Some(log) = self.queues.get_mut(&queue) {
                let r = log.sync();
                if r.is_err() {
                    self.dirty_queues.insert(queue);
                }
                self.watch(r)?;
            }
        }
        if let Some(log) = &mut self.definitions {
            let r = log.sync();
            self.watch(r)?;
        }
        Ok(())
    }
}
