//! The loaded window of the timeline: up to [`KEEP_PAGES`] pages of [`PAGE`] entries, newest
//! first, and the keyset queries that move it older, newer, to the top or to the oldest.

use super::AuditPane;
use crate::protocol::{AuditEntry as Entry, AuditFilter as Filter};
use crate::protocol::{Op, Query};
use crate::tui::message::AuditFetch;
use crate::tui::panes::source::Source;

pub const PAGE: usize = 200;
/// Pages kept in memory at once.
const KEEP_PAGES: usize = 3;

/// The timeline as a [`Source`] for one move: the direction decides the query and where
/// the answered page goes.
pub struct Window<'a> {
    pub pane: &'a mut AuditPane,
    pub fetch: AuditFetch,
}

impl Source for Window<'_> {
    type Answer = Vec<Entry>;

    /// The query for the move, or None when there is nothing to fetch in that direction.
    fn query(&mut self) -> Option<Op> {
        let pane = &mut *self.pane;
        // Pages above a jump to the oldest are found from the window's top entry upwards.
        let upwards = match self.fetch {
            AuditFetch::Oldest => Some(None),
            AuditFetch::Newer if pane.top_unknown => Some(Some(pane.entries.first()?.seq)),
            _ => None,
        };
        if let Some(after_seq) = upwards {
            pane.loading = true;
            return Some(page_query(
                Filter {
                    after_seq,
                    before_seq: None,
                    ..pane.filter.clone()
                },
                true,
            ));
        }
        let before_seq = match self.fetch {
            AuditFetch::Reset | AuditFetch::Oldest => None,
            AuditFetch::Older => {
                if pane.exhausted {
                    return None;
                }
                Some(pane.entries.last()?.seq)
            }
            AuditFetch::Newer => {
                if pane.first_page == 0 {
                    return None;
                }
                *pane.cursors.get(pane.first_page - 1)?
            }
        };
        pane.loading = true;
        Some(page_query(
            Filter {
                before_seq,
                ..pane.filter.clone()
            },
            false,
        ))
    }

    fn fill(&mut self, page: Vec<Entry>) {
        self.pane.fill(self.fetch, page);
    }

    fn fail(&mut self, message: String) {
        let pane = &mut *self.pane;
        pane.loading = false;
        pane.loaded_once = true;
        pane.carry = 0;
        pane.error = Some(message);
    }

    fn loading(&self) -> bool {
        self.pane.loading
    }

    fn wants_reload(&self) -> bool {
        self.pane.loaded_once
    }
}

fn page_query(filter: Filter, oldest_first: bool) -> Op {
    Op::Query {
        query: Query::AuditPage {
            filter,
            limit: PAGE,
            oldest_first,
        },
    }
}

impl AuditPane {
    fn fill(&mut self, fetch: AuditFetch, mut page: Vec<Entry>) {
        self.loading = false;
        self.loaded_once = true;
        self.error = None;
        let short = page.len() < PAGE;
        match fetch {
            AuditFetch::Oldest => {
                // Asked oldest first; the window holds entries newest first.
                page.reverse();
                self.carry = 0;
                self.cursors = vec![None];
                self.first_page = 0;
                self.page_lens = vec![page.len()];
                self.entries = page;
                self.exhausted = true;
                self.top_unknown = !short;
                self.selected = self.entries.len().saturating_sub(1);
            }
            AuditFetch::Newer if self.top_unknown => {
                page.reverse();
                self.prepend(page);
                if short {
                    // The newest entry is loaded: back to paging by cursors from the top.
                    self.top_unknown = false;
                    self.first_page = 0;
                    self.rebuild_cursors();
                }
            }
            AuditFetch::Reset => {
                // New entries arrive on top: keep the cursor on the entry it was on.
                let was = self.selected_entry().map(|e| e.seq);
                self.carry = 0;
                self.cursors = vec![None];
                self.first_page = 0;
                self.page_lens = vec![page.len()];
                self.entries = page;
                self.exhausted = short;
                self.selected = was
                    .and_then(|seq| self.entries.iter().position(|e| e.seq == seq))
                    .unwrap_or(self.selected)
                    .min(self.entries.len().saturating_sub(1));
            }
            AuditFetch::Older => self.append(page, short),
            AuditFetch::Newer => {
                self.first_page = self.first_page.saturating_sub(1);
                self.prepend(page);
            }
        }
    }

    /// Puts a page of older entries below the window, moving the cursor by what the key
    /// asked for, and lets the newest page go when the window is full.
    fn append(&mut self, page: Vec<Entry>, short: bool) {
        if page.is_empty() {
            self.carry = 0;
            self.exhausted = true;
            return;
        }
        let index = self.first_page + self.page_lens.len();
        let cursor = self.entries.last().map(|e| e.seq);
        if self.cursors.len() <= index {
            self.cursors.push(cursor);
        }
        self.page_lens.push(page.len());
        self.entries.extend(page);
        self.exhausted = short;
        self.selected =
            (self.selected + std::mem::take(&mut self.carry)).min(self.entries.len() - 1);
        if self.page_lens.len() > KEEP_PAGES {
            let drop = self.page_lens.remove(0);
            self.entries.drain(..drop);
            self.selected = self.selected.saturating_sub(drop);
            self.first_page += 1;
        }
    }

    /// Puts a page of newer entries (newest first) above the window, keeping the cursor on
    /// its entry, and lets the oldest page go when the window is full.
    fn prepend(&mut self, page: Vec<Entry>) {
        let n = page.len();
        if n == 0 {
            // Nothing newer: the move that asked for it stops at the top.
            self.carry = 0;
            return;
        }
        self.page_lens.insert(0, n);
        let mut entries = page;
        entries.append(&mut self.entries);
        self.entries = entries;
        self.selected = (self.selected + n).saturating_sub(std::mem::take(&mut self.carry));
        if self.page_lens.len() > KEEP_PAGES
            && let Some(drop) = self.page_lens.pop()
        {
            self.entries.truncate(self.entries.len() - drop);
            self.exhausted = false;
        }
    }

    /// The `before_seq` cursor of each loaded page when the window starts at the newest
    /// entry: none for the first, then the last entry of the page above.
    fn rebuild_cursors(&mut self) {
        self.cursors = vec![None];
        let mut end = 0;
        for len in &self.page_lens[..self.page_lens.len().saturating_sub(1)] {
            end += len;
            self.cursors.push(self.entries.get(end - 1).map(|e| e.seq));
        }
    }
}
