//! Core events: streamed output, model state, change notifications (coalesced reloads).

use super::App;
use crate::protocol::Event;
use crate::tui::message::{AuditFetch, Command, Screen, Target};
use crate::tui::panes::pane::Pane;
use crate::tui::panes::subject_kind;

impl App {
    pub fn on_event(&mut self, event: Event) -> Vec<Command> {
        self.on_events(vec![event])
    }

    /// A burst of core events (what one operator action raised, say): the panes they touch
    /// are reloaded once each, however many events name them.
    pub fn on_events(&mut self, events: Vec<Event>) -> Vec<Command> {
        let mut targets: Vec<Target> = Vec::new();
        for event in events {
            match event {
                Event::RunOutput { run, delta } => {
                    self.runs.on_output(&run, &delta);
                    // A run we have not listed yet: fetch the list (once; a load in flight
                    // covers it).
                    if !self.runs.list.rows.iter().any(|r| r.id == run) && !self.runs.list.loading {
                        self.load(Target::Runs);
                    }
                }
                Event::ModelState { state } => self.model_state = state,
                Event::Changed { subject, action } => {
                    for t in self.changed_targets(&subject, &action) {
                        if !targets.iter().any(|x| x.key() == t.key()) {
                            targets.push(t);
                        }
                    }
                }
                Event::ShuttingDown => {
                    self.flash_error("The core is shutting down.".into());
                }
            }
        }
        self.reload(targets);
        self.take()
    }

    /// The core lost events for us (a slow consumer): reload what is shown.
    pub fn on_lagged(&mut self) -> Vec<Command> {
        self.refresh_visible();
        self.take()
    }

    /// What a change of `subject` makes stale.
    fn changed_targets(&mut self, subject: &str, action: &str) -> Vec<Target> {
        let mut targets: Vec<Target> = self
            .all_panes_mut()
            .into_iter()
            .flat_map(|pane| pane.on_changed(subject, action))
            .collect();
        // The core's audit watcher: something changed, possibly in another process
        // (`keel run`, the CLI) that raises no events here. Reload what is on screen.
        if subject_kind(subject) == "audit" && action == crate::core::watch::MOVED {
            targets.extend(self.visible_targets());
        }
        // Every change writes an audit entry: keep the timeline live when it shows the top.
        if self.screen == Screen::Audit && self.audit.first_page == 0 && !self.audit.top_unknown {
            targets.push(Target::Audit(AuditFetch::Reset));
        }
        targets
    }

    /// Loads each target that has been loaded before; one in flight is reloaded when its
    /// answer lands (it may predate the change).
    fn reload(&mut self, targets: Vec<Target>) {
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

    /// What the current screen shows, plus the status bar's sources (spend and queue state).
    fn visible_targets(&self) -> Vec<Target> {
        let mut targets: Vec<Target> = self
            .shown_panes()
            .into_iter()
            .flat_map(Pane::shows)
            // The timeline is reloaded above when it shows the newest entries; metrics and
            // health are added for every screen.
            .filter(|t| !matches!(t, Target::Audit(_) | Target::Metrics | Target::Health))
            .collect();
        targets.extend([Target::Metrics, Target::Health]);
        targets
    }

    /// Only reload what has been loaded (a screen never opened stays unloaded).
    fn needs(&mut self, t: &Target) -> bool {
        self.with_feed(t, |feed| feed.wants_reload())
            .unwrap_or(true)
    }

    fn in_flight(&mut self, t: &Target) -> bool {
        self.with_feed(t, |feed| feed.loading()).unwrap_or(false)
    }
}
