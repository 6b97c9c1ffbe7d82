//! Server-Sent Events: incremental parser (WHATWG algorithm) and Anthropic-style writer.
