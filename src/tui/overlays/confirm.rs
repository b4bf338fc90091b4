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
        const WIDTH: u16 = 76;
        // Rows the text takes once wrapped: a long card line must not push the key hint
        // out of the box (an operator confirming a payment has to see how).
        let inner_w = WIDTH.min(area.width).saturating_sub(2).max(1);
        let rows = self
            .lines
            .iter()
            .map(|l| wrapped_rows(l, inner_w))
            .fold(0u16, u16::saturating_add);
        let rect = centered(area, WIDTH, rows.saturating_add(4).max(6));
        frame.render_widget(Clear, rect);
        let block = paged::block(self.title.clone(), true, theme);
        let inner = block.inner(rect);
        frame.render_widget(block, rect);
        let mut lines: Vec<Line<'static>> =
            self.lines.iter().map(|l| Line::raw(l.clone())).collect();
        lines.push(Line::raw(""));
        // The hint has its own row right after the text, kept even when the text is cut.
        let text_h = rows.saturating_add(1).min(inner.height.saturating_sub(1));
        let text_area = Rect {
            height: text_h,
            ..inner
        };
        let hint_area = Rect {
            y: inner.y.saturating_add(text_h),
            height: inner.height.saturating_sub(text_h).min(1),
            ..inner
        };
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .style(theme.style(Role::Text)),
            text_area,
        );
        frame.render_widget(
            Paragraph::new(Line::styled(
                "y / enter: confirm    n / esc: cancel",
                theme.style(Role::Accent),
            )),
            hint_area,
        );
    }
}

/// Rows `line` takes in `width` columns when word-wrapped (one spare row when it wraps,
/// since words that do not fit move whole to the next row).
fn wrapped_rows(line: &str, width: u16) -> u16 {
    let w = u16::try_from(Line::raw(line).width()).unwrap_or(u16::MAX);
    if w <= width {
        1
    } else {
        w.div_ceil(width).saturating_add(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_hint_stays_visible_when_a_line_wraps() {
        let confirm = Confirm {
            title: "Approve 1 item".into(),
            lines: vec![
                "payment.send supplier-10 — console-pay 10 · risk high · irreversible · $0.00 and more words".into(),
                String::new(),
                "Includes irreversible actions: no undo exists.".into(),
            ],
            then: Message::Redraw,
        };
        let theme = Theme::plain();
        let mut terminal =
            ratatui::Terminal::new(ratatui::backend::TestBackend::new(140, 40)).unwrap();
        terminal
            .draw(|f| confirm.render(f, f.area(), &theme))
            .unwrap();
        let screen: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(ratatui::buffer::Cell::symbol)
            .collect();
        assert!(screen.contains("y / enter: confirm"), "{screen}");
        assert!(screen.contains("no undo exists"), "{screen}");
    }
}
