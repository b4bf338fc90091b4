//! Help, generated from the effective keymap (so a workspace override shows up here).

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph};

use super::{Outcome, centered};
use crate::tui::keymap::{Action, Context, Keymap};
use crate::tui::paged;
use crate::tui::theme::{Role, Theme};

#[derive(Debug, Clone, Default)]
pub struct Help {
    pub scroll: u16,
}

impl Help {
    pub fn on_key(&mut self, key: &KeyEvent) -> Outcome {
        match key.code {
            KeyCode::Esc | KeyCode::Char('q' | '?') => Outcome::Close,
            KeyCode::Char('j') | KeyCode::Down => {
                self.scroll = self.scroll.saturating_add(1);
                Outcome::Keep
            }
            KeyCode::Char('k') | KeyCode::Up => {
                self.scroll = self.scroll.saturating_sub(1);
                Outcome::Keep
            }
            KeyCode::PageDown | KeyCode::Char(' ') => {
                self.scroll = self.scroll.saturating_add(10);
                Outcome::Keep
            }
            KeyCode::PageUp => {
                self.scroll = self.scroll.saturating_sub(10);
                Outcome::Keep
            }
            _ => Outcome::Keep,
        }
    }

    /// Every binding, grouped by where it applies.
    pub fn lines(keymap: &Keymap, theme: &Theme) -> Vec<Line<'static>> {
        let mut lines = Vec::new();
        for ctx in Context::ALL {
            lines.push(Line::styled(
                ctx.name().to_string(),
                theme.style(Role::Header),
            ));
            for action in Action::ALL.iter().filter(|a| a.context() == ctx) {
                lines.push(Line::from(vec![
                    Span::styled(
                        format!("  {:<16}", keymap.label(*action)),
                        theme.style(Role::Accent),
                    ),
                    Span::raw(action.description().to_string()),
                ]));
            }
        }
        lines
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, keymap: &Keymap, theme: &Theme) {
        let rect = centered(area, 72, area.height.saturating_sub(2));
        frame.render_widget(Clear, rect);
        let block = paged::block("Help — keys (j/k scroll, esc close)".into(), true, theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        frame.render_widget(
            Paragraph::new(Self::lines(keymap, theme))
                .scroll((self.scroll, 0))
                .style(theme.style(Role::Text)),
            inner,
        );
    }
}
