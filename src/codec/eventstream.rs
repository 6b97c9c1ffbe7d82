//! AWS event-stream binary framing: incremental decoder and encoder.
