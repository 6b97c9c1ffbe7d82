//! Where the public test vectors are: `$CC_RELAY_VECTORS`, else `shared/vectors` beside
//! the repository (the layout CI and the developers' machines share).
#![allow(dead_code)]

use std::path::PathBuf;

pub fn vectors_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CC_RELAY_VECTORS") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors")
}
