//! Sockets: the client-facing server, the upstream client, and the byte transport both
//! use. Protocol parsing is in `codec`; what requests mean is in `relay`.

pub mod client;
pub mod resolver;
pub mod server;
pub mod tls;
pub mod transport;
