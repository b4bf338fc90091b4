//! The embedder: fastembed on its own thread, loaded lazily in the background.
//!
//! `TextEmbedding::embed` is blocking CPU work on `&mut self`, so one thread owns the model
//! and serves jobs from a channel; jobs that queue up while it works are merged into one
//! batch. On a machine with two or more cores it holds two single-threaded sessions and
//! splits a large batch between them: measured on 2 cores, two sessions embed about 20% more
//! texts per second than one session with two threads (less synchronisation per layer). The model state (missing / loading / ready / failed) is observable, so the console
//! can start and show progress before the model is ready.

use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use serde::{Deserialize, Serialize};

use crate::core::error::{Error, Result};
use crate::core::model_assets::{
    Assets, EMBEDDING_DIMENSIONS, EMBEDDING_MODEL_NAME, FETCH_COMMAND, ORT_LIBRARY,
};

/// Longest input in tokens; longer texts are chunked before they get here.
pub const MAX_TOKENS: usize = 256;
/// Texts per model call.
pub const BATCH: usize = 64;
/// Below this many texts a job runs on one session (splitting would only add overhead).
const SPLIT_FROM: usize = 16;

/// The identity of an embedding model: stored with every vector.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct EmbeddingVersion {
    pub name: String,
    pub sha256: String,
    pub dims: usize,
}

impl EmbeddingVersion {
    /// `name@<first 12 hex of sha256>/dims`.
    #[must_use]
    pub fn id(&self) -> String {
        let short = self.sha256.get(..12).unwrap_or(&self.sha256);
        format!("{}@{short}/{}", self.name, self.dims)
    }

    /// The bundled all-MiniLM-L6-v2 (int8) model.
    #[must_use]
    pub fn builtin() -> Self {
        EmbeddingVersion {
            name: EMBEDDING_MODEL_NAME.to_string(),
            sha256: Assets::model_sha256().to_string(),
            dims: EMBEDDING_DIMENSIONS,
        }
    }
}

/// Anything that turns texts into unit vectors of one version.
pub trait Embed: Send + Sync {
    fn version(&self) -> EmbeddingVersion;
    /// One vector per text, in order, L2-normalised. Blocks until the model is ready.
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>>;
}

/// Where the model load stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "lowercase")]
pub enum ModelState {
    /// Nothing has asked for the model yet (the CLI loads it only when it embeds).
    Idle,
    Missing(String),
    Loading,
    Ready,
    Failed(String),
}

impl ModelState {
    /// The label used in `Health.embedding_model` and `Event::ModelState`.
    #[must_use]
    pub fn label(&self) -> String {
        match self {
            ModelState::Idle => "not loaded".into(),
            ModelState::Missing(why) => format!("missing: {why}"),
            ModelState::Loading => "loading".into(),
            ModelState::Ready => "ready".into(),
            ModelState::Failed(why) => format!("failed: {why}"),
        }
    }
}

type Listener = Box<dyn Fn(&ModelState) + Send + Sync>;

struct Shared {
    state: Mutex<ModelState>,
    changed: Condvar,
    listeners: Mutex<Vec<Listener>>,
}

impl Shared {
    fn set(&self, state: &ModelState) {
        if let Ok(mut s) = self.state.lock() {
            s.clone_from(state);
        }
        // Listeners first, so whoever wakes from `wait_ready` sees the events already sent.
        if let Ok(listeners) = self.listeners.lock() {
            for l in listeners.iter() {
                l(state);
            }
        }
        self.changed.notify_all();
    }
}

struct Job {
    texts: Vec<String>,
    reply: mpsc::Sender<Result<Vec<Vec<f32>>>>,
}

/// A handle to the embedding thread. Cheap to clone.
#[derive(Clone)]
pub struct Embedder {
    jobs: mpsc::Sender<Job>,
    shared: Arc<Shared>,
    version: EmbeddingVersion,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("version", &self.version.id())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl Embedder {
    /// Starts the embedding thread. The model loads in the background on [`Embedder::preload`]
    /// or on the first embedding request, whichever comes first.
    pub fn start(assets: Assets) -> Result<Self> {
        let shared = Arc::new(Shared {
            state: Mutex::new(ModelState::Idle),
            changed: Condvar::new(),
            listeners: Mutex::new(Vec::new()),
        });
        let (jobs, inbox) = mpsc::channel::<Job>();
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("keel-embed".into())
            .spawn(move || serve(&assets, &thread_shared, &inbox))
            .map_err(|e| Error::failed("cannot start the embedding thread", e))?;
        Ok(Embedder {
            jobs,
            shared,
            version: EmbeddingVersion::builtin(),
        })
    }

    /// One embedder per process: the ONNX Runtime environment is process-wide anyway.
    pub fn shared() -> Result<Self> {
        static SHARED: OnceLock<Embedder> = OnceLock::new();
        if let Some(e) = SHARED.get() {
            return Ok(e.clone());
        }
        let e = Self::start(Assets::locate())?;
        Ok(SHARED.get_or_init(|| e).clone())
    }

    #[must_use]
    pub fn state(&self) -> ModelState {
        self.shared.state.lock().map_or_else(
            |_| ModelState::Failed("state lock poisoned".into()),
            |s| s.clone(),
        )
    }

    /// Calls `listener` with the current state now and with every later change (e.g. to
    /// forward it as `Event::ModelState`).
    pub fn on_state(&self, listener: impl Fn(&ModelState) + Send + Sync + 'static) {
        listener(&self.state());
        if let Ok(mut l) = self.shared.listeners.lock() {
            l.push(Box::new(listener));
        }
    }

    /// Starts loading the model in the background now (the console does this at startup).
    pub fn preload(&self) {
        let (reply, _) = mpsc::channel();
        let _ = self.jobs.send(Job {
            texts: Vec::new(),
            reply,
        });
    }

    /// Blocks until the model is ready, or returns why it cannot be.
    pub fn wait_ready(&self) -> Result<()> {
        self.preload();
        let mut state = self
            .shared
            .state
            .lock()
            .map_err(|_| Error::Other("embedder state lock poisoned".into()))?;
        loop {
            match &*state {
                ModelState::Ready => return Ok(()),
                ModelState::Missing(why) | ModelState::Failed(why) => {
                    return Err(Error::Other(why.clone()));
                }
                ModelState::Loading | ModelState::Idle => {
                    state = self
                        .shared
                        .changed
                        .wait(state)
                        .map_err(|_| Error::Other("embedder state lock poisoned".into()))?;
                }
            }
        }
    }
}

impl Embed for Embedder {
    fn version(&self) -> EmbeddingVersion {
        self.version.clone()
    }

    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.wait_ready()?;
        let (reply, answer) = mpsc::channel();
        self.jobs
            .send(Job {
                texts: texts.to_vec(),
                reply,
            })
            .map_err(|_| Error::Other("the embedding thread has stopped".into()))?;
        answer
            .recv()
            .map_err(|_| Error::Other("the embedding thread stopped before answering".into()))?
    }
}

fn serve(assets: &Assets, shared: &Shared, inbox: &mpsc::Receiver<Job>) {
    // Wait for the first request (a preload or real work) before loading.
    let Ok(first) = inbox.recv() else { return };
    shared.set(&ModelState::Loading);
    let started = std::time::Instant::now();
    let mut model = match load_sessions(assets) {
        Ok(m) => {
            tracing::info!(ms = started.elapsed().as_millis(), "embedding model ready");
            shared.set(&ModelState::Ready);
            Some(m)
        }
        Err(LoadError::Missing(why)) => {
            tracing::warn!(%why, "embedding model missing");
            shared.set(&ModelState::Missing(why));
            None
        }
        Err(LoadError::Failed(why)) => {
            tracing::error!(%why, "embedding model failed to load");
            shared.set(&ModelState::Failed(why));
            None
        }
    };
    let mut pending = Some(first);
    loop {
        let first = match pending.take() {
            Some(job) => job,
            None => match inbox.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        // Merge whatever else is waiting into one batch run; preloads carry no texts.
        let mut jobs = vec![first];
        while let Ok(more) = inbox.try_recv() {
            jobs.push(more);
        }
        jobs.retain(|j| !j.texts.is_empty());
        if jobs.is_empty() {
            continue;
        }
        let Some(sessions) = model.as_mut() else {
            let why = shared
                .state
                .lock()
                .map_or_else(|_| "unavailable".into(), |s| s.label());
            for job in jobs {
                let _ = job.reply.send(Err(Error::Other(why.clone())));
            }
            continue;
        };
        let all: Vec<&str> = jobs
            .iter()
            .flat_map(|j| j.texts.iter().map(String::as_str))
            .collect();
        match embed_split(sessions, &all) {
            Ok(mut vectors) => {
                for job in jobs.into_iter().rev() {
                    let tail = vectors.split_off(vectors.len() - job.texts.len());
                    let _ = job.reply.send(Ok(tail));
                }
            }
            Err(e) => {
                let msg = format!("embedding failed: {e}");
                for job in jobs {
                    let _ = job.reply.send(Err(Error::Other(msg.clone())));
                }
            }
        }
    }
}

enum LoadError {
    Missing(String),
    Failed(String),
}

/// Embeds `texts` in order, on one session or split between two (each on its own thread).
fn embed_split(
    sessions: &mut [fastembed::TextEmbedding],
    texts: &[&str],
) -> std::result::Result<Vec<Vec<f32>>, String> {
    let run = |model: &mut fastembed::TextEmbedding, part: &[&str]| {
        model.embed(part, Some(BATCH)).map_err(|e| e.to_string())
    };
    match sessions {
        [first, second, ..] if texts.len() >= SPLIT_FROM => {
            let (a, b) = texts.split_at(texts.len().div_ceil(2));
            let (left, right) = std::thread::scope(|scope| {
                let other = scope.spawn(|| run(second, b));
                let left = run(first, a);
                (left, other.join())
            });
            let mut vectors = left?;
            vectors.extend(right.map_err(|_| "an embedding worker panicked".to_string())??);
            Ok(vectors)
        }
        [first, ..] => run(first, texts),
        [] => Err("no embedding session".into()),
    }
}

/// One session per core, up to two, each single-threaded (see the module note).
fn load_sessions(assets: &Assets) -> std::result::Result<Vec<fastembed::TextEmbedding>, LoadError> {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    // `KEEL_EMBED_SESSIONS=1`: one session using every core (for comparison benchmarks).
    let one = std::env::var("KEEL_EMBED_SESSIONS").is_ok_and(|v| v.trim() == "1");
    if cores < 2 || one {
        return Ok(vec![load(assets, None)?]);
    }
    // Loaded side by side: the second session costs memory, not start-up time.
    let (first, second) = std::thread::scope(|scope| {
        let other = scope.spawn(|| load(assets, Some(1)));
        (load(assets, Some(1)), other.join())
    });
    let second = second.map_err(|_| LoadError::Failed("loading the model panicked".into()))?;
    Ok(vec![first?, second?])
}

fn load(
    assets: &Assets,
    threads: Option<usize>,
) -> std::result::Result<fastembed::TextEmbedding, LoadError> {
    assets
        .require()
        .map_err(|e| LoadError::Missing(e.to_string()))?;
    let environment = init_runtime(assets).map_err(LoadError::Failed)?;
    let dir = assets.model_dir();
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|e| {
            LoadError::Missing(format!("{}: {e}; run `{FETCH_COMMAND}`", path.display()))
        })
    };
    let onnx = read("model.onnx")?;
    let sha = crate::core::canonical::sha256_hex(&onnx);
    if sha != Assets::model_sha256() {
        return Err(LoadError::Failed(format!(
            "{} has sha256 {sha}, expected {}; run `{FETCH_COMMAND}` again",
            dir.join("model.onnx").display(),
            Assets::model_sha256()
        )));
    }
    let tokenizer = fastembed::TokenizerFiles {
        tokenizer_file: read("tokenizer.json")?,
        config_file: read("config.json")?,
        special_tokens_map_file: read("special_tokens_map.json")?,
        tokenizer_config_file: read("tokenizer_config.json")?,
    };
    let model = fastembed::UserDefinedEmbeddingModel::new(onnx, tokenizer)
        .with_pooling(fastembed::Pooling::Mean);
    let mut options = fastembed::InitOptionsUserDefined::new();
    if let Some(n) = threads {
        options = options.with_intra_threads(n);
    }
    let options = options
        .with_environment(environment)
        .with_max_length(MAX_TOKENS)
        // Idle ONNX Runtime threads spin by default; on a small shared machine that burns
        // the CPU the console and other work need (measured: +70% texts/s without it).
        .with_session_config("session.intra_op.allow_spinning", "0");
    fastembed::TextEmbedding::try_new_from_user_defined(model, options)
        .map_err(|e| LoadError::Failed(format!("cannot load the embedding model: {e}")))
}

/// Loads ONNX Runtime once per process. Its environment is process-wide and held weakly by
/// `ort`, so the static keeps it alive for every later session.
fn init_runtime(assets: &Assets) -> std::result::Result<ort::environment::Environment, String> {
    static RUNTIME: OnceLock<std::result::Result<ort::environment::Environment, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            let lib = assets.ort_library();
            let builder = ort::init_from(&lib).map_err(|e| {
                format!(
                    "cannot load ONNX Runtime from {} ({e}); run `{FETCH_COMMAND}` (keel needs {ORT_LIBRARY})",
                    lib.display()
                )
            })?;
            builder
                .with_name("keel")
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
        })
        .clone()
}

/// Cosine similarity of two vectors (they need not be normalised).
#[must_use]
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let (mut dot, mut na, mut nb) = (0.0f32, 0.0f32, 0.0f32);
    for (x, y) in a.iter().zip(b) {
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    dot / (na.sqrt() * nb.sqrt())
}
