//! `keel models connect [URL]`: find a model server, write its `[providers.NAME]` section
//! and `[routing]` tiers into the workspace's `config.toml` (comments kept), then make one
//! schema-constrained test call through the real provider code.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use crate::core::config_edit::{self, ProviderEdit};
use crate::core::llm::config::{Providers, Tier};
use crate::core::llm::connect::{self, Auth, Found, TestCall};
use crate::core::llm::discovery::{self, Limits};
use crate::core::llm::{ProviderConfig, ProviderKind, Registry, RoutingConfig};
use crate::core::workspace::{CONFIG_FILE, Workspace, write_private_file};

#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The server's base URL, `http://HOST:PORT` or `…/v1` (default: the first of Ollama
    /// 11434, llama.cpp 8080, LM Studio 1234, vLLM 8000 that answers on 127.0.0.1).
    pub url: Option<String>,
    /// The provider's name in config.toml (default: `local` for a local server, else from
    /// the host, e.g. `openai`).
    #[arg(long)]
    pub name: Option<String>,
    /// The model to use (default: the first chat model the server lists).
    #[arg(long)]
    pub model: Option<String>,
    /// The environment variable holding the API key (needed for a hosted API; the key is
    /// only read to make the calls, never printed or written).
    #[arg(long, value_name = "VAR")]
    pub key_env: Option<String>,
    /// The protocol (default: anthropic for api.anthropic.com, ollama for an Ollama
    /// server, else openai, which any OpenAI-compatible server speaks).
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// The tiers to route to it, comma-separated (tiers not named keep their provider).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "draft,final")]
    pub tiers: Vec<TierArg>,
    /// Print the change to config.toml without writing it or calling the model.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Openai,
    Anthropic,
    Ollama,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TierArg {
    Triage,
    Draft,
    Final,
}

impl From<TierArg> for Tier {
    fn from(t: TierArg) -> Tier {
        match t {
            TierArg::Triage => Tier::Triage,
            TierArg::Draft => Tier::Draft,
            TierArg::Final => Tier::Final,
        }
    }
}

pub fn run(root: &Path, args: &ConnectArgs) -> anyhow::Result<ExitCode> {
    let ws = Workspace::open(root)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(connect_and_report(&ws, args))
}

/// What was found and decided before anything is written.
struct Plan {
    name: String,
    found: Found,
    provider: ProviderConfig,
    limits: Limits,
    kept_settings: bool,
    tiers: Vec<Tier>,
}

async fn connect_and_report(ws: &Workspace, args: &ConnectArgs) -> anyhow::Result<ExitCode> {
    let path = ws.root.join(CONFIG_FILE);
    let plan = plan(ws, args).await?;
    let old_text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        // A workspace without its config runs on the defaults, which the template spells out.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            crate::core::config::TEMPLATE.to_string()
        }
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let notes = notes(&plan);
    let edited = config_edit::set_provider(
        &old_text,
        &path,
        &ProviderEdit {
            name: &plan.name,
            provider: &plan.provider,
            notes: &notes,
            tiers: &plan.tiers,
            routing_note: "keel models connect",
        },
    )?;
    let mut report = report_base(&plan, &path);
    if args.dry_run {
        let diff = similar::TextDiff::from_lines(&old_text, &edited.text)
            .unified_diff()
            .context_radius(2)
            .header("config.toml", "config.toml (after)")
            .to_string();
        report["written"] = json!(false);
        report["diff"] = json!(diff);
        print_report(&report, args.json, None)?;
        return Ok(ExitCode::SUCCESS);
    }
    let backup = path.with_file_name(format!("{CONFIG_FILE}.bak"));
    if path.exists() {
        write_private_file(&backup, old_text.as_bytes())?;
        report["backup"] = json!(backup);
    }
    write_private_file(&path, edited.text.as_bytes())?;
    report["written"] = json!(true);
    let single: Providers = edited
        .config
        .providers
        .get(&plan.name)
        .map(|p| (plan.name.clone(), p.clone()))
        .into_iter()
        .collect();
    let routing = RoutingConfig {
        triage: plan.name.clone(),
        draft: plan.name.clone(),
        final_: plan.name.clone(),
        cascade: false,
    };
    let tested = match Registry::from_config(&single, &routing).await {
        Ok(reg) => match reg.get(&plan.name) {
            Some(p) => connect::test_call(p.as_ref())
                .await
                .map_err(|e| e.to_string()),
            None => Err("the provider was not built".to_string()),
        },
        Err(e) => Err(e.to_string()),
    };
    match &tested {
        Ok(t) => report["test"] = json!(t),
        Err(e) => report["test_error"] = json!(e),
    }
    print_report(&report, args.json, Some(&tested))?;
    Ok(if tested.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

async fn plan(ws: &Workspace, args: &ConnectArgs) -> anyhow::Result<Plan> {
    let mut tiers: Vec<Tier> = args.tiers.iter().map(|t| Tier::from(*t)).collect();
    tiers.sort();
    tiers.dedup();
    let auth = match &args.key_env {
        Some(var) => match std::env::var(var) {
            Ok(k) if !k.trim().is_empty() => Some(Auth {
                var: var.clone(),
                key: k.trim().to_string(),
            }),
            _ => bail!(
                "the environment variable {var} (--key-env) is not set; export it first (keel reads the key from it at each call and never writes it down)"
            ),
        },
        None => None,
    };
    let found = match &args.url {
        Some(url) => {
            let kind = args.kind.map_or_else(|| connect::infer_kind(url), kind_of);
            if !discovery::is_local(url) && auth.is_none() {
                return Err(connect::ConnectError::NeedsKey { url: url.clone() }.into());
            }
            connect::probe_url(url, kind, auth.as_ref()).await?
        }
        None => connect::probe_local(&connect::LOCAL_SERVERS).await?,
    };
    let local = discovery::is_local(&found.base);
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| connect::default_name(&found.base, local));
    connect::check_name(&name).map_err(anyhow::Error::msg)?;
    let model = connect::pick_model(&found, args.model.as_deref())?;
    // Re-connecting keeps what the operator tuned (prices, timeouts, limits).
    let existing = ws.config.providers.get(&name).cloned();
    let kept_settings = existing.is_some();
    let mut provider = existing.unwrap_or_default();
    provider.kind = found.kind;
    provider.base_url.clone_from(&found.base);
    provider.model = model;
    provider.api_key_env = args.key_env.clone().unwrap_or_default();
    let mut limits = discovery::discover(&provider).await;
    // Ollama's own API takes the schema in `format` and keel's window in `num_ctx`; its
    // OpenAI-compatible one keeps Ollama's default window whatever keel fitted.
    if limits.server == "ollama" && args.kind.is_none() {
        provider.kind = ProviderKind::Ollama;
        provider.base_url = discovery::root_url(&found.base);
        limits = discovery::discover(&provider).await;
    }
    Ok(Plan {
        name,
        found,
        provider,
        limits,
        kept_settings,
        tiers,
    })
}

fn kind_of(k: KindArg) -> ProviderKind {
    match k {
        KindArg::Openai => ProviderKind::Openai,
        KindArg::Anthropic => ProviderKind::Anthropic,
        KindArg::Ollama => ProviderKind::Ollama,
    }
}

fn slots_text(l: &Limits) -> String {
    match l.max_concurrent {
        Some(1) => "1 slot".into(),
        Some(n) => format!("{n} slots"),
        None => "unlimited calls at once".into(),
    }
}

/// The comments written at the top of the section: what was found, from where, and what
/// is left to discovery.
fn notes(plan: &Plan) -> Vec<String> {
    let l = &plan.limits;
    let p = &plan.provider;
    let day = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let mut notes = vec![
        format!(
            "Written by `keel models connect` on {day}: {} at {}.",
            l.server, p.base_url
        ),
        format!(
            "Found: window {} tokens ({}), {} ({}), {}.",
            l.context_tokens,
            l.context_source,
            slots_text(l),
            l.slots_source,
            if l.tokenizer {
                "tokens counted by the server's /tokenize"
            } else {
                "tokens estimated (no tokenizer endpoint)"
            }
        ),
    ];
    if p.context_tokens == 0 && p.max_concurrent == 0 {
        notes.push(
            "context_tokens and max_concurrent are unset, so keel asks the server again at each start; set them to pin the values.".into(),
        );
    }
    if !p.api_key_env.is_empty() {
        notes.push(format!(
            "The key is read from ${} at each call; it is never written here.",
            p.api_key_env
        ));
    }
    if !discovery::is_local(&plan.found.base)
        && p.price_in_per_mtok == 0.0
        && p.price_out_per_mtok == 0.0
    {
        notes.push(
            "Set price_in_per_mtok / price_out_per_mtok (USD per million tokens) so budgets count this provider's spend.".into(),
        );
    }
    notes
}

fn report_base(plan: &Plan, path: &Path) -> Value {
    let l = &plan.limits;
    json!({
        "name": plan.name,
        "kind": plan.provider.kind,
        "base_url": plan.provider.base_url,
        "server": l.server,
        "model": plan.provider.model,
        "models": plan.found.models,
        "window": {"tokens": l.context_tokens, "source": l.context_source},
        "slots": {"max_concurrent": l.max_concurrent, "source": l.slots_source},
        "tokenizer": l.tokenizer,
        "api_key_env": plan.provider.api_key_env,
        "tiers": plan.tiers.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
        "kept_settings": plan.kept_settings,
        "config": PathBuf::from(path),
        "written": false,
    })
}

fn print_report(
    report: &Value,
    as_json: bool,
    tested: Option<&Result<TestCall, String>>,
) -> anyhow::Result<()> {
    if as_json {
        return super::say_json(report);
    }
    let s = |k: &str| report[k].as_str().unwrap_or_default().to_string();
    let models = report["models"].as_array().map_or(0, Vec::len);
    let line = |label: &str, text: &str| super::say(&format!("{label:<10} {text}"));
    line(
        "found",
        &format!(
            "{} at {} ({models} model{})",
            s("server"),
            s("base_url"),
            if models == 1 { "" } else { "s" }
        ),
    );
    line("model", &s("model"));
    line(
        "window",
        &format!(
            "{} tokens ({})",
            report["window"]["tokens"],
            report["window"]["source"].as_str().unwrap_or_default()
        ),
    );
    let slots = report["slots"]["max_concurrent"]
        .as_u64()
        .map_or_else(|| "unlimited".to_string(), |n| n.to_string());
    line(
        "slots",
        &format!(
            "{slots} ({})",
            report["slots"]["source"].as_str().unwrap_or_default()
        ),
    );
    let tiers: Vec<&str> = report["tiers"]
        .as_array()
        .map(|t| t.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let what = format!(
        "[providers.{name}]{kept} and [routing] {} = \"{name}\"",
        tiers.join(", "),
        name = s("name"),
        kept = if report["kept_settings"] == true {
            " (your other settings kept)"
        } else {
            ""
        }
    );
    if report["written"] == true {
        let backup = report["backup"]
            .as_str()
            .map(|b| format!("; the previous file is {b}"))
            .unwrap_or_default();
        line("wrote", &format!("{what} in {}{backup}", s("config")));
    } else {
        super::say(&s("diff"));
        line(
            "dry run",
            &format!(
                "would write {what} in {}; nothing written, no test call made",
                s("config")
            ),
        );
    }
    match tested {
        Some(Ok(t)) => line("test call", &test_text(t)),
        Some(Err(e)) => line(
            "test call",
            &format!(
                "FAILED: {e}\n           the config was written; fix the server or run `keel models connect` again"
            ),
        ),
        None => {}
    }
    Ok(())
}

fn test_text(t: &TestCall) -> String {
    let mode = t.output_mode.map_or("none", |m| m.as_str());
    let first = t
        .first_token_ms
        .map(|f| format!(" (first token {f} ms)"))
        .unwrap_or_default();
    let answer = match &t.parsed {
        Some(v) => v.to_string(),
        None => format!(
            "{:?}",
            t.answer.trim().chars().take(120).collect::<String>()
        ),
    };
    let verdict = match (&t.parsed, t.matches_schema) {
        (Some(_), true) => "parsed and matches the schema",
        (Some(_), false) => {
            "parsed but does NOT match the schema (runs repair or escalate such answers)"
        }
        (None, _) => "is NOT JSON (runs repair or escalate such answers)",
    };
    format!(
        "ok in {} ms{first}, output mode {mode}, {} tokens out: {answer} {verdict}",
        t.latency_ms, t.usage.output
    )
}
