//! Configuration: the schema (SPEC §1.2) and everything that turns a YAML or TOML file
//! into it — discovery, our YAML parser, the TOML adapter, environment expansion,
//! building with every error reported (key path and line), semantic checks, the
//! redacted `config show` view and the `config init` template. Serving code only needs
//! `load_file` / `load_default_or_discovered`, `check_config` and the schema types.
//!
//! Pipeline: text -> `yaml`/`toml_tree` -> `value::Node` -> `env::expand_tree` ->
//! `build::build` -> `validate::check` -> `Loaded { config, warnings }`.

pub mod build;
pub mod diagnostic;
pub mod env;
pub mod load;
pub mod schema;
pub mod show;
pub mod template;
pub mod toml_tree;
pub mod validate;
pub mod value;
pub mod watch;
pub mod yaml;

pub use diagnostic::{Diagnostic, Severity};
pub use env::EnvLookup;
pub use load::{
    discover, embedded, load_default_or_discovered, load_file, load_file_with, load_str,
    load_str_with, LoadOptions, Loaded,
};
pub use schema::*;
pub use validate::{check_config, CheckOptions};
pub use value::Format;
