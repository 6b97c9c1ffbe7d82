//! Sockets: the client-facing server, the upstream client, and the byte transport both
//! use; and the TLS trust the CLI uses to reach its own relay (`relay_trust`). Protocol parsing is in `codec`; what requests mean is in `relay`.

pub mod client;
pub mod relay_trust;
pub mod resolver;
pub mod server;
pub mod tls;
pub mod transport;
