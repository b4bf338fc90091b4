//! The agent runs pane: live runs with their current step, cost so far and the output as
//! it streams (`Event::RunOutput`).

use std::collections::HashMap;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Wrap};

use super::pane::Pane;
use super::queue::short;
use super::source::Source;
use super::{Ctx, filter_tokens, nav_message, subject_kind};
use crate::protocol::{Op, Page, Query, RunRow};
use crate::tui::format;
use crate::tui::keymap::{Action, Context};
use crate::tui::message::{Message, Target};
use crate::tui::paged::{self, ListView, Paged, WINDOW};
use crate::tui::theme::Role;

/// Streamed output kept per run (the tail is what the pane shows).
const LIVE_KEEP: usize = 4_000;
/// Runs whose live output is kept.
const LIVE_RUNS: usize = 64;

#[derive(Debug, Default)]
pub struct RunsPane {
    pub list: Paged<RunRow>,
    /// Streamed output per run id.
    pub live: HashMap<String, String>,
}

impl Source for RunsPane {
    type Answer = Page<RunRow>;

    /// Filter: `task:ID` shows the runs of one task.
    fn query(&mut self) -> Option<Op> {
        let offset = self.list.start_load();
        let (pairs, _) = filter_tokens(&self.list.filter, Some(&["task"]));
        let task = pairs
            .iter()
            .find(|(k, _)| k == "task")
            .map(|(_, v)| v.clone());
        Some(Op::Query {
            query: Query::Runs {
                task,
                offset,
                limit: WINDOW,
            },
        })
    }

    fn fill(&mut self, page: Page<RunRow>) {
        self.list.fill(page.items, page.total);
    }

    fn fail(&mut self, message: String) {
        self.list.fail(message);
    }

    fn loading(&self) -> bool {
        self.list.loading
    }
}

impl Pane for RunsPane {
    fn context(&self) -> Option<Context> {
        Some(Context::Runs)
    }

    fn on_changed(&mut self, subject: &str, _action: &str) -> Vec<Target> {
        if subject_kind(subject) == "run" {
            vec![Target::Runs]
        } else {
            Vec::new()
        }
    }

    fn shows(&self) -> Vec<Target> {
        vec![Target::Runs]
    }

    fn filter_hint(&self) -> Option<&'static str> {
        Some("task:ID shows the runs of one task.")
    }

    fn filter(&self) -> &str {
        &self.list.filter
    }

    fn set_filter(&mut self, text: String) -> Result<Option<Target>, String> {
        self.list = Paged {
            filter: text,
            ..Default::default()
        };
        Ok(Some(Target::Runs))
    }

    fn actions(&self) -> &'static [(Action, &'static str)] {
        RUN_ACTIONS
    }

    fn on_action(&mut self, action: Action, page: usize) -> Option<Message> {
        if let Some(m) = nav_message(self.list.navigate(action, page), Target::Runs) {
            return Some(m);
        }
        let run = self.list.selected_row()?;
        run_action(run, action)
    }

    fn render(&self, frame: &mut Frame, area: Rect, focused: bool, ctx: &Ctx<'_>) {
        self.draw(frame, area, focused, ctx);
    }
}

/// The key hints of a run (the runs pane and the run screen).
pub const RUN_ACTIONS: &[(Action, &str)] = &[
    (Action::Open, "open"),
    (Action::ReplayRun, "replay"),
    (Action::RetryRun, "retry"),
];

impl RunsPane {
    pub fn selected_id(&self) -> Option<String> {
        self.list.selected_row().map(|r| r.id.clone())
    }

    /// Appends streamed output, keeping only the tail.
    pub fn on_output(&mut self, run: &str, delta: &str) {
        if !self.live.contains_key(run) && self.live.len() >= LIVE_RUNS {
            let running: Vec<String> = self.live.keys().cloned().collect();
            if let Some(old) = running.into_iter().min() {
                self.live.remove(&old);
            }
        }
        let buf = self.live.entry(run.to_string()).or_default();
        buf.push_str(delta);
        if buf.len() > LIVE_KEEP {
            let mut cut = buf.len() - LIVE_KEEP;
            while !buf.is_char_boundary(cut) {
                cut += 1;
            }
            buf.drain(..cut);
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect, focused: bool, ctx: &Ctx<'_>) {
        use crate::core::agents::record::WAITING_FOR_SLOT;
        let [list_area, live_area] =
            Layout::vertical([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
        let view = ListView {
            title: "Runs".into(),
            focused,
            header: vec!["status", "role", "step", "current", "tokens", "cost"],
            widths: vec![
                Constraint::Length(9),
                Constraint::Length(10),
                Constraint::Length(4),
                Constraint::Fill(1),
                Constraint::Length(11),
                Constraint::Length(8),
            ],
            empty: "No runs yet.",
            theme: ctx.theme,
        };
        paged::render(
            frame,
            list_area,
            &self.list,
            &view,
            |r| {
                // A run queued inside keel for a model slot says so, not "running".
                let waiting = r.status == "running" && r.current.starts_with(WAITING_FOR_SLOT);
                let (status, role) = match r.status.as_str() {
                    _ if waiting => ("waiting", Role::Warning),
                    "running" => ("running", Role::Info),
                    "failed" => ("failed", Role::Error),
                    "succeeded" => ("succeeded", Role::Success),
                    other => (other, Role::Muted),
                };
                vec![
                    Cell::from(status.to_string()).style(ctx.theme.style(role)),
                    Cell::from(r.role.clone()),
                    Cell::from(r.step.to_string()),
                    Cell::from(format::one_line(&r.current)),
                    Cell::from(format!("{}/{}", r.tokens_in, r.tokens_out)),
                    Cell::from(format::money(r.cost_usd)),
                ]
            },
            |_| false,
        );
        self.render_live(frame, live_area, ctx);
    }

    fn render_live(&self, frame: &mut Frame, area: Rect, ctx: &Ctx<'_>) {
        let theme = ctx.theme;
        let Some(run) = self.list.selected_row() else {
            let block = paged::block("Output".into(), false, theme);
            let inner = block.inner(area);
            frame.render_widget(block, area);
            super::notice(
                frame,
                inner,
                "Select a run to follow its output.",
                Role::Muted,
                theme,
            );
            return;
        };
        let title = format!(
            "Output {} · step {} · {}",
            short(&run.id),
            run.step,
            format::money(run.cost_usd)
        );
        let block = paged::block(title, false, theme);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let streaming = self.live.get(&run.id);
        let text =
            format::readable_output(streaming.map_or(run.output_preview.as_str(), String::as_str));
        let mut lines = vec![Line::from(vec![
            Span::styled(format!("{} ", run.provider), theme.style(Role::Muted)),
            Span::styled(format::one_line(&run.current), theme.style(Role::Accent)),
        ])];
        // A running run shows its newest lines (the tail that fits); a finished run's output
        // reads from its start.
        let height = usize::from(inner.height.saturating_sub(1));
        let shown: Vec<&str> = if run.status == "running" {
            let mut tail: Vec<&str> = text.lines().rev().take(height).collect();
            tail.reverse();
            tail
        } else {
            text.lines().take(height).collect()
        };
        lines.extend(
            shown
                .into_iter()
                .map(|l| Line::styled(l.to_string(), theme.style(Role::Text))),
        );
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    }
}

/// Retry, cancel, replay and open for a run (shared with the run screen).
pub fn run_action(run: &RunRow, action: Action) -> Option<Message> {
    let id = run.id.clone();
    match action {
        Action::Open => Some(Message::OpenRun(id)),
        Action::RetryRun => Some(Message::Confirm {
            title: "Retry".into(),
            lines: vec![format!(
                "Retry the task of run {} ({})?",
                short(&id),
                run.role
            )],
            then: Box::new(Message::Send {
                label: format!("retry {}", short(&run.task)),
                ops: vec![Op::RetryTask {
                    id: run.task.clone(),
                    new_input: None,
                }],
                cleanup: None,
            }),
        }),
        Action::CancelRun => Some(Message::Confirm {
            title: "Cancel".into(),
            lines: vec![format!("Cancel the task of run {}?", short(&id))],
            then: Box::new(Message::Send {
                label: format!("cancel {}", short(&run.task)),
                ops: vec![Op::CancelTask {
                    id: run.task.clone(),
                }],
                cleanup: None,
            }),
        }),
        Action::ReplayRun => Some(Message::Confirm {
            title: "Replay".into(),
            lines: vec![
                format!("Replay run {} exactly?", short(&id)),
                "Recorded model calls are reused; nothing is paid twice.".into(),
            ],
            then: Box::new(Message::Send {
                label: format!("replay {}", short(&id)),
                ops: vec![Op::ReplayRun { id }],
                cleanup: None,
            }),
        }),
        _ => None,
    }
}
