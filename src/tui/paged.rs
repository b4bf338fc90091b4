//! A list paged through the core: only a window of rows is held and only the visible rows
//! are built into widgets, so a list of 100k tasks costs the same as one of 100.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

use super::format;
use super::keymap::Action;
use super::theme::{Role, Theme};

/// Rows fetched per request.
pub const WINDOW: usize = 200;

#[derive(Debug, Clone)]
pub struct Paged<T> {
    /// The loaded window: rows `offset .. offset + rows.len()` of `total`.
    pub rows: Vec<T>,
    pub offset: usize,
    pub total: u64,
    /// Absolute index of the selected row.
    pub selected: usize,
    pub loading: bool,
    pub loaded_once: bool,
    pub error: Option<String>,
    pub filter: String,
    /// The offset of the request in flight.
    pub requested: usize,
}

impl<T> Default for Paged<T> {
    fn default() -> Self {
        Paged {
            rows: Vec::new(),
            offset: 0,
            total: 0,
            selected: 0,
            loading: false,
            loaded_once: false,
            error: None,
            filter: String::new(),
            requested: 0,
        }
    }
}

/// What a navigation key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    NotNavigation,
    Moved,
    /// Moved to a row outside the loaded window: fetch around it.
    NeedsFetch,
}

impl<T> Paged<T> {
    pub fn get(&self, index: usize) -> Option<&T> {
        index
            .checked_sub(self.offset)
            .and_then(|i| self.rows.get(i))
    }

    pub fn selected_row(&self) -> Option<&T> {
        self.get(self.selected)
    }

    pub fn len(&self) -> usize {
        usize::try_from(self.total).unwrap_or(usize::MAX)
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The offset to fetch: the current window on a refresh, else a window around the
    /// selection.
    pub fn fetch_offset(&self) -> usize {
        if self.loaded_once && self.get(self.selected).is_some() {
            self.offset
        } else {
            self.selected.saturating_sub(WINDOW / 4)
        }
    }

    /// Marks a request for `offset` as in flight.
    pub fn start_load(&mut self) -> usize {
        self.loading = true;
        self.requested = self.fetch_offset();
        self.requested
    }

    /// Stores the page answered for the request in flight.
    pub fn fill(&mut self, rows: Vec<T>, total: u64) {
        self.rows = rows;
        self.offset = self.requested;
        self.total = total;
        self.loading = false;
        self.loaded_once = true;
        self.error = None;
        if self.selected >= self.len() {
            self.selected = self.len().saturating_sub(1);
        }
    }

    pub fn fail(&mut self, message: String) {
        self.loading = false;
        self.loaded_once = true;
        self.error = Some(message);
    }

    /// Applies a navigation action; `page` is the number of rows a page moves.
    pub fn navigate(&mut self, action: Action, page: usize) -> Nav {
        let last = self.len().saturating_sub(1);
        let target = match action {
            Action::Up => self.selected.saturating_sub(1),
            Action::Down => (self.selected + 1).min(last),
            Action::PageUp => self.selected.saturating_sub(page),
            Action::PageDown => (self.selected + page).min(last),
            Action::Top => 0,
            Action::Bottom => last,
            _ => return Nav::NotNavigation,
        };
        self.selected = target;
        if self.total > 0 && self.get(target).is_none() {
            Nav::NeedsFetch
        } else {
            Nav::Moved
        }
    }
}

/// How to draw one list.
pub struct ListView<'a> {
    pub title: String,
    pub focused: bool,
    pub header: Vec<&'a str>,
    pub widths: Vec<Constraint>,
    pub empty: &'a str,
    pub theme: &'a Theme,
}

/// A bordered block with the theme's focus styling.
pub fn block<'a>(title: String, focused: bool, theme: &Theme) -> Block<'a> {
    let border = if focused {
        Role::BorderFocused
    } else {
        Role::Border
    };
    let title_role = if focused { Role::Title } else { Role::Muted };
    let mut title = title;
    title.insert(0, ' ');
    title.push(' ');
    Block::bordered()
        .border_style(theme.style(border))
        .title(Span::styled(title, theme.style(title_role)))
}

/// The first visible row so that `selected` is on screen (page-flip scrolling keeps the
/// view a pure function of the selection).
pub fn top_row(selected: usize, height: usize) -> usize {
    selected
        .checked_div(height)
        .map_or(0, |pages| pages * height)
}

/// Draws `paged` as a table, building only the visible rows.
pub fn render<T>(
    frame: &mut Frame,
    area: Rect,
    paged: &Paged<T>,
    view: &ListView<'_>,
    mut cells: impl FnMut(&T) -> Vec<Cell<'static>>,
    marked: impl Fn(&T) -> bool,
) {
    let theme = view.theme;
    let count = if paged.total > 0 {
        format!(
            " {}/{}",
            format::count(paged.selected as u64 + 1),
            format::count(paged.total)
        )
    } else {
        String::new()
    };
    let filter = if paged.filter.is_empty() {
        String::new()
    } else {
        format!(" /{}", paged.filter)
    };
    let block = block(
        format!("{}{count}{filter}", view.title),
        view.focused,
        theme,
    );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if paged.rows.is_empty() {
        let (text, role) = match (&paged.error, paged.loading, paged.loaded_once) {
            (Some(e), _, _) => (e.clone(), Role::Warning),
            (None, true, _) | (None, false, false) => ("loading…".to_string(), Role::Muted),
            (None, false, true) => (view.empty.to_string(), Role::Muted),
        };
        frame.render_widget(
            Paragraph::new(Line::styled(text, theme.style(role))).wrap(Wrap { trim: true }),
            inner,
        );
        return;
    }
    let height = usize::from(inner.height.saturating_sub(1));
    let top = top_row(paged.selected, height);
    let end = (top + height).min(paged.len());
    let rows: Vec<Row<'static>> = (top..end)
        .map(|i| match paged.get(i) {
            Some(item) => {
                let mut style = if marked(item) {
                    theme.style(Role::Marked)
                } else {
                    Style::default()
                };
                if i == paged.selected {
                    style = style.patch(theme.style(if view.focused {
                        Role::Selection
                    } else {
                        Role::Muted
                    }));
                    if !view.focused {
                        style = style.add_modifier(ratatui::style::Modifier::REVERSED);
                    }
                }
                Row::new(cells(item)).style(style)
            }
            None => Row::new(vec![Cell::from("…")]).style(theme.style(Role::Muted)),
        })
        .collect();
    let header = Row::new(
        view.header
            .iter()
            .map(|h| Cell::from(*h))
            .collect::<Vec<_>>(),
    )
    .style(theme.style(Role::Header));
    let table = Table::new(rows, view.widths.clone())
        .header(header)
        .column_spacing(1)
        .style(theme.style(Role::Text));
    frame.render_widget(table, inner);
    if let Some(e) = &paged.error
        && inner.height > 2
    {
        let line = Rect {
            y: inner.bottom() - 1,
            height: 1,
            ..inner
        };
        frame.render_widget(
            Paragraph::new(Line::styled(e.clone(), theme.style(Role::Warning))),
            line,
        );
    }
}
