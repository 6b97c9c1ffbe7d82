//! Credentials: signing and token flows for upstreams, and authentication of clients.

pub mod aws_credentials;
pub mod client;
pub mod google;
pub mod sigv4;
