//! Opening and reading the files lbtop is given — `/proc` or a snapshot of it, config and theme
//! files, host lists, ssh files, recordings: only regular files, never waiting on one, never more
//! than a stated size. Every such read goes through here, so every refusal reads the same.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

/// The most a config, theme, host list, ssh config or key file may hold: far above any real one.
pub(crate) const SMALL_FILE_BYTES: u64 = 4 << 20;

/// The most a `known_hosts` file may hold (one line per host and key type: a fleet's is a few MB).
pub(crate) const KNOWN_HOSTS_BYTES: u64 = 64 << 20;

/// Why a file was not read. The text names the path and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", self.path().display(), self.problem())]
pub enum FileError {
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A FIFO, a device, a directory or a socket where a file was expected: reading a FIFO waits
    /// for a writer forever, `/dev/zero` never ends.
    NotAFile {
        path: PathBuf,
        what: &'static str,
    },
    TooLarge {
        path: PathBuf,
        limit: u64,
    },
    NotText {
        path: PathBuf,
    },
}

impl FileError {
    /// The file does not exist (many callers treat that as "none", not as an error).
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self, Self::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }

    /// What is wrong, without the path (for messages that name the file themselves).
    pub(crate) fn problem(&self) -> String {
        match self {
            Self::Io { source, .. } => source.to_string(),
            Self::NotAFile { what, .. } => format!("not a regular file ({what})"),
            Self::TooLarge { limit, .. } => format!(
                "larger than {}; not read further",
                bytesize::ByteSize::b(*limit).display().iec()
            ),
            Self::NotText { .. } => "not UTF-8 text".to_string(),
        }
    }

    pub fn path(&self) -> &Path {
        match self {
            Self::Io { path, .. }
            | Self::NotAFile { path, .. }
            | Self::TooLarge { path, .. }
            | Self::NotText { path } => path,
        }
    }
}

/// Opens a file to read, refusing anything but a regular file. The open itself never waits: it
/// is made with `O_NONBLOCK` (a FIFO without a writer opens at once) and the kind is taken from
/// the open file (`fstat`), so nothing can be swapped in between. `O_NONBLOCK` stays set: the
/// regular files that honour it (`/proc/kmsg`, tracefs pipes) then answer "try again" instead of
/// waiting, so no read of a file given to lbtop can block.
pub(crate) fn open_regular(path: &Path) -> Result<File, FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)
        .map_err(io)?;
    let kind = file.metadata().map_err(io)?.file_type();
    if kind.is_file() {
        return Ok(file);
    }
    Err(FileError::NotAFile {
        path: path.to_path_buf(),
        what: kind_name(kind),
    })
}

/// Opens `path` to write with `options` (which say create, append or truncate), never waiting:
/// the open is made with `O_NONBLOCK`, so a FIFO nobody reads is refused at once ("no reader")
/// instead of freezing lbtop. A regular file is what it is for; a FIFO with a reader (a shell's
/// `>(gzip)`) or a character device (`/dev/null`) is written to as well, and then blocks on
/// writes as usual. A directory or a socket is refused with what it is.
pub fn open_to_write(path: &Path, mut options: std::fs::OpenOptions) -> Result<File, FileError> {
    let io = |source| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = match options
        .write(true)
        .custom_flags(OFlag::O_NONBLOCK.bits())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => {
            return Err(io(std::io::Error::other("a FIFO that nothing reads")));
        }
        Err(e) => return Err(io(e)),
    };
    let kind = file.metadata().map_err(io)?.file_type();
    if kind.is_file() || kind.is_fifo() || kind.is_char_device() {
        let flags = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_GETFL)
            .map_err(|e| io(std::io::Error::from(e)))?;
        let blocking = OFlag::from_bits_truncate(flags) - OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_SETFL(blocking))
            .map_err(|e| io(std::io::Error::from(e)))?;
        return Ok(file);
    }
    Err(FileError::NotAFile {
        path: path.to_path_buf(),
        what: kind_name(kind),
    })
}

/// What a file that is not a regular file is, in an operator's words.
pub(crate) fn kind_name(kind: std::fs::FileType) -> &'static str {
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "something else"
    }
}

/// The room a read starts with.
const READ_ROOM: u64 = 16 << 10;

/// A regular file's bytes, at most `limit` of them (more is an error, not a truncation).
pub(crate) fn read_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let file = open_regular(path)?;
    // `/proc` files report no size: with room from the start, a small one is read in one call
    // and its end in a second, where an empty buffer grows from 32 bytes a call at a time.
    let mut bytes = Vec::with_capacity(limit.saturating_add(1).min(READ_ROOM) as usize);
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|source| FileError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            limit,
        });
    }
    Ok(bytes)
}

/// A regular file's text, at most `limit` bytes of UTF-8.
pub(crate) fn read_text(path: &Path, limit: u64) -> Result<String, FileError> {
    String::from_utf8(read_bytes(path, limit)?).map_err(|_| FileError::NotText {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::Duration;

    use super::*;

    #[test]
    fn writing_never_waits_on_a_fifo_without_a_reader_and_refuses_a_directory() {
        let dir = tempfile::tempdir().expect("dir");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let (tx, rx) = mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(open_to_write(&path, crate::owner_only::options()).map(|_| ()));
        });
        let e = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("returned within five seconds")
            .expect_err("no reader");
        assert!(e.to_string().contains("a FIFO that nothing reads"), "{e}");
        let e = open_to_write(dir.path(), crate::owner_only::options()).expect_err("a directory");
        assert!(
            e.to_string().contains("a directory") || e.to_string().contains("Is a directory"),
            "{e}"
        );
        let mut o = crate::owner_only::options();
        o.create(true).append(true);
        let file = dir.path().join("log");
        let mut f = open_to_write(&file, o).expect("a regular file");
        std::io::Write::write_all(&mut f, b"x\n").expect("writes");
        open_to_write(Path::new("/dev/null"), crate::owner_only::options()).expect("a device");
    }

    /// `f(path)` on another thread, failing the test rather than hanging if it blocks.
    fn within_a_second<T: Send + 'static>(
        path: &Path,
        f: fn(&Path) -> Result<T, FileError>,
    ) -> Result<T, FileError> {
        let (tx, rx) = mpsc::channel();
        let path = path.to_path_buf();
        std::thread::spawn(move || {
            let _ = tx.send(f(&path));
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("returned within five seconds")
    }

    #[test]
    fn a_fifo_a_directory_or_a_device_is_refused_at_once_naming_the_path_and_what_it_is() {
        let dir = tempfile::tempdir().expect("temp dir");
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRUSR).expect("mkfifo");
        let zero = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &zero).expect("symlink");
        for (path, what) in [
            (fifo, "a FIFO"),
            (dir.path().to_path_buf(), "a directory"),
            (zero, "a character device"),
            (PathBuf::from("/dev/urandom"), "a character device"),
        ] {
            let e =
                within_a_second(&path, |p| read_text(p, SMALL_FILE_BYTES)).expect_err("refused");
            assert!(matches!(e, FileError::NotAFile { .. }), "{e:?}");
            assert_eq!(
                e.to_string(),
                format!("{}: not a regular file ({what})", path.display())
            );
        }
    }

    #[test]
    fn a_file_is_read_up_to_its_limit_and_no_further() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("f");
        std::fs::write(&path, "0123456789").expect("write");
        assert_eq!(read_text(&path, 10).expect("fits"), "0123456789");
        let e = read_text(&path, 9).expect_err("too large");
        assert!(matches!(e, FileError::TooLarge { limit: 9, .. }), "{e:?}");
        std::fs::write(&path, [0xff, 0xfe]).expect("write");
        let e = read_text(&path, 10).expect_err("not text");
        assert_eq!(e.to_string(), format!("{}: not UTF-8 text", path.display()));
        assert!(
            read_text(&dir.path().join("absent"), 10)
                .expect_err("absent")
                .is_not_found()
        );
    }
}
