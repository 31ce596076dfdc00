//! Files the command line reads and writes. Reads are bounded in size and in time: a FIFO
//! (`--identities <(…)` is one), a mount that does not answer or `/dev/zero` must neither
//! hold the command nor fill its memory. Files holding a secret are written private.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the emulator waits for a file it is given (it has no `--timeout`).
pub(crate) const EMULATOR_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads at most `max_bytes` of `path` (`-`: standard input), within `within`. The error
/// says what went wrong, without the file's contents.
pub(crate) fn read(path: &Path, max_bytes: u64, within: Duration) -> Result<Vec<u8>, String> {
    let source = path.to_owned();
    let (sender, received) = std::sync::mpsc::channel();
    // A read that never ends (a FIFO nobody writes to) keeps this thread; the command
    // goes on, and ends, without it.
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let read = if source.as_os_str() == "-" {
            std::io::stdin().take(max_bytes + 1).read_to_end(&mut bytes)
        } else {
            std::fs::File::open(&source).and_then(|file| file.take(max_bytes + 1).read_to_end(&mut bytes))
        };
        let _ = sender.send(read.map(|_| bytes));
    });
    match received.recv_timeout(within) {
        Ok(Ok(bytes)) if bytes.len() as u64 > max_bytes => Err(format!("is larger than {max_bytes} bytes")),
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "gave nothing to read within {} s (a FIFO nobody writes to, or a mount that does not answer?)",
            within.as_secs()
        )),
    }
}

/// Writes a file that holds a secret (a private key, a token): readable by its owner
/// only, created anew beside the target and renamed over it, so an existing file is
/// replaced whole; a symbolic link at `path` is refused rather than followed.
pub(crate) fn write_private(path: &Path, contents: &[u8]) -> Result<(), String> {
    write_new(path, contents, 0o600)
}

/// Writes a file anyone may read (a CA certificate), as [`write_private`] does otherwise.
pub(crate) fn write_public(path: &Path, contents: &[u8]) -> Result<(), String> {
    write_new(path, contents, 0o644)
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), String> {
    if std::fs::symlink_metadata(path).is_ok_and(|meta| meta.file_type().is_symlink()) {
        return Err("is a symbolic link: refusing to write a secret through it".to_owned());
    }
    let name = path.file_name().ok_or("names no file")?.to_string_lossy();
    let temporary: PathBuf = path.with_file_name(format!(
        ".{name}.{}-{}.tmp",
        std::process::id(),
        fastrand::u32(..)
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let written = options.open(&temporary).and_then(|mut file| {
        file.write_all(contents)?;
        file.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&temporary, path));
    if let Err(error) = renamed {
        let _ = std::fs::remove_file(&temporary);
        return Err(error.to_string());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pbi-embed-cli-files-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[cfg(unix)]
    #[test]
    fn reads_are_bounded_in_size_and_time() {
        let dir = scratch("read");
        let file = dir.join("small");
        std::fs::write(&file, b"hello").unwrap();
        assert_eq!(read(&file, 5, Duration::from_secs(5)).unwrap(), b"hello");
        assert!(
            read(&file, 4, Duration::from_secs(5))
                .unwrap_err()
                .contains("larger than 4")
        );
        assert!(
            read(Path::new("/dev/zero"), 1024, Duration::from_secs(5))
                .unwrap_err()
                .contains("larger")
        );
        let fifo = dir.join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let started = std::time::Instant::now();
        let error = read(&fifo, 1024, Duration::from_millis(300)).unwrap_err();
        assert!(error.contains("FIFO"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(2));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[cfg(unix)]
    #[test]
    fn secrets_are_written_private_and_never_through_a_link() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = scratch("write");
        let target = dir.join("key.pem");
        std::fs::write(&target, b"old").unwrap();
        write_private(&target, b"secret").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"secret");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
        let elsewhere = dir.join("elsewhere");
        std::fs::write(&elsewhere, b"precious").unwrap();
        let link = dir.join("link.pem");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        assert!(
            write_private(&link, b"secret")
                .unwrap_err()
                .contains("symbolic link")
        );
        assert_eq!(std::fs::read(&elsewhere).unwrap(), b"precious", "not followed");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
