//! Configuration: the schema (SPEC §1.2), loading YAML/TOML files into it with every
//! error reported, environment expansion, and the embedded default.

pub mod schema;
pub mod toml_tree;
pub mod value;
pub mod yaml;

pub use schema::*;
