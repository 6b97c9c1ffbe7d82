//! Shared state backends (memory now; Redis for `cache.mode: ha` later).

pub mod redis;
pub mod shared;
