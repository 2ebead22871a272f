//! A file of precomputed embeddings (`rpo-shard embed`), read memory-mapped by training.
//!
//! A framed file ([`rpo_storage::framed`], magic `b"RPOEMBED"`, version 2) whose JSON
//! header is a [`CacheHeader`] (model, text mode, dim, dtype, count, fingerprints) and
//! whose body is `count × dim` values, f32 or bf16 (the upper half of an f32, rounded to
//! nearest even), row after row.
//!
//! The header records what the rows depend on — the model's content fingerprint, the
//! text mode, and a fingerprint of the texts in order — so a reader can refuse rows
//! computed from anything else, and one fingerprint per row, so rows are found by text.
//! The file appears at its destination only once complete (see [`rpo_storage::atomic`]).
//! Version 1 files (16-byte prefix, no CRC, FNV fingerprints) are refused with the
//! command that regenerates them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use rpo_storage::framed::{CacheError, FileKind, FramedFile, FramedWriter};
use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::error::{EmbedError, Result};
use crate::fingerprint::{text_hash, texts_fingerprint};

pub const KIND: FileKind = FileKind {
    magic: b"RPOEMBED",
    version: 2,
    what: "an embedding cache written by `rpo-shard embed`",
    regenerate: "rpo-shard embed --config FILE",
};

/// How the rows are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheDtype {
    F32,
    Bf16,
}

impl CacheDtype {
    pub fn bytes(self) -> usize {
        match self {
            CacheDtype::F32 => 4,
            CacheDtype::Bf16 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            CacheDtype::F32 => "f32",
            CacheDtype::Bf16 => "bf16",
        }
    }
}

impl FromStr for CacheDtype {
    type Err = EmbedError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "f32" => Ok(CacheDtype::F32),
            "bf16" => Ok(CacheDtype::Bf16),
            other => bail!(Invalid, "dtype {other:?}: expected \"f32\" or \"bf16\""),
        }
    }
}

impl std::fmt::Display for CacheDtype {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the rows were computed from, and how they are stored. In the file the
/// [`CacheModel`] fields come first, at the top level of the JSON (flattened).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheHeader {
    #[serde(flatten)]
    pub embedder: CacheModel,
    pub count: usize,
    /// [`texts_fingerprint`] of the texts, in row order.
    pub texts_fingerprint: String,
    /// [`text_hash`] of each row's text, 16 hex digits.
    pub text_fingerprints: Vec<String>,
}

/// The header's description of the model and layout; the text fields are derived from the texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheModel {
    /// The embedder's name ("minilm", "bag-of-words").
    pub model: String,
    /// Where the model was loaded from, for people; the fingerprint is what is checked.
    pub model_path: Option<String>,
    /// Content fingerprint of the model (see [`crate::fingerprint`]).
    pub model_fingerprint: String,
    /// Which text stands for an example ("prompt", "prompt+response").
    pub text_mode: String,
    pub dim: usize,
    pub dtype: CacheDtype,
}

impl CacheHeader {
    /// The header for rows of `texts`, in this order; the texts must be distinct.
    pub fn new<S: AsRef<str>>(model: CacheModel, texts: &[S]) -> Result<Self> {
        ensure!(model.dim > 0, Cache, "an embedding cache needs dim > 0");
        let mut seen = HashMap::with_capacity(texts.len());
        for (i, t) in texts.iter().enumerate() {
            if let Some(j) = seen.insert(text_hash(t.as_ref()), i) {
                bail!(
                    Cache,
                    "texts {j} and {i} of the embedding cache have the same fingerprint \
                     (duplicates must be removed before writing): {:?}",
                    t.as_ref()
                );
            }
        }
        Ok(CacheHeader {
            embedder: model,
            count: texts.len(),
            texts_fingerprint: texts_fingerprint(texts),
            text_fingerprints: texts
                .iter()
                .map(|t| format!("{:016x}", text_hash(t.as_ref())))
                .collect(),
        })
    }

    fn row_bytes(&self) -> usize {
        self.embedder.dim * self.embedder.dtype.bytes()
    }
}

/// f32 → bf16 bits, rounding to nearest even (as torch's conversion does).
fn bf16_bits(x: f32) -> u16 {
    if x.is_nan() {
        return 0x7fc0;
    }
    let bits = x.to_bits();
    ((bits + 0x7fff + ((bits >> 16) & 1)) >> 16) as u16
}

/// Writes a cache row block by row block; nothing appears at the destination before
/// [`CacheWriter::finish`] (dropping the writer removes the temporary file).
pub struct CacheWriter {
    path: PathBuf,
    header: CacheHeader,
    out: FramedWriter,
    written: usize,
}

impl CacheWriter {
    pub fn create(path: &Path, header: CacheHeader) -> Result<Self> {
        let out = FramedWriter::create(path, &KIND, &header)
            .map_err(|e| EmbedError::io("cannot write the embedding cache", path, e))?;
        Ok(CacheWriter {
            path: path.to_path_buf(),
            header,
            out,
            written: 0,
        })
    }

    /// Appends `rows` (`[n, dim]`, any float kind, any device) after the rows already written.
    pub fn append(&mut self, rows: &Tensor) -> Result<()> {
        let size = rows.size();
        ensure!(
            size.len() == 2 && size[1] as usize == self.header.embedder.dim,
            Cache,
            "rows of shape {size:?} for an embedding cache of dim {}",
            self.header.embedder.dim
        );
        let n = size[0] as usize;
        ensure!(
            self.written + n <= self.header.count,
            Cache,
            "{} rows for an embedding cache of {} texts",
            self.written + n,
            self.header.count
        );
        let values = Vec::<f32>::try_from(
            rows.to_kind(Kind::Float)
                .to_device(tch::Device::Cpu)
                .contiguous()
                .view([-1]),
        )?;
        let mut bytes = Vec::with_capacity(values.len() * self.header.embedder.dtype.bytes());
        match self.header.embedder.dtype {
            CacheDtype::F32 => values
                .iter()
                .for_each(|v| bytes.extend_from_slice(&v.to_le_bytes())),
            CacheDtype::Bf16 => values
                .iter()
                .for_each(|v| bytes.extend_from_slice(&bf16_bits(*v).to_le_bytes())),
        }
        self.out.write_body(&bytes)?;
        self.written += n;
        Ok(())
    }

    /// Checks that every row was written, syncs the file and renames it into place.
    pub fn finish(self) -> Result<PathBuf> {
        ensure!(
            self.written == self.header.count,
            Cache,
            "only {} of {} rows were written to the embedding cache {}",
            self.written,
            self.header.count,
            self.path.display()
        );
        self.out
            .finish("")
            .map_err(|e| EmbedError::io("cannot write the embedding cache", &self.path, e))?;
        Ok(self.path)
    }
}

/// Writes `rows` (`[texts.len(), dim]`) for `texts` in one go.
pub fn write_cache<S: AsRef<str>>(
    path: &Path,
    model: CacheModel,
    texts: &[S],
    rows: &Tensor,
) -> Result<PathBuf> {
    let mut w = CacheWriter::create(path, CacheHeader::new(model, texts)?)?;
    w.append(rows)?;
    w.finish()
}

/// A cache file, validated and memory-mapped.
pub struct EmbeddingCache {
    path: PathBuf,
    header: CacheHeader,
    file: FramedFile,
    rows: HashMap<u64, usize>,
}

impl std::fmt::Debug for EmbeddingCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingCache")
            .field("path", &self.path)
            .field("count", &self.header.count)
            .field("dim", &self.header.embedder.dim)
            .finish()
    }
}

impl EmbeddingCache {
    /// Opens and checks `path`: magic, version, header, CRC, and that the file holds
    /// exactly `count × dim` rows. Every error names the file; its kind (missing,
    /// corrupt, old format) is the [`CacheError`].
    pub fn open(path: &Path) -> std::result::Result<Self, CacheError> {
        let (file, header) = FramedFile::open::<CacheHeader>(path, &KIND)?;
        let corrupt = |reason: String| CacheError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        if header.embedder.dim == 0 || header.text_fingerprints.len() != header.count {
            return Err(corrupt(format!(
                "its header is inconsistent: dim {}, count {}, {} text fingerprints",
                header.embedder.dim,
                header.count,
                header.text_fingerprints.len()
            )));
        }
        let len = file.body().len();
        let expected = header.count * header.row_bytes();
        if len != expected {
            return Err(corrupt(format!(
                "its body is {len} bytes long but its header ({} rows × {} {} values) needs {expected} \
                 (truncated or corrupt)",
                header.count, header.embedder.dim, header.embedder.dtype
            )));
        }
        let mut rows = HashMap::with_capacity(header.count);
        for (i, hex) in header.text_fingerprints.iter().enumerate() {
            let h = u64::from_str_radix(hex, 16).map_err(|_| {
                corrupt(format!("text fingerprint {i} ({hex:?}) is not hexadecimal"))
            })?;
            if rows.insert(h, i).is_some() {
                return Err(corrupt(format!("text fingerprint {hex} appears twice")));
            }
        }
        Ok(EmbeddingCache {
            path: path.to_path_buf(),
            header,
            file,
            rows,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &CacheHeader {
        &self.header
    }

    /// The row holding `text`'s embedding, if the cache has it.
    pub fn row_of(&self, text: &str) -> Option<usize> {
        self.rows.get(&text_hash(text)).copied()
    }

    /// Rows `indices` as an fp32 CPU tensor `[indices.len(), dim]`.
    pub fn rows(&self, indices: &[usize]) -> Result<Tensor> {
        let (dim, width) = (self.header.embedder.dim, self.header.row_bytes());
        let mut values = Vec::with_capacity(indices.len() * dim);
        for &i in indices {
            ensure!(
                i < self.header.count,
                Cache,
                "row {i} of {} in {}",
                self.header.count,
                self.path.display()
            );
            let row = &self.file.body()[i * width..(i + 1) * width];
            match self.header.embedder.dtype {
                CacheDtype::F32 => values.extend(
                    row.chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes"))),
                ),
                CacheDtype::Bf16 => values.extend(row.chunks_exact(2).map(|b| {
                    f32::from_bits(
                        (u16::from_le_bytes(b.try_into().expect("2 bytes")) as u32) << 16,
                    )
                })),
            }
        }
        Ok(Tensor::from_slice(&values).view([indices.len() as i64, dim as i64]))
    }

    /// The embeddings of `texts` `[texts.len(), dim]` (fp32, CPU); a text the cache does
    /// not hold is an error that quotes it.
    pub fn lookup<S: AsRef<str>>(&self, texts: &[S]) -> Result<Tensor> {
        let indices = texts
            .iter()
            .map(|t| {
                self.row_of(t.as_ref()).ok_or_else(|| {
                    EmbedError::Cache(format!(
                        "the embedding cache {} has no row for the text {:?}",
                        self.path.display(),
                        preview(t.as_ref())
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.rows(&indices)
    }
}

/// The start of a long text, for error messages.
fn preview(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(dtype: CacheDtype) -> CacheModel {
        CacheModel {
            model: "test".into(),
            model_path: None,
            model_fingerprint: "0123456789abcdef".into(),
            text_mode: "prompt".into(),
            dim: 5,
            dtype,
        }
    }

    fn texts() -> Vec<String> {
        ["alpha", "beta", "gamma ünïcode", ""]
            .map(String::from)
            .to_vec()
    }

    fn rows() -> Tensor {
        Tensor::randn([4, 5], (Kind::Float, tch::Device::Cpu))
    }

    #[test]
    fn f32_round_trip_is_exact_and_found_by_text() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/e.bin");
        let (t, r) = (texts(), rows());
        write_cache(&path, model(CacheDtype::F32), &t, &r).unwrap();
        let cache = EmbeddingCache::open(&path).unwrap();
        assert_eq!(cache.header().count, 4);
        assert_eq!(cache.header().texts_fingerprint, texts_fingerprint(&t));
        let back = cache
            .lookup(&["gamma ünïcode", "alpha", "", "alpha"])
            .unwrap();
        let want = r.index_select(0, &Tensor::from_slice(&[2i64, 0, 3, 0]));
        assert!(back.equal(&want), "{back} vs {want}");
        assert_eq!(cache.row_of("beta"), Some(1));
        assert_eq!(cache.row_of("delta"), None);
        let err = format!("{:#}", cache.lookup(&["delta"]).unwrap_err());
        assert!(err.contains("delta") && err.contains("e.bin"), "{err}");
        // Only the cache itself is left in the folder: no temporary file.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["e.bin"]);
    }

    #[test]
    fn bf16_round_trip_rounds_as_torch_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.bin");
        let (t, r) = (texts(), rows());
        write_cache(&path, model(CacheDtype::Bf16), &t, &r).unwrap();
        let cache = EmbeddingCache::open(&path).unwrap();
        let back = cache.lookup(&t).unwrap();
        assert_eq!(back.kind(), Kind::Float);
        let torch = r.to_kind(Kind::BFloat16).to_kind(Kind::Float);
        assert!(back.equal(&torch), "{back} vs {torch}");
        let f32_len = {
            let p = dir.path().join("f.bin");
            write_cache(&p, model(CacheDtype::F32), &t, &r).unwrap();
            std::fs::metadata(p).unwrap().len()
        };
        assert_eq!(
            f32_len - std::fs::metadata(&path).unwrap().len(),
            4 * 5 * 2,
            "bf16 rows take half the bytes"
        );
    }

    #[test]
    fn damaged_files_are_refused_naming_the_file_and_the_fault() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.bin");
        write_cache(&path, model(CacheDtype::F32), &texts(), &rows()).unwrap();
        let good = std::fs::read(&path).unwrap();
        let refuse = |bytes: &[u8], needle: &str| {
            let bad = dir.path().join("bad.bin");
            std::fs::write(&bad, bytes).unwrap();
            let err = format!("{:#}", EmbeddingCache::open(&bad).unwrap_err());
            assert!(
                err.contains("bad.bin") && err.contains(needle),
                "{needle:?} not in {err}"
            );
        };
        refuse(&good[..good.len() - 3], "truncated");
        refuse(&good[..40], "truncated");
        refuse(&good[..10], "truncated");
        refuse(&[good.as_slice(), &[0u8; 4]].concat(), "corrupt");
        let mut wrong_magic = good.clone();
        wrong_magic[0] = b'X';
        refuse(&wrong_magic, "not an embedding cache");
        let mut wrong_version = good.clone();
        wrong_version[8] = 9;
        refuse(&wrong_version, "version 9");
        let mut bad_json = good.clone();
        bad_json[rpo_storage::framed::PREFIX_LEN] = b'[';
        refuse(&bad_json, "JSON header");
        let err = format!(
            "{:#}",
            EmbeddingCache::open(&dir.path().join("absent.bin")).unwrap_err()
        );
        assert!(err.contains("absent.bin"), "{err}");
    }

    #[test]
    fn an_unfinished_writer_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.bin");
        let header = CacheHeader::new(model(CacheDtype::F32), &texts()).unwrap();
        let mut w = CacheWriter::create(&path, header.clone()).unwrap();
        w.append(&rows().narrow(0, 0, 2)).unwrap();
        drop(w); // interrupted
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Finishing short of the count is refused, and leaves nothing either.
        let mut w = CacheWriter::create(&path, header).unwrap();
        w.append(&rows().narrow(0, 0, 2)).unwrap();
        let err = format!("{:#}", w.finish().unwrap_err());
        assert!(err.contains("2 of 4"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        // Duplicate texts cannot be written (rows are found by text).
        let dup = CacheHeader::new(model(CacheDtype::F32), &["a", "b", "a"]).unwrap_err();
        assert!(format!("{dup:#}").contains("same fingerprint"), "{dup:#}");
    }
}
