//! The file of precomputed reference log-probs (`reference.mode = "precomputed"`), written
//! by `rpo-shard precompute-ref` ([`crate::precompute_ref`]) and read memory-mapped by
//! training instead of running a reference model.
//!
//! A sequence's summed reference log-prob depends only on its token ids up to its last
//! target and on its loss mask, so rows are keyed by a hash of exactly those
//! ([`row_keys`]): training hashes each row of a batch and looks it up, whatever batch the
//! row sits in.
//!
//! Layout, little-endian:
//!
//! ```text
//! 0   magic  b"RPOREFLP"
//! 8   u32    format version (1)
//! 12  u32    length of the JSON header in bytes
//! 16  JSON   CacheHeader: count, fingerprints, CRC-32 of the body, part (if a part file)
//! …   zeros  up to the next multiple of 64 bytes
//! …   keys   count × u64, strictly increasing
//! …   values count × f64, the log-prob of the key at the same index
//! ```
//!
//! The data fingerprint is the hash of the key block itself (every sequence the run asks
//! about, sorted), the reference fingerprint identifies the reference's weights
//! ([`reference_fingerprint`]); training recomputes both for its own config and refuses a
//! cache where either differs. Files are written to a temporary name in the destination
//! folder, synced, then renamed: an interrupted writer never leaves a file a reader accepts.
//! Keys are 64-bit: two distinct sequences of a run collide with probability about
//! n²/2⁶⁵ (1e-8 for a million sequences).

use anyhow::{bail, ensure, Context, Result};
use memmap2::Mmap;
use rpo_embed::cache::map_framed;
use rpo_embed::fingerprint::hash_bytes;
use rpo_zero::{Sequences, ShardedModel};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

use crate::config::TrainConfig;

pub const MAGIC: &[u8; 8] = b"RPOREFLP";
pub const VERSION: u32 = 1;
/// Magic, version and header length.
const PREFIX_LEN: usize = 16;
const BODY_ALIGN: usize = 64;
/// Set to `precompute-ref-before-rename` to abort rank 0 after writing the merged cache
/// under its temporary name (every part finished), or `precompute-ref-part@RANK` to abort
/// that rank before its part is renamed into place (used by the tests: the interruptions
/// the format must survive).
pub use rpo_zero::checkpoint::FAILPOINT_ENV;

/// What the rows were computed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheHeader {
    pub count: usize,
    /// Hash of the sorted keys: which sequences the cache covers.
    pub data_fingerprint: String,
    /// [`reference_fingerprint`] of the reference that computed the values.
    pub reference_fingerprint: String,
    /// The reference, for people (the fingerprint is what is checked).
    pub reference: String,
    /// CRC-32 of the keys and values, to refuse a damaged file.
    pub crc32: u32,
    /// `(rank, ranks)` for one rank's part of an unfinished `precompute-ref`; training
    /// accepts only whole caches.
    pub part: Option<(usize, usize)>,
}

/// Hash of sorted keys, as 16 hex digits: equal for equal sets of sequences.
pub fn keys_fingerprint(sorted_keys: &[u64]) -> String {
    format!(
        "{:016x}",
        hash_bytes(&le_bytes(sorted_keys.iter().copied()))
    )
}

fn le_bytes<T: ToLeBytes>(values: impl Iterator<Item = T>) -> Vec<u8> {
    values.flat_map(ToLeBytes::le).collect()
}

trait ToLeBytes {
    fn le(self) -> [u8; 8];
}
impl ToLeBytes for u64 {
    fn le(self) -> [u8; 8] {
        self.to_le_bytes()
    }
}
impl ToLeBytes for f64 {
    fn le(self) -> [u8; 8] {
        self.to_le_bytes()
    }
}

/// The key of each row of `seqs`: a hash of its ids up to and including its last target
/// and of its loss mask up to its last masked position (everything its summed log-prob
/// depends on: labels are the ids shifted, and later positions cannot affect earlier ones).
pub fn row_keys(seqs: &Sequences) -> Result<Vec<u64>> {
    let (rows, width) = seqs.ids.size2()?;
    let ids = Vec::<i64>::try_from(seqs.ids.to_device(Device::Cpu).contiguous().view([-1]))?;
    let mask = Vec::<f32>::try_from(
        seqs.mask
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
            .view([-1]),
    )?;
    let width = width as usize;
    (0..rows as usize)
        .map(|r| {
            let ids = &ids[r * width..(r + 1) * width];
            let mask = &mask[r * width..(r + 1) * width];
            let last = mask
                .iter()
                .rposition(|&m| m != 0.0)
                .with_context(|| format!("row {r} has no response token to score"))?;
            ensure!(
                last + 1 < width,
                "row {r} is masked up to its last position, which has no target"
            );
            // ids[..=last+1] then mask[..=last]: the two lengths fix each other, so
            // distinct (ids, mask) give distinct byte strings.
            let mut bytes = le_bytes(ids[..last + 2].iter().map(|&t| t as u64));
            bytes.extend(mask[..=last].iter().map(|&m| (m != 0.0) as u8));
            Ok(hash_bytes(&bytes))
        })
        .collect()
}

/// Identifies the reference's values: the compute dtype and either the files of
/// `reference.path` (config and weights, by content) or, without a path, the policy's
/// initial weights (by name, shape and bytes) and its architecture. Every rank must call
/// this (without a path it gathers the policy).
pub fn reference_fingerprint(
    cfg: &TrainConfig,
    policy: Option<&ShardedModel>,
    kind: Kind,
) -> Result<String> {
    let mut parts = vec![hash_bytes(format!("{kind:?}").as_bytes())];
    match (&cfg.reference.path, policy) {
        (Some(dir), _) => {
            for file in defining_files(dir)? {
                let f =
                    File::open(&file).with_context(|| format!("cannot open {}", file.display()))?;
                // SAFETY: read-only, and only hashed; a concurrent writer could at worst
                // give a fingerprint that matches nothing.
                let map = unsafe { Mmap::map(&f) }
                    .with_context(|| format!("cannot memory-map {}", file.display()))?;
                parts.push(hash_bytes(&map));
            }
        }
        (None, Some(policy)) => {
            parts.push(hash_bytes(&serde_json::to_vec(policy.config())?));
            policy.gather_all()?;
            let mut vars: Vec<(String, Tensor)> = policy.store().variables().into_iter().collect();
            vars.sort_by(|a, b| a.0.cmp(&b.0));
            let hashed = vars
                .iter()
                .map(|(name, t)| tensor_hash(name, t))
                .collect::<Result<Vec<u64>>>();
            policy.release_all();
            parts.extend(hashed?);
        }
        (None, None) => bail!("internal: the reference is the policy, but no policy was given"),
    }
    Ok(format!("{:016x}", hash_bytes(&le_bytes(parts.into_iter()))))
}

/// A Hugging Face folder's config and weight files (and index), by name.
fn defining_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read reference.path {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?
        .into_iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name == "config.json" || name.ends_with(".safetensors") || name.ends_with(".index.json")
        })
        .collect();
    files.sort();
    ensure!(
        files.iter().any(|f| f.ends_with("config.json")),
        "reference.path {} has no config.json",
        dir.display()
    );
    Ok(files)
}

fn tensor_hash(name: &str, t: &Tensor) -> Result<u64> {
    let cpu = t.detach().to_device(Device::Cpu).contiguous();
    let mut bytes = vec![0u8; cpu.numel() * cpu.kind().elt_size_in_bytes()];
    cpu.f_copy_data_u8(&mut bytes, cpu.numel())?;
    let head = format!("{name}{:?}{:?}", cpu.size(), cpu.kind());
    Ok(hash_bytes(&le_bytes(
        [hash_bytes(head.as_bytes()), hash_bytes(&bytes)].into_iter(),
    )))
}

/// Where the body starts for a JSON header of `json_len` bytes.
fn body_offset(json_len: usize) -> usize {
    (PREFIX_LEN + json_len).div_ceil(BODY_ALIGN) * BODY_ALIGN
}

fn body_crc(keys: &[u8], values: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(keys);
    crc.update(values);
    crc.finalize()
}

/// Writes `keys` (strictly increasing) and their `values` to `path` under a temporary
/// name, then renames it into place; `header`'s count, data fingerprint and CRC are
/// filled in here. `failpoint`: the [`FAILPOINT_ENV`] value that aborts before the rename.
pub fn write_cache(
    path: &Path,
    mut header: CacheHeader,
    keys: &[u64],
    values: &[f64],
    failpoint: &str,
) -> Result<()> {
    ensure!(
        keys.len() == values.len(),
        "{} keys for {} values",
        keys.len(),
        values.len()
    );
    ensure!(
        keys.windows(2).all(|w| w[0] < w[1]),
        "internal: reference cache keys must be sorted and distinct"
    );
    let key_bytes = le_bytes(keys.iter().copied());
    let value_bytes = le_bytes(values.iter().copied());
    header.count = keys.len();
    header.data_fingerprint = keys_fingerprint(keys);
    header.crc32 = body_crc(&key_bytes, &value_bytes);
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the folder {}", dir.display()))?;
    // In the destination's folder, so the rename stays on one file system.
    let tmp = tempfile::Builder::new()
        .prefix(&temp_prefix(path))
        .suffix(".partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {}", dir.display()))?;
    let json = serde_json::to_vec(&header)?;
    let mut out = BufWriter::with_capacity(1 << 20, tmp);
    out.write_all(MAGIC)?;
    out.write_all(&VERSION.to_le_bytes())?;
    out.write_all(&u32::try_from(json.len())?.to_le_bytes())?;
    out.write_all(&json)?;
    out.write_all(&vec![
        0u8;
        body_offset(json.len()) - PREFIX_LEN - json.len()
    ])?;
    out.write_all(&key_bytes)?;
    out.write_all(&value_bytes)?;
    let tmp = out
        .into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("cannot write {}", path.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("cannot sync {}", path.display()))?;
    if std::env::var(FAILPOINT_ENV).ok().as_deref() == Some(failpoint) {
        eprintln!(
            "{FAILPOINT_ENV}: aborting before {} is renamed into place",
            path.display()
        );
        std::process::abort();
    }
    tmp.persist(path)
        .with_context(|| format!("cannot move the reference cache to {}", path.display()))?;
    File::open(dir).and_then(|d| d.sync_all()).ok();
    Ok(())
}

/// The prefix of the temporary files written for `path` (removed after a finished run).
pub fn temp_prefix(path: &Path) -> String {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("reference_logps");
    format!(".{name}.")
}

/// A cache file, validated and memory-mapped.
pub struct ReferenceCache {
    path: PathBuf,
    header: CacheHeader,
    map: Mmap,
    keys_at: usize,
}

impl ReferenceCache {
    /// Opens and checks `path`: magic, version, header, size, sorted keys, CRC and data
    /// fingerprint. Every error names the file.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_checked(path)
            .with_context(|| format!("reference cache {} is unusable", path.display()))
    }

    fn open_checked(path: &Path) -> Result<Self> {
        let (map, header, json_len) = map_framed::<CacheHeader>(
            path,
            MAGIC,
            VERSION,
            "a reference cache written by `rpo-shard precompute-ref`",
        )?;
        let len = map.len();
        let keys_at = body_offset(json_len);
        let expected = keys_at + 16 * header.count;
        ensure!(
            len == expected,
            "it is {len} bytes long but its header ({} sequences) needs {expected} (truncated or corrupt)",
            header.count
        );
        let cache = ReferenceCache {
            path: path.to_path_buf(),
            header,
            map,
            keys_at,
        };
        let (keys, values) = cache.body();
        ensure!(
            body_crc(keys, values) == cache.header.crc32,
            "its keys and values fail their CRC-32 (corrupt)"
        );
        let sorted: Vec<u64> = (0..cache.header.count).map(|i| cache.key(i)).collect();
        ensure!(
            sorted.windows(2).all(|w| w[0] < w[1])
                && keys_fingerprint(&sorted) == cache.header.data_fingerprint,
            "its keys are not sorted or do not match its data fingerprint (corrupt)"
        );
        Ok(cache)
    }

    fn body(&self) -> (&[u8], &[u8]) {
        let n = self.header.count * 8;
        let keys = &self.map[self.keys_at..self.keys_at + n];
        (keys, &self.map[self.keys_at + n..self.keys_at + 2 * n])
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &CacheHeader {
        &self.header
    }

    fn key(&self, i: usize) -> u64 {
        let at = self.keys_at + 8 * i;
        u64::from_le_bytes(self.map[at..at + 8].try_into().expect("8 bytes"))
    }

    fn value(&self, i: usize) -> f64 {
        let at = self.keys_at + 8 * (self.header.count + i);
        f64::from_le_bytes(self.map[at..at + 8].try_into().expect("8 bytes"))
    }

    /// Every key, in order, with its value.
    pub fn entries(&self) -> impl Iterator<Item = (u64, f64)> + '_ {
        (0..self.header.count).map(|i| (self.key(i), self.value(i)))
    }

    /// The value stored for `key` (binary search over the mapped keys).
    pub fn get(&self, key: u64) -> Option<f64> {
        let (mut lo, mut hi) = (0, self.header.count);
        while lo < hi {
            let mid = (lo + hi) / 2;
            match self.key(mid).cmp(&key) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return Some(self.value(mid)),
            }
        }
        None
    }

    /// Summed reference log-probs `[B]` of `seqs` (fp32, as the live reference gives
    /// them, on the sequences' device).
    pub fn logps(&self, seqs: &Sequences) -> Result<Tensor> {
        let keys = row_keys(seqs)?;
        let values: Vec<f64> = keys.iter().filter_map(|&k| self.get(k)).collect();
        ensure!(
            values.len() == keys.len(),
            "the reference cache {} has no log-prob for {} of this batch's {} sequences: the cache does not \
             cover this run; rerun rpo-shard precompute-ref with this run's config",
            self.path.display(),
            keys.len() - values.len(),
            keys.len()
        );
        Ok(Tensor::from_slice(&values)
            .to_kind(Kind::Float)
            .to_device(seqs.ids.device()))
    }

    /// Refuses a cache that is a part file or was computed for other sequences or another
    /// reference than `data_fingerprint` and `reference_fingerprint` (this run's).
    pub fn check(&self, data_fingerprint: &str, reference_fingerprint: &str) -> Result<()> {
        let h = &self.header;
        let redo = "regenerate it with `rpo-shard precompute-ref` and this run's --config and --set options";
        if let Some((rank, ranks)) = h.part {
            bail!(
                "{} is part {rank} of {ranks} of an unfinished precompute-ref, not a reference cache: {redo}",
                self.path.display()
            );
        }
        let mut differ = vec![];
        if h.data_fingerprint != data_fingerprint {
            differ.push(format!(
                "its data fingerprint {} is not this run's {data_fingerprint} (the tokenized sequences differ: \
                 data, tokenizer, lengths, seed, steps, batch sizes, rank count or eval examples changed)",
                h.data_fingerprint
            ));
        }
        if h.reference_fingerprint != reference_fingerprint {
            differ.push(format!(
                "its reference fingerprint {} ({}) is not this run's {reference_fingerprint} (another reference \
                 model, weights or dtype)",
                h.reference_fingerprint, h.reference
            ));
        }
        ensure!(
            differ.is_empty(),
            "the reference cache {} was computed for another run: {}; {redo}",
            self.path.display(),
            differ.join("; and ")
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> CacheHeader {
        CacheHeader {
            count: 0,
            data_fingerprint: String::new(),
            reference_fingerprint: "00000000000000ab".into(),
            reference: "test".into(),
            crc32: 0,
            part: None,
        }
    }

    fn seqs(ids: &[&[i64]], masks: &[&[f32]]) -> (Tensor, Tensor, Tensor) {
        let ids = Tensor::stack(
            &ids.iter()
                .map(|r| Tensor::from_slice(r))
                .collect::<Vec<_>>(),
            0,
        );
        let mask = Tensor::stack(
            &masks
                .iter()
                .map(|r| Tensor::from_slice(r))
                .collect::<Vec<_>>(),
            0,
        );
        (ids.shallow_clone(), ids, mask)
    }

    #[test]
    fn keys_see_ids_and_mask_up_to_the_last_target_only() {
        let key = |ids: &[i64], mask: &[f32]| {
            let (i, l, m) = seqs(&[ids], &[mask]);
            row_keys(&Sequences {
                ids: &i,
                labels: &l,
                mask: &m,
                packed: None,
            })
            .unwrap()[0]
        };
        let base = key(&[1, 2, 3, 4, 0, 0], &[0., 1., 1., 0., 0., 0.]);
        // Padding after the last target does not matter...
        assert_eq!(
            base,
            key(&[1, 2, 3, 4, 0, 0, 0, 0], &[0., 1., 1., 0., 0., 0., 0., 0.])
        );
        assert_eq!(base, key(&[1, 2, 3, 4, 9], &[0., 1., 1., 0., 0.]));
        // ...every id up to it and the mask do.
        assert_ne!(base, key(&[1, 2, 3, 5, 0, 0], &[0., 1., 1., 0., 0., 0.]));
        assert_ne!(base, key(&[7, 2, 3, 4, 0, 0], &[0., 1., 1., 0., 0., 0.]));
        assert_ne!(base, key(&[1, 2, 3, 4, 0, 0], &[1., 1., 1., 0., 0., 0.]));
        assert_ne!(base, key(&[1, 2, 3, 4, 0, 0], &[0., 1., 1., 1., 0., 0.]));
    }

    #[test]
    fn round_trip_lookup_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/ref.bin");
        let keys = [3u64, 10, u64::MAX];
        let values = [-1.5f64, -2.25, -0.125];
        write_cache(&path, header(), &keys, &values, "never").unwrap();
        let cache = ReferenceCache::open(&path).unwrap();
        assert_eq!(cache.header().count, 3);
        assert_eq!(cache.get(10), Some(-2.25));
        assert_eq!(cache.get(u64::MAX), Some(-0.125));
        assert_eq!(cache.get(4), None);
        assert_eq!(cache.entries().collect::<Vec<_>>().len(), 3);
        let fp = keys_fingerprint(&keys);
        cache.check(&fp, "00000000000000ab").unwrap();
        let e = format!("{:#}", cache.check("x", "00000000000000ab").unwrap_err());
        assert!(
            e.contains("data fingerprint") && e.contains("precompute-ref"),
            "{e}"
        );
        let e = format!("{:#}", cache.check(&fp, "y").unwrap_err());
        assert!(
            e.contains("reference fingerprint") && !e.contains("data fingerprint"),
            "{e}"
        );
        // Only the cache is left in the folder.
        assert_eq!(
            std::fs::read_dir(path.parent().unwrap()).unwrap().count(),
            1
        );

        let good = std::fs::read(&path).unwrap();
        let refuse = |bytes: &[u8], needle: &str| {
            let bad = dir.path().join("bad.bin");
            std::fs::write(&bad, bytes).unwrap();
            let err = format!("{:#}", ReferenceCache::open(&bad).err().unwrap());
            assert!(
                err.contains("bad.bin") && err.contains(needle),
                "{needle:?} not in {err}"
            );
        };
        refuse(&good[..good.len() - 8], "truncated");
        refuse(&good[..10], "truncated");
        let mut flipped = good.clone();
        let n = flipped.len();
        flipped[n - 1] ^= 1;
        refuse(&flipped, "CRC");
        let mut magic = good.clone();
        magic[0] = b'X';
        refuse(&magic, "not a reference cache");

        let part = dir.path().join("part.bin");
        let mut h = header();
        h.part = Some((1, 2));
        write_cache(&part, h, &keys, &values, "never").unwrap();
        let e = format!(
            "{:#}",
            ReferenceCache::open(&part)
                .unwrap()
                .check(&fp, "00000000000000ab")
                .unwrap_err()
        );
        assert!(e.contains("part 1 of 2"), "{e}");
    }

    #[test]
    fn lookups_name_the_missing_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ref.bin");
        let (ids, labels, mask) = seqs(&[&[1, 2, 3], &[1, 2, 4]], &[&[0., 1., 0.], &[0., 1., 0.]]);
        let s = Sequences {
            ids: &ids,
            labels: &labels,
            mask: &mask,
            packed: None,
        };
        let keys = row_keys(&s).unwrap();

        write_cache(&path, header(), &[keys[0]], &[-1.0], "never").unwrap();
        let cache = ReferenceCache::open(&path).unwrap();
        let e = format!("{:#}", cache.logps(&s).unwrap_err());
        assert!(
            e.contains("1 of this batch's 2") && e.contains("precompute-ref"),
            "{e}"
        );
        let one = Sequences {
            ids: &ids.narrow(0, 0, 1),
            labels: &labels.narrow(0, 0, 1),
            mask: &mask.narrow(0, 0, 1),
            packed: None,
        };
        let got = cache.logps(&one).unwrap();
        assert_eq!(got.kind(), Kind::Float);
        assert_eq!(Vec::<f32>::try_from(got).unwrap(), [-1.0]);
    }
}
