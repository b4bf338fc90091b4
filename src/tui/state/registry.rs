//! Which pane answers for what: the one table from a [`Target`] to the source that loads
//! it, and from the screen and focus to the panes shown. A new pane is added here (and as
//! a field of [`App`]); everything else the app does with it goes through the traits.

use super::App;
use crate::tui::message::{MainPane, Screen, Target};
use crate::tui::panes::objects::{Diff, History};
use crate::tui::panes::pane::Pane;
use crate::tui::panes::source::Feed;

/// How many panes the console has.
const PANES: usize = 10;

impl App {
    /// Runs `f` on the source that `target` loads; None for an operator action.
    pub(super) fn with_feed<R>(
        &mut self,
        target: &Target,
        f: impl FnOnce(&mut dyn Feed) -> R,
    ) -> Option<R> {
        Some(match target {
            Target::Tasks => f(&mut self.queue),
            Target::Runs => f(&mut self.runs),
            Target::Memory => f(&mut self.memory),
            Target::Approvals => f(&mut self.approvals),
            Target::Audit(fetch) => f(&mut self.audit.window(*fetch)),
            Target::AuditVerify => f(&mut self.audit.verifier()),
            Target::Objects => f(&mut self.objects),
            Target::History => f(&mut History(&mut self.objects)),
            Target::Diff => f(&mut Diff(&mut self.objects)),
            Target::Blackboard => f(&mut self.blackboard),
            Target::Metrics => f(&mut self.metrics),
            Target::Health => f(&mut self.health),
            Target::RunDetail => f(&mut self.run_detail),
            Target::Action { .. } => return None,
        })
    }

    /// The pane that has focus (on the main screen, the focused one of four).
    pub fn focused_pane(&self) -> &dyn Pane {
        match self.screen {
            Screen::Main => self.main_pane(self.focus),
            Screen::Audit => &self.audit,
            Screen::Objects => &self.objects,
            Screen::Blackboard => &self.blackboard,
            Screen::Metrics => &self.metrics,
            Screen::Health => &self.health,
            Screen::Run => &self.run_detail,
        }
    }

    pub(super) fn focused_pane_mut(&mut self) -> &mut dyn Pane {
        match self.screen {
            Screen::Main => match self.focus {
                MainPane::Queue => &mut self.queue,
                MainPane::Runs => &mut self.runs,
                MainPane::Memory => &mut self.memory,
                MainPane::Approvals => &mut self.approvals,
            },
            Screen::Audit => &mut self.audit,
            Screen::Objects => &mut self.objects,
            Screen::Blackboard => &mut self.blackboard,
            Screen::Metrics => &mut self.metrics,
            Screen::Health => &mut self.health,
            Screen::Run => &mut self.run_detail,
        }
    }

    pub fn main_pane(&self, pane: MainPane) -> &dyn Pane {
        match pane {
            MainPane::Queue => &self.queue,
            MainPane::Runs => &self.runs,
            MainPane::Memory => &self.memory,
            MainPane::Approvals => &self.approvals,
        }
    }

    /// The panes the current screen shows, in the order a refresh reloads them.
    pub(super) fn shown_panes(&self) -> Vec<&dyn Pane> {
        match self.screen {
            Screen::Main => [
                MainPane::Queue,
                MainPane::Runs,
                MainPane::Approvals,
                MainPane::Memory,
            ]
            .map(|p| self.main_pane(p))
            .to_vec(),
            _ => vec![self.focused_pane()],
        }
    }

    /// Every pane, in the order the reloads a change asks for are sent.
    pub(super) fn all_panes_mut(&mut self) -> [&mut dyn Pane; PANES] {
        [
            &mut self.approvals,
            &mut self.queue,
            &mut self.runs,
            &mut self.metrics,
            &mut self.run_detail,
            &mut self.health,
            &mut self.blackboard,
            &mut self.objects,
            &mut self.memory,
            &mut self.audit,
        ]
    }
}
