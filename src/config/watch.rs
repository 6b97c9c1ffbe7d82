//! Noticing that the config file changed: the file is hashed at each poll (content, not
//! mtime, so an edit that keeps the timestamp is still seen), reading through symlinks
//! so a Kubernetes ConfigMap `..data` swap counts as a change. A new content must be
//! the same on two consecutive polls before it is reported, so a file caught
//! half-written is not loaded. No clock or thread here: the caller polls.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

pub struct ConfigWatcher {
    path: PathBuf,
    /// Hash of the content last reported (or loaded at start).
    current: Option<[u8; 32]>,
    /// A new content seen once, waiting to be seen again.
    pending: Option<[u8; 32]>,
}

fn hash_file(path: &Path) -> Option<[u8; 32]> {
    let bytes = std::fs::read(path).ok()?;
    Some(Sha256::digest(&bytes).into())
}

impl ConfigWatcher {
    /// Starts from the file's current content.
    pub fn new(path: &Path) -> ConfigWatcher {
        ConfigWatcher {
            path: path.to_path_buf(),
            current: hash_file(path),
            pending: None,
        }
    }

    /// One poll: true when the content changed and held still for one poll interval.
    /// A missing or unreadable file is not a change (an editor may be replacing it).
    pub fn poll(&mut self) -> bool {
        let Some(now) = hash_file(&self.path) else {
            self.pending = None;
            return false;
        };
        if Some(now) == self.current {
            self.pending = None;
            return false;
        }
        if self.pending == Some(now) {
            self.current = Some(now);
            self.pending = None;
            return true;
        }
        self.pending = Some(now);
        false
    }

    /// After a reload forced from elsewhere (SIGHUP): the content now loaded.
    pub fn mark_loaded(&mut self) {
        self.current = hash_file(&self.path);
        self.pending = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_a_change_once_it_holds_still() {
        let dir = std::env::temp_dir().join(format!("cc-relay-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let target_a = dir.join("a.yaml");
        let target_b = dir.join("b.yaml");
        let link = dir.join("config.yaml");
        std::fs::write(&target_a, "one").unwrap();
        std::fs::write(&target_b, "two").unwrap();
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&target_a, &link).unwrap();
        let mut w = ConfigWatcher::new(&link);
        assert!(!w.poll());
        // Same mtime or not, the content decides; a symlink swap is a change.
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&target_b, &link).unwrap();
        assert!(!w.poll(), "first sighting waits one interval");
        assert!(w.poll());
        assert!(!w.poll(), "reported once");
        std::fs::write(&target_b, "two").unwrap();
        assert!(!w.poll(), "rewriting the same content is no change");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
