//! The durable outbox: every message is written here before it is published, and removed only
//! when the server says it has stored it (the wire contract's end-to-end `StoredAck`), never on a
//! broker PUBACK.
//!
//! # On disk
//!
//! ```text
//! DIR/epoch                      16-byte random epoch + CRC32, written once when the outbox is created
//! DIR/ack                        epoch + acknowledged-through seq + CRC32, replaced atomically
//! DIR/segments/{first_seq:020}   append-only segment files of records
//! ```
//!
//! A record is `len u32 LE | crc32 u32 LE | seq u64 LE | channel u8 | payload`, where `len` counts
//! `seq + channel + payload` and the CRC covers the same bytes. Sequence numbers are contiguous
//! from 0 within an epoch.
//!
//! # Durability (fsync policy)
//!
//! - Group commit: [`Outbox::append`] writes without syncing; [`Outbox::sync`] makes everything
//!   appended so far durable with one `fdatasync`. Only synced records are handed to the publisher
//!   ([`Outbox::durable_end`]); the BLE pipeline syncs once per notification batch.
//! - Creating a segment, the epoch file or the ack file fsyncs the directory, so the file survives
//!   power loss along with its contents.
//! - The ack watermark is written to a temporary file, fsynced, renamed over `ack`, and the
//!   directory fsynced. Segments entirely at or below the watermark are then deleted, except the
//!   newest one, which is kept so the next sequence number is always known from disk.
//!
//! # Recovery
//!
//! Opening reads every segment record by record. The first record whose length is impossible,
//! whose bytes end early, whose CRC fails or whose seq breaks the sequence ends the valid prefix:
//! in the newest segment the file is truncated there (a torn write from `kill -9` or power loss);
//! in an older segment the rest of that segment is skipped and counted. Recovery never panics.
//! If the epoch file is missing but segments exist, opening fails rather than guess. If nothing
//! on disk says which seq comes next (no segment and no ack file), a fresh epoch is drawn so no
//! sequence number is ever reused under one epoch.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use mimamori_wire::{Channel, Epoch};
use serde::Serialize;

/// Bytes before the payload: len, crc, seq, channel.
const RECORD_HEADER: usize = 4 + 4 + 8 + 1;
/// Largest record payload: the wire contract's payload limit.
pub const MAX_RECORD_PAYLOAD: usize = mimamori_wire::limits::MAX_PAYLOAD_BYTES;

/// Outbox settings.
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// A new segment starts once the current one reaches this size, bytes.
    pub segment_bytes: u64,
    /// Disk quota for all segments, bytes. Appends fail with [`OutboxError::QuotaExceeded`] beyond it.
    pub quota_bytes: u64,
    /// Fraction of the quota at which [`QuotaLevel::Warning`] is raised.
    pub warn_fraction: f64,
    /// Fraction of the quota at which [`QuotaLevel::Critical`] is raised.
    pub critical_fraction: f64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 8 << 20,
            quota_bytes: 2 << 30,
            warn_fraction: 0.8,
            critical_fraction: 0.95,
        }
    }
}

/// How full the outbox is relative to its quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuotaLevel {
    /// Below the warning fraction.
    Ok,
    /// At or above the warning fraction: raise a device status alarm.
    Warning,
    /// At or above the critical fraction: the home is about to stop recording.
    Critical,
    /// At the quota: new readings are refused (and counted) until the server acknowledges.
    Full,
}

/// Outbox failures.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// The file system failed.
    #[error("outbox i/o on {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Segments exist but the epoch that names them is missing or corrupt.
    #[error(
        "outbox at {0} has segments but its epoch file is missing or corrupt; refusing to guess"
    )]
    EpochLost(PathBuf),
    /// The quota is reached; the message was not stored.
    #[error(
        "outbox quota of {quota_bytes} bytes reached ({used_bytes} used); message of {len} bytes refused"
    )]
    QuotaExceeded {
        /// Quota.
        quota_bytes: u64,
        /// Bytes in use.
        used_bytes: u64,
        /// Size of the refused message.
        len: usize,
    },
    /// A message larger than the wire contract allows.
    #[error("message of {0} bytes exceeds the record limit")]
    TooLarge(usize),
}

impl OutboxError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// One stored message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the outbox.
    pub seq: u64,
    /// Where it is published.
    pub channel: Channel,
    /// The message body as stored.
    pub payload: Vec<u8>,
}

/// What recovery found when the outbox was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecoveryReport {
    /// Valid records found (acknowledged or not).
    pub records: u64,
    /// Bytes cut from the end of the newest segment (a torn write).
    pub truncated_bytes: u64,
    /// Bytes skipped in older segments after a corrupt record.
    pub skipped_bytes: u64,
    /// True when a new epoch was drawn.
    pub new_epoch: bool,
}

/// A snapshot for `outbox status` and presence messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxStatus {
    /// The outbox's epoch.
    pub epoch: String,
    /// Next sequence number to be assigned.
    pub next_seq: u64,
    /// Highest seq the server acknowledged, if any.
    pub acked_through: Option<u64>,
    /// Messages waiting for the server's acknowledgement.
    pub unacknowledged: u64,
    /// Bytes in segment files.
    pub bytes: u64,
    /// Quota, bytes.
    pub quota_bytes: u64,
    /// Quota level.
    pub quota_level: QuotaLevel,
    /// Segment files.
    pub segments: usize,
}

#[derive(Debug, Clone)]
struct Segment {
    first_seq: u64,
    /// One past the last record's seq.
    end_seq: u64,
    path: PathBuf,
    bytes: u64,
}

/// The durable outbox. Single writer: one process owns a directory.
#[derive(Debug)]
pub struct Outbox {
    dir: PathBuf,
    config: OutboxConfig,
    epoch: Epoch,
    segments: VecDeque<Segment>,
    active: Option<File>,
    next_seq: u64,
    durable_end: u64,
    acked_through: Option<u64>,
    recovery: RecoveryReport,
    read_cursor: Option<ReadCursor>,
}

fn channel_code(c: Channel) -> u8 {
    match c {
        Channel::Observations => 1,
        Channel::Ecg => 2,
        Channel::DeviceStatus => 3,
        Channel::Presence => 4,
        Channel::Ack => 5,
        Channel::Config => 6,
    }
}

fn channel_from_code(code: u8) -> Option<Channel> {
    Some(match code {
        1 => Channel::Observations,
        2 => Channel::Ecg,
        3 => Channel::DeviceStatus,
        4 => Channel::Presence,
        5 => Channel::Ack,
        6 => Channel::Config,
        _ => return None,
    })
}

fn sync_dir(dir: &Path) -> Result<(), OutboxError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(OutboxError::io(dir))
}

/// Writes `bytes` to `path` atomically and durably: temp file, fsync, rename, fsync directory.
fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> Result<(), OutboxError> {
    let tmp = dir.join(format!("{name}.tmp"));
    let path = dir.join(name);
    let mut f = File::create(&tmp).map_err(OutboxError::io(&tmp))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .map_err(OutboxError::io(&tmp))?;
    fs::rename(&tmp, &path).map_err(OutboxError::io(&path))?;
    sync_dir(dir)
}

fn with_crc(body: &[u8]) -> Vec<u8> {
    let mut out = body.to_vec();
    out.extend(crc32fast::hash(body).to_le_bytes());
    out
}

fn check_crc(bytes: &[u8]) -> Option<&[u8]> {
    let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
    (crc32fast::hash(body).to_le_bytes() == crc).then_some(body)
}

fn read_small(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

/// Reads one record at the reader's position. `Ok(None)` = clean end of file; `Err(())` = the
/// bytes there are not a valid record with seq `expected`.
fn read_record(r: &mut impl Read, expected: u64) -> Result<Option<(Record, u64)>, ()> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(()),
        }
    }
    let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
    if !(9..=9 + MAX_RECORD_PAYLOAD).contains(&len) {
        return Err(());
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).map_err(drop)?;
    if crc32fast::hash(&body) != crc {
        return Err(());
    }
    let seq = u64::from_le_bytes(body[..8].try_into().map_err(drop)?);
    let channel = channel_from_code(body[8]).ok_or(())?;
    if seq != expected {
        return Err(());
    }
    body.drain(..9);
    Ok(Some((
        Record {
            seq,
            channel,
            payload: body,
        },
        (8 + len) as u64,
    )))
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`, recovering from torn writes.
    pub fn open(dir: impl Into<PathBuf>, config: OutboxConfig) -> Result<Self, OutboxError> {
        let dir = dir.into();
        let seg_dir = dir.join("segments");
        fs::create_dir_all(&seg_dir).map_err(OutboxError::io(&seg_dir))?;

        let mut seg_files: Vec<(u64, PathBuf)> = fs::read_dir(&seg_dir)
            .map_err(OutboxError::io(&seg_dir))?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                Some((name.parse::<u64>().ok()?, e.path()))
            })
            .collect();
        seg_files.sort();

        let epoch_path = dir.join("epoch");
        let stored_epoch = read_small(&epoch_path)
            .as_deref()
            .and_then(check_crc)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .map(Epoch::from_bytes);
        let ack = read_small(&dir.join("ack"))
            .as_deref()
            .and_then(check_crc)
            .and_then(|b| {
                let epoch = Epoch::from_bytes(b.get(..16)?.try_into().ok()?);
                let through = u64::from_le_bytes(b.get(16..24)?.try_into().ok()?);
                Some((epoch, through))
            });

        let mut recovery = RecoveryReport::default();
        let epoch = match stored_epoch {
            Some(e) if !seg_files.is_empty() || ack.is_some_and(|(ae, _)| ae == e) => e,
            Some(_) | None if seg_files.is_empty() => {
                // Fresh outbox, or one whose position is unknowable: a new epoch keeps seq unique.
                let mut bytes = [0u8; 16];
                getrandom::fill(&mut bytes).map_err(|e| OutboxError::Io {
                    path: epoch_path.clone(),
                    source: io::Error::other(e.to_string()),
                })?;
                let epoch = Epoch::from_bytes(bytes);
                write_atomic(&dir, "epoch", &with_crc(&bytes))?;
                let _ = fs::remove_file(dir.join("ack"));
                recovery.new_epoch = true;
                epoch
            }
            _ => return Err(OutboxError::EpochLost(dir)),
        };
        let acked_through = ack.filter(|(e, _)| *e == epoch).map(|(_, t)| t);

        let mut segments = VecDeque::new();
        let count = seg_files.len();
        let mut expected: Option<u64> = None;
        for (i, (first_seq, path)) in seg_files.into_iter().enumerate() {
            let newest = i + 1 == count;
            // Seq continues from the previous segment, or starts where the file name says.
            let start = expected.unwrap_or(first_seq).max(first_seq);
            let mut file = File::open(&path).map_err(OutboxError::io(&path))?;
            let file_len = file.metadata().map_err(OutboxError::io(&path))?.len();
            let mut reader = io::BufReader::new(&mut file);
            let (mut valid, mut next) = (0u64, start);
            while let Ok(Some((_, n))) = read_record(&mut reader, next) {
                valid += n;
                next += 1;
                recovery.records += 1;
            }
            drop(reader);
            if valid < file_len {
                if newest {
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(OutboxError::io(&path))?;
                    f.set_len(valid)
                        .and_then(|()| f.sync_all())
                        .map_err(OutboxError::io(&path))?;
                    recovery.truncated_bytes += file_len - valid;
                } else {
                    recovery.skipped_bytes += file_len - valid;
                }
            }
            expected = Some(next);
            segments.push_back(Segment {
                first_seq: start,
                end_seq: next,
                path,
                bytes: valid,
            });
        }
        let next_seq = expected
            .unwrap_or(0)
            .max(acked_through.map_or(0, |t| t + 1));

        let mut outbox = Self {
            dir,
            config,
            epoch,
            segments,
            active: None,
            next_seq,
            durable_end: next_seq,
            acked_through,
            recovery,
            read_cursor: None,
        };
        outbox.delete_acknowledged_segments()?;
        Ok(outbox)
    }

    /// The outbox's epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// What recovery found when this outbox was opened.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The next seq to be assigned.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// One past the last record made durable by [`Outbox::sync`]; only those are published.
    pub fn durable_end(&self) -> u64 {
        self.durable_end
    }

    /// Highest seq the server has acknowledged.
    pub fn acked_through(&self) -> Option<u64> {
        self.acked_through
    }

    /// First seq not yet acknowledged.
    pub fn first_unacked(&self) -> u64 {
        self.acked_through.map_or(0, |t| t + 1)
    }

    fn used_bytes(&self) -> u64 {
        self.segments.iter().map(|s| s.bytes).sum()
    }

    /// Quota level now.
    pub fn quota_level(&self) -> QuotaLevel {
        let used = self.used_bytes() as f64;
        let quota = self.config.quota_bytes as f64;
        if used >= quota {
            QuotaLevel::Full
        } else if used >= quota * self.config.critical_fraction {
            QuotaLevel::Critical
        } else if used >= quota * self.config.warn_fraction {
            QuotaLevel::Warning
        } else {
            QuotaLevel::Ok
        }
    }

    /// A snapshot.
    pub fn status(&self) -> OutboxStatus {
        OutboxStatus {
            epoch: self.epoch.to_string(),
            next_seq: self.next_seq,
            acked_through: self.acked_through,
            unacknowledged: self.next_seq - self.first_unacked(),
            bytes: self.used_bytes(),
            quota_bytes: self.config.quota_bytes,
            quota_level: self.quota_level(),
            segments: self.segments.len(),
        }
    }

    fn seg_path(&self, first_seq: u64) -> PathBuf {
        self.dir.join("segments").join(format!("{first_seq:020}"))
    }

    /// Appends one message and returns its seq. Not durable until [`Outbox::sync`].
    pub fn append(&mut self, channel: Channel, payload: &[u8]) -> Result<u64, OutboxError> {
        if payload.len() > MAX_RECORD_PAYLOAD {
            return Err(OutboxError::TooLarge(payload.len()));
        }
        let record_len = (RECORD_HEADER + payload.len()) as u64;
        let used = self.used_bytes();
        if used + record_len > self.config.quota_bytes {
            return Err(OutboxError::QuotaExceeded {
                quota_bytes: self.config.quota_bytes,
                used_bytes: used,
                len: payload.len(),
            });
        }
        let rotate = self
            .segments
            .back()
            .is_none_or(|s| s.bytes + record_len > self.config.segment_bytes && s.bytes > 0);
        if rotate || self.active.is_none() {
            self.open_active(rotate)?;
        }
        let seq = self.next_seq;
        let mut body = Vec::with_capacity(9 + payload.len());
        body.extend(seq.to_le_bytes());
        body.push(channel_code(channel));
        body.extend_from_slice(payload);
        let mut rec = Vec::with_capacity(8 + body.len());
        rec.extend((body.len() as u32).to_le_bytes());
        rec.extend(crc32fast::hash(&body).to_le_bytes());
        rec.extend(body);
        let seg = self
            .segments
            .back_mut()
            .expect("open_active pushed a segment");
        let file = self.active.as_mut().expect("open_active opened the file");
        file.write_all(&rec).map_err(OutboxError::io(&seg.path))?;
        seg.bytes += rec.len() as u64;
        seg.end_seq = seq + 1;
        self.next_seq += 1;
        Ok(seq)
    }

    fn open_active(&mut self, new_segment: bool) -> Result<(), OutboxError> {
        if new_segment {
            // Make the old segment durable before moving on, so segments complete in order.
            if let Some(f) = self.active.take() {
                f.sync_data().map_err(OutboxError::io(&self.dir))?;
            }
            let path = self.seg_path(self.next_seq);
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(OutboxError::io(&path))?;
            sync_dir(&self.dir.join("segments"))?;
            self.segments.push_back(Segment {
                first_seq: self.next_seq,
                end_seq: self.next_seq,
                path,
                bytes: 0,
            });
            self.active = Some(f);
        } else {
            let seg = self.segments.back().expect("checked by caller");
            self.active = Some(
                OpenOptions::new()
                    .append(true)
                    .open(&seg.path)
                    .map_err(OutboxError::io(&seg.path))?,
            );
        }
        Ok(())
    }

    /// Makes every appended record durable (one `fdatasync`: group commit).
    pub fn sync(&mut self) -> Result<(), OutboxError> {
        if let Some(f) = &self.active {
            f.sync_data().map_err(OutboxError::io(&self.dir))?;
        }
        self.durable_end = self.next_seq;
        Ok(())
    }

    /// Applies the server's end-to-end acknowledgement. Acks for another epoch, or for seqs this
    /// outbox never assigned, are ignored (returns `false`).
    pub fn ack(&mut self, epoch: Epoch, stored_through: u64) -> Result<bool, OutboxError> {
        if epoch != self.epoch || stored_through >= self.durable_end {
            return Ok(false);
        }
        if self.acked_through.is_some_and(|t| t >= stored_through) {
            return Ok(true);
        }
        let mut bytes = self.epoch.to_bytes().to_vec();
        bytes.extend(stored_through.to_le_bytes());
        write_atomic(&self.dir, "ack", &with_crc(&bytes))?;
        self.acked_through = Some(stored_through);
        self.delete_acknowledged_segments()?;
        Ok(true)
    }

    fn delete_acknowledged_segments(&mut self) -> Result<(), OutboxError> {
        let first_unacked = self.first_unacked();
        // Keep the newest segment: it is where the next seq is read from after a restart.
        while self.segments.len() > 1 && self.segments[0].end_seq <= first_unacked {
            let seg = self.segments.pop_front().expect("len > 1");
            fs::remove_file(&seg.path)
                .or_else(|e| {
                    if e.kind() == io::ErrorKind::NotFound {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(OutboxError::io(&seg.path))?;
        }
        Ok(())
    }

    /// Reads up to `max` durable records starting at `from` (in seq order), skipping any that are
    /// already acknowledged. Returns fewer at the durable end.
    ///
    /// Remembers where the last read stopped, so draining a long backlog in windows reads each
    /// segment once instead of rescanning it from the start.
    pub fn read_from(&mut self, from: u64, max: usize) -> Result<Vec<Record>, OutboxError> {
        let from = from.max(self.first_unacked());
        let mut out = Vec::new();
        let durable_end = self.durable_end;
        for seg in self
            .segments
            .iter()
            .filter(|s| s.end_seq > from && s.first_seq < durable_end)
        {
            let (mut next, mut offset) = match self.read_cursor {
                Some(c) if c.first_seq == seg.first_seq && c.seq <= from => (c.seq, c.offset),
                _ => (seg.first_seq, 0),
            };
            let mut file = File::open(&seg.path).map_err(OutboxError::io(&seg.path))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(OutboxError::io(&seg.path))?;
            let mut reader = io::BufReader::new(file);
            while next < seg.end_seq.min(durable_end) && out.len() < max {
                if next < from {
                    // Skip without reading the payload.
                    let mut head = [0u8; 4];
                    reader
                        .read_exact(&mut head)
                        .map_err(OutboxError::io(&seg.path))?;
                    let len = u32::from_le_bytes(head);
                    reader
                        .seek_relative(i64::from(len) + 4)
                        .map_err(OutboxError::io(&seg.path))?;
                    offset += 8 + u64::from(len);
                    next += 1;
                    continue;
                }
                match read_record(&mut reader, next) {
                    Ok(Some((record, n))) => {
                        out.push(record);
                        offset += n;
                    }
                    _ => break,
                }
                next += 1;
            }
            self.read_cursor = Some(ReadCursor {
                first_seq: seg.first_seq,
                seq: next,
                offset,
            });
            if out.len() >= max {
                break;
            }
        }
        Ok(out)
    }
}

/// Where the last [`Outbox::read_from`] stopped.
#[derive(Debug, Clone, Copy)]
struct ReadCursor {
    first_seq: u64,
    seq: u64,
    offset: u64,
}

/// The outbox shared by the producers (BLE sessions, simulator) and the publisher.
///
/// A std mutex, not an async one: every critical section is a short file operation and never
/// spans an `.await`.
#[derive(Debug)]
pub struct SharedOutbox {
    outbox: std::sync::Mutex<Outbox>,
    appended: tokio::sync::Notify,
}

impl SharedOutbox {
    /// Wraps an opened outbox.
    pub fn new(outbox: Outbox) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Self {
            outbox: std::sync::Mutex::new(outbox),
            appended: tokio::sync::Notify::new(),
        })
    }

    /// Runs `f` with the outbox locked.
    pub fn with<R>(&self, f: impl FnOnce(&mut Outbox) -> R) -> R {
        // A panic while holding the lock cannot leave the outbox inconsistent on disk (recovery
        // handles any state), so a poisoned lock is used as is.
        let mut guard = self
            .outbox
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// Appends wire bodies as one group commit and wakes the publisher. Returns their seqs.
    pub fn store(
        &self,
        bodies: &[mimamori_wire::Body],
    ) -> Result<std::ops::Range<u64>, OutboxError> {
        let range = self.with(|o| {
            let start = o.next_seq();
            for body in bodies {
                // Serialising a wire body cannot fail: it holds only plain data.
                let payload = serde_json::to_vec(body).unwrap_or_default();
                o.append(body.channel(), &payload)?;
            }
            o.sync()?;
            Ok::<_, OutboxError>(start..o.next_seq())
        })?;
        self.appended.notify_one();
        Ok(range)
    }

    /// Resolves after the next [`SharedOutbox::store`].
    pub async fn appended(&self) {
        self.appended.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> OutboxConfig {
        OutboxConfig {
            segment_bytes: 1024,
            quota_bytes: 1 << 20,
            ..OutboxConfig::default()
        }
    }

    fn fill(outbox: &mut Outbox, n: u64) {
        for i in 0..n {
            outbox
                .append(Channel::Observations, format!("reading {i}").as_bytes())
                .unwrap();
        }
        outbox.sync().unwrap();
    }

    fn payloads(records: &[Record]) -> Vec<String> {
        records
            .iter()
            .map(|r| String::from_utf8(r.payload.clone()).unwrap())
            .collect()
    }

    #[test]
    fn records_survive_reopen_in_order_with_the_same_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), cfg()).unwrap();
        assert!(o.recovery().new_epoch);
        let epoch = o.epoch();
        fill(&mut o, 100);
        drop(o);
        let mut o = Outbox::open(dir.path(), cfg()).unwrap();
        assert_eq!(
            (o.epoch(), o.next_seq(), o.recovery().records),
            (epoch, 100, 100)
        );
        let all = o.read_from(0, 1000).unwrap();
        assert_eq!(
            all.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (0..100).collect::<Vec<_>>()
        );
        assert_eq!(payloads(&all)[42], "reading 42");
        // Windowed reads continue where the last stopped, and rewinding works too.
        let mut windows = Vec::new();
        let mut from = 0;
        loop {
            let w = o.read_from(from, 7).unwrap();
            let Some(last) = w.last() else { break };
            from = last.seq + 1;
            windows.extend(w);
        }
        assert_eq!(windows, all);
        assert_eq!(
            o.read_from(3, 2)
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert!(o.status().segments > 1, "small segments rotate");
    }

    #[test]
    fn only_synced_records_are_published() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), cfg()).unwrap();
        o.append(Channel::Ecg, b"a").unwrap();
        assert_eq!(o.read_from(0, 10).unwrap().len(), 0);
        o.sync().unwrap();
        assert_eq!(o.read_from(0, 10).unwrap()[0].channel, Channel::Ecg);
    }

    #[test]
    fn ack_removes_only_what_the_server_stored_and_persists() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), cfg()).unwrap();
        fill(&mut o, 100);
        let segments_before = o.status().segments;
        assert!(o.ack(o.epoch(), 59).unwrap());
        assert_eq!(
            o.read_from(0, 1000).unwrap().first().map(|r| r.seq),
            Some(60)
        );
        assert!(
            o.status().segments < segments_before,
            "fully acknowledged segments are deleted"
        );
        // An ack from another epoch, or beyond what exists, changes nothing.
        assert!(!o.ack(Epoch::from_bytes([7; 16]), 99).unwrap());
        assert!(!o.ack(o.epoch(), 100).unwrap());
        let epoch = o.epoch();
        drop(o);
        let mut o = Outbox::open(dir.path(), cfg()).unwrap();
        assert_eq!(
            (o.epoch(), o.acked_through(), o.status().unacknowledged),
            (epoch, Some(59), 40)
        );
        assert!(o.ack(epoch, 99).unwrap());
        assert_eq!(o.read_from(0, 1000).unwrap().len(), 0);
        drop(o);
        // Everything acknowledged: the newest segment is kept, so the seq continues, same epoch.
        let mut o = Outbox::open(dir.path(), cfg()).unwrap();
        assert_eq!((o.epoch(), o.next_seq()), (epoch, 100));
        assert_eq!(o.append(Channel::Observations, b"x").unwrap(), 100);
    }

    #[test]
    fn torn_or_corrupt_last_record_at_every_byte_offset_keeps_the_valid_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(
            dir.path(),
            OutboxConfig {
                segment_bytes: 1 << 20,
                ..cfg()
            },
        )
        .unwrap();
        fill(&mut o, 5);
        let path = o.segments.back().unwrap().path.clone();
        drop(o);
        let pristine = fs::read(&path).unwrap();
        let last_len = RECORD_HEADER + "reading 4".len();
        let last_start = pristine.len() - last_len;
        for offset in last_start..pristine.len() {
            for corruption in ["truncate", "flip"] {
                let mut bytes = pristine.clone();
                match corruption {
                    "truncate" => bytes.truncate(offset),
                    _ => bytes[offset] ^= 0x5A,
                }
                fs::write(&path, &bytes).unwrap();
                let mut o = Outbox::open(
                    dir.path(),
                    OutboxConfig {
                        segment_bytes: 1 << 20,
                        ..cfg()
                    },
                )
                .unwrap();
                let got = o.read_from(0, 100).unwrap();
                assert_eq!(
                    payloads(&got),
                    vec!["reading 0", "reading 1", "reading 2", "reading 3"],
                    "{corruption} at {offset}"
                );
                assert_eq!(
                    fs::metadata(&path).unwrap().len() as usize,
                    last_start,
                    "{corruption} at {offset}"
                );
                // The outbox goes on: the lost record's seq is reused only because it was never durable.
                assert_eq!(o.append(Channel::Observations, b"after").unwrap(), 4);
                o.sync().unwrap();
                drop(o);
                fs::write(&path, &pristine).unwrap();
            }
        }
    }

    #[test]
    fn quota_raises_levels_then_refuses_instead_of_dropping() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(
            dir.path(),
            OutboxConfig {
                segment_bytes: 4096,
                quota_bytes: 10 * 117,
                ..cfg()
            },
        )
        .unwrap();
        let payload = [0u8; 100]; // 117-byte records
        let mut levels = Vec::new();
        loop {
            match o.append(Channel::Ecg, &payload) {
                Ok(_) => levels.push(o.quota_level()),
                Err(OutboxError::QuotaExceeded { .. }) => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(levels.len(), 10);
        assert_eq!(
            &levels[6..],
            &[
                QuotaLevel::Ok,
                QuotaLevel::Warning,
                QuotaLevel::Warning,
                QuotaLevel::Full
            ]
        );
        o.sync().unwrap();
        assert_eq!(
            o.read_from(0, 100).unwrap().len(),
            10,
            "nothing already stored was dropped"
        );
    }

    #[test]
    fn segments_without_epoch_refuse_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let mut o = Outbox::open(dir.path(), cfg()).unwrap();
        fill(&mut o, 3);
        drop(o);
        fs::remove_file(dir.path().join("epoch")).unwrap();
        assert!(matches!(
            Outbox::open(dir.path(), cfg()),
            Err(OutboxError::EpochLost(_))
        ));
    }

    /// Child half of [`kill_9_mid_stream_loses_nothing_that_was_synced`]: appends forever,
    /// printing each synced seq.
    #[test]
    fn outbox_kill9_child() {
        let Ok(dir) = std::env::var("MIMAMORI_OUTBOX_CHILD_DIR") else {
            return;
        };
        let mut o = Outbox::open(
            dir,
            OutboxConfig {
                segment_bytes: 64 * 1024,
                ..cfg()
            },
        )
        .unwrap();
        let mut out = io::stdout();
        loop {
            for _ in 0..3 {
                let seq = o.next_seq();
                o.append(Channel::Observations, format!("payload {seq}").as_bytes())
                    .unwrap();
            }
            o.sync().unwrap();
            writeln!(out, "synced {}", o.durable_end()).unwrap();
            out.flush().unwrap();
        }
    }

    #[test]
    fn kill_9_mid_stream_loses_nothing_that_was_synced() {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "outbox::tests::outbox_kill9_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("MIMAMORI_OUTBOX_CHILD_DIR", dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut synced = 0u64;
        while synced < 3000 {
            let line = lines.next().unwrap().unwrap();
            if let Some(n) = line.strip_prefix("synced ") {
                synced = n.parse().unwrap();
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut o = Outbox::open(
            dir.path(),
            OutboxConfig {
                segment_bytes: 64 * 1024,
                ..cfg()
            },
        )
        .unwrap();
        assert!(o.next_seq() >= synced, "{} < {synced}", o.next_seq());
        let all = o.read_from(0, usize::MAX).unwrap();
        assert_eq!(all.len() as u64, o.next_seq());
        assert!(
            all.iter()
                .enumerate()
                .all(|(i, r)| r.seq == i as u64 && r.payload == format!("payload {i}").as_bytes())
        );
    }
}
