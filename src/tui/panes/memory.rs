//! Memory slices the selected run retrieved: item, version, score, preview.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::Cell;

use super::pane::Pane;
use super::source::Source;
use super::{Ctx, nav_message};
use crate::protocol::{MemorySliceRow, Op, Query};
use crate::tui::format;
use crate::tui::keymap::Action;
use crate::tui::message::{Message, Target};
use crate::tui::paged::{self, ListView, Paged};

#[derive(Debug, Default)]
pub struct MemoryPane {
    /// The run whose memory is shown.
    pub run: Option<String>,
    /// Every slice of the run; `list` holds the ones matching the filter.
    pub all: Vec<MemorySliceRow>,
    pub list: Paged<MemorySliceRow>,
}

impl Source for MemoryPane {
    type Answer = Vec<MemorySliceRow>;

    fn query(&mut self) -> Option<Op> {
        let run = self.run.clone()?;
        self.list.loading = true;
        self.list.requested = 0;
        Some(Op::Query {
            query: Query::MemoryUsed { run },
        })
    }

    /// Stores the answer and applies the (local) filter.
    fn fill(&mut self, rows: Vec<MemorySliceRow>) {
        self.all = rows;
        self.apply_filter();
    }

    fn fail(&mut self, message: String) {
        self.list.fail(message);
    }
}

impl Pane for MemoryPane {
    fn shows(&self) -> Vec<Target> {
        vec![Target::Memory]
    }

    fn filter_hint(&self) -> Option<&'static str> {
        Some("Words in the item, kind or preview.")
    }

    fn filter(&self) -> &str {
        &self.list.filter
    }

    /// The slices of one run are few: filtered here, not by the core.
    fn set_filter(&mut self, text: String) -> Result<Option<Target>, String> {
        self.list.filter = text;
        self.list.selected = 0;
        self.apply_filter();
        Ok(None)
    }

    fn on_action(&mut self, action: Action, page: usize) -> Option<Message> {
        if let Some(m) = nav_message(self.list.navigate(action, page), Target::Memory) {
            return Some(m);
        }
        let m = self.list.selected_row()?;
        (action == Action::Open).then(|| Message::Notice {
            title: format!("Memory {} v{}", m.item, m.version),
            lines: vec![
                format!("kind   {}", m.kind),
                format!("rank   {}", m.rank),
                format!("score  {:.3}", m.score),
                String::new(),
                m.preview.clone(),
            ],
        })
    }

    fn render(&self, frame: &mut Frame, area: Rect, focused: bool, ctx: &Ctx<'_>) {
        let title = match &self.run {
            Some(run) => format!("Memory used by {}", super::queue::short(run)),
            None => "Memory".into(),
        };
        let view = ListView {
            title,
            focused,
            header: vec!["#", "item", "ver", "score", "kind", "preview"],
            widths: vec![
                Constraint::Length(2),
                Constraint::Length(12),
                Constraint::Length(3),
                Constraint::Length(5),
                Constraint::Length(9),
                Constraint::Fill(1),
            ],
            empty: if self.run.is_some() {
                "This run used no memory."
            } else {
                "Select a run to see the memory it used."
            },
            theme: ctx.theme,
        };
        if self.run.is_none() {
            let block = paged::block(view.title.clone(), focused, ctx.theme);
            let inner = block.inner(area);
            frame.render_widget(block, area);
            super::notice(
                frame,
                inner,
                view.empty,
                crate::tui::theme::Role::Muted,
                ctx.theme,
            );
            return;
        }
        paged::render(
            frame,
            area,
            &self.list,
            &view,
            |m| {
                vec![
                    Cell::from(m.rank.to_string()),
                    Cell::from(m.item.clone()),
                    Cell::from(m.version.to_string()),
                    Cell::from(format!("{:.2}", m.score)),
                    Cell::from(m.kind.clone()),
                    Cell::from(format::one_line(&m.preview)),
                ]
            },
            |_| false,
        );
    }
}

impl MemoryPane {
    pub fn apply_filter(&mut self) {
        let needle = self.list.filter.to_lowercase();
        let rows: Vec<MemorySliceRow> = self
            .all
            .iter()
            .filter(|m| {
                needle.is_empty()
                    || m.preview.to_lowercase().contains(&needle)
                    || m.item.to_lowercase().contains(&needle)
                    || m.kind.to_lowercase().contains(&needle)
            })
            .cloned()
            .collect();
        let total = rows.len() as u64;
        self.list.requested = 0;
        self.list.fill(rows, total);
    }
}
