//! Private, durable file operations shared by the relay's spool writer and the recorder.
//!
//! Recordings are personal data: every file either side creates is `0600` and every directory `0700`. The
//! modes are set explicitly after creation, so a permissive or odd umask changes nothing.
//!
//! Durability follows one rule: a file's data is fsynced before the rename that publishes it, and the
//! directory that holds the new name is fsynced before anything that depends on the name is done (the next
//! step of the spool protocol, or removing the input it was made from).

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of every file written.
pub const FILE_MODE: u32 = 0o600;
/// Mode of every directory created.
pub const DIR_MODE: u32 = 0o700;

/// Creates (or truncates) `path` for writing, mode `0600` whatever the umask or the old file's mode.
pub fn create_private(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(f)
}

/// Opens `path` for appending, creating it `0600`.
pub fn append_private(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .append(true)
        .create(true)
        .mode(FILE_MODE)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(FILE_MODE))?;
    Ok(f)
}

/// Creates `dir` and any missing parents, each `0700`; each new directory's parent is fsynced so the new
/// entry survives a power loss. Existing directories are left as they are.
pub fn create_dir_private(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_private(parent)?;
    }
    match DirBuilder::new().mode(DIR_MODE).create(dir) {
        Ok(()) => {}
        // Another worker created it in between.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(e),
    }
    fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))?;
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Creates a directory this program owns (a spool subdirectory) and takes group and other access away
/// from it if it already existed with them (an older version created them `0755`).
pub fn own_dir(dir: &Path) -> io::Result<()> {
    create_dir_private(dir)?;
    let mode = fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        fs::set_permissions(dir, Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Makes an existing regular file `0600` (files moved into quarantine keep no wider mode than ours). A
/// symlink, FIFO or other non-regular file is left alone: the file is opened without following links and
/// changed through that handle, so nothing outside can be reached.
pub fn make_private(path: &Path) -> io::Result<()> {
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    if f.metadata()?.file_type().is_file() {
        f.set_permissions(Permissions::from_mode(FILE_MODE))?;
    }
    Ok(())
}

/// fsyncs a directory, making the names created, renamed or removed in it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()?;
    trace("syncdir", dir);
    Ok(())
}

/// fsyncs a file's data (and the size needed to read it back).
pub fn sync_file(f: &File, path: &Path) -> io::Result<()> {
    f.sync_data()?;
    trace("sync", path);
    Ok(())
}

/// Renames `from` to `to` (atomic within one file system; durable once `to`'s directory is synced).
pub fn rename(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to)?;
    trace("rename", to);
    Ok(())
}

#[cfg(test)]
thread_local! {
    static TRACE: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Unit tests see the order of the durability steps taken on their thread.
fn trace(op: &str, path: &Path) {
    #[cfg(test)]
    TRACE.with(|t| t.borrow_mut().push(format!("{op} {}", path.display())));
    let _ = (op, path);
}

/// The durability steps taken on this thread since the last call: `sync <file>`, `rename <to>`,
/// `syncdir <dir>`.
#[cfg(test)]
pub(crate) fn take_trace() -> Vec<String> {
    TRACE.with(|t| std::mem::take(&mut *t.borrow_mut()))
}

/// Position of the first trace entry that starts with `op` and ends with `suffix` (tests).
#[cfg(test)]
pub(crate) fn trace_pos(trace: &[String], op: &str, suffix: &str) -> usize {
    trace
        .iter()
        .position(|t| t.starts_with(op) && t.ends_with(suffix))
        .unwrap_or_else(|| panic!("no `{op} ..{suffix}` in {trace:#?}"))
}

/// `<path>.tmp`: where a file is written before it gets its name.
pub fn tmp_name(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

/// Writes `data` to `<path>.tmp` (`0600`), fsyncs it and renames it to `path`. The caller fsyncs the
/// directory (once for several files). On error the temporary file is removed.
pub fn write_private_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let tmp = tmp_name(path);
    let res = (|| {
        let mut f = create_private(&tmp)?;
        f.write_all(data)?;
        sync_file(&f, &tmp)
    })();
    match res.and_then(|()| rename(&tmp, path)) {
        Ok(()) => Ok(()),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn modes_are_private_whatever_was_there() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/c");
        create_dir_private(&nested).unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(mode(&dir.path().join(d)), 0o700, "{d}");
        }
        let f = nested.join("x.wav");
        fs::write(&f, b"old").unwrap();
        fs::set_permissions(&f, Permissions::from_mode(0o644)).unwrap();
        write_private_atomic(&f, b"new").unwrap();
        assert_eq!(mode(&f), 0o600);
        assert_eq!(fs::read(&f).unwrap(), b"new");
        assert!(!tmp_name(&f).exists());
        let g = nested.join("y");
        drop(create_private(&g).unwrap());
        assert_eq!(mode(&g), 0o600);
        let h = nested.join("z");
        drop(append_private(&h).unwrap());
        assert_eq!(mode(&h), 0o600);

        let old = dir.path().join("old");
        fs::create_dir(&old).unwrap();
        fs::set_permissions(&old, Permissions::from_mode(0o755)).unwrap();
        create_dir_private(&old).unwrap();
        assert_eq!(
            mode(&old),
            0o755,
            "an existing directory is not ours to change"
        );
        own_dir(&old).unwrap();
        assert_eq!(mode(&old), 0o700);
    }

    #[test]
    fn make_private_never_follows_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        fs::write(&f, b"x").unwrap();
        fs::set_permissions(&f, Permissions::from_mode(0o644)).unwrap();
        make_private(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        let outside = dir.path().join("outside");
        fs::write(&outside, b"x").unwrap();
        fs::set_permissions(&outside, Permissions::from_mode(0o644)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        assert!(make_private(&link).is_err());
        assert_eq!(mode(&outside), 0o644, "the link's target is not touched");
    }

    #[test]
    fn failed_atomic_write_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        // The target is a directory: the rename fails after the temporary was written.
        let target = dir.path().join("t");
        fs::create_dir(&target).unwrap();
        fs::write(target.join("inside"), b"x").unwrap();
        assert!(write_private_atomic(&target, b"data").is_err());
        assert!(!tmp_name(&target).exists());
    }
}
