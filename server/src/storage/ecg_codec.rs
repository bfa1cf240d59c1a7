//! Packs ECG samples for storage: first-order deltas, zig-zag mapped, as LEB128 varints.
//!
//! Consecutive ECG samples differ little (a 250 Hz signal at ~5 µV per count mostly moves by
//! under 64 counts a sample), so most deltas take one byte instead of two. The format is ours and
//! versioned by its first byte, so it can change without rewriting old rows.

use thiserror::Error;

/// Format tag of [`pack`]'s output.
const FORMAT_DELTA_VARINT: u8 = 1;

/// Why a packed block could not be read.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("packed ECG block is empty")]
    Empty,
    #[error("packed ECG format {0} is unknown")]
    UnknownFormat(u8),
    #[error("packed ECG block ends inside a value")]
    Truncated,
    #[error("packed ECG value does not fit an int16 sample")]
    Overflow,
}

/// Packs samples into a new buffer.
pub fn pack(samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + samples.len() + samples.len() / 4);
    out.push(FORMAT_DELTA_VARINT);
    let mut previous = 0i32;
    for &sample in samples {
        let delta = i32::from(sample) - previous;
        previous = i32::from(sample);
        // Zig-zag: small magnitudes of either sign become small unsigned numbers.
        let mut zigzag = ((delta << 1) ^ (delta >> 31)) as u32;
        loop {
            let byte = (zigzag & 0x7f) as u8;
            zigzag >>= 7;
            if zigzag == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// Unpacks what [`pack`] wrote.
pub fn unpack(packed: &[u8]) -> Result<Vec<i16>, CodecError> {
    let (&format, body) = packed.split_first().ok_or(CodecError::Empty)?;
    if format != FORMAT_DELTA_VARINT {
        return Err(CodecError::UnknownFormat(format));
    }
    let mut samples = Vec::with_capacity(body.len());
    let mut previous = 0i32;
    let mut bytes = body.iter();
    while let Some(&first) = bytes.next() {
        let mut zigzag = u32::from(first & 0x7f);
        let mut shift = 7;
        let mut byte = first;
        while byte & 0x80 != 0 {
            byte = *bytes.next().ok_or(CodecError::Truncated)?;
            if shift > 28 {
                return Err(CodecError::Overflow);
            }
            zigzag |= u32::from(byte & 0x7f) << shift;
            shift += 7;
        }
        let delta = ((zigzag >> 1) as i32) ^ -((zigzag & 1) as i32);
        previous = previous.checked_add(delta).ok_or(CodecError::Overflow)?;
        samples.push(i16::try_from(previous).map_err(|_| CodecError::Overflow)?);
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_extremes_and_jumps() {
        let samples = [0, 1, -1, i16::MAX, i16::MIN, i16::MAX, 0, 1234, -4321, 5];
        assert_eq!(unpack(&pack(&samples)).unwrap(), samples);
    }

    #[test]
    fn round_trips_empty() {
        assert_eq!(unpack(&pack(&[])).unwrap(), Vec::<i16>::new());
    }

    #[test]
    fn slow_signal_takes_about_one_byte_a_sample() {
        let samples: Vec<i16> = (0..1000)
            .map(|i| (200.0 * (f64::from(i) / 40.0).sin()) as i16)
            .collect();
        let packed = pack(&samples);
        assert!(packed.len() <= 1 + samples.len() + 4, "{}", packed.len());
        assert_eq!(unpack(&packed).unwrap(), samples);
    }

    #[test]
    fn garbage_is_refused_not_panicking() {
        assert_eq!(unpack(&[]), Err(CodecError::Empty));
        assert_eq!(unpack(&[9, 0]), Err(CodecError::UnknownFormat(9)));
        assert_eq!(unpack(&[1, 0x80]), Err(CodecError::Truncated));
        assert_eq!(
            unpack(&[1, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(CodecError::Overflow)
        );
        // A delta that leaves the int16 range.
        assert_eq!(unpack(&pack(&[i16::MAX])[..]).unwrap(), vec![i16::MAX]);
        assert_eq!(unpack(&[1, 0x80, 0x80, 0x04]), Err(CodecError::Overflow));
    }
}
