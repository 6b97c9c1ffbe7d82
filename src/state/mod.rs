//! Shared state backends (memory now; Redis for `cache.mode: ha` later).
pub mod signatures;
