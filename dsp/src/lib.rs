//! Streaming ECG signal processing. No I/O except in the command-line tools.
