//! Credentials: signing and token flows for upstreams, and authentication of clients.

pub mod sigv4;
