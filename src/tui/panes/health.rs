//! Health: embedding model, providers, schedules, MCP servers, queue and audit size.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::pane::Pane;
use super::source::Source;
use super::{Ctx, subject_kind};
use crate::protocol::{Health, Op, ProviderHealth, Query};
use crate::tui::format;
use crate::tui::message::Target;
use crate::tui::paged;
use crate::tui::theme::Role;

#[derive(Debug, Default)]
pub struct HealthPane {
    pub data: Option<Health>,
    pub error: Option<String>,
}

impl Source for HealthPane {
    type Answer = Health;

    fn query(&mut self) -> Option<Op> {
        Some(Op::Query {
            query: Query::Health,
        })
    }

    fn fill(&mut self, health: Health) {
        self.data = Some(health);
        self.error = None;
    }

    fn fail(&mut self, message: String) {
        self.error = Some(message);
    }
}

impl Pane for HealthPane {
    /// The queue's state is known from the change itself; the reload confirms it.
    fn on_changed(&mut self, subject: &str, action: &str) -> Vec<Target> {
        if subject_kind(subject) != "queue" {
            return Vec::new();
        }
        if let Some(h) = &mut self.data {
            h.queue_paused = action.contains("pause");
        }
        vec![Target::Health]
    }

    fn shows(&self) -> Vec<Target> {
        vec![Target::Health]
    }

    fn on_show(&self) -> Option<Target> {
        Some(Target::Health)
    }

    fn render(&self, frame: &mut Frame, area: Rect, _focused: bool, ctx: &Ctx<'_>) {
        let theme = ctx.theme;
        let model_state = ctx.model_state;
        let block = paged::block("Health".into(), true, theme);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let label = |s: &str| Span::styled(format!("{s:<18}"), theme.style(Role::Muted));
        let mut lines = vec![Line::from(vec![
            label("embedding model"),
            Span::styled(
                model_state.to_string(),
                theme.style(model_role(model_state)),
            ),
        ])];
        match (&self.data, &self.error) {
            (Some(h), _) => {
                lines.push(Line::from(vec![
                    label("workspace"),
                    Span::raw(h.workspace.clone()),
                ]));
                lines.push(Line::from(vec![
                    label("schema version"),
                    Span::raw(h.schema_version.to_string()),
                ]));
                lines.push(Line::from(vec![
                    label("queue"),
                    Span::raw(if h.queue_paused { "paused" } else { "running" }),
                ]));
                lines.push(Line::from(vec![
                    label("audit entries"),
                    Span::raw(format::count(h.audit_entries.unsigned_abs())),
                ]));
                lines.push(Line::raw(""));
                lines.push(Line::styled("Providers", theme.style(Role::Header)));
                if h.providers.is_empty() {
                    lines.push(Line::styled("  none configured", theme.style(Role::Muted)));
                }
                for p in &h.providers {
                    lines.push(Line::from(vec![
                        Span::raw(format!("  {:<16} {:<18} ", p.name, p.kind)),
                        Span::styled(p.status.clone(), theme.style(status_role(&p.status))),
                    ]));
                    let width = usize::from(inner.width).saturating_sub(DETAIL_INDENT);
                    for detail in pack(&provider_detail(p), width) {
                        lines.push(Line::styled(
                            format!("{:DETAIL_INDENT$}{detail}", ""),
                            theme.style(Role::Muted),
                        ));
                    }
                }
                lines.push(Line::raw(""));
                lines.push(Line::styled("Schedules", theme.style(Role::Header)));
                if h.schedules.is_empty() {
                    lines.push(Line::styled("  none", theme.style(Role::Muted)));
                }
                for s in &h.schedules {
                    let next = s.next_ms.map_or_else(|| "—".into(), format::time);
                    let last = s.last_ms.map_or_else(|| "never".into(), format::time);
                    lines.push(Line::raw(format!(
                        "  {:<16} {:<16} next {next}  last {last}",
                        s.name, s.cron
                    )));
                }
                // Shown only when configured: a workspace without MCP keeps its old screen.
                if !h.mcp_servers.is_empty() {
                    lines.push(Line::raw(""));
                    lines.push(Line::styled("MCP servers", theme.style(Role::Header)));
                }
                for m in &h.mcp_servers {
                    let role = match m.state.as_str() {
                        "ready" => Role::Success,
                        "crashed" | "failed" => Role::Warning,
                        _ => Role::Info,
                    };
                    lines.push(Line::from(vec![
                        Span::raw(format!("  {:<16} {:<6} ", m.name, m.transport)),
                        Span::styled(m.state.clone(), theme.style(role)),
                        Span::raw(format!("  {} tools, {} restarts", m.tools, m.restarts)),
                    ]));
                    if !m.detail.is_empty() {
                        lines.push(Line::styled(
                            format!("{:DETAIL_INDENT$}{}", "", m.detail),
                            theme.style(Role::Muted),
                        ));
                    }
                }
            }
            (None, Some(e)) => lines.push(Line::styled(e.clone(), theme.style(Role::Warning))),
            (None, None) => lines.push(Line::styled("loading…", theme.style(Role::Muted))),
        }
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    }
}

pub fn model_role(state: &str) -> Role {
    if state.starts_with("ready") {
        Role::Success
    } else if state.starts_with("loading") || state == "unknown" || state == "present" {
        Role::Info
    } else {
        Role::Warning
    }
}

fn status_role(status: &str) -> Role {
    if ["ok", "reachable", "local:"]
        .iter()
        .any(|p| status.starts_with(p))
    {
        Role::Success
    } else if status.starts_with("offline") || status.starts_with("configured") {
        Role::Info
    } else {
        Role::Warning
    }
}

/// Where a provider's detail lines start (under its kind column).
const DETAIL_INDENT: usize = 19;

/// What is known of a provider's server and its newest call: window, slots, server, output
/// mode and last latency, for whichever of them are known (none for offline).
pub fn provider_detail(p: &ProviderHealth) -> Vec<String> {
    let mut parts = Vec::new();
    if let Some(w) = &p.window {
        parts.push(format!(
            "window {} tokens ({})",
            format::count(u64::from(w.tokens)),
            w.source
        ));
    }
    if let Some(s) = &p.slots {
        parts.push(match s.max_concurrent {
            Some(1) => "1 slot".to_string(),
            Some(n) => format!("{n} slots"),
            None => "slots unlimited".to_string(),
        });
    }
    if let Some(server) = &p.server {
        parts.push(server.clone());
    }
    if let Some(mode) = &p.output_mode {
        parts.push(format!("output {mode}"));
    }
    if let Some(ms) = p.last_latency_ms {
        let first = p
            .last_first_token_ms
            .map(|f| format!(" (first token {} ms)", format::count(f)))
            .unwrap_or_default();
        parts.push(format!("last call {} ms{first}", format::count(ms)));
    }
    parts
}

/// Joins parts with ` · ` into lines of at most `width` characters (a part longer than
/// that gets a line of its own).
fn pack(parts: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for part in parts {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 3 + part.chars().count() <= width => {
                line.push_str(" · ");
                line.push_str(part);
            }
            _ => lines.push(part.clone()),
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_pack_into_the_width_and_offline_has_none() {
        let parts: Vec<String> = ["aaaa", "bb", "cccccc"].map(String::from).to_vec();
        assert_eq!(pack(&parts, 9), vec!["aaaa · bb", "cccccc"]);
        assert!(provider_detail(&ProviderHealth::default()).is_empty());
        let slots = ProviderHealth {
            slots: Some(crate::protocol::SlotsHealth {
                max_concurrent: None,
                source: "hosted: unlimited".into(),
            }),
            ..ProviderHealth::default()
        };
        assert_eq!(provider_detail(&slots), vec!["slots unlimited"]);
    }
}
