//! The recorder's on-disk spool: batches the ledger could not take, kept in order until it can.
//!
//! One append-only file of frames `[len u32][records u32][crc32 u32][RecordBatch protobuf]`
//! (little-endian; the CRC covers the record count and the payload), fsync'd after every
//! append. Delivery reads from a cursor; the file is truncated only once every frame in it has
//! been acknowledged, so a crash at any point replays at worst some already-stored batches,
//! which the ledger ignores by `request_id`. A torn or corrupt tail (a crash mid-append) is cut
//! off when the spool is opened. The file is locked so two recorders cannot share it.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use prost::Message;

use super::Shared;
use super::error::RecorderError;
use crate::proto::RecordBatch;

const HEADER: u64 = 12;
/// No single frame may be larger than this; a larger length means a corrupt header.
const MAX_FRAME: u32 = 64 << 20;

/// Why an append or a read failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SpoolError {
    #[error("spool is full ({used} of {max} bytes used, frame needs {needed})")]
    Full { used: u64, max: u64, needed: u64 },
    #[error("spool I/O error: {0}")]
    Io(#[from] io::Error),
    #[error("spool frame at offset {offset} is corrupt: {reason}")]
    Corrupt { offset: u64, reason: String },
}

/// Records read from the spool, not yet acknowledged.
pub(crate) struct Peeked {
    pub(crate) batch: RecordBatch,
    /// Where the cursor moves once `batch` is delivered.
    pub(crate) next: u64,
}

pub(crate) struct Spool {
    file: File,
    path: PathBuf,
    /// End of the last whole frame (the file's length).
    end: u64,
    /// Start of the first undelivered frame.
    cursor: u64,
    /// Records in `[cursor, end)`.
    records: u64,
    max_bytes: u64,
    shared: Arc<Shared>,
}

impl Spool {
    /// Opens or creates the spool at `path`, locks it, and checks every frame, cutting off a
    /// torn tail.
    pub(crate) fn open(
        path: &Path,
        max_bytes: u64,
        shared: Arc<Shared>,
    ) -> Result<Self, RecorderError> {
        let open_err = |source| RecorderError::SpoolOpen {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir).map_err(open_err)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(open_err)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(RecorderError::SpoolLocked {
                    path: path.to_owned(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(open_err(e)),
        }
        let mut spool = Self {
            file,
            path: path.to_owned(),
            end: 0,
            cursor: 0,
            records: 0,
            max_bytes,
            shared,
        };
        spool.scan().map_err(open_err)?;
        spool.publish();
        Ok(spool)
    }

    /// Walks the frames from the start, counting records; cuts the file after the last whole,
    /// valid frame.
    fn scan(&mut self) -> io::Result<()> {
        let len = self.file.metadata()?.len();
        self.file.seek(SeekFrom::Start(0))?;
        let mut reader = BufReader::new(&self.file);
        let mut offset = 0;
        let mut records = 0;
        while offset < len {
            match read_frame(&mut reader, offset, len) {
                Ok((count, _payload, size)) => {
                    offset += size;
                    records += u64::from(count);
                }
                Err(e) => {
                    tracing::warn!(
                        spool = %self.path.display(),
                        error = %e,
                        discarded_bytes = len - offset,
                        "cutting off a torn or corrupt spool tail"
                    );
                    break;
                }
            }
        }
        if offset < len {
            self.file.set_len(offset)?;
            self.file.sync_all()?;
        }
        self.end = offset;
        self.records = records;
        if records > 0 {
            tracing::info!(spool = %self.path.display(), records, "replaying usage spool");
        }
        Ok(())
    }

    /// Appends one batch and syncs it to disk.
    pub(crate) fn append(&mut self, batch: &RecordBatch) -> Result<(), SpoolError> {
        let payload = batch.encode_to_vec();
        let needed = HEADER + payload.len() as u64;
        if payload.len() > MAX_FRAME as usize || self.end + needed > self.max_bytes {
            return Err(SpoolError::Full {
                used: self.end,
                max: self.max_bytes,
                needed,
            });
        }
        let count = u32::try_from(batch.records.len()).unwrap_or(u32::MAX);
        let mut frame = Vec::with_capacity(needed as usize);
        frame.extend_from_slice(
            &u32::try_from(payload.len())
                .unwrap_or(u32::MAX)
                .to_le_bytes(),
        );
        frame.extend_from_slice(&count.to_le_bytes());
        frame.extend_from_slice(&checksum(count, &payload).to_le_bytes());
        frame.extend_from_slice(&payload);
        let written = self
            .file
            .seek(SeekFrom::Start(self.end))
            .and_then(|_| self.file.write_all(&frame))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Leave no half frame behind for the next append to bury.
            let _ = self.file.set_len(self.end);
            return Err(SpoolError::Io(e));
        }
        self.end += needed;
        self.records += u64::from(count);
        self.publish();
        Ok(())
    }

    /// Reads whole frames from the cursor until at least `max_records` records (or the end).
    pub(crate) fn peek(&mut self, max_records: usize) -> Result<Option<Peeked>, SpoolError> {
        if self.cursor >= self.end {
            return Ok(None);
        }
        self.file.seek(SeekFrom::Start(self.cursor))?;
        let mut reader = BufReader::new(&self.file);
        let mut batch = RecordBatch::default();
        let mut offset = self.cursor;
        while offset < self.end && batch.records.len() < max_records {
            let (_, payload, size) = read_frame(&mut reader, offset, self.end)?;
            let frame =
                RecordBatch::decode(payload.as_slice()).map_err(|e| SpoolError::Corrupt {
                    offset,
                    reason: e.to_string(),
                })?;
            batch.records.extend(frame.records);
            offset += size;
        }
        Ok(Some(Peeked {
            batch,
            next: offset,
        }))
    }

    /// Marks everything before `next` delivered; empties the file once all of it is.
    pub(crate) fn commit(&mut self, next: u64, delivered: usize) -> Result<(), SpoolError> {
        self.cursor = next.min(self.end);
        self.records = self.records.saturating_sub(delivered as u64);
        if self.cursor >= self.end {
            self.reset()?;
        }
        self.publish();
        Ok(())
    }

    /// Throws away everything from the cursor on (after unrecoverable corruption); returns the
    /// number of records lost.
    pub(crate) fn discard_rest(&mut self) -> Result<u64, SpoolError> {
        let lost = self.records;
        self.reset()?;
        self.publish();
        Ok(lost)
    }

    fn reset(&mut self) -> Result<(), SpoolError> {
        self.file.set_len(0)?;
        self.file.sync_all()?;
        self.cursor = 0;
        self.end = 0;
        self.records = 0;
        Ok(())
    }

    fn publish(&self) {
        self.shared
            .spool_records
            .store(self.records, Ordering::Relaxed);
        self.shared.spool_bytes.store(self.end, Ordering::Relaxed);
    }
}

/// Reads one frame at `offset` (of a file whose valid data ends at `end`): its record count,
/// payload, and total size.
fn read_frame(
    reader: &mut impl Read,
    offset: u64,
    end: u64,
) -> Result<(u32, Vec<u8>, u64), SpoolError> {
    let corrupt = |reason: &str| SpoolError::Corrupt {
        offset,
        reason: reason.to_owned(),
    };
    if end - offset < HEADER {
        return Err(corrupt("truncated header"));
    }
    let mut header = [0u8; HEADER as usize];
    reader.read_exact(&mut header)?;
    let word =
        |i: usize| u32::from_le_bytes([header[i], header[i + 1], header[i + 2], header[i + 3]]);
    let (len, count, crc) = (word(0), word(4), word(8));
    if len > MAX_FRAME {
        return Err(corrupt("frame length too large"));
    }
    if end - offset - HEADER < u64::from(len) {
        return Err(corrupt("truncated payload"));
    }
    let mut payload = vec![0u8; len as usize];
    reader.read_exact(&mut payload)?;
    if checksum(count, &payload) != crc {
        return Err(corrupt("checksum mismatch"));
    }
    Ok((count, payload, HEADER + u64::from(len)))
}

fn checksum(count: u32, payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&count.to_le_bytes());
    hasher.update(payload);
    hasher.finalize()
}
