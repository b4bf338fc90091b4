//! The approvals inbox: approve, reject with a reason, edit then approve, batch decisions
//! and "always allow" from a decision.

use std::collections::BTreeSet;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Wrap};

use super::pane::Pane;
use super::queue::short;
use super::source::Source;
use super::{Ctx, nav_message, subject_kind};
use crate::protocol::{ApprovalRow, Op, Page, Query};
use crate::tui::format;
use crate::tui::keymap::{Action, Context};
use crate::tui::message::{Message, Target};
use crate::tui::paged::{self, ListView, Paged};
use crate::tui::theme::Role;

/// The inbox is small by nature; this many pending items are loaded at once.
pub const INBOX_LIMIT: usize = 500;

#[derive(Debug, Default)]
pub struct ApprovalsPane {
    pub all: Vec<ApprovalRow>,
    pub list: Paged<ApprovalRow>,
    /// Ids marked for a batch decision.
    pub marked: BTreeSet<String>,
}

impl Source for ApprovalsPane {
    type Answer = Page<ApprovalRow>;

    fn query(&mut self) -> Option<Op> {
        self.list.loading = true;
        Some(Op::Query {
            query: Query::Approvals {
                pending_only: true,
                offset: 0,
                limit: INBOX_LIMIT,
            },
        })
    }

    /// Keeps the marks of the items still pending.
    fn fill(&mut self, page: Page<ApprovalRow>) {
        self.all = page.items;
        let ids: BTreeSet<String> = self.all.iter().map(|a| a.id.clone()).collect();
        self.marked.retain(|id| ids.contains(id));
        self.apply_filter();
    }

    fn fail(&mut self, message: String) {
        self.list.fail(message);
    }

    fn loading(&self) -> bool {
        self.list.loading
    }
}

impl Pane for ApprovalsPane {
    fn context(&self) -> Option<Context> {
        Some(Context::Approvals)
    }

    fn on_changed(&mut self, subject: &str, _action: &str) -> Vec<Target> {
        if subject_kind(subject) == "approval" {
            vec![Target::Approvals]
        } else {
            Vec::new()
        }
    }

    fn shows(&self) -> Vec<Target> {
        vec![Target::Approvals]
    }

    fn filter_hint(&self) -> Option<&'static str> {
        Some("Words in the action, agent, target or summary.")
    }

    fn filter(&self) -> &str {
        &self.list.filter
    }

    /// The whole inbox is loaded: filtered here, not by the core.
    fn set_filter(&mut self, text: String) -> Result<Option<Target>, String> {
        self.list.filter = text;
        self.list.selected = 0;
        self.apply_filter();
        Ok(None)
    }

    fn actions(&self) -> &'static [(Action, &'static str)] {
        &[
            (Action::Approve, "approve"),
            (Action::Reject, "reject"),
            (Action::Edit, "edit"),
            (Action::Mark, "mark"),
        ]
    }

    fn on_action(&mut self, action: Action, page: usize) -> Option<Message> {
        self.decide(action, page)
    }

    fn render(&self, frame: &mut Frame, area: Rect, focused: bool, ctx: &Ctx<'_>) {
        self.draw(frame, area, focused, ctx);
    }
}

impl ApprovalsPane {
    pub fn apply_filter(&mut self) {
        let needle = self.list.filter.to_lowercase();
        let rows: Vec<ApprovalRow> = self
            .all
            .iter()
            .filter(|a| {
                needle.is_empty()
                    || [&a.action, &a.agent, &a.summary, &a.target, &a.risk]
                        .iter()
                        .any(|f| f.to_lowercase().contains(&needle))
            })
            .cloned()
            .collect();
        let total = rows.len() as u64;
        self.list.requested = 0;
        self.list.fill(rows, total);
    }

    /// The marked items, or the selected one when nothing is marked.
    fn targets(&self) -> Vec<&ApprovalRow> {
        if self.marked.is_empty() {
            self.list.selected_row().into_iter().collect()
        } else {
            self.all
                .iter()
                .filter(|a| self.marked.contains(&a.id))
                .collect()
        }
    }

    /// Marks, approvals, rejections and edits of the selected or marked items.
    fn decide(&mut self, action: Action, page: usize) -> Option<Message> {
        if let Some(m) = nav_message(self.list.navigate(action, page), Target::Approvals) {
            return Some(m);
        }
        match action {
            Action::Mark => {
                let id = self.list.selected_row()?.id.clone();
                if !self.marked.remove(&id) {
                    self.marked.insert(id);
                }
                self.list.navigate(Action::Down, 1);
                Some(Message::Redraw)
            }
            Action::MarkAll => {
                if self.marked.len() == self.list.rows.len() {
                    self.marked.clear();
                } else {
                    self.marked = self.list.rows.iter().map(|a| a.id.clone()).collect();
                }
                Some(Message::Redraw)
            }
            Action::Approve | Action::ApproveAlways => {
                let always = action == Action::ApproveAlways;
                let targets = self.targets();
                if targets.is_empty() {
                    return None;
                }
                let mut lines: Vec<String> = targets.iter().map(|a| card_line(a)).collect();
                if always {
                    lines.push(String::new());
                    lines.push(
                        "…and create an “always allow” rule scoped to each decision's agent, \
                         action and target."
                            .into(),
                    );
                }
                if targets.iter().any(|a| a.reversibility == "irreversible") {
                    lines.push(String::new());
                    lines.push("Includes irreversible actions: no undo exists.".into());
                }
                // Several plain approvals are one op and one transaction (as the CLI's); an
                // "always allow" rule is made per decision, so those stay one op each.
                let ops = if targets.len() > 1 && !always {
                    vec![Op::BatchApprove {
                        ids: targets.iter().map(|a| a.id.clone()).collect(),
                    }]
                } else {
                    targets
                        .iter()
                        .map(|a| Op::Approve {
                            id: a.id.clone(),
                            edited_body: None,
                            always_allow: always,
                        })
                        .collect()
                };
                Some(Message::Confirm {
                    title: format!("Approve {} item{}", targets.len(), plural(targets.len())),
                    lines,
                    then: Box::new(Message::Send {
                        label: "approve".into(),
                        ops,
                        cleanup: None,
                    }),
                })
            }
            Action::Reject => {
                let ids: Vec<String> = self.targets().iter().map(|a| a.id.clone()).collect();
                (!ids.is_empty()).then_some(Message::AskReason { ids })
            }
            Action::Edit | Action::Open => {
                let a = self.list.selected_row()?;
                Some(Message::EditDraft { id: a.id.clone() })
            }
            _ => None,
        }
    }

    pub fn selected(&self) -> Option<&ApprovalRow> {
        self.list.selected_row()
    }

    fn draw(&self, frame: &mut Frame, area: Rect, focused: bool, ctx: &Ctx<'_>) {
        let detail_h = if area.height >= 14 && self.selected().is_some() {
            area.height / 2
        } else {
            0
        };
        let [list_area, detail_area] =
            Layout::vertical([Constraint::Fill(1), Constraint::Length(detail_h)]).areas(area);
        let marked = if self.marked.is_empty() {
            String::new()
        } else {
            format!(" · {} marked", self.marked.len())
        };
        let view = ListView {
            title: format!("Approvals{marked}"),
            focused,
            header: vec!["", "risk", "action", "agent", "summary", "cost"],
            widths: vec![
                Constraint::Length(1),
                Constraint::Length(6),
                Constraint::Length(14),
                Constraint::Length(10),
                Constraint::Fill(1),
                Constraint::Length(8),
            ],
            empty: "Nothing waits for you.",
            theme: ctx.theme,
        };
        paged::render(
            frame,
            list_area,
            &self.list,
            &view,
            |a| {
                vec![
                    Cell::from(if self.marked.contains(&a.id) {
                        "●"
                    } else {
                        " "
                    }),
                    Cell::from(a.risk.clone()).style(ctx.theme.style(risk_role(&a.risk))),
                    Cell::from(a.action.clone()),
                    Cell::from(a.agent.clone()),
                    Cell::from(format::one_line(&a.summary)),
                    Cell::from(format::money(a.cost_usd)),
                ]
            },
            |a| self.marked.contains(&a.id),
        );
        if detail_h > 0 {
            self.render_detail(frame, detail_area, ctx);
        }
    }

    fn render_detail(&self, frame: &mut Frame, area: Rect, ctx: &Ctx<'_>) {
        let theme = ctx.theme;
        let block = paged::block("Decision".into(), false, theme);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let Some(a) = self.selected() else {
            return;
        };
        let label = |s: &str| Span::styled(format!("{s:<9}"), theme.style(Role::Muted));
        let undo = if a.undo_available {
            "undo available"
        } else {
            "no undo"
        };
        let mut lines = vec![
            Line::from(vec![
                label("action"),
                Span::raw(format!("{} → {}", a.action, a.target)),
            ]),
            Line::from(vec![
                label("risk"),
                Span::styled(a.risk.clone(), theme.style(risk_role(&a.risk))),
                Span::raw(format!(" · {} ({undo})", a.reversibility)),
            ]),
            Line::from(vec![
                label("cost"),
                Span::raw(format::money(a.cost_usd)),
                Span::raw(
                    a.amount
                        .map(|x| format!(" · amount {}", format::money(x)))
                        .unwrap_or_default(),
                ),
            ]),
            Line::from(vec![
                label("why"),
                Span::raw(format::one_line(&a.rationale)),
            ]),
            Line::from(vec![
                label("rule"),
                Span::raw(a.rule.clone()),
                Span::styled(
                    format!(
                        "  from {} · {} UTC",
                        short(&a.agent),
                        format::short_time(a.created_ms)
                    ),
                    theme.style(Role::Muted),
                ),
            ]),
        ];
        for d in a.diff.lines() {
            lines.push(diff_line(d, theme));
        }
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

fn card_line(a: &ApprovalRow) -> String {
    format!(
        "{} {} — {} · risk {} · {} · {}",
        a.action,
        a.target,
        format::clip(&format::one_line(&a.summary), 40),
        a.risk,
        a.reversibility,
        format::money(a.cost_usd)
    )
}

pub fn risk_role(risk: &str) -> Role {
    match risk {
        "high" => Role::RiskHigh,
        "medium" => Role::RiskMedium,
        _ => Role::RiskLow,
    }
}

/// One line of a unified diff, coloured by its prefix.
pub fn diff_line(line: &str, theme: &crate::tui::theme::Theme) -> Line<'static> {
    let role = if line.starts_with("+++") || line.starts_with("---") || line.starts_with("@@") {
        Role::DiffHunk
    } else if line.starts_with('+') {
        Role::DiffAdd
    } else if line.starts_with('-') {
        Role::DiffDel
    } else {
        Role::Text
    };
    Line::styled(line.to_string(), theme.style(role))
}
