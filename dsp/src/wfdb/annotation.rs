//! Decoding MIT-format WFDB annotation files (`.atr`).
//!
//! The file is a sequence of 16-bit little-endian words: the top 6 bits are an annotation code,
//! the low 10 bits a time increment or a length. Codes 59–63 are pseudo-codes that modify the
//! time (`SKIP`) or the annotation just read (`NUM`, `SUB`, `CHN`, `AUX`). A zero word ends the file.

/// Pseudo-code: a 32-bit time increment follows.
const SKIP: u8 = 59;
/// Pseudo-code: sets the `num` field of the annotation just read.
const NUM: u8 = 60;
/// Pseudo-code: sets the `subtype` field of the annotation just read.
const SUB: u8 = 61;
/// Pseudo-code: sets the `channel` field of the annotation just read.
const CHN: u8 = 62;
/// Pseudo-code: auxiliary bytes follow (rhythm names, notes).
const AUX: u8 = 63;

/// A malformed annotation file.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AnnotationError {
    /// The file ends inside a word, a `SKIP` interval or an `AUX` string.
    #[error("annotation file ends inside a record at byte {offset}")]
    Truncated {
        /// Byte offset of the incomplete record.
        offset: usize,
    },
    /// A modifier (`NUM`, `SUB`, `CHN`, `AUX`) comes before any annotation.
    #[error("modifier code {code} at byte {offset} precedes any annotation")]
    OrphanModifier {
        /// The pseudo-code.
        code: u8,
        /// Byte offset of the word.
        offset: usize,
    },
    /// An annotation falls before sample 0.
    #[error("annotation at byte {offset} falls before the start of the record")]
    NegativeTime {
        /// Byte offset of the word.
        offset: usize,
    },
}

/// An annotation code (`anntab` in WFDB): what was annotated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AnnotationCode(pub u8);

impl AnnotationCode {
    /// Code of a rhythm change; the rhythm's name is in the aux string, e.g. `(AFIB`.
    pub const RHYTHM: Self = Self(28);
    /// Code of a comment annotation.
    pub const NOTE: Self = Self(22);
    /// Start of ventricular flutter or fibrillation (`[`).
    pub const VF_ON: Self = Self(32);
    /// End of ventricular flutter or fibrillation (`]`).
    pub const VF_OFF: Self = Self(33);

    /// The mnemonic WFDB prints for this code (`N`, `V`, `+` …), `?` beyond the table.
    pub fn symbol(self) -> &'static str {
        const SYMBOLS: [&str; 42] = [
            " ", "N", "L", "R", "a", "V", "F", "J", "A", "S", "E", "j", "/", "Q", "~", "[15]", "|",
            "[17]", "s", "T", "*", "D", "\"", "=", "p", "B", "^", "t", "+", "u", "?", "!", "[",
            "]", "e", "n", "@", "x", "f", "(", ")", "r",
        ];
        SYMBOLS.get(usize::from(self.0)).copied().unwrap_or("?")
    }

    /// Whether the code labels a heartbeat (the beat labels of the MIT-BIH evaluation:
    /// N L R B A a J S V r F e j n E / f Q ?).
    pub fn is_beat(self) -> bool {
        matches!(self.0, 1..=13 | 25 | 30 | 34 | 35 | 38 | 41)
    }
}

/// One annotation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    /// 0-based sample index the annotation points at.
    pub sample: u64,
    /// What was annotated.
    pub code: AnnotationCode,
    /// Annotation subtype (`SUB`), 0 when absent.
    pub subtype: i8,
    /// Signal the annotation refers to (`CHN`); carried over from the previous annotation.
    pub channel: u8,
    /// Annotator-defined number (`NUM`); carried over from the previous annotation.
    pub num: i8,
    /// Auxiliary text (`AUX`) without trailing NULs, when present.
    pub aux: Option<String>,
}

impl Annotation {
    /// The rhythm this annotation starts (`AFIB` for `(AFIB`), if it is a rhythm change.
    pub fn rhythm(&self) -> Option<&str> {
        if self.code != AnnotationCode::RHYTHM {
            return None;
        }
        self.aux.as_deref().and_then(|aux| aux.strip_prefix('('))
    }
}

/// The ventricular flutter/fibrillation episodes (`[` to `]`) as half-open sample ranges; an
/// episode still open at the end runs to `u64::MAX`. AAMI EC57 leaves these out of beat-by-beat
/// QRS scoring, since flutter waves are not labelled as beats.
pub fn ventricular_flutter_episodes(annotations: &[Annotation]) -> Vec<std::ops::Range<u64>> {
    let mut episodes = Vec::new();
    let mut start = None;
    for annotation in annotations {
        match annotation.code {
            AnnotationCode::VF_ON => start = start.or(Some(annotation.sample)),
            AnnotationCode::VF_OFF => {
                if let Some(from) = start.take() {
                    episodes.push(from..annotation.sample + 1);
                }
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        episodes.push(from..u64::MAX);
    }
    episodes
}

/// Decodes the bytes of an MIT-format annotation file.
///
/// A file that ends without the terminating zero word is accepted when it ends on a record
/// boundary, as WFDB's own reader does.
pub fn parse_annotations(bytes: &[u8]) -> Result<Vec<Annotation>, AnnotationError> {
    let mut annotations: Vec<Annotation> = Vec::new();
    let mut time: i64 = 0;
    let (mut channel, mut num) = (0u8, 0i8);
    let mut offset = 0;
    while offset < bytes.len() {
        let word = read_word(bytes, offset)?;
        let at = offset;
        offset += 2;
        if word == 0 {
            break;
        }
        let code = (word >> 10) as u8;
        let low = word & 0x3ff;
        match code {
            SKIP => {
                // A PDP-11 long: high word first, each word little-endian.
                let high = u32::from(read_word(bytes, offset)?);
                let low_word = u32::from(read_word(bytes, offset + 2)?);
                offset += 4;
                let interval = ((high << 16) | low_word) as i32;
                // The time may dip below zero between records: WFDB writers end their header
                // block with `SKIP -1` followed by an increment of 1.
                time = time.saturating_add(i64::from(interval));
            }
            NUM | SUB | CHN | AUX => {
                let last = annotations
                    .last_mut()
                    .ok_or(AnnotationError::OrphanModifier { code, offset: at })?;
                match code {
                    NUM => {
                        num = low as i8;
                        last.num = num;
                    }
                    SUB => last.subtype = low as i8,
                    CHN => {
                        channel = low as u8;
                        last.channel = channel;
                    }
                    _ => {
                        let len = usize::from(low);
                        let text = bytes
                            .get(offset..offset + len)
                            .ok_or(AnnotationError::Truncated { offset: at })?;
                        // Aux bytes are padded to a whole word.
                        offset += len + len % 2;
                        let text = String::from_utf8_lossy(text);
                        last.aux = Some(text.trim_end_matches('\0').to_owned());
                    }
                }
            }
            _ => {
                time = time.saturating_add(i64::from(low));
                let sample = u64::try_from(time)
                    .map_err(|_| AnnotationError::NegativeTime { offset: at })?;
                annotations.push(Annotation {
                    sample,
                    code: AnnotationCode(code),
                    subtype: 0,
                    channel,
                    num,
                    aux: None,
                });
            }
        }
    }
    Ok(annotations)
}

fn read_word(bytes: &[u8], offset: usize) -> Result<u16, AnnotationError> {
    match bytes.get(offset..offset + 2) {
        Some(&[lo, hi]) => Ok(u16::from_le_bytes([lo, hi])),
        _ => Err(AnnotationError::Truncated { offset }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn word(code: u8, low: u16) -> [u8; 2] {
        ((u16::from(code) << 10) | low).to_le_bytes()
    }

    #[test]
    fn decodes_beats_skips_and_rhythm_notes() {
        let mut bytes = Vec::new();
        bytes.extend(word(AnnotationCode::RHYTHM.0, 18));
        bytes.extend(word(AUX, 5));
        bytes.extend(b"(AFIB\0");
        bytes.extend(word(1, 100));
        bytes.extend(word(SKIP, 0));
        // 70_000 as a PDP-11 long: high word 1, low word 4464.
        bytes.extend(1u16.to_le_bytes());
        bytes.extend(4464u16.to_le_bytes());
        bytes.extend(word(5, 10));
        bytes.extend(word(SUB, 2));
        bytes.extend(word(CHN, 1));
        bytes.extend(word(25, 3));
        bytes.extend([0, 0]);
        let annotations = parse_annotations(&bytes).unwrap();
        let samples: Vec<u64> = annotations.iter().map(|a| a.sample).collect();
        assert_eq!(samples, [18, 118, 70_128, 70_131]);
        assert_eq!(annotations[0].rhythm(), Some("AFIB"));
        assert!(!annotations[0].code.is_beat());
        assert_eq!(annotations[1].code.symbol(), "N");
        assert_eq!(annotations[2].code.symbol(), "V");
        assert_eq!((annotations[2].subtype, annotations[2].channel), (2, 1));
        // CHN carries over; SUB does not.
        assert_eq!((annotations[3].subtype, annotations[3].channel), (0, 1));
        assert_eq!(annotations[3].code.symbol(), "B");
        assert!(annotations[1..].iter().all(|a| a.code.is_beat()));
    }

    #[test]
    fn a_skip_below_zero_then_back_is_accepted() {
        // How wfdb-python and WFDB close the `## time resolution` header block.
        let mut bytes = Vec::from(word(AnnotationCode::NOTE.0, 0));
        bytes.extend(word(AUX, 4));
        bytes.extend(b"## x");
        bytes.extend(word(SKIP, 0));
        bytes.extend([0xff; 4]);
        bytes.extend(word(0, 1));
        bytes.extend(word(1, 5));
        let annotations = parse_annotations(&bytes).unwrap();
        let samples: Vec<u64> = annotations.iter().map(|a| a.sample).collect();
        assert_eq!(samples, [0, 0, 5]);
        assert_eq!(annotations.iter().filter(|a| a.code.is_beat()).count(), 1);
    }

    #[test]
    fn flutter_episodes_run_from_open_to_close_bracket() {
        let at = |sample, code| Annotation {
            sample,
            code: AnnotationCode(code),
            subtype: 0,
            channel: 0,
            num: 0,
            aux: None,
        };
        let annotations = [
            at(5, 1),
            at(10, 32),
            at(20, 31),
            at(30, 33),
            at(40, 1),
            at(50, 32),
        ];
        assert_eq!(
            ventricular_flutter_episodes(&annotations),
            [10..31, 50..u64::MAX]
        );
    }

    #[test]
    fn malformed_files_give_precise_errors() {
        assert_eq!(
            parse_annotations(&[1]),
            Err(AnnotationError::Truncated { offset: 0 })
        );
        let mut aux_cut = Vec::from(word(1, 1));
        aux_cut.extend(word(AUX, 6));
        aux_cut.extend(b"(N");
        assert_eq!(
            parse_annotations(&aux_cut),
            Err(AnnotationError::Truncated { offset: 2 })
        );
        assert_eq!(
            parse_annotations(&word(SUB, 1)),
            Err(AnnotationError::OrphanModifier {
                code: SUB,
                offset: 0
            })
        );
        let mut backwards = Vec::from(word(SKIP, 0));
        backwards.extend(0xffffu16.to_le_bytes());
        backwards.extend(0xfff0u16.to_le_bytes());
        backwards.extend(word(1, 3));
        assert_eq!(
            parse_annotations(&backwards),
            Err(AnnotationError::NegativeTime { offset: 6 })
        );
    }
}
