//! The vector index: arroy (cosine) inside one LMDB environment under the workspace.
//!
//! Each embedding version gets its own arroy index (a `u16`); the `SQLite` side records
//! which. Adds and removals rebuild the trees incrementally in the same write transaction,
//! so a committed snapshot is always searchable; LMDB readers see the last committed
//! snapshot and are never blocked by a writer (a long rebuild included).
//!
//! When the map is full the write is aborted, the map doubles and the write is retried, up
//! to a ceiling; past it the error says so and the index is unchanged.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use arroy::distances::Cosine;
use arroy::{Reader, Writer};
use rand_arroy::SeedableRng;
use rand_arroy::rngs::StdRng;
use roaring::RoaringBitmap;

use crate::core::error::{BoxError, Error, Result};

/// Initial LMDB map size; it doubles when full.
pub const INITIAL_MAP: usize = 64 << 20;
/// Default ceiling for the map size.
pub const MAX_MAP: usize = 64 << 30;

/// Trees per index unless configured otherwise (see `[memory] n_trees`).
pub const DEFAULT_TREES: usize = 32;

/// One search hit: chunk id and cosine similarity.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hit {
    pub id: u32,
    pub similarity: f32,
}

pub struct VectorStore {
    env: heed::Env,
    db: arroy::Database<'static, Cosine>,
    /// Every transaction holds this shared; a resize takes it exclusively, because LMDB
    /// allows changing the map size only while no transaction is live in this process.
    gate: RwLock<()>,
    max_map: Mutex<usize>,
    /// Trees per index; `0` lets arroy choose (it grows trees until they have as many
    /// nodes as there are items: best recall, but slow builds and a large file).
    n_trees: std::sync::atomic::AtomicUsize,
    dir: PathBuf,
}

impl std::fmt::Debug for VectorStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VectorStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn lmdb(e: impl Into<BoxError>, what: &str) -> Error {
    Error::failed(format!("vector index: {what}"), e)
}

fn is_map_full(e: &arroy::Error) -> bool {
    matches!(
        e,
        arroy::Error::Heed(heed::Error::Mdb(heed::MdbError::MapFull))
    )
}

fn page_align(n: usize) -> usize {
    let page = 4096;
    n.div_ceil(page) * page
}

impl VectorStore {
    /// Opens (creating) the environment in `dir`. One instance per directory per process:
    /// LMDB forbids opening the same environment twice in a process.
    pub fn open(dir: &Path) -> Result<Arc<Self>> {
        Self::open_sized(dir, INITIAL_MAP)
    }

    /// Like [`VectorStore::open`], with the map size to start from when not open yet.
    pub fn open_sized(dir: &Path, initial_map: usize) -> Result<Arc<Self>> {
        static OPEN: OnceLock<Mutex<HashMap<PathBuf, Arc<VectorStore>>>> = OnceLock::new();
        crate::core::workspace::new_private_dirs(dir)?;
        let key = dir.canonicalize().map_err(|e| Error::io(dir, e))?;
        let registry = OPEN.get_or_init(|| Mutex::new(HashMap::new()));
        let mut open = registry
            .lock()
            .map_err(|_| Error::Other("vector registry lock poisoned".into()))?;
        if let Some(store) = open.get(&key) {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(Self::open_env(&key, page_align(initial_map.max(1 << 20)))?);
        open.insert(key, Arc::clone(&store));
        Ok(store)
    }

    #[allow(unsafe_code)]
    fn open_env(dir: &Path, initial_map: usize) -> Result<Self> {
        // SAFETY: heed marks opening unsafe because the memory map must not be modified by
        // other means (truncation, a second open with other flags in this process). The
        // directory is private to the workspace and `open` opens each one once per process.
        let env = unsafe {
            heed::EnvOpenOptions::new()
                .map_size(initial_map)
                .max_dbs(4)
                .open(dir)
        }
        .map_err(|e| lmdb(e, &format!("opening {}", dir.display())))?;
        let wtxn = env.write_txn().map_err(|e| lmdb(e, "starting a write"))?;
        let db: arroy::Database<'static, Cosine> = env
            .create_databases_and_commit(wtxn, |dbo, wtxn| -> heed::Result<_> {
                dbo.create_database(wtxn, Some("arroy"))
                    .map(heed::CommitOrAbort::<_, ()>::Commit)
            })
            .map_err(|e| lmdb(e, "creating the index database"))?
            .unwrap_commit();
        Ok(VectorStore {
            env,
            db,
            gate: RwLock::new(()),
            max_map: Mutex::new(MAX_MAP),
            n_trees: std::sync::atomic::AtomicUsize::new(DEFAULT_TREES),
            dir: dir.to_path_buf(),
        })
    }

    /// Caps how far the map may grow (tests use a small cap to see the clear failure).
    pub fn set_max_map(&self, bytes: usize) {
        if let Ok(mut m) = self.max_map.lock() {
            *m = bytes;
        }
    }

    /// Sets the number of trees later builds aim for (`0`: arroy decides).
    pub fn set_n_trees(&self, n: usize) {
        self.n_trees.store(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn trees(&self) -> Option<usize> {
        match self.n_trees.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            n => Some(n),
        }
    }

    #[must_use]
    pub fn map_size(&self) -> usize {
        self.env.info().map_size
    }

    /// Bytes used on disk by the environment.
    pub fn disk_size(&self) -> Result<u64> {
        self.env
            .real_disk_size()
            .map_err(|e| lmdb(e, "reading the size"))
    }

    /// Runs `f` in a write transaction and commits, growing the map and retrying when full.
    fn write<T>(
        &self,
        what: &str,
        mut f: impl FnMut(&mut heed::RwTxn<'_>) -> std::result::Result<T, arroy::Error>,
    ) -> Result<T> {
        loop {
            let attempt = {
                let _shared = self.gate.read().map_err(|_| lmdb("poisoned", what))?;
                match self.env.write_txn() {
                    Ok(mut wtxn) => match f(&mut wtxn) {
                        Ok(v) => wtxn.commit().map(|()| v).map_err(arroy::Error::from),
                        Err(e) => Err(e),
                    },
                    Err(e) => Err(arroy::Error::from(e)),
                }
            };
            match attempt {
                Ok(v) => return Ok(v),
                Err(e) if is_map_full(&e) => self.grow(what)?,
                Err(arroy::Error::Heed(heed::Error::Mdb(heed::MdbError::MapResized))) => {
                    self.adopt_resize(what)?;
                }
                Err(e) => return Err(lmdb(e, what)),
            }
        }
    }

    /// Runs `f` in a read transaction (adopting a map grown by another process first).
    fn read<T>(
        &self,
        what: &str,
        f: impl FnOnce(&heed::RoTxn<'_, heed::WithTls>) -> Result<T>,
    ) -> Result<T> {
        loop {
            {
                let _shared = self.gate.read().map_err(|_| lmdb("poisoned", what))?;
                match self.env.read_txn() {
                    Ok(rtxn) => return f(&rtxn),
                    Err(heed::Error::Mdb(heed::MdbError::MapResized)) => {}
                    Err(e) => return Err(lmdb(e, what)),
                }
            }
            self.adopt_resize(what)?;
        }
    }

    /// Another process grew the map: adopt its size (LMDB's `set_mapsize(0)`).
    #[allow(unsafe_code)]
    fn adopt_resize(&self, what: &str) -> Result<()> {
        let _exclusive = self.gate.write().map_err(|_| lmdb("poisoned", what))?;
        // SAFETY: the exclusive gate guarantees no transaction of this process is live.
        unsafe { self.env.resize(0) }.map_err(|e| lmdb(e, "adopting a grown map"))
    }

    #[allow(unsafe_code)]
    fn grow(&self, what: &str) -> Result<()> {
        let _exclusive = self.gate.write().map_err(|_| lmdb("poisoned", what))?;
        let current = self.env.info().map_size;
        let max = self.max_map.lock().map_or(MAX_MAP, |m| *m);
        let next = page_align(current.saturating_mul(2)).min(page_align(max));
        if next <= current {
            return Err(Error::Other(format!(
                "vector index is full ({} MiB, the ceiling) while {what}; nothing was written — free disk space or raise the ceiling",
                current >> 20
            )));
        }
        // SAFETY: the exclusive gate guarantees no transaction of this process is live.
        unsafe { self.env.resize(next) }.map_err(|e| lmdb(e, "growing the map"))?;
        tracing::info!(from = current, to = next, "vector index map grown");
        Ok(())
    }

    /// Adds (or replaces) vectors in index `index` and rebuilds its trees incrementally.
    pub fn add(&self, index: u16, dims: usize, items: &[(u32, Vec<f32>)]) -> Result<()> {
        if let Some((id, v)) = items.iter().find(|(_, v)| v.len() != dims) {
            return Err(Error::invalid(
                "vector",
                format!("item {id} has {} dimensions, the index has {dims}", v.len()),
            ));
        }
        let db = self.db;
        let trees = self.trees();
        self.write("adding vectors", |wtxn| {
            let writer = Writer::<Cosine>::new(db, index, dims);
            for (id, v) in items {
                writer.add_item(wtxn, *id, v)?;
            }
            build(&writer, wtxn, index, trees)
        })
    }

    /// Removes vectors; returns how many existed.
    pub fn remove(&self, index: u16, dims: usize, ids: &[u32]) -> Result<usize> {
        let db = self.db;
        let trees = self.trees();
        self.write("removing vectors", |wtxn| {
            let writer = Writer::<Cosine>::new(db, index, dims);
            let mut n = 0;
            for id in ids {
                if writer.del_item(wtxn, *id)? {
                    n += 1;
                }
            }
            build(&writer, wtxn, index, trees)?;
            Ok(n)
        })
    }

    /// Deletes a whole index.
    pub fn clear(&self, index: u16, dims: usize) -> Result<()> {
        let db = self.db;
        self.write("clearing an index", |wtxn| {
            Writer::<Cosine>::new(db, index, dims).clear(wtxn)
        })
    }

    /// Copies every vector of `from` into `to` and builds `to` from scratch. Readers keep
    /// using `from` (their snapshot) meanwhile; the caller switches over afterwards.
    pub fn copy_rebuild(&self, from: u16, to: u16, dims: usize) -> Result<u64> {
        let db = self.db;
        let trees = self.trees();
        self.write("rebuilding an index", |wtxn| {
            let target = Writer::<Cosine>::new(db, to, dims);
            target.clear(wtxn)?;
            let vectors: Vec<(u32, Vec<f32>)> = {
                let source = Writer::<Cosine>::new(db, from, dims);
                let mut out = Vec::new();
                for item in source.iter(wtxn)? {
                    let (id, v) = item?;
                    out.push((id, v));
                }
                out
            };
            for (id, v) in &vectors {
                target.add_item(wtxn, *id, v)?;
            }
            build(&target, wtxn, to, trees)?;
            Ok(vectors.len() as u64)
        })
    }

    /// Brings `to` level with `from` (items added or removed since a copy), incrementally.
    pub fn catch_up(&self, from: u16, to: u16, dims: usize) -> Result<u64> {
        let db = self.db;
        let trees = self.trees();
        self.write("catching up an index", |wtxn| {
            let source = Writer::<Cosine>::new(db, from, dims);
            let target = Writer::<Cosine>::new(db, to, dims);
            let mut wanted = RoaringBitmap::new();
            let mut missing = Vec::new();
            for item in source.iter(wtxn)? {
                let (id, v) = item?;
                wanted.insert(id);
                if !target.contains_item(wtxn, id)? {
                    missing.push((id, v));
                }
            }
            let mut extra = Vec::new();
            for item in target.iter(wtxn)? {
                let (id, _) = item?;
                if !wanted.contains(id) {
                    extra.push(id);
                }
            }
            let changed = (missing.len() + extra.len()) as u64;
            for (id, v) in &missing {
                target.add_item(wtxn, *id, v)?;
            }
            for id in extra {
                target.del_item(wtxn, id)?;
            }
            if changed > 0 {
                build(&target, wtxn, to, trees)?;
            }
            Ok(changed)
        })
    }

    /// Item ids present in `index`.
    pub fn ids(&self, index: u16) -> Result<RoaringBitmap> {
        self.read("reading", |rtxn| {
            match Reader::<Cosine>::open(rtxn, index, self.db) {
                Ok(r) => Ok(r.item_ids().clone()),
                Err(arroy::Error::MissingMetadata(_)) => Ok(RoaringBitmap::new()),
                Err(e) => Err(lmdb(e, "opening the index")),
            }
        })
    }

    /// The stored vector of one item.
    pub fn vector(&self, index: u16, id: u32) -> Result<Option<Vec<f32>>> {
        self.read("reading", |rtxn| {
            match Reader::<Cosine>::open(rtxn, index, self.db) {
                Ok(r) => r
                    .item_vector(rtxn, id)
                    .map_err(|e| lmdb(e, "reading a vector")),
                Err(arroy::Error::MissingMetadata(_)) => Ok(None),
                Err(e) => Err(lmdb(e, "opening the index")),
            }
        })
    }

    /// The `k` nearest items to `query`, most similar first; ties broken by id so the same
    /// snapshot always answers in the same order. `candidates` restricts the search.
    pub fn search(
        &self,
        index: u16,
        query: &[f32],
        k: usize,
        search_k: Option<NonZeroUsize>,
        candidates: Option<&RoaringBitmap>,
    ) -> Result<Vec<Hit>> {
        if k == 0 {
            return Ok(Vec::new());
        }
        self.read("searching", |rtxn| {
            let reader = match Reader::<Cosine>::open(rtxn, index, self.db) {
                Ok(r) => r,
                Err(arroy::Error::MissingMetadata(_)) => return Ok(Vec::new()),
                Err(e) => return Err(lmdb(e, "opening the index")),
            };
            let mut q = reader.nns(k);
            if let Some(sk) = search_k {
                q.search_k(sk);
            }
            if let Some(c) = candidates {
                q.candidates(c);
            }
            let found = q.by_vector(rtxn, query).map_err(|e| lmdb(e, "searching"))?;
            let mut hits: Vec<Hit> = found
                .into_iter()
                .map(|(id, d)| Hit {
                    id,
                    // arroy's cosine distance is (1 - cos) / 2.
                    similarity: 1.0 - 2.0 * d,
                })
                .collect();
            sort_hits(&mut hits);
            Ok(hits)
        })
    }

    /// Number of trees in an index (0 when empty).
    pub fn n_trees(&self, index: u16) -> Result<usize> {
        self.read("reading", |rtxn| {
            match Reader::<Cosine>::open(rtxn, index, self.db) {
                Ok(r) => Ok(r.n_trees()),
                Err(arroy::Error::MissingMetadata(_)) => Ok(0),
                Err(e) => Err(lmdb(e, "opening the index")),
            }
        })
    }
}

/// Most similar first, then smaller id: the deterministic order everywhere in memory.
pub fn sort_hits(hits: &mut [Hit]) {
    hits.sort_by(|a, b| {
        b.similarity
            .total_cmp(&a.similarity)
            .then_with(|| a.id.cmp(&b.id))
    });
}

/// Builds with a generator seeded by the index, so the same operations give the same trees.
fn build(
    writer: &Writer<Cosine>,
    wtxn: &mut heed::RwTxn<'_>,
    index: u16,
    trees: Option<usize>,
) -> std::result::Result<(), arroy::Error> {
    let mut rng = StdRng::seed_from_u64(0x6b65_656c_0000 + u64::from(index));
    let mut builder = writer.builder(&mut rng);
    if let Some(n) = trees {
        builder.n_trees(n);
    }
    builder.build(wtxn)
}
