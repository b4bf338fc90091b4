//! Messages from panes and overlays: what each one changes and which requests follow.

use super::{App, safe_name};
use crate::tui::message::{Command, MainPane, Message, Screen, Target};
use crate::tui::overlays::{Overlay, confirm, editor, help, input, notice, palette};
use crate::tui::paged::Paged;
use crate::tui::panes::pane::Pane;
use crate::tui::panes::run_detail::RunDetailPane;

impl App {
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
            Message::AskLabel { task } => {
                self.overlay = Some(Overlay::Input(input::Input::triage_label(task)));
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
    pub(super) fn after_move(&mut self) {
        let run = self.runs.selected_id();
        if run != self.memory.run {
            self.memory.run = run;
            self.memory.all.clear();
            self.memory.list = Paged {
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
        if let Some(t) = self.focused_pane().on_show() {
            self.load(t);
        }
    }

    fn back(&mut self) {
        if self.focused_pane_mut().back() {
            return;
        }
        if self.screen != Screen::Main {
            self.screen = Screen::Main;
        }
    }

    fn open_filter(&mut self) {
        let pane = self.focused_pane();
        let Some(hint) = pane.filter_hint() else {
            self.flash_info("Nothing to filter here.".into());
            return;
        };
        let input = input::Input::filter(pane.filter(), hint);
        self.overlay = Some(Overlay::Input(input));
    }

    fn set_filter(&mut self, text: String) {
        match self.focused_pane_mut().set_filter(text) {
            Ok(Some(target)) => self.load(target),
            Ok(None) => {}
            Err(e) => self.flash_error(e),
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
                self.queue.list = Paged {
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

    pub(super) fn refresh_visible(&mut self) {
        let targets: Vec<Target> = self
            .shown_panes()
            .into_iter()
            .flat_map(Pane::shows)
            .collect();
        for t in targets {
            self.load(t);
        }
        self.load(Target::Health);
    }
}
