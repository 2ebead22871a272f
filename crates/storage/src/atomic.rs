//! Atomic replacement of a file: the bytes go to a temporary file in the destination's
//! folder (so the rename stays on one file system), which is synced, renamed over the
//! destination, and then the folder is synced so the rename itself survives a crash.
//! A reader, or a memory map, sees the old file or the new one, never a half-written one.
//! Every error is returned (with the path it concerns), none is ignored; on an error the
//! temporary file is removed.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

/// `e` with `what` and the path in front of its message.
pub(crate) fn context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("cannot {what} {}: {e}", path.display()))
}

/// The folder `path` lies in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Flushes a folder's entries (renames, removals, creations) to disk.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| context(e, "sync the folder", dir))
}

/// The prefix of the temporary files written for `path`: `.NAME.`, so a leftover of an
/// interrupted writer can be recognised (and is never taken for the file itself).
pub fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    format!(".{name}.")
}

/// A file being written that appears at its destination only on [`AtomicFile::commit`];
/// dropped uncommitted, it leaves nothing behind.
pub struct AtomicFile {
    path: PathBuf,
    out: BufWriter<NamedTempFile>,
}

impl AtomicFile {
    /// Starts writing `path` (its folder is created if missing).
    pub fn create(path: &Path) -> io::Result<Self> {
        let dir = parent_dir(path);
        std::fs::create_dir_all(dir).map_err(|e| context(e, "create the folder", dir))?;
        let prefix = temp_prefix(path);
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".partial");
        // What `File::create` gives (0o666 less the umask), not tempfile's private
        // 0o600: model folders and caches are read by other users of a cluster.
        #[cfg(unix)]
        builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
        let tmp = builder
            .tempfile_in(dir)
            .map_err(|e| context(e, "create a temporary file in", dir))?;
        Ok(AtomicFile {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 20, tmp),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Overwrites bytes already written at `offset` (e.g. a length or checksum in a
    /// header that is known only at the end); later writes still append.
    pub fn patch(&mut self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.out.flush()?;
        let f = self.out.get_mut().as_file_mut();
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(bytes)?;
        f.seek(SeekFrom::End(0))?;
        Ok(())
    }

    /// Makes the file `len` bytes long (zeros past what is written), for a file laid out
    /// up front and then filled in any order with [`write_at`](Self::write_at).
    pub fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.out.flush()?;
        self.out
            .get_ref()
            .as_file()
            .set_len(len)
            .map_err(|e| context(e, "write", &self.path))
    }

    /// Writes `bytes` at `offset` (within [`set_len`](Self::set_len)'s length, say)
    /// without moving where later [`Write`] calls append; `&self`, so it needs no
    /// exclusive access.
    pub fn write_at(&self, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.out
            .get_ref()
            .as_file()
            .write_all_at(bytes, offset)
            .map_err(|e| context(e, "write", &self.path))
    }

    /// Syncs the file, renames it over the destination and syncs the folder. `failpoint`
    /// names the test abort between the sync and the rename ([`crate::failpoint`]).
    pub fn commit(self, failpoint: &str) -> io::Result<PathBuf> {
        let path = self.path;
        let tmp = self
            .out
            .into_inner()
            .map_err(|e| context(e.into_error(), "write", &path))?;
        tmp.as_file()
            .sync_all()
            .map_err(|e| context(e, "sync", &path))?;
        crate::failpoint::hit(failpoint, &path);
        tmp.persist(&path)
            .map_err(|e| context(e.error, "rename a temporary file to", &path))?;
        sync_dir(parent_dir(&path))?;
        Ok(path)
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// Runs `write` on a temporary path next to `path` (for writers that take a path, such
/// as the safetensors serialiser), then syncs it, renames it to `path` and syncs the folder.
pub fn write_atomically<E: From<io::Error>>(
    path: &Path,
    write: impl FnOnce(&Path) -> Result<(), E>,
) -> Result<(), E> {
    let file = AtomicFile::create(path)?;
    write(file.out.get_ref().path())?;
    file.commit("")?;
    Ok(())
}

/// Writes `bytes` as the whole content of `path`, atomically.
pub fn write_bytes_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(path)?;
    file.write_all(bytes)
        .map_err(|e| context(e, "write", path))?;
    file.commit("")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_whole_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sub/a.txt");
        write_bytes_atomically(&p, b"one").unwrap();
        write_bytes_atomically(&p, b"two!").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two!");
        assert_eq!(names(p.parent().unwrap()), ["a.txt"]);

        // A writer that fails leaves the old content and no temporary file.
        let err = write_atomically(&p, |tmp: &Path| {
            std::fs::write(tmp, b"half")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(err.to_string().contains("disk full"), "{err}");
        assert_eq!(std::fs::read(&p).unwrap(), b"two!");
        assert_eq!(names(p.parent().unwrap()), ["a.txt"]);

        // Dropped before commit: nothing appears.
        let q = dir.path().join("b.bin");
        let mut f = AtomicFile::create(&q).unwrap();
        f.write_all(b"xyz").unwrap();
        drop(f);
        assert!(!q.exists());

        // A patch rewrites in place, later writes append.
        let mut f = AtomicFile::create(&q).unwrap();
        f.write_all(b"0000abc").unwrap();
        f.patch(1, b"12").unwrap();
        f.write_all(b"d").unwrap();
        f.commit("never").unwrap();
        assert_eq!(std::fs::read(&q).unwrap(), b"0120abcd");
    }

    #[cfg(unix)]
    #[test]
    fn written_files_get_the_permissions_file_create_gives() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain");
        File::create(&plain).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let a = dir.path().join("a");
        write_bytes_atomically(&a, b"x").unwrap();
        let b = dir.path().join("b");
        write_atomically(&b, |tmp: &Path| std::fs::write(tmp, b"y")).unwrap();
        assert_eq!(mode(&a), mode(&plain));
        assert_eq!(mode(&b), mode(&plain));
    }

    #[test]
    fn errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"").unwrap();
        // A file where the folder should be.
        let err = write_bytes_atomically(&file.join("x"), b"").unwrap_err();
        assert!(
            err.to_string().contains(&file.display().to_string()),
            "{err}"
        );
    }

    #[test]
    fn laid_out_up_front_and_filled_in_any_order() {
        let dir = tempfile::tempdir().unwrap();
        let q = dir.path().join("c.bin");
        let mut f = AtomicFile::create(&q).unwrap();
        f.write_all(b"hd").unwrap();
        f.set_len(6).unwrap();
        f.write_at(4, b"yz").unwrap();
        f.write_at(2, b"wx").unwrap();
        f.commit("").unwrap();
        assert_eq!(std::fs::read(&q).unwrap(), b"hdwxyz");
    }
}
