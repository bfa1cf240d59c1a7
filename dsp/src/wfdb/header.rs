//! The WFDB header (`.hea`): one record line, one line per signal, `#` comments.

use crate::SampleRate;

/// Sampling frequency WFDB assumes when the record line gives none.
const DEFAULT_SAMPLE_RATE_HZ: f64 = 250.0;
/// ADC gain WFDB assumes when a signal line gives none or zero, in ADC units per physical unit.
const DEFAULT_ADC_GAIN: f64 = 200.0;

/// A malformed or unsupported header.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum HeaderError {
    /// The text has no record line.
    #[error("header has no record line")]
    MissingRecordLine,
    /// A multi-segment record (`name/nseg`), which this reader does not handle.
    #[error("multi-segment record {0:?} is not supported")]
    MultiSegment(String),
    /// A field that should be a number is not.
    #[error("line {line}: field {field} is not a valid number: {value:?}")]
    BadNumber {
        /// 1-based line number in the header text.
        line: usize,
        /// Name of the field, as the WFDB documentation calls it.
        field: &'static str,
        /// The text found.
        value: String,
    },
    /// A required field is absent.
    #[error("line {line}: missing field {field}")]
    MissingField {
        /// 1-based line number in the header text.
        line: usize,
        /// Name of the field, as the WFDB documentation calls it.
        field: &'static str,
    },
    /// The sampling frequency is zero, negative or not finite.
    #[error("sampling frequency {0} is not positive")]
    BadSampleRate(f64),
    /// The record line announces a different number of signal lines than the header holds.
    #[error("record line announces {announced} signals, header holds {found}")]
    SignalCountMismatch {
        /// Number of signals given on the record line.
        announced: usize,
        /// Number of signal lines present.
        found: usize,
    },
    /// A storage format other than 212 and 16.
    #[error("signal {signal}: storage format {format} is not supported (only 212 and 16)")]
    UnsupportedFormat {
        /// 0-based signal number.
        signal: usize,
        /// The WFDB format number.
        format: u32,
    },
    /// Several samples per frame, or a skew: this reader handles neither.
    #[error("signal {signal}: {what} is not supported")]
    UnsupportedLayout {
        /// 0-based signal number.
        signal: usize,
        /// What was asked for.
        what: &'static str,
    },
}

/// How a signal's samples are stored on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalFormat {
    /// Format 212: pairs of 12-bit two's-complement samples packed into 3 bytes.
    Packed12,
    /// Format 16: 16-bit two's-complement little-endian samples.
    Le16,
}

impl SignalFormat {
    /// The WFDB format number.
    pub fn code(self) -> u32 {
        match self {
            Self::Packed12 => 212,
            Self::Le16 => 16,
        }
    }
}

/// One signal specification line.
#[derive(Clone, Debug, PartialEq)]
pub struct SignalSpec {
    /// Name of the file that holds the samples, relative to the header.
    pub file_name: String,
    /// Storage format.
    pub format: SignalFormat,
    /// Bytes to skip at the start of the file before the first sample.
    pub byte_offset: u64,
    /// ADC units per physical unit (`adc_gain_per_unit` × physical value + baseline = ADC value).
    pub adc_gain_per_unit: f64,
    /// ADC value that corresponds to a physical value of zero.
    pub baseline_adu: i32,
    /// Physical units (`mV` when the header gives none).
    pub units: String,
    /// ADC resolution in bits (0 when not given).
    pub adc_resolution_bits: u32,
    /// ADC value at the centre of the converter's range.
    pub adc_zero_adu: i32,
    /// Value of the first sample, when given.
    pub initial_value_adu: Option<i32>,
    /// 16-bit sum of all samples, when given.
    pub checksum: Option<i16>,
    /// Signal description, usually the lead name (`MLII`, `V1`).
    pub description: String,
}

/// A parsed WFDB header.
#[derive(Clone, Debug, PartialEq)]
pub struct Header {
    /// Record name from the record line.
    pub record_name: String,
    /// Sampling frequency of every signal.
    pub sample_rate: SampleRate,
    /// Samples per signal, when the record line gives it.
    pub samples_per_signal: Option<u64>,
    /// The signals, in header order (which is also their interleaving order within a file).
    pub signals: Vec<SignalSpec>,
    /// The `#` comment lines, without the `#`.
    pub comments: Vec<String>,
}

impl Header {
    /// Parses the text of a `.hea` file.
    pub fn parse(text: &str) -> Result<Self, HeaderError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, line)| (i + 1, line.trim()))
            .filter(|(_, line)| !line.is_empty());
        let mut comments = Vec::new();
        let (record_line_no, record_line) = loop {
            match lines.next() {
                None => return Err(HeaderError::MissingRecordLine),
                Some((_, line)) if line.starts_with('#') => {
                    comments.push(line[1..].trim().to_owned())
                }
                Some(found) => break found,
            }
        };
        let mut fields = record_line.split_whitespace();
        let record_name = fields
            .next()
            .ok_or(HeaderError::MissingRecordLine)?
            .to_owned();
        if record_name.contains('/') {
            return Err(HeaderError::MultiSegment(record_name));
        }
        let announced: usize = number(record_line_no, "number of signals", fields.next())?.ok_or(
            HeaderError::MissingField {
                line: record_line_no,
                field: "number of signals",
            },
        )?;
        // The frequency field may carry a counter frequency and base: `360/1(0)`.
        let sample_rate_hz = match fields.next() {
            Some(field) => {
                let hz = field.split(['/', '(']).next().unwrap_or(field);
                number::<f64>(record_line_no, "sampling frequency", Some(hz))?
                    .unwrap_or(DEFAULT_SAMPLE_RATE_HZ)
            }
            None => DEFAULT_SAMPLE_RATE_HZ,
        };
        if !(sample_rate_hz.is_finite() && sample_rate_hz > 0.0) {
            return Err(HeaderError::BadSampleRate(sample_rate_hz));
        }
        let samples_per_signal = number(
            record_line_no,
            "number of samples per signal",
            fields.next(),
        )?;

        let mut signals = Vec::with_capacity(announced);
        for (line_no, line) in lines {
            if let Some(comment) = line.strip_prefix('#') {
                comments.push(comment.trim().to_owned());
                continue;
            }
            if signals.len() == announced {
                // Lines after the signals (e.g. `#` info) are comments in practice; anything else
                // means the count on the record line is wrong.
                return Err(HeaderError::SignalCountMismatch {
                    announced,
                    found: signals.len() + 1,
                });
            }
            signals.push(parse_signal_line(line_no, signals.len(), line)?);
        }
        if signals.len() != announced {
            return Err(HeaderError::SignalCountMismatch {
                announced,
                found: signals.len(),
            });
        }
        Ok(Self {
            record_name,
            sample_rate: SampleRate::hz(sample_rate_hz),
            samples_per_signal,
            signals,
            comments,
        })
    }

    /// Index of the first signal whose description is `name` (e.g. `MLII`), ignoring case.
    pub fn signal_named(&self, name: &str) -> Option<usize> {
        self.signals
            .iter()
            .position(|signal| signal.description.eq_ignore_ascii_case(name))
    }
}

fn parse_signal_line(line_no: usize, signal: usize, line: &str) -> Result<SignalSpec, HeaderError> {
    let mut fields = line.split_whitespace();
    let file_name = fields
        .next()
        .ok_or(HeaderError::MissingField {
            line: line_no,
            field: "file name",
        })?
        .to_owned();
    // Format field: `format[xsamples_per_frame][:skew][+byte_offset]`.
    let format_field = fields.next().ok_or(HeaderError::MissingField {
        line: line_no,
        field: "format",
    })?;
    let (format_field, byte_offset) = match format_field.split_once('+') {
        Some((head, offset)) => (
            head,
            number(line_no, "byte offset", Some(offset))?.unwrap_or(0),
        ),
        None => (format_field, 0),
    };
    let (format_field, skew) = match format_field.split_once(':') {
        Some((head, skew)) => (
            head,
            number::<i64>(line_no, "skew", Some(skew))?.unwrap_or(0),
        ),
        None => (format_field, 0),
    };
    let (format_field, per_frame) = match format_field.split_once('x') {
        Some((head, n)) => (
            head,
            number::<u32>(line_no, "samples per frame", Some(n))?.unwrap_or(1),
        ),
        None => (format_field, 1),
    };
    let format_code: u32 =
        number(line_no, "format", Some(format_field))?.ok_or(HeaderError::MissingField {
            line: line_no,
            field: "format",
        })?;
    let format = match format_code {
        212 => SignalFormat::Packed12,
        16 => SignalFormat::Le16,
        other => {
            return Err(HeaderError::UnsupportedFormat {
                signal,
                format: other,
            });
        }
    };
    if per_frame > 1 {
        return Err(HeaderError::UnsupportedLayout {
            signal,
            what: "more than one sample per frame",
        });
    }
    if skew != 0 {
        return Err(HeaderError::UnsupportedLayout {
            signal,
            what: "skew",
        });
    }

    // Gain field: `gain[(baseline)][/units]`.
    let (gain, explicit_baseline, units) = match fields.next() {
        None => (0.0, None, None),
        Some(field) => {
            let (field, units) = match field.split_once('/') {
                Some((head, units)) => (head, Some(units.to_owned())),
                None => (field, None),
            };
            let (gain, baseline) = match field.split_once('(') {
                Some((gain, rest)) => {
                    let baseline =
                        rest.strip_suffix(')')
                            .ok_or_else(|| HeaderError::BadNumber {
                                line: line_no,
                                field: "baseline",
                                value: rest.to_owned(),
                            })?;
                    (gain, number::<i32>(line_no, "baseline", Some(baseline))?)
                }
                None => (field, None),
            };
            (
                number::<f64>(line_no, "ADC gain", Some(gain))?.unwrap_or(0.0),
                baseline,
                units,
            )
        }
    };
    let adc_resolution_bits = number(line_no, "ADC resolution", fields.next())?.unwrap_or(0);
    let adc_zero_adu = number(line_no, "ADC zero", fields.next())?.unwrap_or(0);
    let initial_value_adu = number(line_no, "initial value", fields.next())?;
    let checksum = number::<i32>(line_no, "checksum", fields.next())?
        // Checksums are 16-bit sums; headers write them signed.
        .map(|sum| sum as i16);
    let _block_size = number::<u32>(line_no, "block size", fields.next())?;
    let description = fields.collect::<Vec<_>>().join(" ");
    Ok(SignalSpec {
        file_name,
        format,
        byte_offset,
        adc_gain_per_unit: if gain == 0.0 { DEFAULT_ADC_GAIN } else { gain },
        baseline_adu: explicit_baseline.unwrap_or(adc_zero_adu),
        units: units.unwrap_or_else(|| "mV".to_owned()),
        adc_resolution_bits,
        adc_zero_adu,
        initial_value_adu,
        checksum,
        description,
    })
}

/// Parses an optional field; `None` when absent.
fn number<T: std::str::FromStr>(
    line: usize,
    field: &'static str,
    text: Option<&str>,
) -> Result<Option<T>, HeaderError> {
    text.map(|value| {
        value.parse().map_err(|_| HeaderError::BadNumber {
            line,
            field,
            value: value.to_owned(),
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MITDB_100: &str = "100 2 360 650000\n\
        100.dat 212 200 11 1024 995 -22131 0 MLII\n\
        100.dat 212 200 11 1024 1011 20052 0 V5\n\
        # 69 M 1085 1629 x1\n\
        # Aldomet, Inderal\n";

    #[test]
    fn parses_the_mitdb_header_fields() {
        let header = Header::parse(MITDB_100).unwrap();
        assert_eq!(header.record_name, "100");
        assert_eq!(header.sample_rate.as_hz(), 360.0);
        assert_eq!(header.samples_per_signal, Some(650_000));
        assert_eq!(header.signals.len(), 2);
        let mlii = &header.signals[0];
        assert_eq!(mlii.format, SignalFormat::Packed12);
        assert_eq!(mlii.adc_gain_per_unit, 200.0);
        assert_eq!(mlii.baseline_adu, 1024);
        assert_eq!(mlii.adc_resolution_bits, 11);
        assert_eq!(mlii.initial_value_adu, Some(995));
        assert_eq!(mlii.checksum, Some(-22131));
        assert_eq!(header.signal_named("v5"), Some(1));
        assert_eq!(header.signal_named("MLII"), Some(0));
        assert_eq!(header.comments, ["69 M 1085 1629 x1", "Aldomet, Inderal"]);
    }

    #[test]
    fn parses_baseline_units_offset_and_defaults() {
        let header = Header::parse("r 1 500/1(0)\nr.dat 16+24 0(-5)/uV\n").unwrap();
        let signal = &header.signals[0];
        assert_eq!(header.sample_rate.as_hz(), 500.0);
        assert_eq!(header.samples_per_signal, None);
        assert_eq!(signal.format, SignalFormat::Le16);
        assert_eq!(signal.byte_offset, 24);
        assert_eq!(signal.adc_gain_per_unit, DEFAULT_ADC_GAIN);
        assert_eq!(signal.baseline_adu, -5);
        assert_eq!(signal.units, "uV");
        assert_eq!(signal.checksum, None);
        assert_eq!(signal.description, "");
    }

    #[test]
    fn malformed_headers_give_precise_errors() {
        assert_eq!(
            Header::parse("# only a comment\n"),
            Err(HeaderError::MissingRecordLine)
        );
        assert_eq!(
            Header::parse("r 2 360\nr.dat 212\n"),
            Err(HeaderError::SignalCountMismatch {
                announced: 2,
                found: 1
            })
        );
        assert_eq!(
            Header::parse("r 1 360\nr.dat 80\n"),
            Err(HeaderError::UnsupportedFormat {
                signal: 0,
                format: 80
            })
        );
        assert_eq!(
            Header::parse("r 1 abc\n"),
            Err(HeaderError::BadNumber {
                line: 1,
                field: "sampling frequency",
                value: "abc".into()
            })
        );
        assert_eq!(
            Header::parse("r 1 0\nr.dat 16\n"),
            Err(HeaderError::BadSampleRate(0.0))
        );
        assert!(matches!(
            Header::parse("r/2 1 360\n"),
            Err(HeaderError::MultiSegment(_))
        ));
        assert!(matches!(
            Header::parse("r 1 360\nr.dat 212x2\n"),
            Err(HeaderError::UnsupportedLayout { signal: 0, .. })
        ));
    }
}
