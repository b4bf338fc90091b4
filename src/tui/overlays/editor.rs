//! Edit a draft, then approve: ratatui-textarea (undo/redo, search, wrapping), a diff
//! against the agent's version before the operator confirms, and a guard against losing
//! unsaved text — every change is also written to a recovery file in the workspace.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Wrap};
use ratatui_textarea::{TextArea, WrapMode};
use serde_json::Value;

use super::Outcome;
use crate::protocol::Op;
use crate::tui::keymap::{Action, Context, Keymap};
use crate::tui::message::Message;
use crate::tui::paged;
use crate::tui::panes::approvals::diff_line;
use crate::tui::theme::{Role, Theme};

/// Which part of the proposed body the text is.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// The body is a string.
    Text,
    /// The body is an object; the text is this string field.
    Field(String),
    /// The body is other JSON, edited as pretty JSON.
    Json,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Editing,
    Searching(String),
    /// Showing the diff; enter approves.
    Review,
    /// Esc with unsaved edits: ask before throwing them away.
    ConfirmDiscard,
}

pub struct Editor {
    pub approval: String,
    pub title: String,
    pub proposed: Value,
    pub shape: Shape,
    /// The agent's version of the text.
    pub original: String,
    pub textarea: TextArea<'static>,
    pub mode: Mode,
    pub wrap: bool,
    pub recovery: Option<PathBuf>,
    pub note: Option<String>,
    pub error: Option<String>,
}

/// Fields that usually hold a draft's text, in order of preference.
const TEXT_FIELDS: [&str; 5] = ["body", "text", "content", "markdown", "html"];

/// The editable text of a proposed body and how to put it back.
pub fn extract(body: &Value) -> (String, Shape) {
    match body {
        Value::String(s) => (s.clone(), Shape::Text),
        Value::Object(map) => TEXT_FIELDS
            .iter()
            .find_map(|f| {
                map.get(*f)
                    .and_then(Value::as_str)
                    .map(|s| (s.to_string(), Shape::Field((*f).to_string())))
            })
            .unwrap_or_else(|| {
                (
                    serde_json::to_string_pretty(body).unwrap_or_default(),
                    Shape::Json,
                )
            }),
        other => (
            serde_json::to_string_pretty(other).unwrap_or_default(),
            Shape::Json,
        ),
    }
}

/// The body with the edited text put back.
pub fn rebuild(proposed: &Value, shape: &Shape, text: &str) -> Result<Value, String> {
    match shape {
        Shape::Text => Ok(Value::String(text.to_string())),
        Shape::Field(f) => {
            let mut body = proposed.clone();
            if let Some(map) = body.as_object_mut() {
                map.insert(f.clone(), Value::String(text.to_string()));
            }
            Ok(body)
        }
        Shape::Json => serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}")),
    }
}

/// A unified diff of the agent's text against the operator's.
pub fn unified_diff(original: &str, edited: &str) -> String {
    // Compare whole lines: a missing final newline is not an edit worth showing.
    let terminated = |s: &str| {
        if s.ends_with('\n') {
            s.to_string()
        } else {
            format!("{s}\n")
        }
    };
    let (original, edited) = (terminated(original), terminated(edited));
    similar::TextDiff::from_lines(&original, &edited)
        .unified_diff()
        .context_radius(3)
        .header("agent", "operator")
        .to_string()
}

impl Editor {
    /// Opens the editor on `proposed`. When a recovery file from an earlier session exists,
    /// its text is restored instead (and said so).
    pub fn open(
        approval: &str,
        title: &str,
        proposed: Value,
        recovery: Option<PathBuf>,
        theme: &Theme,
    ) -> Self {
        let (original, shape) = extract(&proposed);
        let mut text = original.clone();
        let mut note = None;
        if let Some(path) = &recovery
            && let Ok(saved) = std::fs::read_to_string(path)
            && saved != original
        {
            text = saved;
            note = Some(format!("Restored unsaved edits from {}", path.display()));
        }
        let mut textarea = TextArea::new(text.lines().map(str::to_string).collect());
        textarea.set_wrap_mode(WrapMode::WordOrGlyph);
        textarea.set_max_histories(1000);
        textarea.set_style(theme.style(Role::Text));
        textarea.set_line_number_style(theme.style(Role::Muted));
        textarea.set_search_style(
            theme
                .style(Role::Marked)
                .add_modifier(ratatui::style::Modifier::REVERSED),
        );
        textarea.set_placeholder_text("(empty)");
        Editor {
            approval: approval.to_string(),
            title: title.to_string(),
            proposed,
            shape,
            original,
            textarea,
            mode: Mode::Editing,
            wrap: true,
            recovery,
            note,
            error: None,
        }
    }

    pub fn text(&self) -> String {
        self.textarea.lines().join("\n")
    }

    /// True when the text differs from the agent's version (trailing newline aside).
    pub fn modified(&self) -> bool {
        self.text().trim_end_matches('\n') != self.original.trim_end_matches('\n')
    }

    /// Writes the recovery file (no fsync per key: it guards against a crash of keel,
    /// which leaves the page cache intact).
    fn save_recovery(&mut self) {
        let Some(path) = &self.recovery else { return };
        let result = (|| -> std::io::Result<()> {
            use std::io::Write;
            if let Some(dir) = path.parent() {
                crate::core::workspace::create_private_dir(dir).map_err(std::io::Error::other)?;
            }
            let mut f =
                crate::core::workspace::open_private(path).map_err(std::io::Error::other)?;
            f.write_all(self.text().as_bytes())
        })();
        if let Err(e) = result {
            self.error = Some(format!("cannot write the recovery file: {e}"));
        }
    }

    pub fn discard_recovery(&self) {
        if let Some(path) = &self.recovery {
            let _ = std::fs::remove_file(path);
        }
    }

    pub fn on_key(&mut self, key: &KeyEvent, keymap: &Keymap) -> Outcome {
        match self.mode.clone() {
            Mode::Searching(mut q) => {
                match key.code {
                    KeyCode::Esc => {
                        let _ = self.textarea.set_search_pattern("");
                        self.mode = Mode::Editing;
                    }
                    KeyCode::Enter => {
                        match self.textarea.set_search_pattern(&q) {
                            Ok(()) => {
                                if !self.textarea.search_forward(true) {
                                    self.note = Some(format!("no match for /{q}/"));
                                }
                            }
                            Err(e) => self.error = Some(format!("bad pattern: {e}")),
                        }
                        self.mode = Mode::Editing;
                    }
                    KeyCode::Backspace => {
                        q.pop();
                        self.mode = Mode::Searching(q);
                    }
                    KeyCode::Char(c) => {
                        q.push(c);
                        self.mode = Mode::Searching(q);
                    }
                    _ => {}
                }
                Outcome::Keep
            }
            Mode::Review => match key.code {
                KeyCode::Enter | KeyCode::Char('y') => {
                    match rebuild(&self.proposed, &self.shape, &self.text()) {
                        Ok(body) => Outcome::Emit(Message::Send {
                            label: "approve edited".into(),
                            ops: vec![Op::Approve {
                                id: self.approval.clone(),
                                edited_body: Some(body),
                                always_allow: false,
                            }],
                            cleanup: self.recovery.clone(),
                        }),
                        Err(e) => {
                            self.error = Some(e);
                            self.mode = Mode::Editing;
                            Outcome::Keep
                        }
                    }
                }
                KeyCode::Esc | KeyCode::Char('n') => {
                    self.mode = Mode::Editing;
                    Outcome::Keep
                }
                _ => Outcome::Keep,
            },
            Mode::ConfirmDiscard => match key.code {
                KeyCode::Char('y') => {
                    self.discard_recovery();
                    Outcome::Close
                }
                KeyCode::Char('n') | KeyCode::Esc => {
                    self.mode = Mode::Editing;
                    Outcome::Keep
                }
                _ => Outcome::Keep,
            },
            Mode::Editing => self.on_editing_key(key, keymap),
        }
    }

    fn on_editing_key(&mut self, key: &KeyEvent, keymap: &Keymap) -> Outcome {
        self.error = None;
        match keymap.resolve(&[Context::Editor], key) {
            Some(Action::Save) => {
                match rebuild(&self.proposed, &self.shape, &self.text()) {
                    Ok(_) => self.mode = Mode::Review,
                    Err(e) => self.error = Some(e),
                }
                Outcome::Keep
            }
            Some(Action::Cancel) => {
                if self.modified() {
                    self.mode = Mode::ConfirmDiscard;
                    Outcome::Keep
                } else {
                    self.discard_recovery();
                    Outcome::Close
                }
            }
            Some(Action::Undo) => {
                self.textarea.undo();
                self.save_recovery();
                Outcome::Keep
            }
            Some(Action::Redo) => {
                self.textarea.redo();
                self.save_recovery();
                Outcome::Keep
            }
            Some(Action::Search) => {
                self.mode = Mode::Searching(String::new());
                Outcome::Keep
            }
            Some(Action::NextMatch) => {
                self.textarea.search_forward(false);
                Outcome::Keep
            }
            Some(Action::PrevMatch) => {
                self.textarea.search_back(false);
                Outcome::Keep
            }
            Some(Action::Wrap) => {
                self.wrap = !self.wrap;
                self.textarea.set_wrap_mode(if self.wrap {
                    WrapMode::WordOrGlyph
                } else {
                    WrapMode::None
                });
                Outcome::Keep
            }
            _ => {
                if self.textarea.input(*key) {
                    self.save_recovery();
                }
                Outcome::Keep
            }
        }
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, keymap: &Keymap, theme: &Theme) {
        // The whole screen between the tab line and the status bar.
        let rect = Rect {
            y: area.y + 1,
            height: area.height.saturating_sub(2),
            ..area
        };
        frame.render_widget(Clear, rect);
        let dirty = if self.modified() { " [modified]" } else { "" };
        let title = if self.mode == Mode::Review {
            format!("Review your edits — {}", self.title)
        } else {
            format!("Edit draft — {}{dirty}", self.title)
        };
        let block = paged::block(title, true, theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let [body, footer] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(2)]).areas(inner);
        if self.mode == Mode::Review {
            let diff = unified_diff(&self.original, &self.text());
            let lines: Vec<Line<'static>> = if diff.is_empty() {
                vec![Line::styled(
                    "No changes against the agent's version.",
                    theme.style(Role::Muted),
                )]
            } else {
                diff.lines().map(|l| diff_line(l, theme)).collect()
            };
            frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), body);
        } else {
            frame.render_widget(&self.textarea, body);
        }
        let hint = match &self.mode {
            Mode::Editing => format!(
                "{} save & review · {} cancel · {} undo · {} redo · {} search · {}/{} next/prev · {} wrap",
                keymap.label(Action::Save),
                keymap.label(Action::Cancel),
                keymap.label(Action::Undo),
                keymap.label(Action::Redo),
                keymap.label(Action::Search),
                keymap.label(Action::NextMatch),
                keymap.label(Action::PrevMatch),
                keymap.label(Action::Wrap),
            ),
            Mode::Searching(q) => format!("search /{q}▏  (enter find · esc clear)"),
            Mode::Review => "enter: approve with these edits · esc: back to editing".into(),
            Mode::ConfirmDiscard => {
                "Discard your unsaved edits? y: discard · n: keep editing".into()
            }
        };
        let (status, role) = match (&self.error, &self.note) {
            (Some(e), _) => (e.clone(), Role::Error),
            (None, Some(n)) => (n.clone(), Role::Info),
            (None, None) => (String::new(), Role::Muted),
        };
        let hint_role = if self.mode == Mode::ConfirmDiscard {
            Role::Warning
        } else {
            Role::Muted
        };
        frame.render_widget(
            Paragraph::new(vec![
                Line::styled(hint, theme.style(hint_role)),
                Line::styled(status, theme.style(role)),
            ]),
            footer,
        );
    }
}
