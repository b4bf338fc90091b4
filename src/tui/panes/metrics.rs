//! Metrics: spend today against the budget and the value ledger per workflow and agent.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::widgets::{Gauge, Row};

use super::pane::Pane;
use super::source::Source;
use super::{Ctx, subject_kind, table};
use crate::protocol::{Metrics, Op, Query};
use crate::tui::format;
use crate::tui::keymap::Action;
use crate::tui::message::{Message, Target};
use crate::tui::paged;
use crate::tui::theme::Role;

#[derive(Debug, Default)]
pub struct MetricsPane {
    pub data: Option<Metrics>,
    pub error: Option<String>,
    pub selected: usize,
}

impl Source for MetricsPane {
    type Answer = Metrics;

    fn query(&mut self) -> Option<Op> {
        Some(Op::Query {
            query: Query::Metrics,
        })
    }

    fn fill(&mut self, metrics: Metrics) {
        self.data = Some(metrics);
        self.error = None;
    }

    fn fail(&mut self, message: String) {
        self.error = Some(message);
    }
}

impl Pane for MetricsPane {
    /// Runs spend: the status bar's spend follows them.
    fn on_changed(&mut self, subject: &str, _action: &str) -> Vec<Target> {
        match subject_kind(subject) {
            "run" | "metrics" | "cost" => vec![Target::Metrics],
            _ => Vec::new(),
        }
    }

    fn shows(&self) -> Vec<Target> {
        vec![Target::Metrics]
    }

    fn on_show(&self) -> Option<Target> {
        Some(Target::Metrics)
    }

    /// Moves the highlighted ledger row.
    fn on_action(&mut self, action: Action, page: usize) -> Option<Message> {
        let last = self
            .data
            .as_ref()
            .map_or(0, |m| m.rows.len().saturating_sub(1));
        self.selected = match action {
            Action::Up => self.selected.saturating_sub(1),
            Action::Down => (self.selected + 1).min(last),
            Action::PageUp => self.selected.saturating_sub(page),
            Action::PageDown => (self.selected + page).min(last),
            Action::Top => 0,
            Action::Bottom => last,
            _ => return None,
        };
        Some(Message::Redraw)
    }

    fn render(&self, frame: &mut Frame, area: Rect, _focused: bool, ctx: &Ctx<'_>) {
        let theme = ctx.theme;
        let block = paged::block("Metrics: cost and value".into(), true, theme);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let Some(m) = &self.data else {
            let (text, role) = match &self.error {
                Some(e) => (e.as_str(), Role::Warning),
                None => ("loading…", Role::Muted),
            };
            super::notice(frame, inner, text, role, theme);
            return;
        };
        let [gauge_area, table_area] =
            Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(inner);
        let ratio = if m.budget_today_usd > 0.0 {
            (m.spend_today_usd / m.budget_today_usd).clamp(0.0, 1.0)
        } else {
            0.0
        };
        let role = if ratio >= 0.9 {
            Role::Error
        } else if ratio >= 0.7 {
            Role::Warning
        } else {
            Role::Success
        };
        frame.render_widget(
            Gauge::default()
                .ratio(ratio)
                .gauge_style(theme.style(role))
                .label(format!(
                    "spend today {} of {} budget",
                    format::money(m.spend_today_usd),
                    format::money(m.budget_today_usd)
                )),
            gauge_area,
        );
        let height = usize::from(table_area.height.saturating_sub(1));
        let top = paged::top_row(self.selected, height);
        let rows: Vec<Row<'static>> = m
            .rows
            .iter()
            .enumerate()
            .skip(top)
            .take(height)
            .map(|(i, r)| {
                table::row(
                    vec![
                        r.scope.clone(),
                        r.name.clone(),
                        r.tasks_done.to_string(),
                        format!("{:.0}", r.minutes_saved),
                        format::money(r.model_spend_usd),
                        format::money(r.revenue_usd),
                        format::rate(r.approval_rate, r.approvals_decided),
                        format::rate(r.failure_rate, r.tasks_finished),
                        format::rate(r.escalation_rate, r.tasks_finished),
                    ],
                    i == self.selected,
                    theme,
                )
            })
            .collect();
        let grid = table::with_header(
            rows,
            [
                Constraint::Length(8),
                Constraint::Fill(1),
                Constraint::Length(6),
                Constraint::Length(8),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(8),
                Constraint::Length(6),
                Constraint::Length(6),
            ],
            &[
                "scope",
                "name",
                "done",
                "min saved",
                "spend",
                "revenue",
                "approved",
                "failed",
                "escal.",
            ],
            theme,
        )
        .style(theme.style(Role::Text));
        frame.render_widget(grid, table_area);
    }
}
