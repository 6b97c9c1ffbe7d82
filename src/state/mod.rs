//! State that can outlive one request or one instance: the in-process thinking signature
//! store, and the Redis/Valkey client and fleet-wide operations behind `cache.mode: ha`.

pub mod redis;
pub mod shared;
pub mod signatures;
