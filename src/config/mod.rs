//! Configuration: the schema (SPEC §1.2), loading YAML/TOML files into it with every
//! error reported, environment expansion, and the embedded default.

pub mod schema;

pub use schema::*;
