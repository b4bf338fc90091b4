//! Panes: each holds its state, loads it from the core as a [`Source`] (query, typed
//! answer), and as a [`Pane`] turns key actions into [`Message`]s, names what a change
//! reloads, filters and renders as a pure function of that state.
//!
//! [`Message`]: super::message::Message
//! [`Pane`]: pane::Pane
//! [`Source`]: source::Source

pub mod approvals;
pub mod audit;
pub mod blackboard;
pub mod health;
pub mod memory;
pub mod metrics;
pub mod objects;
pub mod pane;
pub mod queue;
pub mod run_detail;
pub mod runs;
pub mod source;
pub mod table;

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Paragraph, Wrap};

use super::keymap::Keymap;
use super::message::{Message, Target};
use super::paged::Nav;
use super::theme::{Role, Theme};

/// What every render function borrows.
pub struct Ctx<'a> {
    pub theme: &'a Theme,
    pub keymap: &'a Keymap,
    /// The embedding model's state (the status bar and the health screen show it).
    pub model_state: &'a str,
}

/// Turns a navigation result into the message that follows it.
pub fn nav_message(nav: Nav, target: Target) -> Option<Message> {
    match nav {
        Nav::NotNavigation => None,
        Nav::Moved => Some(Message::Redraw),
        Nav::NeedsFetch => Some(Message::Load(target)),
    }
}

/// A calm one-paragraph notice inside a pane (errors, loading, empty).
pub fn notice(frame: &mut Frame, area: Rect, text: &str, role: Role, theme: &Theme) {
    frame.render_widget(
        Paragraph::new(Line::styled(text.to_string(), theme.style(role))).wrap(Wrap { trim: true }),
        area,
    );
}

/// Parses `key:value` tokens out of a filter; the rest is free text. With `known`, other
/// `x:y` tokens stay text (a URL is not a filter).
pub fn filter_tokens(
    filter: &str,
    known: Option<&[&str]>,
) -> (Vec<(String, String)>, Option<String>) {
    let mut pairs = Vec::new();
    let mut words = Vec::new();
    for token in filter.split_whitespace() {
        match token.split_once(':') {
            Some((k, v))
                if !k.is_empty()
                    && !v.is_empty()
                    && k.chars().all(char::is_alphabetic)
                    && known.is_none_or(|keys| keys.contains(&k.to_lowercase().as_str())) =>
            {
                pairs.push((k.to_lowercase(), v.to_string()));
            }
            _ => words.push(token),
        }
    }
    let text = (!words.is_empty()).then(|| words.join(" "));
    (pairs, text)
}

/// The kind a change's subject names: `task` of `task/0193…`.
pub fn subject_kind(subject: &str) -> &str {
    subject.split('/').next().unwrap_or(subject)
}
