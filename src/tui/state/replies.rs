//! Requests to the core and the answers that fill the panes.

use super::App;
use crate::protocol::{Answer, Op};
use crate::tui::message::{Command, Target};

impl App {
    /// Builds the query for `target` from the pane's state and queues it.
    pub fn load(&mut self, target: Target) {
        if let Some(op) = self.with_feed(&target, |feed| feed.query()).flatten() {
            self.request(target, op);
        }
    }

    pub(super) fn request(&mut self, target: Target, op: Op) {
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
        result: Result<Answer, String>,
    ) -> Vec<Command> {
        let superseded = self
            .latest
            .get(target.key())
            .is_some_and(|latest| *latest > seq);
        if superseded && !matches!(target, Target::Action { .. }) {
            return self.take();
        }
        if let Target::Action { label, cleanup } = &target {
            self.action_done(label, cleanup.as_deref(), result);
        } else if self.with_feed(&target, |feed| feed.deliver(result)) == Some(true) {
            self.filled(&target);
        }
        if let Some(i) = self.stale.iter().position(|t| t.key() == target.key()) {
            let t = self.stale.remove(i);
            self.load(t);
        }
        self.take()
    }

    /// What follows a fill beyond its pane: the memory of the selected run, the model
    /// state the status bar shows until the core reports one.
    fn filled(&mut self, target: &Target) {
        match target {
            Target::Runs => self.after_move(),
            Target::Health => {
                if self.model_state == "unknown"
                    && let Some(h) = &self.health.data
                {
                    self.model_state.clone_from(&h.embedding_model);
                }
            }
            _ => {}
        }
    }

    /// The core took (or refused) an operator action.
    fn action_done(
        &mut self,
        label: &str,
        cleanup: Option<&std::path::Path>,
        result: Result<Answer, String>,
    ) {
        match result {
            Ok(answer) => {
                if let Some(path) = cleanup {
                    let _ = std::fs::remove_file(path);
                }
                // No reload here: the core raises an event for everything the op changed,
                // and those events refresh the panes (once each).
                match answer {
                    Answer::BatchApproved(items) if items.iter().any(|i| !i.approved) => {
                        let skipped: Vec<String> = items
                            .iter()
                            .filter_map(|i| Some(format!("{}: {}", i.id, i.error.as_ref()?)))
                            .collect();
                        self.flash_error(format!("{label}: skipped {}", skipped.join("; ")));
                    }
                    _ => self.flash_info(format!("{label}: done")),
                }
            }
            Err(message) => {
                tracing::warn!(action = %label, error = %message, "the core refused an operator action");
                self.flash_error(format!("{label}: {message}"));
            }
        }
    }
}
