//! `keel bench <suite> --json`: benchmarks that print one JSON object per line,
//! `{"suite":..,"metric":..,"value":..,"unit":..}`. Timings never go into pass/fail tests.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    pub suite: &'static str,
    pub metric: String,
    pub value: f64,
    pub unit: &'static str,
}

/// Prints a measurement as one JSON line (or a readable line without `--json`).
pub fn emit(m: &Measurement, json: bool) {
    let mut out = std::io::stdout().lock();
    let _ = if json {
        serde_json::to_writer(&mut out, m).map_err(std::io::Error::from)
    } else {
        use std::io::Write;
        write!(
            out,
            "{:<10} {:<48} {:>14.3} {}",
            m.suite, m.metric, m.value, m.unit
        )
    };
    let _ = std::io::Write::write_all(&mut out, b"\n");
}

pub mod agents;
pub mod agents_real;
pub mod llama_server;
pub mod loopback;
pub mod mcp;
pub mod memory;
pub mod orchestrator;
pub mod scratch;
pub mod store;
pub mod torture;
pub mod torture_memory;
mod torture_report;
pub mod tui;
