//! The byte codec shared by the state snapshots ([`crate::qrs::QrsDetector::snapshot`],
//! [`crate::analysis::Analysis::snapshot`]): little-endian fields, options as a 0/1 byte before
//! their value, and a reader that fails with the offset where the bytes ran out.

/// A snapshot that cannot be restored.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SnapshotError {
    /// The bytes do not start with the expected snapshot magic.
    #[error("not a snapshot of this kind of state")]
    BadMagic,
    /// A format version this build does not read.
    #[error("snapshot format version {0} is not supported")]
    UnsupportedVersion(u8),
    /// The bytes end before the state does.
    #[error("snapshot ends early at byte {0}")]
    Truncated(usize),
    /// The sampling rate is not finite and positive.
    #[error("snapshot sampling rate {0} is not positive")]
    BadSampleRate(f64),
    /// A field holds a value the state can never be in.
    #[error("snapshot field {0} is out of range")]
    OutOfRange(&'static str),
    /// Bytes remain after the state.
    #[error("snapshot has {0} bytes after the state")]
    TrailingBytes(usize),
}

pub(crate) fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_f64(out: &mut Vec<u8>, value: f64) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_f32(out: &mut Vec<u8>, value: f32) {
    out.extend_from_slice(&value.to_le_bytes());
}

pub(crate) fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

/// An optional index: a 0/1 byte, then the value (0 when absent).
pub(crate) fn put_opt_u64(out: &mut Vec<u8>, value: Option<u64>) {
    put_flag(out, value.is_some());
    put_u64(out, value.unwrap_or_default());
}

pub(crate) fn put_flag(out: &mut Vec<u8>, value: bool) {
    out.push(u8::from(value));
}

/// Reads little-endian values, failing with the offset where the bytes ran out.
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, at: 0 }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], SnapshotError> {
        let slice = self
            .bytes
            .get(self.at..self.at.saturating_add(n))
            .ok_or(SnapshotError::Truncated(self.at))?;
        self.at += n;
        Ok(slice)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N)?);
        Ok(out)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, SnapshotError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, SnapshotError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn f64(&mut self) -> Result<f64, SnapshotError> {
        Ok(f64::from_le_bytes(self.array()?))
    }

    pub(crate) fn f32(&mut self) -> Result<f32, SnapshotError> {
        Ok(f32::from_le_bytes(self.array()?))
    }

    pub(crate) fn flag(&mut self, what: &'static str) -> Result<bool, SnapshotError> {
        match self.take(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(SnapshotError::OutOfRange(what)),
        }
    }

    /// Reads what [`put_opt_u64`] wrote.
    pub(crate) fn opt_u64(&mut self, what: &'static str) -> Result<Option<u64>, SnapshotError> {
        let present = self.flag(what)?;
        let value = self.u64()?;
        Ok(present.then_some(value))
    }

    pub(crate) fn len_at_most(
        &mut self,
        max: usize,
        what: &'static str,
    ) -> Result<usize, SnapshotError> {
        usize::try_from(self.u64()?)
            .ok()
            .filter(|&len| len <= max)
            .ok_or(SnapshotError::OutOfRange(what))
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(&self) -> Result<(), SnapshotError> {
        match self.bytes.len() - self.at {
            0 => Ok(()),
            extra => Err(SnapshotError::TrailingBytes(extra)),
        }
    }
}
