//! Requests to the core and the answers that fill the panes.

use serde_json::Value;

use super::App;
use crate::protocol::Op;
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
        result: Result<Value, String>,
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
        result: Result<Value, String>,
    ) {
        match result {
            Ok(_) => {
                if let Some(path) = cleanup {
                    let _ = std::fs::remove_file(path);
                }
                self.flash_info(format!("{label}: done"));
                for t in [Target::Approvals, Target::Tasks, Target::Health] {
                    self.load(t);
                }
            }
            Err(message) => {
                tracing::warn!(action = %label, error = %message, "the core refused an operator action");
                self.flash_error(format!("{label}: {message}"));
            }
        }
    }
}
