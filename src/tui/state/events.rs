//! Core events: streamed output, model state, change notifications (coalesced reloads).

use super::App;
use crate::protocol::Event;
use crate::tui::message::{AuditFetch, Command, Screen, Target};

impl App {
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
            // The core's audit watcher: something changed, possibly in another process
            // (`keel run`, the CLI) that raises no events here. Reload what is on screen.
            "audit" if action == crate::core::watch::MOVED => {
                targets.extend(self.visible_targets());
            }
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
        if self.screen == Screen::Audit && self.audit.first_page == 0 && !self.audit.top_unknown {
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

    /// What the current screen shows, plus the status bar's sources (spend and queue state).
    fn visible_targets(&self) -> Vec<Target> {
        let mut targets = match self.screen {
            Screen::Main => vec![
                Target::Tasks,
                Target::Runs,
                Target::Approvals,
                Target::Memory,
            ],
            // The timeline is reloaded below when it shows the newest entries; metrics and
            // health are added for every screen.
            Screen::Audit | Screen::Metrics | Screen::Health => Vec::new(),
            Screen::Objects => vec![Target::Objects, Target::History],
            Screen::Blackboard => vec![Target::Blackboard],
            Screen::Run => vec![Target::RunDetail],
        };
        targets.extend([Target::Metrics, Target::Health]);
        targets
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
}
