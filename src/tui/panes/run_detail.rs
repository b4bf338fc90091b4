//! One run in full: inputs, steps (model calls with tokens and cost, tool calls), rationale,
//! memory used; retry, cancel, replay.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

use super::pane::Pane;
use super::runs::{RUN_ACTIONS, run_action};
use super::source::Source;
use super::{Ctx, subject_kind, table};
use crate::protocol::{Op, Query, RunDetail};
use crate::tui::format;
use crate::tui::keymap::{Action, Context};
use crate::tui::message::{Message, Target};
use crate::tui::paged;
use crate::tui::theme::Role;

#[derive(Debug, Default)]
pub struct RunDetailPane {
    pub id: Option<String>,
    pub detail: Option<RunDetail>,
    pub error: Option<String>,
    pub loading: bool,
    pub step: usize,
}

impl Source for RunDetailPane {
    type Answer = RunDetail;

    fn query(&mut self) -> Option<Op> {
        let id = self.id.clone()?;
        self.loading = true;
        Some(Op::Query {
            query: Query::RunDetail { id },
        })
    }

    /// Keeps the selected step when the run grew.
    fn fill(&mut self, d: RunDetail) {
        self.loading = false;
        self.error = None;
        self.step = self.step.min(d.steps.len().saturating_sub(1));
        self.detail = Some(d);
    }

    fn fail(&mut self, message: String) {
        self.loading = false;
        self.error = Some(message);
    }
}

impl Pane for RunDetailPane {
    fn context(&self) -> Option<Context> {
        Some(Context::Runs)
    }

    /// Only the open run's own changes.
    fn on_changed(&mut self, subject: &str, _action: &str) -> Vec<Target> {
        if subject_kind(subject) == "run" && self.id.as_deref() == subject.strip_prefix("run/") {
            vec![Target::RunDetail]
        } else {
            Vec::new()
        }
    }

    fn shows(&self) -> Vec<Target> {
        vec![Target::RunDetail]
    }

    fn actions(&self) -> &'static [(Action, &'static str)] {
        RUN_ACTIONS
    }

    fn on_action(&mut self, action: Action, page: usize) -> Option<Message> {
        let d = self.detail.as_ref()?;
        let last = d.steps.len().saturating_sub(1);
        match action {
            Action::Up => self.step = self.step.saturating_sub(1),
            Action::Down => self.step = (self.step + 1).min(last),
            Action::PageUp => self.step = self.step.saturating_sub(page),
            Action::PageDown => self.step = (self.step + page).min(last),
            Action::Top => self.step = 0,
            Action::Bottom => self.step = last,
            Action::RetryRun | Action::CancelRun | Action::ReplayRun => {
                return run_action(&d.run, action);
            }
            _ => return None,
        }
        Some(Message::Redraw)
    }

    fn render(&self, frame: &mut Frame, area: Rect, _focused: bool, ctx: &Ctx<'_>) {
        let theme = ctx.theme;
        let title = self
            .id
            .as_ref()
            .map_or_else(|| "Run".into(), |id| format!("Run {id}"));
        let block = paged::block(title, true, theme);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let Some(d) = &self.detail else {
            let (text, role) = match (&self.error, &self.id) {
                (Some(e), _) => (e.clone(), Role::Warning),
                (None, None) => (
                    "Open a run from the runs pane (enter) to see it here.".into(),
                    Role::Muted,
                ),
                (None, Some(_)) => ("loading…".into(), Role::Muted),
            };
            super::notice(frame, inner, &text, role, theme);
            return;
        };
        let r = &d.run;
        let [head, list_area, step_area, mem_area] = Layout::vertical([
            Constraint::Length(4),
            Constraint::Fill(2),
            Constraint::Fill(2),
            Constraint::Length(if inner.height > 20 { 5 } else { 0 }),
        ])
        .areas(inner);
        let muted = theme.style(Role::Muted);
        let mut lines = vec![
            Line::from(vec![
                Span::styled("status ", muted),
                Span::raw(format!(
                    "{} · role {} · template {} ({}) · provider {}",
                    r.status,
                    r.role,
                    d.template,
                    format::clip(&d.template_hash, 12),
                    r.provider
                )),
            ]),
            Line::from(vec![
                Span::styled("usage  ", muted),
                Span::raw(format!(
                    "{} steps · tokens {} in / {} out · cost {} · started {} UTC",
                    d.steps.len(),
                    r.tokens_in,
                    r.tokens_out,
                    format::money(r.cost_usd),
                    format::time(r.started_ms)
                )),
            ]),
            Line::from(vec![
                Span::styled("input  ", muted),
                Span::raw(format::json_line(&d.input)),
            ]),
        ];
        if let Some(e) = &d.error {
            lines.push(Line::styled(
                format!("error  {e}"),
                theme.style(Role::Error),
            ));
        }
        frame.render_widget(Paragraph::new(lines), head);
        self.render_steps(frame, d, list_area, step_area, ctx);
        if mem_area.height > 0 {
            render_memory(frame, d, mem_area, ctx);
        }
    }
}

impl RunDetailPane {
    fn render_steps(
        &self,
        frame: &mut Frame,
        d: &RunDetail,
        list_area: Rect,
        step_area: Rect,
        ctx: &Ctx<'_>,
    ) {
        let theme = ctx.theme;
        let muted = theme.style(Role::Muted);
        let height = usize::from(list_area.height.saturating_sub(1));
        let top = paged::top_row(self.step, height);
        let rows: Vec<Row<'static>> = d
            .steps
            .iter()
            .enumerate()
            .skip(top)
            .take(height)
            .map(|(i, s)| {
                table::row(
                    vec![
                        Cell::from(s.index.to_string()),
                        Cell::from(s.kind.clone()),
                        Cell::from(s.name.clone()),
                        Cell::from(format!("{}/{}", s.tokens_in, s.tokens_out)),
                        Cell::from(format::money(s.cost_usd)),
                        Cell::from(format!("{}ms", s.latency_ms)),
                        Cell::from(format::one_line(&s.rationale)),
                    ],
                    i == self.step,
                    theme,
                )
            })
            .collect();
        frame.render_widget(
            table::with_header(
                rows,
                [
                    Constraint::Length(3),
                    Constraint::Length(10),
                    Constraint::Length(16),
                    Constraint::Length(11),
                    Constraint::Length(8),
                    Constraint::Length(7),
                    Constraint::Fill(1),
                ],
                &["#", "kind", "name", "tokens", "cost", "time", "rationale"],
                theme,
            ),
            list_area,
        );
        let block = paged::block("Step".into(), false, theme);
        let step_inner = block.inner(step_area);
        frame.render_widget(block, step_area);
        if let Some(s) = d.steps.get(self.step) {
            let lines = vec![
                Line::from(vec![
                    Span::styled("why    ", muted),
                    Span::raw(s.rationale.clone()),
                ]),
                Line::from(vec![
                    Span::styled("input  ", muted),
                    Span::raw(format::json_line(&s.input)),
                ]),
                Line::from(vec![
                    Span::styled("output ", muted),
                    Span::raw(format::json_line(&s.output)),
                ]),
            ];
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), step_inner);
        }
    }
}

fn render_memory(frame: &mut Frame, d: &RunDetail, mem_area: Rect, ctx: &Ctx<'_>) {
    let theme = ctx.theme;
    let mut lines = vec![Line::styled(
        format!("memory used ({})", d.memory.len()),
        theme.style(Role::Header),
    )];
    lines.extend(
        d.memory
            .iter()
            .take(usize::from(mem_area.height) - 1)
            .map(|m| {
                Line::raw(format!(
                    "  #{} {} v{} score {:.2} {} — {}",
                    m.rank,
                    m.item,
                    m.version,
                    m.score,
                    m.kind,
                    format::one_line(&m.preview)
                ))
            }),
    );
    frame.render_widget(Paragraph::new(lines), mem_area);
}
