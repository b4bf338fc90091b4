//! The root view: a pure function of [`App`] state onto a frame.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::keymap::Action;
use super::message::{MainPane, Screen};
use super::overlays::Overlay;
use super::panes::Ctx;
use super::panes::health::model_role;
use super::state::{App, MIN_HEIGHT, MIN_WIDTH};
use super::theme::Role;
use crate::tui::format;

pub fn render(app: &App, frame: &mut Frame) {
    let area = frame.area();
    let theme = &app.theme;
    frame.render_widget(Block::default().style(theme.style(Role::Text)), area);
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let text = format!(
            "The terminal is too small for keel: {}×{}.\nIt needs at least {MIN_WIDTH}×{MIN_HEIGHT}.\nEnlarge the window, or press q to quit.",
            area.width, area.height
        );
        frame.render_widget(
            Paragraph::new(text)
                .wrap(Wrap { trim: true })
                .style(theme.style(Role::Warning)),
            area,
        );
        return;
    }
    let [tabs, body, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(area);
    let ctx = Ctx {
        theme,
        keymap: &app.keymap,
        model_state: &app.model_state,
    };
    render_tabs(app, frame, tabs);
    if app.screen == Screen::Main {
        render_main(app, frame, body, &ctx);
    } else {
        app.focused_pane().render(frame, body, true, &ctx);
    }
    render_status(app, frame, status);
    match &app.overlay {
        None => {}
        Some(Overlay::Help(h)) => h.render(frame, area, &app.keymap, theme),
        Some(Overlay::Palette(p)) => p.render(frame, area, &app.keymap, theme),
        Some(Overlay::Confirm(c)) => c.render(frame, area, theme),
        Some(Overlay::Input(i)) => i.render(frame, area, theme),
        Some(Overlay::Editor(e)) => e.render(frame, area, &app.keymap, theme),
        Some(Overlay::Notice(n)) => n.render(frame, area, theme),
    }
}

fn render_main(app: &App, frame: &mut Frame, area: Rect, ctx: &Ctx<'_>) {
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(area);
    let [queue, approvals] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(left);
    let [runs, memory] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(right);
    for (pane, area) in [
        (MainPane::Queue, queue),
        (MainPane::Approvals, approvals),
        (MainPane::Runs, runs),
        (MainPane::Memory, memory),
    ] {
        app.main_pane(pane)
            .render(frame, area, app.focus == pane, ctx);
    }
}

fn render_tabs(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let mut spans = vec![Span::styled(" keel ", theme.style(Role::Accent))];
    for (i, s) in Screen::ALL.iter().enumerate() {
        let style = if *s == app.screen {
            theme.style(Role::TabActive)
        } else {
            theme.style(Role::Muted)
        };
        spans.push(Span::styled(format!(" {} {} ", i + 1, s.title()), style));
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn render_status(app: &App, frame: &mut Frame, area: Rect) {
    let theme = &app.theme;
    let bar = theme.style(Role::StatusBar);
    let key = theme.style(Role::StatusKey);
    let queue = match &app.health.data {
        Some(h) if h.queue_paused => "paused",
        Some(_) => "running",
        None => "?",
    };
    let spend = app.metrics.data.as_ref().map_or_else(
        || "spend ?".to_string(),
        |m| {
            format!(
                "spend {} / {}",
                format::money(m.spend_today_usd),
                format::money(m.budget_today_usd)
            )
        },
    );
    let mut spans = vec![
        Span::styled(format!(" {} ", app.workspace), bar),
        Span::styled("│ queue ", bar),
        Span::styled(
            queue.to_string(),
            if queue == "paused" {
                theme.style(Role::Warning)
            } else {
                bar
            },
        ),
        Span::styled(format!(" │ {spend} │ model "), bar),
        Span::styled(
            app.model_state.clone(),
            theme.style(model_role(&app.model_state)),
        ),
        Span::styled(" │ ", bar),
    ];
    if let Some(f) = &app.flash {
        spans.push(Span::styled(
            f.text.clone(),
            theme.style(if f.error { Role::Error } else { Role::Info }),
        ));
    } else {
        for (action, label) in hints(app) {
            spans.push(Span::styled(
                app.keymap
                    .keys(action)
                    .first()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
                key,
            ));
            spans.push(Span::styled(format!(" {label}  "), bar));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
}

/// Key hints for where the operator is, then the always-useful ones.
fn hints(app: &App) -> Vec<(Action, &'static str)> {
    let mut h = vec![(Action::Help, "help")];
    h.extend_from_slice(app.focused_pane().actions());
    h.extend([
        (Action::Palette, "palette"),
        (Action::Filter, "filter"),
        (Action::NextPane, "pane"),
        (Action::Quit, "quit"),
    ]);
    h
}
