//! Sans-IO codecs: each takes bytes and returns frames or bytes. No sockets, no clocks,
//! no allocation beyond their own buffers. Every codec has a fuzz target in `fuzz/` and
//! tests built from `shared/vectors/`.

pub mod base64;
pub mod chunked;
pub mod crc32;
pub mod dns;
pub mod eventstream;
pub mod http1;
pub mod json;
pub mod resp2;
pub mod sse;
