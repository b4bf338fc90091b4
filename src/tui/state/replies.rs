//! Requests to the core and the answers that fill the panes.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::App;
use crate::protocol::{Health, Metrics, Op, Page, Query};
use crate::tui::message::{Command, Target};
use crate::tui::panes::audit::VerifyState;

impl App {
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
}

fn parse<T: DeserializeOwned>(body: Value) -> Result<T, String> {
    serde_json::from_value(body).map_err(|e| format!("unexpected answer from the core: {e}"))
}
