//! The task queue pane (paged through the core).

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::Cell;

use super::pane::Pane;
use super::source::Source;
use super::{Ctx, filter_tokens, nav_message, subject_kind};
use crate::protocol::{Op, Page, Query, TaskRow};
use crate::tui::format;
use crate::tui::keymap::{Action, Context};
use crate::tui::message::{Message, Target};
use crate::tui::paged::{self, ListView, Paged, WINDOW};
use crate::tui::theme::Role;

#[derive(Debug, Default)]
pub struct QueuePane {
    pub list: Paged<TaskRow>,
}

impl Source for QueuePane {
    type Answer = Page<TaskRow>;

    /// The query for the window around the selection. Filter: `state:failed words…`.
    fn query(&mut self) -> Option<Op> {
        let offset = self.list.start_load();
        let (pairs, text) = filter_tokens(&self.list.filter, Some(&["state"]));
        let state = pairs
            .iter()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v.clone());
        Some(Op::Query {
            query: Query::Tasks {
                state,
                text,
                offset,
                limit: WINDOW,
            },
        })
    }

    fn fill(&mut self, page: Page<TaskRow>) {
        self.list.fill(page.items, page.total);
    }

    fn fail(&mut self, message: String) {
        self.list.fail(message);
    }

    fn loading(&self) -> bool {
        self.list.loading
    }
}

impl Pane for QueuePane {
    fn context(&self) -> Option<Context> {
        Some(Context::Queue)
    }

    /// A decision moves its task on.
    fn on_changed(&mut self, subject: &str, _action: &str) -> Vec<Target> {
        match subject_kind(subject) {
            "task" | "approval" => vec![Target::Tasks],
            _ => Vec::new(),
        }
    }

    fn shows(&self) -> Vec<Target> {
        vec![Target::Tasks]
    }

    fn filter_hint(&self) -> Option<&'static str> {
        Some("Words in the title; state:failed narrows by state.")
    }

    fn filter(&self) -> &str {
        &self.list.filter
    }

    fn set_filter(&mut self, text: String) -> Result<Option<Target>, String> {
        self.list = Paged {
            filter: text,
            ..Default::default()
        };
        Ok(Some(Target::Tasks))
    }

    fn actions(&self) -> &'static [(Action, &'static str)] {
        &[(Action::RetryTask, "retry"), (Action::CancelTask, "cancel")]
    }

    fn on_action(&mut self, action: Action, page: usize) -> Option<Message> {
        if let Some(m) = nav_message(self.list.navigate(action, page), Target::Tasks) {
            return Some(m);
        }
        let task = self.list.selected_row()?;
        let id = task.id.clone();
        match action {
            Action::RetryTask => Some(Message::Confirm {
                title: "Retry task".into(),
                lines: vec![format!(
                    "Retry {} “{}” ({})?",
                    short(&id),
                    task.title,
                    task.state
                )],
                then: Box::new(Message::Send {
                    label: format!("retry {}", short(&id)),
                    ops: vec![Op::RetryTask {
                        id,
                        new_input: None,
                    }],
                    cleanup: None,
                }),
            }),
            Action::CancelTask => Some(Message::Confirm {
                title: "Cancel task".into(),
                lines: vec![format!("Cancel {} “{}”?", short(&id), task.title)],
                then: Box::new(Message::Send {
                    label: format!("cancel {}", short(&id)),
                    ops: vec![Op::CancelTask { id }],
                    cleanup: None,
                }),
            }),
            Action::DecideTriage if task.role == "triage" && task.state == "escalated" => {
                Some(Message::AskLabel { task: id })
            }
            Action::DecideTriage => Some(Message::Flash(
                "only an escalated triage item waits for a route".into(),
            )),
            Action::RunNow => Some(Message::Send {
                label: format!("run now {}", short(&id)),
                ops: vec![Op::RunNow { id }],
                cleanup: None,
            }),
            Action::Open => Some(Message::Notice {
                title: format!("Task {}", task.id),
                lines: details(task),
            }),
            _ => None,
        }
    }

    fn render(&self, frame: &mut Frame, area: Rect, focused: bool, ctx: &Ctx<'_>) {
        let view = ListView {
            title: "Queue".into(),
            focused,
            header: vec!["state", "role", "title", "pri", "try", "updated"],
            widths: vec![
                Constraint::Length(9),
                Constraint::Length(10),
                Constraint::Fill(1),
                Constraint::Length(3),
                Constraint::Length(3),
                Constraint::Length(11),
            ],
            empty: "The queue is empty.",
            theme: ctx.theme,
        };
        paged::render(
            frame,
            area,
            &self.list,
            &view,
            |t| {
                let state_role = match t.state.as_str() {
                    "failed" | "escalated" => Role::Error,
                    "waiting" => Role::Warning,
                    "running" => Role::Info,
                    "succeeded" => Role::Success,
                    _ => Role::Text,
                };
                let state = if t.paused {
                    format!("{}‖", t.state)
                } else {
                    t.state.clone()
                };
                vec![
                    Cell::from(state).style(ctx.theme.style(state_role)),
                    Cell::from(t.role.clone()),
                    Cell::from(format::one_line(&t.title)),
                    Cell::from(t.priority.to_string()),
                    Cell::from(format!("{}/{}", t.attempts, t.max_attempts)),
                    Cell::from(format::short_time(t.updated_ms)),
                ]
            },
            |_| false,
        );
    }
}

/// The last 8 characters of a long id (uuid v7 ids share a time prefix, the tail differs).
pub fn short(id: &str) -> String {
    let n = id.chars().count();
    if n > 12 {
        format!("…{}", id.chars().skip(n - 8).collect::<String>())
    } else {
        id.to_string()
    }
}

fn details(t: &TaskRow) -> Vec<String> {
    vec![
        format!("title     {}", t.title),
        format!("role      {}", t.role),
        format!(
            "state     {}{}",
            t.state,
            if t.paused { " (paused)" } else { "" }
        ),
        format!("detail    {}", t.detail),
        format!("attempts  {}/{}", t.attempts, t.max_attempts),
        format!("priority  {}", t.priority),
        format!("workflow  {}", t.workflow.as_deref().unwrap_or("—")),
        format!("parent    {}", t.parent.as_deref().unwrap_or("—")),
        format!("estimate  {}", format::money(t.cost_estimate_usd)),
        format!("created   {} UTC", format::time(t.created_ms)),
        format!("updated   {} UTC", format::time(t.updated_ms)),
    ]
}
