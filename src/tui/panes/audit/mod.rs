//! The audit timeline: newest first, paged by sequence number (keyset paging, so a log of
//! a million entries costs one page per move), filtered by actor, agent, object, action and
//! time; jumps to the run, object or approval an entry names; chain verification.
//!
//! - [`window`] — the loaded pages and the queries that move them.
//! - [`keys`] — what a key does to the selection and which page it fetches.
//! - [`filter`] — the filter language and the export command it becomes.
//! - [`verify`] — chain verification and its status line.
//! - [`render`] — the timeline and the selected entry.

mod filter;
mod keys;
mod render;
mod verify;
mod window;

pub use verify::{Verify, VerifyState};
pub use window::{PAGE, Window};

use ratatui::Frame;
use ratatui::layout::Rect;

use super::Ctx;
use super::pane::Pane;
use crate::protocol::{AuditEntry as Entry, AuditFilter as Filter};
use crate::tui::keymap::{Action, Context};
use crate::tui::message::{AuditFetch, Message, Target};

#[derive(Debug)]
#[allow(clippy::struct_excessive_bools)] // independent flags of one list's state
pub struct AuditPane {
    pub filter: Filter,
    pub filter_text: String,
    /// `before_seq` cursor of every page reached so far (page 0 has none).
    pub cursors: Vec<Option<i64>>,
    /// Index of the first loaded page and the length of each loaded page.
    pub first_page: usize,
    pub page_lens: Vec<usize>,
    pub entries: Vec<Entry>,
    pub selected: usize,
    /// The last page came back short: nothing older matches.
    pub exhausted: bool,
    pub loading: bool,
    pub loaded_once: bool,
    pub error: Option<String>,
    pub verify: VerifyState,
    /// Rows a key asked to move past the loaded window; applied when the page lands.
    carry: usize,
    /// Show the window oldest first (a log read top to bottom); the cursor starts newest.
    pub oldest_first: bool,
    /// After a jump to the oldest entries: how far the window is from the newest is not
    /// known, so newer pages are fetched by `after_seq` until one comes back short.
    pub top_unknown: bool,
}

impl Default for AuditPane {
    fn default() -> Self {
        AuditPane {
            filter: Filter::default(),
            filter_text: String::new(),
            cursors: vec![None],
            first_page: 0,
            page_lens: Vec::new(),
            entries: Vec::new(),
            selected: 0,
            exhausted: false,
            loading: false,
            loaded_once: false,
            error: None,
            verify: VerifyState::NotRun,
            carry: 0,
            oldest_first: false,
            top_unknown: false,
        }
    }
}

impl AuditPane {
    pub fn selected_entry(&self) -> Option<&Entry> {
        self.entries.get(self.selected)
    }

    /// The window's source for a move in direction `fetch`.
    pub fn window(&mut self, fetch: AuditFetch) -> Window<'_> {
        Window { pane: self, fetch }
    }

    /// The chain verification's source.
    pub fn verifier(&mut self) -> Verify<'_> {
        Verify(self)
    }
}

impl Pane for AuditPane {
    fn context(&self) -> Option<Context> {
        Some(Context::Audit)
    }

    fn shows(&self) -> Vec<Target> {
        vec![Target::Audit(AuditFetch::Reset)]
    }

    fn on_show(&self) -> Option<Target> {
        (!self.loaded_once && !self.loading).then_some(Target::Audit(AuditFetch::Reset))
    }

    fn filter_hint(&self) -> Option<&'static str> {
        Some("actor:operator agent:RUN object:draft/x action:task.* since:2026-11-01 until:…")
    }

    fn filter(&self) -> &str {
        &self.filter_text
    }

    fn set_filter(&mut self, text: String) -> Result<Option<Target>, String> {
        self.filter = filter::parse(&text)?;
        self.filter_text = text;
        self.selected = 0;
        Ok(Some(Target::Audit(AuditFetch::Reset)))
    }

    fn actions(&self) -> &'static [(Action, &'static str)] {
        &[
            (Action::Jump, "jump"),
            (Action::Verify, "verify"),
            (Action::Export, "export"),
            (Action::Order, "order"),
        ]
    }

    fn on_action(&mut self, action: Action, page: usize) -> Option<Message> {
        keys::on_action(self, action, page)
    }

    fn render(&self, frame: &mut Frame, area: Rect, _focused: bool, ctx: &Ctx<'_>) {
        render::timeline(self, frame, area, ctx);
    }
}

/// What an entry points at: its subject, or the run of an agent actor.
pub fn jump_target(e: &Entry) -> String {
    if e.subject.is_empty()
        && let Some(run) = e.actor.strip_prefix("agent:")
    {
        return format!("run/{run}");
    }
    e.subject.clone()
}
