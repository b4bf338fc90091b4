//! Overlays drawn over the screen: draft editor, confirm, help, palette, a one-line input
//! (reject reason, filter) and a notice. Each takes keys first while it is open.

pub mod confirm;
pub mod editor;
pub mod help;
pub mod input;
pub mod notice;
pub mod palette;

use ratatui::layout::{Constraint, Flex, Layout, Rect};

use super::message::Message;

/// What an overlay did with a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Keep,
    Close,
    /// Close and hand this message to the app.
    Emit(Message),
}

pub enum Overlay {
    Help(help::Help),
    Palette(palette::Palette),
    Confirm(confirm::Confirm),
    Input(input::Input),
    Editor(Box<editor::Editor>),
    Notice(notice::Notice),
}

impl std::fmt::Debug for Overlay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Overlay::Help(_) => "Help",
            Overlay::Palette(_) => "Palette",
            Overlay::Confirm(_) => "Confirm",
            Overlay::Input(_) => "Input",
            Overlay::Editor(_) => "Editor",
            Overlay::Notice(_) => "Notice",
        })
    }
}

/// A centred rectangle of at most `w`×`h` inside `area`.
pub fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let [row] = Layout::vertical([Constraint::Length(h.min(area.height))])
        .flex(Flex::Center)
        .areas(area);
    let [cell] = Layout::horizontal([Constraint::Length(w.min(area.width))])
        .flex(Flex::Center)
        .areas(row);
    cell
}
