//! Key bindings from TOML: `assets/keymap.toml` is the default, `<workspace>/keymap.toml`
//! overrides single actions. Keys resolve to an [`Action`] within a [`Context`]; help and
//! the command palette are generated from the same table.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub const DEFAULT_TOML: &str = include_str!("../../assets/keymap.toml");

/// Where a binding applies. Lookups try the most specific context first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Context {
    Global,
    List,
    Queue,
    Runs,
    Approvals,
    Audit,
    Objects,
    Editor,
}

impl Context {
    pub const ALL: [Context; 8] = [
        Context::Global,
        Context::List,
        Context::Queue,
        Context::Runs,
        Context::Approvals,
        Context::Audit,
        Context::Objects,
        Context::Editor,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Context::Global => "global",
            Context::List => "list",
            Context::Queue => "queue",
            Context::Runs => "runs",
            Context::Approvals => "approvals",
            Context::Audit => "audit",
            Context::Objects => "objects",
            Context::Editor => "editor",
        }
    }
}

macro_rules! actions {
    ($($variant:ident => ($ctx:ident, $name:literal, $desc:literal)),* $(,)?) => {
        /// Everything the operator can do from the keyboard or the palette.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Action { $($variant),* }

        impl Action {
            pub const ALL: &'static [Action] = &[$(Action::$variant),*];
            pub fn context(self) -> Context { match self { $(Action::$variant => Context::$ctx),* } }
            pub fn name(self) -> &'static str { match self { $(Action::$variant => $name),* } }
            pub fn description(self) -> &'static str { match self { $(Action::$variant => $desc),* } }
        }
    };
}

actions! {
    Quit => (Global, "quit", "Quit the console"),
    Help => (Global, "help", "Show this help"),
    Palette => (Global, "palette", "Command palette"),
    Filter => (Global, "filter", "Filter the focused list"),
    NextPane => (Global, "next_pane", "Focus the next pane"),
    PrevPane => (Global, "prev_pane", "Focus the previous pane"),
    Back => (Global, "back", "Back / close"),
    Refresh => (Global, "refresh", "Reload what is shown"),
    ToggleQueue => (Global, "toggle_queue", "Pause or resume the queue"),
    ScreenMain => (Global, "screen_main", "Main screen: queue, runs, memory, approvals"),
    ScreenAudit => (Global, "screen_audit", "Audit timeline"),
    ScreenObjects => (Global, "screen_objects", "Objects: browse, history, diff, revert"),
    ScreenBlackboard => (Global, "screen_blackboard", "Blackboard findings"),
    ScreenMetrics => (Global, "screen_metrics", "Metrics: cost and value"),
    ScreenHealth => (Global, "screen_health", "Health: model, providers, schedules"),
    ScreenRun => (Global, "screen_run", "Run detail of the selected run"),
    Up => (List, "up", "Move up"),
    Down => (List, "down", "Move down"),
    PageUp => (List, "page_up", "Page up"),
    PageDown => (List, "page_down", "Page down"),
    Top => (List, "top", "Go to the first row"),
    Bottom => (List, "bottom", "Go to the last row"),
    Open => (List, "open", "Open the selected row"),
    RetryTask => (Queue, "retry_task", "Retry the selected task"),
    CancelTask => (Queue, "cancel_task", "Cancel the selected task"),
    RunNow => (Queue, "run_now", "Run the selected background task now"),
    DecideTriage => (Queue, "decide_triage", "Route an escalated triage item; learns the label"),
    RetryRun => (Runs, "retry_run", "Retry the selected run's task"),
    CancelRun => (Runs, "cancel_run", "Cancel the selected run's task"),
    ReplayRun => (Runs, "replay_run", "Replay the selected run exactly"),
    Approve => (Approvals, "approve", "Approve the selected (or marked) items"),
    ApproveAlways => (Approvals, "approve_always", "Approve and always allow this kind of decision"),
    Reject => (Approvals, "reject", "Reject with a reason"),
    Edit => (Approvals, "edit", "Edit the draft, then approve"),
    Mark => (Approvals, "mark", "Mark for a batch decision"),
    MarkAll => (Approvals, "mark_all", "Mark or unmark every loaded item"),
    Verify => (Audit, "verify", "Verify the audit chain"),
    Export => (Audit, "export", "Export the audit log (shows the command)"),
    Jump => (Audit, "jump", "Jump to the entry's run, object or approval"),
    Order => (Audit, "order", "Show the timeline oldest or newest first"),
    Diff => (Objects, "diff", "Diff the selected version against the latest"),
    Revert => (Objects, "revert", "Revert the object to the selected version"),
    Archived => (Objects, "archived", "Show or hide archived objects"),
    Save => (Editor, "save", "Save: review the diff, then approve"),
    Cancel => (Editor, "cancel", "Cancel editing (asks before losing edits)"),
    Undo => (Editor, "undo", "Undo"),
    Redo => (Editor, "redo", "Redo"),
    Search => (Editor, "search", "Search (regular expression)"),
    NextMatch => (Editor, "next_match", "Next search match"),
    PrevMatch => (Editor, "prev_match", "Previous search match"),
    Wrap => (Editor, "wrap", "Toggle line wrapping"),
}

/// A key with the modifiers that matter (shift is part of the character).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeySpec {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

impl KeySpec {
    pub fn from_event(ev: &KeyEvent) -> Self {
        let code = match ev.code {
            KeyCode::Char(c) if ev.modifiers.contains(KeyModifiers::CONTROL) => {
                KeyCode::Char(c.to_ascii_lowercase())
            }
            KeyCode::Tab if ev.modifiers.contains(KeyModifiers::SHIFT) => KeyCode::BackTab,
            other => other,
        };
        KeySpec {
            code,
            ctrl: ev.modifiers.contains(KeyModifiers::CONTROL),
            alt: ev.modifiers.contains(KeyModifiers::ALT),
        }
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = text;
        loop {
            if let Some(r) = rest.strip_prefix("ctrl-").filter(|r| !r.is_empty()) {
                ctrl = true;
                rest = r;
            } else if let Some(r) = rest.strip_prefix("alt-").filter(|r| !r.is_empty()) {
                alt = true;
                rest = r;
            } else {
                break;
            }
        }
        let code = match rest {
            "enter" => KeyCode::Enter,
            "esc" => KeyCode::Esc,
            "tab" => KeyCode::Tab,
            "backtab" => KeyCode::BackTab,
            "space" => KeyCode::Char(' '),
            "backspace" => KeyCode::Backspace,
            "delete" => KeyCode::Delete,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pageup" => KeyCode::PageUp,
            "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            f if f.len() > 1 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse::<u8>().unwrap_or(1))
            }
            c if c.chars().count() == 1 => {
                let ch = c.chars().next().unwrap_or(' ');
                KeyCode::Char(if ctrl { ch.to_ascii_lowercase() } else { ch })
            }
            other => return Err(format!("unknown key {other:?}")),
        };
        Ok(KeySpec { code, ctrl, alt })
    }
}

impl fmt::Display for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("ctrl-")?;
        }
        if self.alt {
            f.write_str("alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("enter"),
            KeyCode::Esc => f.write_str("esc"),
            KeyCode::Tab => f.write_str("tab"),
            KeyCode::BackTab => f.write_str("shift-tab"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("pgup"),
            KeyCode::PageDown => f.write_str("pgdn"),
            KeyCode::Home => f.write_str("home"),
            KeyCode::End => f.write_str("end"),
            KeyCode::F(n) => write!(f, "f{n}"),
            other => write!(f, "{other:?}"),
        }
    }
}

/// The effective bindings.
#[derive(Debug, Clone)]
pub struct Keymap {
    by_key: HashMap<(Context, KeySpec), Action>,
    keys: HashMap<Action, Vec<KeySpec>>,
}

impl Keymap {
    /// The built-in default.
    pub fn default_map() -> Self {
        // The default ships with the binary and is covered by a test.
        Self::from_toml(DEFAULT_TOML, None, "assets/keymap.toml").unwrap_or_else(|_| Keymap {
            by_key: HashMap::new(),
            keys: HashMap::new(),
        })
    }

    /// The default plus `<workspace>/keymap.toml` when present.
    pub fn load(workspace: &Path) -> anyhow::Result<Self> {
        let path = workspace.join("keymap.toml");
        if !path.exists() {
            return Ok(Self::default_map());
        }
        let text = std::fs::read_to_string(&path)?;
        Ok(Self::from_toml(
            DEFAULT_TOML,
            Some(&text),
            &path.display().to_string(),
        )?)
    }

    /// Builds the map from the default text and an optional override text.
    pub fn from_toml(
        default: &str,
        overlay: Option<&str>,
        file: &str,
    ) -> crate::core::Result<Self> {
        let mut keys: HashMap<Action, Vec<KeySpec>> = HashMap::new();
        let mut apply = |text: &str, file: &str| -> crate::core::Result<()> {
            let table: toml::Table = crate::core::toml_text::parse(text, Path::new(file))?;
            for (ctx_name, actions) in &table {
                let Some(ctx) = Context::ALL.iter().find(|c| c.name() == ctx_name) else {
                    return Err(crate::core::Error::Other(format!(
                        "{file}: unknown section [{ctx_name}]"
                    )));
                };
                let Some(actions) = actions.as_table() else {
                    continue;
                };
                for (name, list) in actions {
                    let action = Action::ALL
                        .iter()
                        .find(|a| a.context() == *ctx && a.name() == name)
                        .ok_or_else(|| {
                            crate::core::Error::Other(format!(
                                "{file}: unknown action {ctx_name}.{name}"
                            ))
                        })?;
                    let specs = list
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(toml::Value::as_str)
                        .map(KeySpec::parse)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| {
                            crate::core::Error::Other(format!("{file}: {ctx_name}.{name}: {e}"))
                        })?;
                    keys.insert(*action, specs);
                }
            }
            Ok(())
        };
        apply(default, "assets/keymap.toml")?;
        if let Some(text) = overlay {
            apply(text, file)?;
        }
        let mut by_key = HashMap::new();
        for (action, specs) in &keys {
            for spec in specs {
                by_key.insert((action.context(), *spec), *action);
            }
        }
        Ok(Keymap { by_key, keys })
    }

    /// The action bound to `key` in the first of `contexts` that binds it.
    pub fn resolve(&self, contexts: &[Context], key: &KeyEvent) -> Option<Action> {
        let spec = KeySpec::from_event(key);
        contexts
            .iter()
            .find_map(|ctx| self.by_key.get(&(*ctx, spec)).copied())
    }

    /// The keys bound to `action`, for help and hints.
    pub fn keys(&self, action: Action) -> &[KeySpec] {
        self.keys.get(&action).map_or(&[], Vec::as_slice)
    }

    /// `"a"` or `"j/↓"` — the keys of an action for display.
    pub fn label(&self, action: Action) -> String {
        let keys = self.keys(action);
        if keys.is_empty() {
            return "—".into();
        }
        keys.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("/")
    }
}
