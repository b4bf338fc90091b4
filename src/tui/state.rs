//! The console's state and its update function: keys and core events in, [`Command`]s out.
//! Nothing here touches the terminal or the core; the loop in `app.rs` does.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crossterm::event::{KeyEvent, KeyEventKind};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::keymap::{Action, Context, Keymap};
use super::message::{AuditFetch, Command, MainPane, Message, Screen, Target};
use super::overlays::{Outcome, Overlay, confirm, editor, help, input, notice, palette};
use super::panes::audit::{AuditPane, VerifyState};
use super::panes::{
    approvals::ApprovalsPane, blackboard::BlackboardPane, health::HealthPane, memory::MemoryPane,
    metrics::MetricsPane, objects::ObjectsPane, queue::QueuePane, run_detail::RunDetailPane,
    runs::RunsPane,
};
use super::theme::Theme;
use crate::protocol::{Event, Health, Metrics, Op, Page, Query};

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
        let specific = match self.screen {
            Screen::Main => match self.focus {
                MainPane::Queue => Some(Context::Queue),
                MainPane::Runs => Some(Context::Runs),
                MainPane::Approvals => Some(Context::Approvals),
                MainPane::Memory => None,
            },
            Screen::Audit => Some(Context::Audit),
            Screen::Objects => Some(Context::Objects),
            Screen::Run => Some(Context::Runs),
            _ => None,
        };
        specific
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
        let message = match self.screen {
            Screen::Main => match self.focus {
                MainPane::Queue => self.queue.on_action(action, page),
                MainPane::Runs => self.runs.on_action(action, page),
                MainPane::Memory => self.memory.on_action(action, page),
                MainPane::Approvals => self.approvals.on_action(action, page),
            },
            Screen::Audit => self.audit.on_action(action, page),
            Screen::Objects => self.objects.on_action(action, page),
            Screen::Blackboard => self.blackboard.on_action(action, page),
            Screen::Run => self.run_detail.on_action(action, page),
            Screen::Metrics => self.metrics.on_action(action, page),
            Screen::Health => None,
        };
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

    // ---- messages --------------------------------------------------------------------

    /// Handles a message and returns what the loop must do (for callers outside a key press).
    pub fn dispatch(&mut self, message: Message) -> Vec<Command> {
        self.update(message);
        self.take()
    }

    pub fn update(&mut self, message: Message) {
        match message {
            Message::Redraw => self.after_move(),
            Message::Quit => {
                self.quitting = true;
                self.out.push(Command::Quit);
            }
            Message::FocusNext | Message::FocusPrev => {
                if self.screen == Screen::Main {
                    let order = MainPane::ORDER;
                    let i = order.iter().position(|p| *p == self.focus).unwrap_or(0);
                    let n = order.len();
                    let next = if message == Message::FocusNext {
                        (i + 1) % n
                    } else {
                        (i + n - 1) % n
                    };
                    self.focus = order[next];
                } else if self.screen == Screen::Objects {
                    self.objects.in_history =
                        !self.objects.in_history && self.objects.open.is_some();
                }
            }
            Message::Show(screen) => self.show(screen),
            Message::Help => self.overlay = Some(Overlay::Help(help::Help::default())),
            Message::Palette => self.overlay = Some(Overlay::Palette(palette::Palette::default())),
            Message::Filter => self.open_filter(),
            Message::SetFilter(text) => self.set_filter(text),
            Message::Back => self.back(),
            Message::Refresh => self.refresh_visible(),
            Message::Load(target) => self.load(target),
            Message::Send {
                label,
                ops,
                cleanup,
            } => {
                let n = ops.len();
                for (i, op) in ops.into_iter().enumerate() {
                    // Only the last op of a batch removes the recovery file.
                    let cleanup = if i + 1 == n { cleanup.clone() } else { None };
                    self.request(
                        Target::Action {
                            label: label.clone(),
                            cleanup,
                        },
                        op,
                    );
                }
                self.flash_info(format!("{label}: sent"));
            }
            Message::Confirm { title, lines, then } => {
                self.overlay = Some(Overlay::Confirm(confirm::Confirm {
                    title,
                    lines,
                    then: *then,
                }));
            }
            Message::AskReason { ids } => {
                self.overlay = Some(Overlay::Input(input::Input::reject(ids)));
            }
            Message::EditDraft { id } => self.open_editor(&id),
            Message::OpenRun(id) => {
                self.run_detail = RunDetailPane {
                    id: Some(id),
                    ..RunDetailPane::default()
                };
                self.screen = Screen::Run;
                self.load(Target::RunDetail);
            }
            Message::Jump(subject) => self.jump(&subject),
            Message::Notice { title, lines } => {
                self.overlay = Some(Overlay::Notice(notice::Notice { title, lines }));
            }
            Message::Flash(text) => self.flash_info(text),
            Message::Perform(action) => self.perform(action),
        }
    }

    /// After the selection moved: follow-up loads (the memory of the selected run).
    fn after_move(&mut self) {
        let run = self.runs.selected_id();
        if run != self.memory.run {
            self.memory.run = run;
            self.memory.all.clear();
            self.memory.list = super::paged::Paged {
                filter: self.memory.list.filter.clone(),
                ..Default::default()
            };
            if self.memory.run.is_some() {
                self.load(Target::Memory);
            }
        }
    }

    fn show(&mut self, screen: Screen) {
        self.screen = screen;
        match screen {
            Screen::Audit if !self.audit.loaded_once && !self.audit.loading => {
                self.load(Target::Audit(AuditFetch::Reset));
            }
            Screen::Objects if !self.objects.list.loaded_once && !self.objects.list.loading => {
                self.load(Target::Objects);
            }
            Screen::Blackboard
                if !self.blackboard.list.loaded_once && !self.blackboard.list.loading =>
            {
                self.load(Target::Blackboard);
            }
            Screen::Metrics => self.load(Target::Metrics),
            Screen::Health => self.load(Target::Health),
            _ => {}
        }
    }

    fn back(&mut self) {
        if self.screen == Screen::Objects && self.objects.back() {
            return;
        }
        if self.screen != Screen::Main {
            self.screen = Screen::Main;
        }
    }

    fn open_filter(&mut self) {
        let (current, hint) = match (self.screen, self.focus) {
            (Screen::Main, MainPane::Queue) => (
                self.queue.list.filter.clone(),
                "Words in the title; state:failed narrows by state.",
            ),
            (Screen::Main, MainPane::Runs) => (
                self.runs.list.filter.clone(),
                "task:ID shows the runs of one task.",
            ),
            (Screen::Main, MainPane::Memory) => (
                self.memory.list.filter.clone(),
                "Words in the item, kind or preview.",
            ),
            (Screen::Main, MainPane::Approvals) => (
                self.approvals.list.filter.clone(),
                "Words in the action, agent, target or summary.",
            ),
            (Screen::Audit, _) => (
                self.audit.filter_text.clone(),
                "actor:operator agent:RUN object:draft/x action:task.* since:2026-11-01 until:…",
            ),
            (Screen::Objects, _) => (
                self.objects.list.filter.clone(),
                "Words in the title; kind:draft narrows by kind.",
            ),
            (Screen::Blackboard, _) => (self.blackboard.list.filter.clone(), "A topic."),
            _ => {
                self.flash_info("Nothing to filter here.".into());
                return;
            }
        };
        self.overlay = Some(Overlay::Input(input::Input::filter(&current, hint)));
    }

    fn set_filter(&mut self, text: String) {
        match (self.screen, self.focus) {
            (Screen::Main, MainPane::Queue) => {
                self.queue.list = super::paged::Paged {
                    filter: text,
                    ..Default::default()
                };
                self.load(Target::Tasks);
            }
            (Screen::Main, MainPane::Runs) => {
                self.runs.list = super::paged::Paged {
                    filter: text,
                    ..Default::default()
                };
                self.load(Target::Runs);
            }
            (Screen::Main, MainPane::Memory) => {
                self.memory.list.filter = text;
                self.memory.list.selected = 0;
                self.memory.apply_filter();
            }
            (Screen::Main, MainPane::Approvals) => {
                self.approvals.list.filter = text;
                self.approvals.list.selected = 0;
                self.approvals.apply_filter();
            }
            (Screen::Audit, _) => match self.audit.set_filter(&text) {
                Ok(()) => self.load(Target::Audit(AuditFetch::Reset)),
                Err(e) => self.flash_error(e),
            },
            (Screen::Objects, _) => {
                self.objects.list = super::paged::Paged {
                    filter: text,
                    ..Default::default()
                };
                self.load(Target::Objects);
            }
            (Screen::Blackboard, _) => {
                self.blackboard.list = super::paged::Paged {
                    filter: text,
                    ..Default::default()
                };
                self.load(Target::Blackboard);
            }
            _ => {}
        }
    }

    fn open_editor(&mut self, id: &str) {
        let Some(a) = self.approvals.all.iter().find(|a| a.id == id) else {
            self.flash_error(format!("approval {id} is no longer pending"));
            return;
        };
        let Some(body) = a.proposed_body.clone() else {
            self.flash_error("This decision has no draft to edit; approve or reject it.".into());
            return;
        };
        let title = format!("{} {}", a.action, a.target);
        let recovery = self
            .recovery_dir
            .as_ref()
            .map(|d| d.join(format!("approval-{}.txt", safe_name(id))));
        let editor = editor::Editor::open(id, &title, body, recovery, &self.theme);
        if let Some(note) = &editor.note {
            self.flash_info(note.clone());
        }
        self.overlay = Some(Overlay::Editor(Box::new(editor)));
    }

    /// Jumps to what an audit entry's subject names.
    fn jump(&mut self, subject: &str) {
        let (kind, rest) = subject.split_once('/').unwrap_or((subject, ""));
        match kind {
            "run" if !rest.is_empty() => self.update(Message::OpenRun(rest.to_string())),
            "task" if !rest.is_empty() => {
                self.show_main(MainPane::Queue);
                self.queue.list = super::paged::Paged {
                    filter: rest.to_string(),
                    ..Default::default()
                };
                self.load(Target::Tasks);
            }
            "approval" if !rest.is_empty() => {
                self.show_main(MainPane::Approvals);
                if let Some(i) = self.approvals.list.rows.iter().position(|a| a.id == rest) {
                    self.approvals.list.selected = i;
                } else {
                    self.flash_info(format!("approval {rest} is not pending any more"));
                }
            }
            _ if !rest.is_empty() && !kind.is_empty() => {
                self.screen = Screen::Objects;
                self.objects.open = Some((kind.to_string(), rest.to_string()));
                self.objects.in_history = true;
                self.objects.history.clear();
                self.objects.diff = None;
                if !self.objects.list.loaded_once {
                    self.load(Target::Objects);
                }
                self.load(Target::History);
            }
            _ => self.flash_info(format!("Nothing to jump to from {subject:?}.")),
        }
    }

    fn refresh_visible(&mut self) {
        match self.screen {
            Screen::Main => {
                for t in [
                    Target::Tasks,
                    Target::Runs,
                    Target::Approvals,
                    Target::Memory,
                ] {
                    self.load(t);
                }
            }
            Screen::Audit => self.load(Target::Audit(AuditFetch::Reset)),
            Screen::Objects => {
                self.load(Target::Objects);
                self.load(Target::History);
            }
            Screen::Blackboard => self.load(Target::Blackboard),
            Screen::Metrics => self.load(Target::Metrics),
            Screen::Health => self.load(Target::Health),
            Screen::Run => self.load(Target::RunDetail),
        }
        self.load(Target::Health);
    }

    // ---- requests and replies --------------------------------------------------------

    /// Builds the query for `target` from the pane's state and queues it.
    pub fn load(&mut self, target: Target) {
        let op = match &target {
            Target::Tasks => Some(self.queue.query()),
            Target::Runs => Some(self.runs.query()),
            Target::Memory => self.memory.query(),
            Target::Approvals => Some(self.approvals.query()),
            Target::Audit(fetch) => self.audit.query(*fetch),
            Target::AuditVerify => {
                self.audit.verify = VerifyState::Running;
                Some(Op::Query {
                    query: Query::AuditVerify,
                })
            }
            Target::Objects => Some(self.objects.query()),
            Target::History => self.objects.history_query(),
            Target::Diff => self.objects.diff_query(),
            Target::Blackboard => Some(self.blackboard.query()),
            Target::Metrics => Some(Op::Query {
                query: Query::Metrics,
            }),
            Target::Health => Some(Op::Query {
                query: Query::Health,
            }),
            Target::RunDetail => self.run_detail.query(),
            Target::Action { .. } => None,
        };
        if let Some(op) = op {
            self.request(target, op);
        }
    }

    fn request(&mut self, target: Target, op: Op) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.latest.insert(target.key(), seq);
        self.out.push(Command::Request { target, seq, op });
    }

    /// The core answered request `seq`.
    #[allow(clippy::needless_pass_by_value)] // replies arrive owned from the channel
    pub fn on_reply(
        &mut self,
        target: Target,
        seq: u64,
        result: Result<Value, String>,
    ) -> Vec<Command> {
        let superseded = self
            .latest
            .get(target.key())
            .is_some_and(|latest| *latest > seq);
        if superseded && !matches!(target, Target::Action { .. }) {
            return self.take();
        }
        match result {
            Ok(body) => self.fill(&target, body),
            Err(message) => self.fail(&target, message),
        }
        if let Some(i) = self.stale.iter().position(|t| t.key() == target.key()) {
            let t = self.stale.remove(i);
            self.load(t);
        }
        self.take()
    }

    fn fill(&mut self, target: &Target, body: Value) {
        match target {
            Target::Tasks => match parse::<Page<_>>(body) {
                Ok(p) => self.queue.list.fill(p.items, p.total),
                Err(e) => self.queue.list.fail(e),
            },
            Target::Runs => match parse::<Page<_>>(body) {
                Ok(p) => {
                    self.runs.list.fill(p.items, p.total);
                    self.after_move();
                }
                Err(e) => self.runs.list.fail(e),
            },
            Target::Memory => match parse(body) {
                Ok(rows) => self.memory.fill(rows),
                Err(e) => self.memory.list.fail(e),
            },
            Target::Approvals => match parse::<Page<_>>(body) {
                Ok(p) => self.approvals.fill(p.items),
                Err(e) => self.approvals.list.fail(e),
            },
            Target::Audit(fetch) => match parse(body) {
                Ok(entries) => self.audit.fill(*fetch, entries),
                Err(e) => self.audit.fail(e),
            },
            Target::AuditVerify => {
                self.audit.verify = match parse(body) {
                    Ok(v) => VerifyState::Done(v),
                    Err(e) => VerifyState::Failed(e),
                };
            }
            Target::Objects => match parse::<Page<_>>(body) {
                Ok(p) => self.objects.list.fill(p.items, p.total),
                Err(e) => self.objects.list.fail(e),
            },
            Target::History => match parse(body) {
                Ok(rows) => self.objects.fill_history(rows),
                Err(e) => self.objects.history_error = Some(e),
            },
            Target::Diff => match parse::<String>(body) {
                Ok(d) => {
                    self.objects.diff = Some(if d.is_empty() {
                        "(no differences)".into()
                    } else {
                        d
                    });
                    self.objects.diff_error = None;
                }
                Err(e) => self.objects.diff_error = Some(e),
            },
            Target::Blackboard => match parse::<Page<_>>(body) {
                Ok(p) => self.blackboard.list.fill(p.items, p.total),
                Err(e) => self.blackboard.list.fail(e),
            },
            Target::Metrics => match parse::<Metrics>(body) {
                Ok(m) => {
                    self.metrics.data = Some(m);
                    self.metrics.error = None;
                }
                Err(e) => self.metrics.error = Some(e),
            },
            Target::Health => match parse::<Health>(body) {
                Ok(h) => {
                    if self.model_state == "unknown" {
                        self.model_state.clone_from(&h.embedding_model);
                    }
                    self.health.data = Some(h);
                    self.health.error = None;
                }
                Err(e) => self.health.error = Some(e),
            },
            Target::RunDetail => match parse(body) {
                Ok(d) => self.run_detail.fill(d),
                Err(e) => {
                    self.run_detail.loading = false;
                    self.run_detail.error = Some(e);
                }
            },
            Target::Action { label, cleanup } => {
                if let Some(path) = cleanup {
                    let _ = std::fs::remove_file(path);
                }
                self.flash_info(format!("{label}: done"));
                for t in [Target::Approvals, Target::Tasks, Target::Health] {
                    self.load(t);
                }
            }
        }
    }

    /// Errors are shown calmly where the answer would have gone.
    fn fail(&mut self, target: &Target, message: String) {
        match target {
            Target::Tasks => self.queue.list.fail(message),
            Target::Runs => self.runs.list.fail(message),
            Target::Memory => self.memory.list.fail(message),
            Target::Approvals => self.approvals.list.fail(message),
            Target::Audit(_) => self.audit.fail(message),
            Target::AuditVerify => self.audit.verify = VerifyState::Failed(message),
            Target::Objects => self.objects.list.fail(message),
            Target::History => self.objects.history_error = Some(message),
            Target::Diff => self.objects.diff_error = Some(message),
            Target::Blackboard => self.blackboard.list.fail(message),
            Target::Metrics => self.metrics.error = Some(message),
            Target::Health => self.health.error = Some(message),
            Target::RunDetail => {
                self.run_detail.loading = false;
                self.run_detail.error = Some(message);
            }
            Target::Action { label, .. } => {
                tracing::warn!(action = %label, error = %message, "the core refused an operator action");
                self.flash_error(format!("{label}: {message}"));
            }
        }
    }

    // ---- core events -----------------------------------------------------------------

    pub fn on_event(&mut self, event: Event) -> Vec<Command> {
        match event {
            Event::RunOutput { run, delta } => {
                self.runs.on_output(&run, &delta);
                // A run we have not listed yet: fetch the list (once; a load in flight covers it).
                if !self.runs.list.rows.iter().any(|r| r.id == run) && !self.runs.list.loading {
                    self.load(Target::Runs);
                }
            }
            Event::ModelState { state } => self.model_state = state,
            Event::Changed { subject, action } => self.on_changed(&subject, &action),
            Event::ShuttingDown => {
                self.flash_error("The core is shutting down.".into());
            }
            Event::Reply { .. } | Event::Failed { .. } => {}
        }
        self.take()
    }

    /// The core lost events for us (a slow consumer): reload what is shown.
    pub fn on_lagged(&mut self) -> Vec<Command> {
        self.refresh_visible();
        self.take()
    }

    fn on_changed(&mut self, subject: &str, action: &str) {
        let kind = subject.split('/').next().unwrap_or(subject);
        let mut targets = Vec::new();
        match kind {
            "task" => targets.push(Target::Tasks),
            "run" => {
                targets.extend([Target::Runs, Target::Metrics]);
                if self.run_detail.id.as_deref() == subject.strip_prefix("run/") {
                    targets.push(Target::RunDetail);
                }
            }
            "approval" => targets.extend([Target::Approvals, Target::Tasks]),
            "queue" => {
                if let Some(h) = &mut self.health.data {
                    h.queue_paused = action.contains("pause");
                }
                targets.push(Target::Health);
            }
            "finding" | "blackboard" => targets.push(Target::Blackboard),
            "metrics" | "cost" => targets.push(Target::Metrics),
            "audit" => {}
            _ => {
                if self.objects.list.loaded_once {
                    targets.push(Target::Objects);
                }
                if self
                    .objects
                    .open
                    .as_ref()
                    .is_some_and(|(k, i)| subject == format!("{k}/{i}"))
                {
                    targets.push(Target::History);
                }
            }
        }
        // Every change writes an audit entry: keep the timeline live when it shows the top.
        if self.screen == Screen::Audit && self.audit.first_page == 0 {
            targets.push(Target::Audit(AuditFetch::Reset));
        }
        for t in targets {
            if !self.needs(&t) {
                continue;
            }
            if self.in_flight(&t) {
                if !self.stale.iter().any(|s| s.key() == t.key()) {
                    self.stale.push(t);
                }
            } else {
                self.load(t);
            }
        }
    }

    /// Only reload what has been loaded (a screen never opened stays unloaded).
    fn needs(&self, t: &Target) -> bool {
        match t {
            Target::Objects => self.objects.list.loaded_once,
            Target::Blackboard => self.blackboard.list.loaded_once,
            Target::Audit(_) => self.audit.loaded_once,
            _ => true,
        }
    }

    fn in_flight(&self, t: &Target) -> bool {
        match t {
            Target::Tasks => self.queue.list.loading,
            Target::Runs => self.runs.list.loading,
            Target::Approvals => self.approvals.list.loading,
            Target::Objects => self.objects.list.loading,
            Target::Blackboard => self.blackboard.list.loading,
            Target::Audit(_) => self.audit.loading,
            _ => false,
        }
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

fn parse<T: DeserializeOwned>(body: Value) -> Result<T, String> {
    serde_json::from_value(body).map_err(|e| format!("unexpected answer from the core: {e}"))
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
