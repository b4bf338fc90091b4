//! Confirm → confirmed action: nothing irreversible happens on a single key press.

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Clear, Paragraph, Wrap};

use super::{Outcome, centered};
use crate::tui::message::Message;
use crate::tui::paged;
use crate::tui::theme::{Role, Theme};

#[derive(Debug, Clone)]
pub struct Confirm {
    pub title: String,
    pub lines: Vec<String>,
    pub then: Message,
}

impl Confirm {
    pub fn on_key(&self, key: &KeyEvent) -> Outcome {
        match key.code {
            KeyCode::Char('y' | 'Y') | KeyCode::Enter => Outcome::Emit(self.then.clone()),
            KeyCode::Char('n' | 'N' | 'q') | KeyCode::Esc => Outcome::Close,
            _ => Outcome::Keep,
        }
    }

    pub fn render(&self, frame: &mut Frame, area: Rect, theme: &Theme) {
        let h = u16::try_from(self.lines.len())
            .unwrap_or(20)
            .saturating_add(4);
        let rect = centered(area, 76, h.max(6));
        frame.render_widget(Clear, rect);
        let block = paged::block(self.title.clone(), true, theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let mut lines: Vec<Line<'static>> =
            self.lines.iter().map(|l| Line::raw(l.clone())).collect();
        lines.push(Line::raw(""));
        lines.push(Line::styled(
            "y / enter: confirm    n / esc: cancel",
            theme.style(Role::Accent),
        ));
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .style(theme.style(Role::Text)),
            inner,
        );
    }
}
