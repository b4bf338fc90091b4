//! A one-line input: the reason for a rejection, or a list filter.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{Outcome, centered};
use crate::protocol::Op;
use crate::tui::message::Message;
use crate::tui::paged;
use crate::tui::theme::{Role, Theme};

#[derive(Debug, Clone, PartialEq)]
pub enum Purpose {
    RejectReason { ids: Vec<String> },
    TriageLabel { task: String },
    Filter,
}

#[derive(Debug, Clone)]
pub struct Input {
    pub purpose: Purpose,
    pub title: String,
    pub hint: String,
    pub text: String,
    pub error: Option<String>,
}

impl Input {
    pub fn reject(ids: Vec<String>) -> Self {
        let n = ids.len();
        Input {
            purpose: Purpose::RejectReason { ids },
            title: format!("Reject {n} item{}", if n == 1 { "" } else { "s" }),
            hint: "Why? The reason is recorded and shown to the agent.".into(),
            text: String::new(),
            error: None,
        }
    }

    pub fn triage_label(task: String) -> Self {
        Input {
            title: format!(
                "Route triage item {}",
                crate::tui::panes::queue::short(&task)
            ),
            purpose: Purpose::TriageLabel { task },
            hint: "A role, a workflow or spam. keel learns it as an example for next time.".into(),
            text: String::new(),
            error: None,
        }
    }

    pub fn filter(current: &str, hint: &str) -> Self {
        Input {
            purpose: Purpose::Filter,
            title: "Filter".into(),
            hint: hint.into(),
            text: current.to_string(),
            error: None,
        }
    }

    pub fn on_key(&mut self, key: &KeyEvent) -> Outcome {
        match key.code {
            KeyCode::Esc => Outcome::Close,
            KeyCode::Enter => match &self.purpose {
                Purpose::RejectReason { ids } => {
                    let reason = self.text.trim().to_string();
                    if reason.is_empty() {
                        self.error = Some("A reason is required.".into());
                        return Outcome::Keep;
                    }
                    Outcome::Emit(Message::Send {
                        label: "reject".into(),
                        ops: ids
                            .iter()
                            .map(|id| Op::Reject {
                                id: id.clone(),
                                reason: reason.clone(),
                            })
                            .collect(),
                        cleanup: None,
                    })
                }
                Purpose::TriageLabel { task } => {
                    let label = self.text.trim().to_string();
                    if label.is_empty() {
                        self.error = Some("A label is required.".into());
                        return Outcome::Keep;
                    }
                    Outcome::Emit(Message::Send {
                        label: format!("route as {label}"),
                        ops: vec![Op::DecideTriage {
                            id: task.clone(),
                            label,
                        }],
                        cleanup: None,
                    })
                }
                Purpose::Filter => Outcome::Emit(Message::SetFilter(self.text.trim().to_string())),
            },
            KeyCode::Backspace => {
                self.text.pop();
                Outcome::Keep
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.text.clear();
                Outcome::Keep
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.text.push(c);
                self.error = None;
                Outcome::Keep
            }
            _ => Outcome::Keep,
        }
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let rect = centered(area, 72, 7);
        frame.render_widget(Clear, rect);
        let block = paged::block(self.title.clone(), true, theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let mut lines = vec![
            Line::styled(self.hint.clone(), theme.style(Role::Muted)),
            Line::from(vec![
                Span::styled("> ", theme.style(Role::Accent)),
                Span::raw(self.text.clone()),
                Span::styled("▏", theme.style(Role::Accent)),
            ]),
        ];
        if let Some(e) = &self.error {
            lines.push(Line::styled(e.clone(), theme.style(Role::Error)));
        }
        lines.push(Line::styled(
            "enter: apply · esc: cancel · ctrl-u: clear",
            theme.style(Role::Muted),
        ));
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    }
}
