//! cc-relay: a synchronous proxy between Anthropic Messages API clients and many LLM
//! backends. A streamed byte travels `net::server` -> `relay` -> `provider` ->
//! `net::client` -> upstream, and back through the provider's response adapter and
//! `codec::chunked` to the client socket, on one connection thread.

pub mod auth;
pub mod cli;
pub mod codec;
pub mod config;
pub mod net;
pub mod obs;
pub mod provider;
pub mod relay;
pub mod route;
pub mod state;
pub mod sys;
