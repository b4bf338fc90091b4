//! The console's state and its update function: keys and core events in, [`Command`]s out.
//! Nothing here touches the terminal or the core; the loop in `app.rs` does.
//!
//! [`update`] handles messages; [`replies`] fills the panes from the core's answers;
//! [`events`] follows core events; [`registry`] says which pane answers for what.

mod events;
mod registry;
mod replies;
mod update;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{KeyEvent, KeyEventKind};

use super::keymap::{Action, Context, Keymap};
use super::message::{Command, MainPane, Message, Screen, Target};
use super::overlays::{Outcome, Overlay, notice};
use super::panes::{
    approvals::ApprovalsPane, audit::AuditPane, blackboard::BlackboardPane, health::HealthPane,
    memory::MemoryPane, metrics::MetricsPane, objects::ObjectsPane, queue::QueuePane,
    run_detail::RunDetailPane, runs::RunsPane,
};
use super::theme::Theme;
use crate::protocol::Op;

/// Below this the console shows a message instead of a squeezed layout.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 16;
const FLASH_FOR: Duration = Duration::from_secs(6);

/// A short message in the status bar.
#[derive(Debug, Clone)]
pub struct Flash {
    pub text: String,
    pub error: bool,
    pub until: Instant,
}

pub struct App {
    pub workspace: String,
    pub recovery_dir: Option<PathBuf>,
    pub keymap: Keymap,
    pub theme: Theme,
    pub size: (u16, u16),
    pub screen: Screen,
    pub focus: MainPane,
    pub queue: QueuePane,
    pub runs: RunsPane,
    pub memory: MemoryPane,
    pub approvals: ApprovalsPane,
    pub audit: AuditPane,
    pub objects: ObjectsPane,
    pub blackboard: BlackboardPane,
    pub metrics: MetricsPane,
    pub health: HealthPane,
    pub run_detail: RunDetailPane,
    pub overlay: Option<Overlay>,
    pub model_state: String,
    pub flash: Option<Flash>,
    pub quitting: bool,
    out: Vec<Command>,
    next_seq: u64,
    latest: HashMap<&'static str, u64>,
    /// Targets that changed while a load was in flight: reload once it lands.
    stale: Vec<Target>,
}

impl App {
    pub fn new(
        workspace: String,
        recovery_dir: Option<PathBuf>,
        keymap: Keymap,
        theme: Theme,
    ) -> Self {
        App {
            workspace,
            recovery_dir,
            keymap,
            theme,
            size: (100, 30),
            screen: Screen::Main,
            focus: MainPane::Queue,
            queue: QueuePane::default(),
            runs: RunsPane::default(),
            memory: MemoryPane::default(),
            approvals: ApprovalsPane::default(),
            audit: AuditPane::default(),
            objects: ObjectsPane::default(),
            blackboard: BlackboardPane::default(),
            metrics: MetricsPane::default(),
            health: HealthPane::default(),
            run_detail: RunDetailPane::default(),
            overlay: None,
            model_state: "unknown".into(),
            flash: None,
            quitting: false,
            out: Vec::new(),
            next_seq: 1,
            latest: HashMap::new(),
            stale: Vec::new(),
        }
    }

    /// The first loads: the main screen and the status bar.
    pub fn start(&mut self) -> Vec<Command> {
        for t in [
            Target::Tasks,
            Target::Runs,
            Target::Approvals,
            Target::Metrics,
            Target::Health,
        ] {
            self.load(t);
        }
        self.take()
    }

    fn take(&mut self) -> Vec<Command> {
        std::mem::take(&mut self.out)
    }

    pub fn too_small(&self) -> bool {
        self.size.0 < MIN_WIDTH || self.size.1 < MIN_HEIGHT
    }

    /// Rows a page key moves.
    fn page(&self) -> usize {
        usize::from((self.size.1 / 2).max(3)) - 2
    }

    pub fn resize(&mut self, w: u16, h: u16) {
        self.size = (w, h);
    }

    // ---- keys ------------------------------------------------------------------------

    pub fn on_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.kind == KeyEventKind::Release {
            return Vec::new();
        }
        if let Some(mut overlay) = self.overlay.take() {
            let outcome = match &mut overlay {
                Overlay::Help(h) => h.on_key(&key),
                Overlay::Palette(p) => p.on_key(&key),
                Overlay::Confirm(c) => c.on_key(&key),
                Overlay::Input(i) => i.on_key(&key),
                Overlay::Editor(e) => e.on_key(&key, &self.keymap),
                Overlay::Notice(_) => notice::Notice::on_key(&key),
            };
            match outcome {
                Outcome::Keep => self.overlay = Some(overlay),
                Outcome::Close => {}
                Outcome::Emit(m) => self.update(m),
            }
            return self.take();
        }
        if self.too_small() {
            if self.keymap.resolve(&[Context::Global], &key) == Some(Action::Quit) {
                self.update(Message::Quit);
            }
            return self.take();
        }
        if let Some(action) = self.keymap.resolve(&self.contexts(), &key) {
            self.perform(action);
        }
        self.take()
    }

    /// The mouse is optional (`KEEL_MOUSE=1`): the wheel moves the selection.
    pub fn on_mouse(&mut self, event: crossterm::event::MouseEvent) -> Vec<Command> {
        use crossterm::event::MouseEventKind;
        if self.overlay.is_none() && !self.too_small() {
            match event.kind {
                MouseEventKind::ScrollUp => self.perform(Action::Up),
                MouseEventKind::ScrollDown => self.perform(Action::Down),
                _ => {}
            }
        }
        self.take()
    }

    /// Binding lookup order for the current screen and focus.
    pub fn contexts(&self) -> Vec<Context> {
        self.focused_pane()
            .context()
            .into_iter()
            .chain([Context::List, Context::Global])
            .collect()
    }

    /// Does `action` where it belongs (the palette may name an action of another pane).
    fn perform(&mut self, action: Action) {
        if let Some(m) = self.global(action) {
            self.update(m);
            return;
        }
        match action.context() {
            Context::Queue => self.show_main(MainPane::Queue),
            Context::Approvals => self.show_main(MainPane::Approvals),
            Context::Runs if self.screen != Screen::Run => self.show_main(MainPane::Runs),
            Context::Audit if self.screen != Screen::Audit => {
                self.update(Message::Show(Screen::Audit));
            }
            Context::Objects if self.screen != Screen::Objects => {
                self.update(Message::Show(Screen::Objects));
            }
            _ => {}
        }
        let page = self.page();
        let message = self.focused_pane_mut().on_action(action, page);
        if let Some(m) = message {
            self.update(m);
        }
    }

    fn show_main(&mut self, pane: MainPane) {
        self.screen = Screen::Main;
        self.focus = pane;
    }

    fn global(&self, action: Action) -> Option<Message> {
        Some(match action {
            Action::Quit => Message::Quit,
            Action::Help => Message::Help,
            Action::Palette => Message::Palette,
            Action::Filter => Message::Filter,
            Action::NextPane => Message::FocusNext,
            Action::PrevPane => Message::FocusPrev,
            Action::Back => Message::Back,
            Action::Refresh => Message::Refresh,
            Action::ToggleQueue => {
                let paused = self.health.data.as_ref().is_some_and(|h| h.queue_paused);
                let op = if paused {
                    Op::ResumeQueue
                } else {
                    Op::PauseQueue
                };
                let label = if paused {
                    "resume queue"
                } else {
                    "pause queue"
                };
                Message::Send {
                    label: label.into(),
                    ops: vec![op],
                    cleanup: None,
                }
            }
            Action::ScreenMain => Message::Show(Screen::Main),
            Action::ScreenAudit => Message::Show(Screen::Audit),
            Action::ScreenObjects => Message::Show(Screen::Objects),
            Action::ScreenBlackboard => Message::Show(Screen::Blackboard),
            Action::ScreenMetrics => Message::Show(Screen::Metrics),
            Action::ScreenHealth => Message::Show(Screen::Health),
            Action::ScreenRun => match self.runs.selected_id() {
                Some(id) if self.run_detail.id.as_deref() != Some(&id) => Message::OpenRun(id),
                _ => Message::Show(Screen::Run),
            },
            _ => return None,
        })
    }

    // ---- flash ------------------------------------------------------------------------

    fn flash_info(&mut self, text: String) {
        self.flash = Some(Flash {
            text,
            error: false,
            until: Instant::now() + FLASH_FOR,
        });
    }

    fn flash_error(&mut self, text: String) {
        self.flash = Some(Flash {
            text,
            error: true,
            until: Instant::now() + FLASH_FOR * 2,
        });
    }

    pub fn flash_deadline(&self) -> Option<Instant> {
        self.flash.as_ref().map(|f| f.until)
    }

    pub fn expire_flash(&mut self, now: Instant) {
        if self.flash.as_ref().is_some_and(|f| f.until <= now) {
            self.flash = None;
        }
    }
}

/// A file-name-safe form of an id.
fn safe_name(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
