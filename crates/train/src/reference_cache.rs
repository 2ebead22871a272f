//! The file of precomputed reference log-probs (`reference.mode = "precomputed"`), written
//! by `rpo-shard precompute-ref` ([`crate::precompute_ref`]) and read memory-mapped by
//! training instead of running a reference model.
//!
//! A sequence's summed reference log-prob depends only on its token ids up to its last
//! target and on its loss mask, so rows are keyed by a hash of exactly those
//! ([`row_keys`]): training hashes each row of a batch and looks it up, whatever batch the
//! row sits in.
//!
//! A framed file ([`rpo_storage::framed`], magic `b"RPOREFLP"`, version 2, CRC-32 of the
//! body in the frame) whose JSON header is a [`CacheHeader`] (count, fingerprints, part)
//! and whose body is
//!
//! ```text
//! keys   count × u64, strictly increasing
//! values count × f64, the log-prob of the key at the same index
//! ```
//!
//! The data fingerprint is the hash of the key block itself (every sequence the run asks
//! about, sorted), the reference fingerprint identifies the reference's weights
//! ([`reference_fingerprint`]); training recomputes both for its own config and refuses a
//! cache where either differs. Files are written atomically ([`rpo_storage::atomic`]): an
//! interrupted writer never leaves a file a reader accepts. Keys and fingerprints are
//! xxh3 hashes; version 1 files (FNV keys) are refused with the command that remakes them.
//! Keys are 64-bit: two distinct sequences of a run collide with probability about
//! n²/2⁶⁵ (1e-8 for a million sequences).

use rpo_storage::framed::{map_readonly, CacheError, FileKind, FramedFile, FramedWriter};
use rpo_storage::hash::hash_bytes;
use rpo_zero::{Sequences, ShardedModel};
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::path::{Path, PathBuf};
use tch::{Device, Kind, Tensor};

use crate::config::TrainConfig;
use crate::error::{Result, TrainError};

pub const KIND: FileKind = FileKind {
    magic: b"RPOREFLP",
    version: 2,
    what: "a reference cache written by `rpo-shard precompute-ref`",
    regenerate: REGENERATE,
};
const REGENERATE: &str = "rpo-shard precompute-ref with this run's --config and --set options";
/// The failpoints ([`rpo_storage::failpoint`], test builds only): `precompute-ref-before-rename`
/// aborts rank 0 after writing the merged cache under its temporary name (every part
/// finished), `precompute-ref-part@RANK` aborts that rank before its part is renamed.
pub use rpo_storage::atomic::temp_prefix;

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
///
/// Meant for host tensors (`DeviceSeqs::host_sequences`, where the batch was collated);
/// tensors on a device are read back through the counted `rpo_comm::host`.
pub fn row_keys(seqs: &Sequences) -> Result<Vec<u64>> {
    let (rows, width) = seqs.ids.size2()?;
    let on_host = |t: &Tensor, kind: Kind| t.to_kind(kind).contiguous().view([-1]);
    let (ids, mask) = if seqs.ids.device() == Device::Cpu && seqs.mask.device() == Device::Cpu {
        (
            Vec::<i64>::try_from(on_host(seqs.ids, Kind::Int64))?,
            Vec::<f32>::try_from(on_host(seqs.mask, Kind::Float))?,
        )
    } else {
        (
            rpo_comm::host::to_host_i64s(seqs.ids)?,
            rpo_comm::host::to_host_f32s(seqs.mask)?,
        )
    };
    let width = width as usize;
    (0..rows as usize)
        .map(|r| {
            let ids = &ids[r * width..(r + 1) * width];
            let mask = &mask[r * width..(r + 1) * width];
            let last = mask.iter().rposition(|&m| m != 0.0).ok_or_else(|| {
                TrainError::Sequences(format!("row {r} has no response token to score"))
            })?;
            ensure!(
                last + 1 < width,
                Sequences,
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
/// this (without a path it gathers the policy one unit at a time).
pub fn reference_fingerprint(
    cfg: &TrainConfig,
    policy: Option<&ShardedModel>,
    kind: Kind,
) -> Result<String> {
    let mut parts = vec![hash_bytes(format!("{kind:?}").as_bytes())];
    match (&cfg.reference.path, policy) {
        (Some(dir), _) => {
            for file in defining_files(dir)? {
                let f = File::open(&file).map_err(|e| TrainError::io("cannot open", &file, e))?;
                // SAFETY: read-only and only hashed. This is the one map of a file this
                // project does not write: a reference folder rewritten in place while it
                // is hashed can give a fingerprint that matches nothing, and one truncated
                // under the map kills the process with SIGBUS (no error is returned).
                let map = unsafe { map_readonly(&f) }
                    .map_err(|e| TrainError::io("cannot memory-map", &file, e))?;
                parts.push(hash_bytes(&map));
            }
        }
        (None, Some(policy)) => {
            parts.push(hash_bytes(&serde_json::to_vec(policy.config())?));
            // One gathered unit at a time (never the whole model); hashed in name order.
            let mut hashed: Vec<(String, u64)> = Vec::new();
            policy.for_each_compute_tensor(|name, t| -> Result<()> {
                hashed.push((name.to_string(), tensor_hash(name, t)?));
                Ok(())
            })?;
            hashed.sort_by(|a, b| a.0.cmp(&b.0));
            parts.extend(hashed.into_iter().map(|(_, h)| h));
        }
        (None, None) => bail!(
            Internal,
            "the reference is the policy, but no policy was given"
        ),
    }
    Ok(format!("{:016x}", hash_bytes(&le_bytes(parts.into_iter()))))
}

/// A Hugging Face folder's config and weight files (and index), by name.
fn defining_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| TrainError::io("cannot read reference.path", dir, e))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?
        .into_iter()
        .filter(|p| {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
            name == "config.json" || name.ends_with(".safetensors") || name.ends_with(".index.json")
        })
        .collect();
    files.sort();
    if !files.iter().any(|f| f.ends_with("config.json")) {
        bail_config!(
            "reference.path",
            "reference.path {} has no config.json",
            dir.display()
        );
    }
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

/// Writes `keys` (strictly increasing) and their `values` to `path` atomically;
/// `header`'s count and data fingerprint are filled in here. `failpoint`: the test abort
/// before the rename ([`rpo_storage::failpoint`]).
pub fn write_cache(
    path: &Path,
    mut header: CacheHeader,
    keys: &[u64],
    values: &[f64],
    failpoint: &str,
) -> Result<()> {
    ensure!(
        keys.len() == values.len(),
        Invalid,
        "{} keys for {} values",
        keys.len(),
        values.len()
    );
    ensure!(
        keys.windows(2).all(|w| w[0] < w[1]),
        Internal,
        "reference cache keys must be sorted and distinct"
    );
    header.count = keys.len();
    header.data_fingerprint = keys_fingerprint(keys);
    let write = || -> std::io::Result<()> {
        let mut out = FramedWriter::create(path, &KIND, &header)?;
        out.write_body(&le_bytes(keys.iter().copied()))?;
        out.write_body(&le_bytes(values.iter().copied()))?;
        out.finish(failpoint)?;
        Ok(())
    };
    write().map_err(|e| TrainError::io("cannot write the reference cache", path, e))
}

/// A cache file, validated and memory-mapped.
pub struct ReferenceCache {
    path: PathBuf,
    header: CacheHeader,
    file: FramedFile,
}

impl ReferenceCache {
    /// Opens and checks `path`: magic, version, header, size, CRC, sorted keys and data
    /// fingerprint. Every error names the file; its kind is the [`CacheError`].
    pub fn open(path: &Path) -> Result<Self, CacheError> {
        let (file, header) = FramedFile::open::<CacheHeader>(path, &KIND)?;
        let corrupt = |reason: String| CacheError::Corrupt {
            path: path.to_path_buf(),
            reason,
        };
        let (len, expected) = (file.body().len(), 16 * header.count);
        if len != expected {
            return Err(corrupt(format!(
                "its body is {len} bytes long but its header ({} sequences) needs {expected} (truncated or corrupt)",
                header.count
            )));
        }
        let cache = ReferenceCache {
            path: path.to_path_buf(),
            header,
            file,
        };
        let sorted: Vec<u64> = (0..cache.header.count).map(|i| cache.key(i)).collect();
        if !(sorted.windows(2).all(|w| w[0] < w[1])
            && keys_fingerprint(&sorted) == cache.header.data_fingerprint)
        {
            return Err(corrupt(
                "its keys are not sorted or do not match its data fingerprint".into(),
            ));
        }
        Ok(cache)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &CacheHeader {
        &self.header
    }

    fn key(&self, i: usize) -> u64 {
        let at = 8 * i;
        u64::from_le_bytes(self.file.body()[at..at + 8].try_into().expect("8 bytes"))
    }

    fn value(&self, i: usize) -> f64 {
        let at = 8 * (self.header.count + i);
        f64::from_le_bytes(self.file.body()[at..at + 8].try_into().expect("8 bytes"))
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
    /// them, on the sequences' device). Give host sequences (`DeviceSeqs::host_sequences`)
    /// so that nothing is read from the device.
    pub fn logps(&self, seqs: &Sequences) -> Result<Tensor> {
        let keys = row_keys(seqs)?;
        let values: Vec<f64> = keys.iter().filter_map(|&k| self.get(k)).collect();
        if values.len() != keys.len() {
            return Err(TrainError::CacheMisses {
                path: self.path.clone(),
                missing: keys.len() - values.len(),
                total: keys.len(),
            });
        }
        Ok(Tensor::from_slice(&values)
            .to_kind(Kind::Float)
            .to_device(seqs.ids.device()))
    }

    /// Refuses a cache that is a part file or was computed for other sequences or another
    /// reference than `data_fingerprint` and `reference_fingerprint` (this run's):
    /// [`CacheError::Stale`], which names the command that remakes it.
    pub fn check(
        &self,
        data_fingerprint: &str,
        reference_fingerprint: &str,
    ) -> Result<(), CacheError> {
        let h = &self.header;
        let stale = |reason: String| CacheError::Stale {
            path: self.path.clone(),
            reason,
            regenerate: REGENERATE.to_string(),
        };
        if let Some((rank, ranks)) = h.part {
            return Err(stale(format!(
                "it is part {rank} of {ranks} of an unfinished precompute-ref, not a reference cache"
            )));
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
        if differ.is_empty() {
            Ok(())
        } else {
            Err(stale(differ.join("; and ")))
        }
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
                targets: None,
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
            targets: None,
        };
        let keys = row_keys(&s).unwrap();

        write_cache(&path, header(), &[keys[0]], &[-1.0], "never").unwrap();
        let cache = ReferenceCache::open(&path).unwrap();
        let err = cache.logps(&s).unwrap_err();
        assert!(
            matches!(
                err,
                TrainError::CacheMisses {
                    missing: 1,
                    total: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        let e = format!("{:#}", err);
        assert!(
            e.contains("1 of this batch's 2") && e.contains("precompute-ref"),
            "{e}"
        );
        let one = Sequences {
            ids: &ids.narrow(0, 0, 1),
            labels: &labels.narrow(0, 0, 1),
            mask: &mask.narrow(0, 0, 1),
            packed: None,
            targets: None,
        };
        let got = cache.logps(&one).unwrap();
        assert_eq!(got.kind(), Kind::Float);
        assert_eq!(Vec::<f32>::try_from(got).unwrap(), [-1.0]);
    }
}
