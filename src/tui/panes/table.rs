//! Rows and headers for the panes that draw their own tables (not through `paged::render`).

use ratatui::layout::Constraint;
use ratatui::widgets::{Cell, Row, Table};

use crate::tui::theme::{Role, Theme};

/// One table row, highlighted when it is the selected one.
pub fn row<C: Into<Cell<'static>>>(
    cells: impl IntoIterator<Item = C>,
    selected: bool,
    theme: &Theme,
) -> Row<'static> {
    let row = Row::new(cells);
    if selected {
        row.style(theme.style(Role::Selection))
    } else {
        row
    }
}

/// The header row of a table, in the theme's header style.
pub fn header(names: &[&'static str], theme: &Theme) -> Row<'static> {
    Row::new(names.iter().copied()).style(theme.style(Role::Header))
}

/// A table of `rows` in columns of `widths`, under a header of `names`.
pub fn with_header(
    rows: Vec<Row<'static>>,
    widths: impl IntoIterator<Item = Constraint>,
    names: &[&'static str],
    theme: &Theme,
) -> Table<'static> {
    Table::new(rows, widths).header(header(names, theme))
}
