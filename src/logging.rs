//! File logging through `tracing` (never to the terminal the console draws on) and a panic
//! hook that restores the terminal before the panic message is printed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::EnvFilter;

use crate::core::workspace;

/// Set while the console owns the terminal, so the panic hook knows to restore it.
pub static TERMINAL_RAW: AtomicBool = AtomicBool::new(false);

/// Logs to `dir/keel.log` (0600), filtered by `KEEL_LOG` (default `info`). Returns a guard
/// that flushes on drop. Secrets never reach the log: callers log redacted values only.
pub fn init_file_logging(
    dir: &Path,
) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
    workspace::create_private_dir(dir)?;
    let path = dir.join("keel.log");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    workspace::restrict_file(&path)?;
    let (writer, guard) = tracing_appender::non_blocking(file);
    let filter = EnvFilter::try_from_env("KEEL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // A second init (tests, nested commands) keeps the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(writer)
        .try_init();
    Ok(guard)
}

/// Restores the terminal (leave raw mode and the alternate screen) if the console had it.
pub fn restore_terminal() {
    if TERMINAL_RAW.swap(false, Ordering::SeqCst) {
        let _ = crossterm::terminal::disable_raw_mode();
        let _ = crossterm::execute!(
            std::io::stderr(),
            crossterm::terminal::LeaveAlternateScreen,
            crossterm::cursor::Show,
            crossterm::event::DisableMouseCapture
        );
    }
}

/// Installs a panic hook that restores the terminal first, then reports the panic.
pub fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        // The backtrace goes to the log file: the terminal may be gone, and a report needs it.
        let backtrace = std::backtrace::Backtrace::force_capture();
        tracing::error!(panic = %info, %backtrace, "panic");
        previous(info);
    }));
}
