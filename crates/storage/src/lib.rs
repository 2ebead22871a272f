//! Everything that puts bytes on disk or reads them back, once:
//!
//! - [`atomic`]: write a file (or finish a folder) so that a crash leaves the old
//!   content or the new one, never a mix: temporary file, fsync, rename, fsync of the folder.
//! - [`framed`]: the memory-mapped file format of the embedding and reference caches:
//!   magic, version, a JSON header, rows aligned to 64 bytes, a CRC-32 of the rows.
//! - [`hash`]: the content hash (xxh3, 64 bits) behind every fingerprint and cache key.
//! - [`failpoint`]: test-only aborts, compiled in only with the `failpoints` feature.

pub mod atomic;
pub mod failpoint;
pub mod framed;
pub mod hash;

pub use atomic::{sync_dir, write_atomically, write_bytes_atomically, AtomicFile};
pub use framed::{CacheError, FileKind, FramedFile, FramedWriter};
pub use hash::hash_bytes;
