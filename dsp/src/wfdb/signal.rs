//! Decoding a WFDB signal file (formats 212 and 16) into samples in ADC units.

use super::header::{Header, SignalFormat};

/// A signal file that does not match its header.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignalError {
    /// No signal of the header is stored in this file.
    #[error("no signal of the header is stored in file {0:?}")]
    UnknownFile(String),
    /// Signals sharing a file disagree on format or byte offset.
    #[error("signals in file {0:?} do not share one format and byte offset")]
    MixedLayout(String),
    /// The file is shorter than its byte offset.
    #[error("file is {len} bytes, shorter than its byte offset {offset}")]
    ShorterThanOffset {
        /// File length in bytes.
        len: usize,
        /// Byte offset from the header.
        offset: u64,
    },
    /// The file holds fewer frames than the header announces.
    #[error("file holds {found} frames, header announces {announced}")]
    Truncated {
        /// Frames announced by the record line.
        announced: u64,
        /// Whole frames present.
        found: u64,
    },
    /// The first sample differs from the header's initial value.
    #[error("signal {signal}: first sample is {found}, header says {expected}")]
    InitialValueMismatch {
        /// 0-based signal number.
        signal: usize,
        /// Initial value from the header.
        expected: i32,
        /// First sample decoded.
        found: i32,
    },
    /// The 16-bit sum of the samples differs from the header's checksum.
    #[error("signal {signal}: checksum is {found}, header says {expected}")]
    ChecksumMismatch {
        /// 0-based signal number.
        signal: usize,
        /// Checksum from the header.
        expected: i16,
        /// Checksum of the decoded samples.
        found: i16,
    },
}

/// The samples of one signal of a record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedSignal {
    /// 0-based signal number in the header.
    pub signal: usize,
    /// Samples in ADC units; subtract the baseline and divide by the gain for physical units.
    pub samples_adu: Vec<i32>,
}

/// Decodes `bytes`, the contents of `file_name`, into the signals of `header` stored there.
///
/// Signals are interleaved frame by frame in header order. When the header gives the number of
/// samples, exactly that many are decoded (trailing bytes are ignored) and each signal's initial
/// value and checksum, when present, are verified.
pub fn decode_signal_file(
    header: &Header,
    file_name: &str,
    bytes: &[u8],
) -> Result<Vec<DecodedSignal>, SignalError> {
    let members: Vec<usize> = (0..header.signals.len())
        .filter(|&i| header.signals[i].file_name == file_name)
        .collect();
    let first = members
        .first()
        .map(|&i| &header.signals[i])
        .ok_or_else(|| SignalError::UnknownFile(file_name.to_owned()))?;
    if members.iter().any(|&i| {
        let spec = &header.signals[i];
        spec.format != first.format || spec.byte_offset != first.byte_offset
    }) {
        return Err(SignalError::MixedLayout(file_name.to_owned()));
    }
    let body = usize::try_from(first.byte_offset)
        .ok()
        .and_then(|offset| bytes.get(offset..))
        .ok_or(SignalError::ShorterThanOffset {
            len: bytes.len(),
            offset: first.byte_offset,
        })?;

    let width = members.len();
    let available_values = match first.format {
        SignalFormat::Packed12 => body.len() / 3 * 2 + usize::from(body.len() % 3 >= 2),
        SignalFormat::Le16 => body.len() / 2,
    };
    let available_frames = (available_values / width) as u64;
    let frames = match header.samples_per_signal {
        Some(announced) if announced > available_frames => {
            return Err(SignalError::Truncated {
                announced,
                found: available_frames,
            });
        }
        Some(announced) => announced,
        None => available_frames,
    };
    // `frames` ≤ available_frames, which came from a usize.
    let frames = frames as usize;

    let mut signals: Vec<DecodedSignal> = members
        .iter()
        .map(|&signal| DecodedSignal {
            signal,
            samples_adu: Vec::with_capacity(frames),
        })
        .collect();
    let values = frames * width;
    let mut push = |k: usize, value: i32| signals[k % width].samples_adu.push(value);
    match first.format {
        SignalFormat::Packed12 => {
            for (pair, chunk) in body.chunks(3).enumerate() {
                let k = pair * 2;
                if k >= values {
                    break;
                }
                let (b0, b1) = (i32::from(chunk[0]), i32::from(chunk[1]));
                push(k, sign_extend_12(b0 | ((b1 & 0x0f) << 8)));
                if k + 1 < values {
                    let b2 = i32::from(chunk[2]);
                    push(k + 1, sign_extend_12(b2 | ((b1 & 0xf0) << 4)));
                }
            }
        }
        SignalFormat::Le16 => {
            for (k, chunk) in body.chunks_exact(2).take(values).enumerate() {
                push(k, i32::from(i16::from_le_bytes([chunk[0], chunk[1]])));
            }
        }
    }

    if header.samples_per_signal.is_some() {
        for decoded in &signals {
            verify(header, decoded)?;
        }
    }
    Ok(signals)
}

fn verify(header: &Header, decoded: &DecodedSignal) -> Result<(), SignalError> {
    let spec = &header.signals[decoded.signal];
    if let (Some(expected), Some(&found)) = (spec.initial_value_adu, decoded.samples_adu.first())
        && expected != found
    {
        return Err(SignalError::InitialValueMismatch {
            signal: decoded.signal,
            expected,
            found,
        });
    }
    if let Some(expected) = spec.checksum {
        // WFDB's checksum is the sum of the samples truncated to 16 bits.
        let found = decoded
            .samples_adu
            .iter()
            .fold(0i16, |sum, &sample| sum.wrapping_add(sample as i16));
        if expected != found {
            return Err(SignalError::ChecksumMismatch {
                signal: decoded.signal,
                expected,
                found,
            });
        }
    }
    Ok(())
}

fn sign_extend_12(value: i32) -> i32 {
    if value & 0x800 != 0 {
        value - 0x1000
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Packs interleaved values in format 212.
    fn pack_212(values: &[i32]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for pair in values.chunks(2) {
            let a = pair[0] & 0xfff;
            let b = pair.get(1).copied().unwrap_or(0) & 0xfff;
            bytes.extend_from_slice(&[
                (a & 0xff) as u8,
                ((a >> 8) | ((b >> 8) << 4)) as u8,
                (b & 0xff) as u8,
            ]);
        }
        bytes
    }

    fn header(text: &str) -> Header {
        Header::parse(text).unwrap()
    }

    #[test]
    fn decodes_interleaved_format_212_with_negative_values() {
        let values = [995, 1011, -2048, 2047, -1, 0];
        let sum0 = (995 - 2048 - 1) as i16;
        let sum1 = (1011 + 2047) as i16;
        let h = header(&format!(
            "r 2 360 3\nr.dat 212 200 11 1024 995 {sum0} 0 MLII\nr.dat 212 200 11 1024 1011 {sum1} 0 V5\n"
        ));
        let signals = decode_signal_file(&h, "r.dat", &pack_212(&values)).unwrap();
        assert_eq!(signals[0].samples_adu, [995, -2048, -1]);
        assert_eq!(signals[1].samples_adu, [1011, 2047, 0]);
    }

    #[test]
    fn decodes_format_16_after_byte_offset() {
        let mut bytes = vec![0xAA; 4];
        for v in [-300i16, 7, 32767] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let h = header("r 1 500\nr.dat 16+4\n");
        let signals = decode_signal_file(&h, "r.dat", &bytes).unwrap();
        assert_eq!(signals[0].samples_adu, [-300, 7, 32767]);
    }

    #[test]
    fn odd_sample_count_in_212_is_read() {
        let h = header("r 1 360 3\nr.dat 212\n");
        let signals = decode_signal_file(&h, "r.dat", &pack_212(&[1, -2, 3])).unwrap();
        assert_eq!(signals[0].samples_adu, [1, -2, 3]);
    }

    #[test]
    fn corrupt_files_give_precise_errors() {
        let h = header("r 1 360 4\nr.dat 212 200 11 1024 1 9\n");
        let bytes = pack_212(&[1, 2, 3, 4]);
        assert_eq!(
            decode_signal_file(&h, "r.dat", &bytes),
            Err(SignalError::ChecksumMismatch {
                signal: 0,
                expected: 9,
                found: 10
            })
        );
        assert_eq!(
            decode_signal_file(&h, "r.dat", &bytes[..3]),
            Err(SignalError::Truncated {
                announced: 4,
                found: 2
            })
        );
        assert_eq!(
            decode_signal_file(&h, "other.dat", &bytes),
            Err(SignalError::UnknownFile("other.dat".into()))
        );
        let h = header("r 1 360 2\nr.dat 212 200 11 1024 5\n");
        assert_eq!(
            decode_signal_file(&h, "r.dat", &pack_212(&[1, 2])),
            Err(SignalError::InitialValueMismatch {
                signal: 0,
                expected: 5,
                found: 1
            })
        );
    }
}
