//! A read-only notice (details, hints such as the export command). Any close key dismisses it.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{Outcome, centered};
use crate::tui::paged;
use crate::tui::theme::{Role, Theme};

#[derive(Debug, Clone)]
pub struct Notice {
    pub title: String,
    pub lines: Vec<String>,
}

impl Notice {
    pub fn on_key(key: &KeyEvent) -> Outcome {
        match key.code {
            KeyCode::Esc | KeyCode::Enter | KeyCode::Char('q' | ' ') => Outcome::Close,
            _ => Outcome::Keep,
        }
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let h = u16::try_from(self.lines.len())
            .unwrap_or(30)
            .saturating_add(4);
        let rect = centered(area, 90, h);
        frame.render_widget(Clear, rect);
        let block = paged::block(self.title.clone(), true, theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let mut lines: Vec<Line<'static>> =
            self.lines.iter().map(|l| Line::raw(l.clone())).collect();
        lines.push(Line::raw(""));
        lines.push(Line::styled("esc / enter: close", theme.style(Role::Muted)));
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .style(theme.style(Role::Text)),
            inner,
        );
    }
}
