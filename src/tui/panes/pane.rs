//! The [`Pane`] trait: what the app asks of every pane besides loading it ([`Source`]).
//! Kept apart from `Source` so panes of different answer types sit behind one `dyn Pane`.
//!
//! [`Source`]: super::source::Source

use ratatui::Frame;
use ratatui::layout::Rect;

use super::Ctx;
use crate::tui::keymap::{Action, Context};
use crate::tui::message::{Message, Target};

pub trait Pane {
    /// The keymap context whose bindings apply while the pane has focus.
    fn context(&self) -> Option<Context> {
        None
    }

    /// A change the core announced (`Event::Changed`): update what can be updated in place
    /// and name what to reload.
    fn on_changed(&mut self, _subject: &str, _action: &str) -> Vec<Target> {
        Vec::new()
    }

    /// What a refresh reloads.
    fn shows(&self) -> Vec<Target> {
        Vec::new()
    }

    /// What to load when the pane's screen is shown.
    fn on_show(&self) -> Option<Target> {
        None
    }

    /// The hint of the filter prompt; None: nothing to filter here.
    fn filter_hint(&self) -> Option<&'static str> {
        None
    }

    /// The filter typed last.
    #[allow(clippy::unnecessary_literal_bound)] // panes return their own text
    fn filter(&self) -> &str {
        ""
    }

    /// Applies a filter the operator typed; names what to reload (None: filtered in place).
    fn set_filter(&mut self, _text: String) -> Result<Option<Target>, String> {
        Ok(None)
    }

    /// Key hints for the status bar while the pane has focus.
    fn actions(&self) -> &'static [(Action, &'static str)] {
        &[]
    }

    /// Turns a key action into what the app should do.
    fn on_action(&mut self, _action: Action, _page: usize) -> Option<Message> {
        None
    }

    /// Esc inside the pane; false when the pane has nothing to step back from.
    fn back(&mut self) -> bool {
        false
    }

    fn render(&self, frame: &mut Frame, area: Rect, focused: bool, ctx: &Ctx<'_>);
}
