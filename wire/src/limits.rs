//! Size limits of the contract. Both sides enforce them: the gateway never builds a larger
//! message, the server refuses one before parsing it.

/// Largest payload of any message, in bytes. An ECG chunk of 8 s at 500 Hz is about 11 KiB.
pub const MAX_PAYLOAD_BYTES: usize = 256 * 1024;
/// Most observations in one batch.
pub const MAX_OBSERVATIONS_PER_BATCH: usize = 256;
/// Most samples in one ECG chunk (16 s at 500 Hz).
pub const MAX_ECG_SAMPLES_PER_CHUNK: usize = 8192;
/// Longest free-text field (model names, firmware versions, leads), in bytes.
pub const MAX_TEXT_BYTES: usize = 128;
