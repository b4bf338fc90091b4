//! The full-screen console. A client of the core handle; never a second path into the store.

use std::io::stderr;

use crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind};
use crossterm::terminal::{EnterAlternateScreen, disable_raw_mode, enable_raw_mode};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::widgets::{Block, Paragraph};

use crate::core::workspace::Workspace;
use crate::logging;

/// Opens the console on `ws` and returns when the operator quits.
pub fn run(ws: &Workspace) -> anyhow::Result<()> {
    let _log = logging::init_file_logging(&ws.logs_dir())?;
    enable_raw_mode()?;
    logging::TERMINAL_RAW.store(true, std::sync::atomic::Ordering::SeqCst);
    crossterm::execute!(stderr(), EnterAlternateScreen)?;
    let mut terminal = Terminal::new(CrosstermBackend::new(stderr()))?;
    let result = (|| -> anyhow::Result<()> {
        loop {
            terminal.draw(|f| {
                let text = format!(
                    "keel — workspace {}\n\nThe console is being built.\n\nq: quit",
                    ws.root.display()
                );
                f.render_widget(
                    Paragraph::new(text).block(Block::bordered().title(" keel ")),
                    f.area(),
                );
            })?;
            if let TermEvent::Key(k) = event::read()?
                && k.kind == KeyEventKind::Press && matches!(k.code, KeyCode::Char('q') | KeyCode::Esc) {
                    return Ok(());
                }
        }
    })();
    logging::restore_terminal();
    let _ = disable_raw_mode();
    result
}
