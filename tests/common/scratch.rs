//! A folder of its own per test (HOME, working directory, config files), removed when
//! the test ends, so test runs leave nothing behind in the temp directory.
#![allow(dead_code)]

use std::ops::Deref;
use std::path::{Path, PathBuf};

pub struct ScratchDir(PathBuf);

impl ScratchDir {
    /// `<temp>/cc-relay-<name>-<pid>`, emptied first.
    pub fn new(name: &str) -> ScratchDir {
        let dir = std::env::temp_dir().join(format!("cc-relay-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        ScratchDir(dir)
    }

    /// Writes `text` to `name` inside the folder and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Deref for ScratchDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
