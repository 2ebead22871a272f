//! The framed file format of the caches (embeddings, reference log-probs), read
//! memory-mapped. Layout, little-endian:
//!
//! ```text
//! 0   magic    8 bytes, the kind of file (b"RPOEMBED", b"RPOREFLP")
//! 8   u32      format version of that kind
//! 12  u32      length of the JSON header in bytes
//! 16  u64      length of the body in bytes
//! 24  u32      CRC-32 of the body
//! 28  u32      0 (reserved)
//! 32  JSON     the kind's header
//! …   zeros    up to the next multiple of 64 bytes, so the body's rows start aligned
//! …   body     rows, whose layout the header describes
//! ```
//!
//! A file is written through [`AtomicFile`] (temporary name, sync, rename, sync of the
//! folder), so an interrupted writer leaves nothing a reader accepts; the reader checks
//! the magic, the version, the lengths and the CRC before it hands out the body.
//! Version 1 files (a 16-byte prefix, before this format and the xxh3 fingerprints)
//! are refused with the command that regenerates them.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use serde::{de::DeserializeOwned, Serialize};

use crate::atomic::{context, AtomicFile};

/// Magic, version, JSON length, body length, CRC, reserved.
pub const PREFIX_LEN: usize = 32;
const BODY_ALIGN: usize = 64;

/// What a framed file is: its magic and the version this build writes and reads, how
/// to name it in errors, and the command that writes it again.
#[derive(Debug, Clone, Copy)]
pub struct FileKind {
    pub magic: &'static [u8; 8],
    pub version: u32,
    /// e.g. "an embedding cache written by `rpo-shard embed`".
    pub what: &'static str,
    /// e.g. "rpo-shard embed --config FILE".
    pub regenerate: &'static str,
}

/// Why a cache cannot be used; the caller acts on the kind (recompute a missing or stale
/// cache, stop on a corrupt one). Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("{path} cannot be opened: {source}")]
    Missing { path: PathBuf, source: io::Error },
    #[error("{path} is not {what}: it does not start with {magic:?}")]
    NotThisKind {
        path: PathBuf,
        what: &'static str,
        magic: String,
    },
    #[error("{path} has format version {found}, but this build reads version {expected}: regenerate it with `{regenerate}`")]
    OldFormat {
        path: PathBuf,
        found: u32,
        expected: u32,
        regenerate: &'static str,
    },
    #[error("{path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    /// Intact, but computed from something other than what this run asks for.
    #[error("{path} was computed for another run: {reason}; regenerate it with `{regenerate}`")]
    Stale {
        path: PathBuf,
        reason: String,
        regenerate: String,
    },
}

/// Writes a framed file: header first, then the body in as many pieces as the caller
/// likes; nothing is at the destination before [`FramedWriter::finish`].
pub struct FramedWriter {
    file: AtomicFile,
    body_len: u64,
    crc: crc32fast::Hasher,
}

impl FramedWriter {
    pub fn create<H: Serialize>(path: &Path, kind: &FileKind, header: &H) -> io::Result<Self> {
        let json = serde_json::to_vec(header)?;
        let json_len = u32::try_from(json.len())
            .map_err(|_| io::Error::other("the JSON header is over 4 GiB"))?;
        let mut file = AtomicFile::create(path)?;
        file.write_all(kind.magic)?;
        file.write_all(&kind.version.to_le_bytes())?;
        file.write_all(&json_len.to_le_bytes())?;
        // Body length and CRC, patched in by `finish`.
        file.write_all(&[0u8; 16])?;
        file.write_all(&json)?;
        file.write_all(&vec![
            0u8;
            body_offset(json.len()) - PREFIX_LEN - json.len()
        ])?;
        Ok(FramedWriter {
            file,
            body_len: 0,
            crc: crc32fast::Hasher::new(),
        })
    }

    /// Appends `bytes` to the body.
    pub fn write_body(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.crc.update(bytes);
        self.body_len += bytes.len() as u64;
        self.file
            .write_all(bytes)
            .map_err(|e| context(e, "write", &self.file.path().to_path_buf()))
    }

    /// Records the body's length and CRC and renames the file into place
    /// (`failpoint`: see [`AtomicFile::commit`]).
    pub fn finish(mut self, failpoint: &str) -> io::Result<PathBuf> {
        let mut tail = self.body_len.to_le_bytes().to_vec();
        tail.extend_from_slice(&self.crc.clone().finalize().to_le_bytes());
        self.file.patch(16, &tail)?;
        self.file.commit(failpoint)
    }
}

/// Where the body starts for a JSON header of `json_len` bytes.
fn body_offset(json_len: usize) -> usize {
    (PREFIX_LEN + json_len).div_ceil(BODY_ALIGN) * BODY_ALIGN
}

/// A framed file, checked and memory-mapped.
pub struct FramedFile {
    path: PathBuf,
    map: Mmap,
    body_at: usize,
}

impl std::fmt::Debug for FramedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramedFile")
            .field("path", &self.path)
            .finish()
    }
}

/// Memory-maps a whole file read-only.
///
/// # Safety
/// The caller must make sure the file is not modified or truncated while the map lives:
/// a file truncated under a map raises SIGBUS on access, which kills the process, and a
/// file rewritten in place changes the mapped bytes. Files this project writes are only
/// ever replaced by rename ([`crate::atomic`]), which leaves a map of the old file intact.
pub unsafe fn map_readonly(file: &File) -> io::Result<Mmap> {
    Mmap::map(file)
}

impl FramedFile {
    /// Opens `path` as a file of `kind` and returns it with its header, after checking
    /// the magic, version, lengths and the body's CRC.
    pub fn open<H: DeserializeOwned>(
        path: &Path,
        kind: &FileKind,
    ) -> Result<(Self, H), CacheError> {
        let missing = |source| CacheError::Missing {
            path: path.to_path_buf(),
            source,
        };
        let corrupt = |reason: String| CacheError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(missing)?;
        // SAFETY: the caches are only replaced by rename, never rewritten in place (see
        // `map_readonly`); another program truncating one under us would crash this process.
        let map = unsafe { map_readonly(&file) }.map_err(missing)?;
        let len = map.len();
        if len < 12 || &map[..8] != kind.magic {
            if len >= 8 && &map[..8] != kind.magic {
                return Err(CacheError::NotThisKind {
                    path: path.to_path_buf(),
                    what: kind.what,
                    magic: String::from_utf8_lossy(kind.magic).into_owned(),
                });
            }
            return Err(corrupt(format!(
                "it is {len} bytes long, shorter than its prefix (truncated)"
            )));
        }
        let u32_at = |at: usize| u32::from_le_bytes(map[at..at + 4].try_into().expect("4 bytes"));
        let found = u32_at(8);
        if found != kind.version {
            return Err(CacheError::OldFormat {
                path: path.to_path_buf(),
                found,
                expected: kind.version,
                regenerate: kind.regenerate,
            });
        }
        if len < PREFIX_LEN {
            return Err(corrupt(format!(
                "it is {len} bytes long, shorter than the {PREFIX_LEN}-byte prefix (truncated)"
            )));
        }
        let json_len = u32_at(12) as usize;
        let body_len = u64::from_le_bytes(map[16..24].try_into().expect("8 bytes"));
        let crc = u32_at(24);
        if PREFIX_LEN + json_len > len {
            return Err(corrupt(format!(
                "its header claims {json_len} bytes but the file is {len} bytes long (truncated)"
            )));
        }
        let body_at = body_offset(json_len);
        let expected = body_at as u64 + body_len;
        if expected != len as u64 {
            return Err(corrupt(format!(
                "it is {len} bytes long but its prefix says {expected} (truncated or corrupt)"
            )));
        }
        let header: H = serde_json::from_slice(&map[PREFIX_LEN..PREFIX_LEN + json_len])
            .map_err(|e| corrupt(format!("its JSON header is invalid: {e}")))?;
        if crc32fast::hash(&map[body_at..]) != crc {
            return Err(corrupt("its body fails its CRC-32".into()));
        }
        Ok((
            FramedFile {
                path: path.to_path_buf(),
                map,
                body_at,
            },
            header,
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The body, as written.
    pub fn body(&self) -> &[u8] {
        &self.map[self.body_at..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: FileKind = FileKind {
        magic: b"RPOTESTF",
        version: 2,
        what: "a test file",
        regenerate: "make-it-again",
    };

    #[test]
    fn round_trip_and_every_refusal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.bin");
        let mut w = FramedWriter::create(&path, &KIND, &vec![7u32, 8]).unwrap();
        w.write_body(&[1, 2, 3]).unwrap();
        w.write_body(&[4]).unwrap();
        w.finish("never").unwrap();
        let (f, header) = FramedFile::open::<Vec<u32>>(&path, &KIND).unwrap();
        assert_eq!(header, [7, 8]);
        assert_eq!(f.body(), [1, 2, 3, 4]);
        assert_eq!(f.body().as_ptr() as usize % 64, 0, "the body is aligned");

        let good = std::fs::read(&path).unwrap();
        let open = |bytes: &[u8]| {
            let bad = dir.path().join("bad.bin");
            std::fs::write(&bad, bytes).unwrap();
            let e = FramedFile::open::<Vec<u32>>(&bad, &KIND).unwrap_err();
            assert!(e.to_string().contains("bad.bin"), "{e}");
            e
        };
        let n = good.len();
        assert!(matches!(open(&good[..n - 1]), CacheError::Corrupt { .. }));
        assert!(matches!(open(&good[..40]), CacheError::Corrupt { .. }));
        assert!(matches!(open(&good[..10]), CacheError::Corrupt { .. }));
        let mut flipped = good.clone();
        flipped[n - 1] ^= 1;
        let e = open(&flipped);
        assert!(e.to_string().contains("CRC"), "{e}");
        let mut magic = good.clone();
        magic[0] = b'X';
        assert!(matches!(open(&magic), CacheError::NotThisKind { .. }));
        let mut v1 = good.clone();
        v1[8] = 1;
        let e = open(&v1);
        assert!(matches!(e, CacheError::OldFormat { found: 1, .. }));
        assert!(e.to_string().contains("make-it-again"), "{e}");
        let e = FramedFile::open::<Vec<u32>>(&dir.path().join("absent"), &KIND).unwrap_err();
        assert!(matches!(e, CacheError::Missing { .. }), "{e}");
    }
}
