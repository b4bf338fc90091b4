//! The full-screen console. A client of the core handle; never a second path into the store.
//!
//! - [`app`] — the event loop (one `select!` over terminal input, core events, replies).
//! - [`state`] — the state and its update function (keys/events in, commands out).
//! - [`view`] — the root render function; [`panes`] and [`overlays`] render their parts.
//! - [`keymap`], [`theme`] — bindings and semantic styles from TOML.

pub mod app;
pub mod format;
pub mod keymap;
pub mod message;
pub mod overlays;
pub mod paged;
pub mod panes;
pub mod state;
pub mod theme;
pub mod view;

#[cfg(test)]
mod behaviour_tests;
#[cfg(test)]
mod press_cost_tests;
#[cfg(test)]
mod test_fixtures;
#[cfg(test)]
mod tests;

use std::io::stderr;
use std::sync::atomic::Ordering;

use crossterm::terminal::{EnterAlternateScreen, enable_raw_mode};
use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;

use std::sync::Arc;

use crate::core::clock::SystemClock;
use crate::core::handle::CoreHandle;
use crate::core::live::Live;
use crate::core::workspace::Workspace;
use crate::logging;

/// Directory under the workspace for unsaved editor text.
pub const RECOVERY_DIR: &str = "recovery";

/// Builds the console state for `ws` (keymap and theme from the workspace).
pub fn new_app(ws: &Workspace) -> anyhow::Result<state::App> {
    let keymap = keymap::Keymap::load(&ws.root)?;
    let theme = theme::Theme::load(&ws.root)?;
    let name = ws.root.file_name().map_or_else(
        || ws.root.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    Ok(state::App::new(
        name,
        Some(ws.root.join(RECOVERY_DIR)),
        keymap,
        theme,
    ))
}

/// Opens the console on `ws` and returns when the operator quits.
pub fn run(ws: &Workspace) -> anyhow::Result<()> {
    run_with_welcome(ws, None)
}

/// [`run`], opening on a welcome notice (`keel demo`: the steps of one full round).
pub fn run_with_welcome(
    ws: &Workspace,
    welcome: Option<(String, Vec<String>)>,
) -> anyhow::Result<()> {
    let _log = logging::init_file_logging(&ws.logs_dir())?;
    // Configuration errors are reported before the screen is taken over.
    let mut app = new_app(ws)?;
    if let Some((title, lines)) = welcome {
        app.overlay = Some(overlays::Overlay::Notice(overlays::notice::Notice {
            title,
            lines,
        }));
    }
    let handle = CoreHandle::start(ws.clone())?;
    // Queued tasks run while the operator watches; other processes' changes show up.
    let live = match Live::start(ws, Arc::new(SystemClock), &handle.events_sender()) {
        Ok(live) => live,
        Err(e) => {
            handle.shutdown();
            return Err(e.into());
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    enable_raw_mode()?;
    logging::TERMINAL_RAW.store(true, Ordering::SeqCst);
    let result = (|| -> anyhow::Result<()> {
        crossterm::execute!(stderr(), EnterAlternateScreen)?;
        // Capturing the mouse takes text selection away from the terminal: opt in.
        if std::env::var_os("KEEL_MOUSE").is_some_and(|v| v == "1") {
            crossterm::execute!(stderr(), crossterm::event::EnableMouseCapture)?;
        }
        let mut terminal = Terminal::new(CrosstermBackend::new(stderr()))?;
        let result = runtime.block_on(app::run_loop(&mut terminal, &handle, &mut app));
        // ratatui's Drop shows the cursor and `eprintln!`s if it cannot, which panics when
        // the terminal is gone (SIGHUP): show it here, and if that fails there is no
        // terminal left to restore, so the terminal value is not dropped.
        if terminal.show_cursor().is_err() {
            std::mem::forget(terminal);
        }
        result
    })();
    logging::restore_terminal();
    drop(runtime);
    live.stop();
    handle.shutdown();
    result
}
