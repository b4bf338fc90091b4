//! Keys on the timeline: moving the selection, and fetching the page a move runs into
//! (before the end is reached, so scrolling does not stall).

use super::{AuditPane, filter, jump_target};
use crate::tui::keymap::Action;
use crate::tui::message::{AuditFetch, Message, Target};

pub fn on_action(pane: &mut AuditPane, action: Action, rows_per_page: usize) -> Option<Message> {
    if action == Action::Order {
        pane.oldest_first = !pane.oldest_first;
        return Some(Message::Redraw);
    }
    match as_shown(pane, action) {
        action @ (Action::Down | Action::PageDown) => {
            let step = if action == Action::Down {
                1
            } else {
                rows_per_page
            };
            Some(older_by(pane, step, rows_per_page))
        }
        action @ (Action::Up | Action::PageUp) => {
            let step = if action == Action::Up {
                1
            } else {
                rows_per_page
            };
            Some(newer_by(pane, step))
        }
        Action::Top => {
            pane.selected = 0;
            Some(Message::Load(Target::Audit(AuditFetch::Reset)))
        }
        Action::Bottom => {
            pane.selected = pane.entries.len().saturating_sub(1);
            // Jump to the oldest entry in one query, however long the log is.
            if pane.exhausted || pane.loading {
                Some(Message::Redraw)
            } else {
                Some(Message::Load(Target::Audit(AuditFetch::Oldest)))
            }
        }
        Action::Verify => Some(Message::Load(Target::AuditVerify)),
        Action::Export => Some(Message::Notice {
            title: "Export the audit log".into(),
            lines: filter::export_hint(&pane.filter),
        }),
        Action::Jump | Action::Open => {
            let e = pane.selected_entry()?;
            Some(Message::Jump(jump_target(e)))
        }
        _ => None,
    }
}

/// Oldest first turns the list upside down: "down" walks towards newer entries.
fn as_shown(pane: &AuditPane, action: Action) -> Action {
    if !pane.oldest_first {
        return action;
    }
    match action {
        Action::Up => Action::Down,
        Action::Down => Action::Up,
        Action::PageUp => Action::PageDown,
        Action::PageDown => Action::PageUp,
        Action::Top => Action::Bottom,
        Action::Bottom => Action::Top,
        other => other,
    }
}

/// Moves `step` entries towards older ones, fetching the next page when the move nears
/// or passes the end of the window.
fn older_by(pane: &mut AuditPane, step: usize, rows_per_page: usize) -> Message {
    let len = pane.entries.len();
    if pane.selected + step < len {
        pane.selected += step;
        // Prefetch before the end is reached.
        if len - pane.selected < rows_per_page.max(1)
            && let Some(m) = older(pane)
        {
            return m;
        }
        return Message::Redraw;
    }
    let target = pane.selected + step;
    pane.selected = len.saturating_sub(1);
    match older(pane) {
        Some(m) => {
            pane.carry = target - pane.selected;
            m
        }
        None => Message::Redraw,
    }
}

/// Moves `step` entries towards newer ones, fetching the page above when it runs past the
/// top of the window.
fn newer_by(pane: &mut AuditPane, step: usize) -> Message {
    if pane.selected >= step {
        pane.selected -= step;
        return Message::Redraw;
    }
    let short_by = step - pane.selected;
    pane.selected = 0;
    match newer(pane) {
        Some(m) => {
            pane.carry = short_by;
            m
        }
        None => Message::Redraw,
    }
}

fn older(pane: &AuditPane) -> Option<Message> {
    (!pane.exhausted && !pane.loading).then_some(Message::Load(Target::Audit(AuditFetch::Older)))
}

fn newer(pane: &AuditPane) -> Option<Message> {
    ((pane.first_page > 0 || pane.top_unknown) && !pane.loading)
        .then_some(Message::Load(Target::Audit(AuditFetch::Newer)))
}
