//! A stdio server as a child process. keel spawns it itself (instead of rmcp's wrapper) to
//! give it a clean environment, keep its stderr's last lines, and watch its stdout for lines
//! that are not UTF-8: rmcp skips a line it cannot parse, so without the watch a garbled
//! answer would look like a server that never answered.

use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncBufReadExt, AsyncRead, ReadBuf};
use tokio::process::{Child, ChildStdout, Command};

use super::McpError;
use super::config::{ServerConfig, resolve_vars};
use super::connect::StderrTail;

/// Variables a stdio child inherits from keel (everything else is named in `env`).
const INHERITED: &[&str] = &[
    "PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ",
];

/// Lines of a child's stdout that were not UTF-8, so far.
#[derive(Debug, Default, Clone)]
pub struct BadLines(Arc<AtomicU64>);

impl BadLines {
    #[must_use]
    pub fn count(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Passes the child's stdout through unchanged, counting lines that are not UTF-8.
pub struct Utf8Watch<R> {
    inner: R,
    /// An incomplete UTF-8 sequence at the end of the last read (at most 3 bytes).
    carry: Vec<u8>,
    bad: BadLines,
}

impl<R> Utf8Watch<R> {
    pub fn new(inner: R, bad: BadLines) -> Self {
        Utf8Watch {
            inner,
            carry: Vec::new(),
            bad,
        }
    }

    fn scan(&mut self, bytes: &[u8]) {
        for part in bytes.split_inclusive(|b| *b == b'\n') {
            let ends_line = part.last() == Some(&b'\n');
            let body = if ends_line {
                &part[..part.len() - 1]
            } else {
                part
            };
            let joined;
            let text = if self.carry.is_empty() {
                body
            } else {
                joined = [std::mem::take(&mut self.carry).as_slice(), body].concat();
                &joined
            };
            match std::str::from_utf8(text) {
                Ok(_) => {}
                // A sequence cut by the read: finish it with the next one.
                Err(e) if e.error_len().is_none() && !ends_line => {
                    self.carry = text[e.valid_up_to()..].to_vec();
                }
                Err(_) => {
                    self.bad.0.fetch_add(1, Ordering::Relaxed);
                }
            }
            if ends_line {
                self.carry.clear();
            }
        }
    }
}

impl<R: AsyncRead + Unpin> AsyncRead for Utf8Watch<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let fresh = buf.filled()[before..].to_vec();
            self.scan(&fresh);
        }
        polled
    }
}

/// A spawned child: its pipes for the MCP transport, and the child itself (killed when
/// dropped).
pub struct Spawned {
    pub child: Child,
    pub stdout: Utf8Watch<ChildStdout>,
    pub stdin: tokio::process::ChildStdin,
    pub bad_lines: BadLines,
}

/// Spawns `cfg`'s command with a clean environment; stderr lines go to the log and `tail`.
pub fn spawn(
    name: &str,
    cfg: &ServerConfig,
    root: &std::path::Path,
    tail: &StderrTail,
) -> Result<Spawned, McpError> {
    let start_err = |message: String| McpError::Start {
        server: name.to_string(),
        message,
    };
    let program = cfg.command.clone().unwrap_or_default();
    let mut cmd = Command::new(&program);
    cmd.args(&cfg.args)
        .env_clear()
        .kill_on_drop(true)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in INHERITED {
        if let Ok(v) = std::env::var(var) {
            cmd.env(var, v);
        }
    }
    cmd.envs(resolve_vars(name, "env", &cfg.env)?);
    if let Some(dir) = cfg.cwd_in(root) {
        if !dir.is_dir() {
            return Err(start_err(format!(
                "its cwd {} is not a directory",
                dir.display()
            )));
        }
        cmd.current_dir(dir);
    }
    let mut child = cmd.spawn().map_err(|e| {
        start_err(if e.kind() == std::io::ErrorKind::NotFound {
            format!("the command {program:?} was not found (is the server installed, and on PATH?)")
        } else {
            format!("cannot run {program:?}: {e}")
        })
    })?;
    let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
        return Err(start_err("its stdin or stdout could not be piped".into()));
    };
    if let Some(stderr) = child.stderr.take() {
        let (tail, server) = (tail.clone(), name.to_string());
        tokio::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(target: "keel::mcp", server = %server, "stderr: {line}");
                tail.push(&line);
            }
        });
    }
    let bad_lines = BadLines::default();
    Ok(Spawned {
        child,
        stdout: Utf8Watch::new(stdout, bad_lines.clone()),
        stdin,
        bad_lines,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bad_lines_across_reads() {
        let bad = BadLines::default();
        let mut w = Utf8Watch::new(tokio::io::empty(), bad.clone());
        let snowman = "☃".as_bytes();
        w.scan(&[b"{\"a\":\"".as_slice(), &snowman[..1]].concat());
        w.scan(&[&snowman[1..], b"\"}\n".as_slice()].concat());
        assert_eq!(bad.count(), 0, "a sequence split between reads is fine");
        w.scan(b"{\"a\":\"\xff\xfe\"}\n");
        assert_eq!(bad.count(), 1);
        w.scan(b"ok\n");
        assert_eq!(bad.count(), 1);
    }
}
