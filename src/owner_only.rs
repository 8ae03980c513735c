//! Files and directories lbtop creates for itself — recordings, exports, the audit log, the log,
//! known_hosts and their directories — are its owner's alone (0600, 0700) whatever the umask:
//! they describe the cluster's topology. Modes apply when lbtop creates a path; an existing file
//! or directory keeps the mode its owner gave it.

use std::fs::{DirBuilder, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

/// The mode of a file lbtop creates.
pub(crate) const FILE_MODE: u32 = 0o600;
/// The mode of a directory lbtop creates (`~/.ssh` included, as OpenSSH makes it).
pub(crate) const DIR_MODE: u32 = 0o700;

/// `OpenOptions` that create files with mode 0600; the caller adds read, write, append, create.
pub fn options() -> OpenOptions {
    let mut o = OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// `create_dir_all` with mode 0700 for every directory it creates.
pub fn create_dir_all(path: &Path) -> io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn created_files_and_directories_are_the_owners_alone() {
        let d = tempfile::tempdir().expect("temp");
        let dir = d.path().join("a/b");
        create_dir_all(&dir).expect("mkdir");
        assert_eq!((mode(&d.path().join("a")), mode(&dir)), (0o700, 0o700));
        let f = dir.join("f");
        let mut file = options()
            .create(true)
            .append(true)
            .open(&f)
            .expect("create");
        file.write_all(b"x").expect("write");
        assert_eq!(mode(&f), 0o600);
    }
}
