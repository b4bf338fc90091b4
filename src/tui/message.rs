//! Messages (what a widget asks for) and commands (what the loop must do). Widgets never
//! talk to the core: they return a [`Message`]; the app turns messages into [`Command`]s.

use std::path::PathBuf;

use crate::protocol::Op;

use super::keymap::Action;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Screen {
    Main,
    Audit,
    Objects,
    Blackboard,
    Metrics,
    Health,
    Run,
}

impl Screen {
    pub const ALL: [Screen; 7] = [
        Screen::Main,
        Screen::Audit,
        Screen::Objects,
        Screen::Blackboard,
        Screen::Metrics,
        Screen::Health,
        Screen::Run,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Screen::Main => "Main",
            Screen::Audit => "Audit",
            Screen::Objects => "Objects",
            Screen::Blackboard => "Blackboard",
            Screen::Metrics => "Metrics",
            Screen::Health => "Health",
            Screen::Run => "Run",
        }
    }
}

/// The four panes of the main screen, in Tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MainPane {
    Queue,
    Runs,
    Memory,
    Approvals,
}

impl MainPane {
    pub const ORDER: [MainPane; 4] = [
        MainPane::Queue,
        MainPane::Runs,
        MainPane::Memory,
        MainPane::Approvals,
    ];
}

/// How the audit window moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditFetch {
    /// From the newest entry matching the filter.
    Reset,
    /// The page after the loaded window (older entries).
    Older,
    /// The page before the loaded window (newer entries).
    Newer,
    /// The oldest entries matching the filter (the end of the timeline).
    Oldest,
}

/// What a pending request's answer fills in.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Tasks,
    Runs,
    Memory,
    Approvals,
    Audit(AuditFetch),
    AuditVerify,
    Objects,
    History,
    Diff,
    Blackboard,
    Metrics,
    Health,
    RunDetail,
    /// An operator action; `cleanup` is removed once the core accepted it (a recovery file).
    Action {
        label: String,
        cleanup: Option<PathBuf>,
    },
}

impl Target {
    /// Requests with the same key supersede each other (older answers are dropped).
    pub fn key(&self) -> &'static str {
        match self {
            Target::Tasks => "tasks",
            Target::Runs => "runs",
            Target::Memory => "memory",
            Target::Approvals => "approvals",
            Target::Audit(_) => "audit",
            Target::AuditVerify => "audit_verify",
            Target::Objects => "objects",
            Target::History => "history",
            Target::Diff => "diff",
            Target::Blackboard => "blackboard",
            Target::Metrics => "metrics",
            Target::Health => "health",
            Target::RunDetail => "run_detail",
            Target::Action { .. } => "action",
        }
    }
}

/// What a pane or overlay asks the app to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// State changed locally; just redraw.
    Redraw,
    Quit,
    FocusNext,
    FocusPrev,
    Show(Screen),
    Help,
    Palette,
    Filter,
    /// Apply a filter typed for the focused list.
    SetFilter(String),
    Back,
    Refresh,
    /// (Re)load what a pane shows.
    Load(Target),
    /// Send operator actions to the core.
    Send {
        label: String,
        ops: Vec<Op>,
        cleanup: Option<PathBuf>,
    },
    /// Ask first, then do `then`.
    Confirm {
        title: String,
        lines: Vec<String>,
        then: Box<Message>,
    },
    /// Ask the operator where an escalated triage item goes.
    AskLabel {
        task: String,
    },
    AskReason {
        ids: Vec<String>,
    },
    EditDraft {
        id: String,
    },
    OpenRun(String),
    /// Jump to what an audit subject or actor names.
    Jump(String),
    Notice {
        title: String,
        lines: Vec<String>,
    },
    Flash(String),
    /// Perform an action chosen in the palette.
    Perform(Action),
}

/// What the event loop must do.
// Almost every command is a request; boxing its op would allocate on every key for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Request { target: Target, seq: u64, op: Op },
    Quit,
}
