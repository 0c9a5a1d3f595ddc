//! Sequential walks over the batches of a segment log.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

use portask_engine::batch::{BatchFormatError, BatchHeader, HEADER_LEN};

/// Reads batch headers one after the other between two byte positions of a log file.
pub(crate) struct Walk<'a> {
    rd: BufReader<&'a File>,
    pos: u64,
    end: u64,
    buf: Vec<u8>,
}

/// One step of a [`Walk`].
pub(crate) enum Step {
    /// A batch starting at byte `pos`.
    Batch {
        /// Position of the batch in the file.
        pos: u64,
        /// Its header.
        header: BatchHeader,
    },
    /// Bytes at `pos` are not a whole valid batch; the walk is over.
    Invalid {
        /// Position of the invalid bytes.
        pos: u64,
        /// What is wrong with them.
        why: BatchFormatError,
    },
    /// The walk reached its end position.
    End,
}

impl<'a> Walk<'a> {
    /// Starts a walk at byte `start` that ends at byte `end`, reading `buffer` bytes at a time
    /// (small for a few headers, large for a whole segment).
    pub(crate) fn new(file: &'a File, start: u64, end: u64, buffer: usize) -> io::Result<Self> {
        let mut rd = BufReader::with_capacity(buffer, file);
        rd.seek(SeekFrom::Start(start))?;
        Ok(Self {
            rd,
            pos: start,
            end,
            buf: Vec::new(),
        })
    }

    /// Reads the next batch header; with `check`, reads the whole batch and checks its CRC.
    pub(crate) fn step(&mut self, check: bool) -> io::Result<Step> {
        let pos = self.pos;
        let remaining = self.end.saturating_sub(pos);
        if remaining == 0 {
            return Ok(Step::End);
        }
        let invalid = |why| Ok(Step::Invalid { pos, why });
        if remaining < HEADER_LEN as u64 {
            return invalid(BatchFormatError::Truncated);
        }
        self.buf.resize(HEADER_LEN, 0);
        self.rd.read_exact(&mut self.buf)?;
        let header = match BatchHeader::parse(&self.buf) {
            Ok(h) => h,
            Err(why) => return invalid(why),
        };
        let total = header.total_len() as u64;
        if total > remaining {
            return invalid(BatchFormatError::Truncated);
        }
        if check {
            self.buf.resize(total as usize, 0);
            self.rd.read_exact(&mut self.buf[HEADER_LEN..])?;
            if let Err(why) = BatchHeader::parse_checked(&self.buf) {
                return invalid(why);
            }
        } else {
            self.rd.seek_relative((total - HEADER_LEN as u64) as i64)?;
        }
        self.pos += total;
        Ok(Step::Batch { pos, header })
    }
}
