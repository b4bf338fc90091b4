//! The event loop: one `select!` over terminal input, core events and internal app events
//! (replies to our requests, signals, the flash timer). Redraws happen only after something
//! happened, and a burst of events (streamed output) is drained before one redraw.

use std::time::Instant;

use crossterm::event::{Event as TermEvent, EventStream};
use futures_util::StreamExt;
use ratatui::Terminal;
use ratatui::backend::Backend;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{broadcast, mpsc};

use super::message::{Command, Target};
use super::state::App;
use super::view;
use crate::core::handle::CoreHandle;
use crate::protocol::{Answer, Event};

/// An answer from the core, routed back to the pane that asked.
pub struct Reply {
    pub target: Target,
    pub seq: u64,
    pub result: Result<Answer, String>,
}

/// Sends each request to the core on its own task; answers come back on `replies`.
pub fn execute(
    commands: Vec<Command>,
    handle: &CoreHandle,
    replies: &mpsc::UnboundedSender<Reply>,
) -> bool {
    let mut quit = false;
    for c in commands {
        match c {
            Command::Quit => quit = true,
            Command::Request { target, seq, op } => {
                let handle = handle.clone();
                let tx = replies.clone();
                tokio::spawn(async move {
                    let result = handle.request(op).await.map_err(|e| e.to_string());
                    let _ = tx.send(Reply {
                        target,
                        seq,
                        result,
                    });
                });
            }
        }
    }
    quit
}

/// Runs until the operator quits, a signal arrives or the terminal input ends.
pub async fn run_loop<B: Backend>(
    terminal: &mut Terminal<B>,
    handle: &CoreHandle,
    app: &mut App,
) -> anyhow::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Reply>();
    let mut core_events = handle.subscribe();
    let mut input = EventStream::new();
    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sighup = signal(SignalKind::hangup())?;
    let size = terminal.size()?;
    app.resize(size.width, size.height);
    let start = app.start();
    execute(start, handle, &tx);
    terminal.draw(|f| view::render(app, f))?;
    loop {
        let deadline = app.flash_deadline();
        let commands = tokio::select! {
            ev = input.next() => match ev {
                Some(Ok(TermEvent::Key(key))) => app.on_key(key),
                Some(Ok(TermEvent::Resize(w, h))) => { app.resize(w, h); Vec::new() }
                Some(Ok(TermEvent::Mouse(m))) => app.on_mouse(m),
                Some(Ok(_)) => Vec::new(),
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(()),
            },
            ev = core_events.recv() => match ev {
                Ok(e) => burst(app, e, &mut core_events),
                Err(broadcast::error::RecvError::Lagged(_)) => app.on_lagged(),
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            Some(r) = rx.recv() => app.on_reply(r.target, r.seq, r.result),
            _ = sigterm.recv() => { tracing::info!("SIGTERM: leaving the console"); return Ok(()) }
            _ = sighup.recv() => { tracing::info!("SIGHUP: leaving the console"); return Ok(()) }
            () = sleep_until(deadline) => { app.expire_flash(Instant::now()); Vec::new() }
        };
        if execute(commands, handle, &tx) {
            return Ok(());
        }
        // Coalesce: take everything already waiting before drawing once.
        loop {
            let more = if let Ok(r) = rx.try_recv() {
                app.on_reply(r.target, r.seq, r.result)
            } else if let Ok(e) = core_events.try_recv() {
                burst(app, e, &mut core_events)
            } else {
                break;
            };
            if execute(more, handle, &tx) {
                return Ok(());
            }
        }
        terminal.draw(|f| view::render(app, f))?;
    }
}

/// The commands for `first` and every event already waiting behind it, handled as one
/// burst so a pane named by several of them reloads once.
fn burst(app: &mut App, first: Event, events: &mut broadcast::Receiver<Event>) -> Vec<Command> {
    let mut all = vec![first];
    let mut lagged = false;
    loop {
        match events.try_recv() {
            Ok(e) => all.push(e),
            Err(broadcast::error::TryRecvError::Lagged(_)) => lagged = true,
            Err(_) => break,
        }
    }
    let mut commands = app.on_events(all);
    if lagged {
        commands.extend(app.on_lagged());
    }
    commands
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d.into()).await,
        None => std::future::pending().await,
    }
}
