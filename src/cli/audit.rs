//! `keel audit show|verify|export`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

use crate::core::audit::{self, Filter};
use crate::core::clock;
use crate::core::workspace::Workspace;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List entries, newest first.
    Show {
        #[command(flatten)]
        filter: FilterArgs,
        /// How many entries to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Recompute the hash chain and name the first broken entry.
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Write matching entries as JSONL (to a file or stdout), oldest first.
    Export {
        #[command(flatten)]
        filter: FilterArgs,
        /// Output file (default: stdout).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct FilterArgs {
    /// Actor: operator, agent:RUN, system:NAME (a trailing * matches a prefix).
    #[arg(long)]
    actor: Option<String>,
    /// Action, e.g. object.put (a trailing * matches a prefix).
    #[arg(long)]
    action: Option<String>,
    /// Subject, e.g. draft/welcome (a trailing * matches a prefix).
    #[arg(long)]
    subject: Option<String>,
    /// Only entries at or after this time (RFC 3339, e.g. 2026-11-01T00:00:00Z).
    #[arg(long)]
    since: Option<String>,
    /// Only entries before this time (RFC 3339).
    #[arg(long)]
    until: Option<String>,
}

impl FilterArgs {
    fn to_filter(&self) -> anyhow::Result<Filter> {
        Ok(Filter {
            actor: self.actor.clone(),
            action: self.action.clone(),
            subject: self.subject.clone(),
            since_ms: parse_time(self.since.as_deref())?,
            until_ms: parse_time(self.until.as_deref())?,
            ..Filter::default()
        })
    }
}

fn parse_time(text: Option<&str>) -> anyhow::Result<Option<i64>> {
    text.map(|t| {
        t.parse::<jiff::Timestamp>()
            .map(jiff::Timestamp::as_millisecond)
            .map_err(|e| anyhow::anyhow!("invalid time {t:?}: {e} (use RFC 3339, e.g. 2026-11-01T00:00:00Z)"))
    })
    .transpose()
}

pub fn run(ws: &Workspace, cmd: &AuditCommand) -> anyhow::Result<ExitCode> {
    let store = ws.store()?;
    match cmd {
        AuditCommand::Show { filter, limit, json } => {
            let entries = audit::query(store.conn(), &filter.to_filter()?, *limit, true)?;
            for e in &entries {
                if *json {
                    super::say_json(e)?;
                } else {
                    super::say(&format!(
                        "{:>6}  {}  {:<24} {:<20} {}",
                        e.seq,
                        clock::rfc3339(e.ts_ms),
                        e.actor,
                        e.action,
                        e.subject
                    ));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify { json } => {
            let v = audit::verify(store.conn())?;
            if *json {
                super::say_json(&v)?;
            } else if let Some(b) = &v.first_broken {
                super::say(&format!("BROKEN at entry {}: {}", b.seq, b.reason));
            } else {
                super::say(&format!("ok: {} entries, chain intact", v.entries));
            }
            Ok(if v.first_broken.is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        AuditCommand::Export { filter, output } => {
            let filter = filter.to_filter()?;
            let n = match output {
                Some(path) => {
                    let mut file = std::io::BufWriter::new(
                        crate::core::workspace::open_private(path)?,
                    );
                    let n = audit::export_jsonl(store.conn(), &filter, &mut file)?;
                    std::io::Write::flush(&mut file)?;
                    eprintln!("exported {n} entries to {}", path.display());
                    n
                }
                None => audit::export_jsonl(store.conn(), &filter, &mut std::io::stdout().lock())?,
            };
            let _ = n;
            Ok(ExitCode::SUCCESS)
        }
    }
}
