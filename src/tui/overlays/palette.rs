//! The command palette: fuzzy matching (nucleo-matcher) over every action.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use nucleo_matcher::pattern::{CaseMatching, Normalization, Pattern};
use nucleo_matcher::{Config, Matcher};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::{Outcome, centered};
use crate::tui::keymap::{Action, Keymap};
use crate::tui::message::Message;
use crate::tui::paged;
use crate::tui::theme::{Role, Theme};

pub struct Palette {
    pub query: String,
    pub matches: Vec<Action>,
    pub selected: usize,
    matcher: Matcher,
}

impl Default for Palette {
    fn default() -> Self {
        let mut p = Palette {
            query: String::new(),
            matches: Vec::new(),
            selected: 0,
            matcher: Matcher::new(Config::DEFAULT),
        };
        p.refilter();
        p
    }
}

/// The text an action is matched on.
fn haystack(a: Action) -> String {
    format!(
        "{} {} {}",
        a.context().name(),
        a.name().replace('_', " "),
        a.description()
    )
}

impl Palette {
    fn refilter(&mut self) {
        let candidates: Vec<Action> = Action::ALL
            .iter()
            .copied()
            .filter(|a| a.context() != crate::tui::keymap::Context::Editor)
            .collect();
        if self.query.trim().is_empty() {
            self.matches = candidates;
        } else {
            let pattern = Pattern::parse(&self.query, CaseMatching::Ignore, Normalization::Smart);
            let texts: Vec<(Action, String)> =
                candidates.iter().map(|a| (*a, haystack(*a))).collect();
            let mut scored: Vec<(Action, u32)> = texts
                .iter()
                .filter_map(|(a, t)| {
                    let mut buf = Vec::new();
                    let hay = nucleo_matcher::Utf32Str::new(t, &mut buf);
                    pattern.score(hay, &mut self.matcher).map(|s| (*a, s))
                })
                .collect();
            scored.sort_by_key(|x| std::cmp::Reverse(x.1));
            self.matches = scored.into_iter().map(|(a, _)| a).collect();
        }
        self.selected = self.selected.min(self.matches.len().saturating_sub(1));
    }

    pub fn on_key(&mut self, key: &KeyEvent) -> Outcome {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => Outcome::Close,
            KeyCode::Enter => self
                .matches
                .get(self.selected)
                .map_or(Outcome::Close, |a| Outcome::Emit(Message::Perform(*a))),
            KeyCode::Up => {
                self.selected = self.selected.saturating_sub(1);
                Outcome::Keep
            }
            KeyCode::Char('p' | 'k') if ctrl => {
                self.selected = self.selected.saturating_sub(1);
                Outcome::Keep
            }
            KeyCode::Down | KeyCode::Tab => {
                self.selected = (self.selected + 1).min(self.matches.len().saturating_sub(1));
                Outcome::Keep
            }
            KeyCode::Char('n' | 'j') if ctrl => {
                self.selected = (self.selected + 1).min(self.matches.len().saturating_sub(1));
                Outcome::Keep
            }
            KeyCode::Backspace => {
                self.query.pop();
                self.selected = 0;
                self.refilter();
                Outcome::Keep
            }
            KeyCode::Char(c) if !ctrl => {
                self.query.push(c);
                self.selected = 0;
                self.refilter();
                Outcome::Keep
            }
            _ => Outcome::Keep,
        }
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, keymap: &Keymap, theme: &Theme) {
        let rect = centered(area, 80, area.height.saturating_sub(4).min(18));
        frame.render_widget(Clear, rect);
        let block = paged::block("Command palette".into(), true, theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let mut lines = vec![Line::from(vec![
            Span::styled(": ", theme.style(Role::Accent)),
            Span::raw(self.query.clone()),
            Span::styled("▏", theme.style(Role::Accent)),
        ])];
        let height = usize::from(inner.height.saturating_sub(1));
        let top = paged::top_row(self.selected, height.max(1));
        for (i, a) in self.matches.iter().enumerate().skip(top).take(height) {
            let style = if i == self.selected {
                theme.style(Role::Selection)
            } else {
                theme.style(Role::Text)
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{:<48}", a.description()), style),
                Span::styled(
                    format!(" {:<10}", keymap.label(*a)),
                    theme.style(Role::Muted),
                ),
                Span::styled(a.context().name().to_string(), theme.style(Role::Muted)),
            ]));
        }
        if self.matches.is_empty() {
            lines.push(Line::styled("no matching action", theme.style(Role::Muted)));
        }
        frame.render_widget(Paragraph::new(lines), inner);
    }
}
