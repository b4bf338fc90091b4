//! Health: embedding model, providers, schedules, queue and audit size.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use super::Ctx;
use crate::protocol::Health;
use crate::tui::format;
use crate::tui::paged;
use crate::tui::theme::Role;

#[derive(Debug, Default)]
pub struct HealthPane {
    pub data: Option<Health>,
    pub error: Option<String>,
}

impl HealthPane {
    pub fn render(&self, frame: &mut Frame, area: Rect, model_state: &str, ctx: &Ctx<'_>) {
        let theme = ctx.theme;
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
                    let role = if p.status == "ok" || p.status == "reachable" {
                        Role::Success
                    } else if p.status == "offline" {
                        Role::Info
                    } else {
                        Role::Warning
                    };
                    lines.push(Line::from(vec![
                        Span::raw(format!("  {:<16} {:<18} ", p.name, p.kind)),
                        Span::styled(p.status.clone(), theme.style(role)),
                    ]));
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
