//! Cron schedules evaluated on the operator's wall clock (croner for the pattern, jiff for
//! the timezone, so daylight-saving changes are handled by jiff's rules).

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::json;

use super::SchedulerSettings;
use crate::core::audit::{self, Actor};
use crate::core::clock::Millis;
use crate::core::error::{Error, Result};
use crate::core::queue::RoleCatalog;

/// A parsed cron expression.
#[derive(Debug, Clone)]
pub struct CronSpec {
    pub text: String,
    cron: croner::Cron,
}

/// Cap on counting missed ticks (only reported, never run).
const MISSED_COUNT_CAP: u32 = 10_000;

impl CronSpec {
    pub fn parse(text: &str) -> Result<Self> {
        let cron: croner::Cron = text.parse().map_err(|e: croner::errors::CronError| {
            Error::invalid("cron expression", format!("{text:?}: {e}"))
        })?;
        Ok(CronSpec {
            text: text.to_string(),
            cron,
        })
    }

    /// The first tick strictly after `after`, in `tz`.
    pub fn next_after(&self, after: Millis, tz: &jiff::tz::TimeZone) -> Result<Millis> {
        let ts = jiff::Timestamp::from_millisecond(after).map_err(Error::wrap)?;
        // Evaluate the pattern on local wall-clock time (as if it were UTC), then map the
        // wall-clock answer back through the timezone.
        let civil = ts.to_zoned(tz.clone()).datetime();
        let wall = chrono::DateTime::from_timestamp(
            civil
                .to_zoned(jiff::tz::TimeZone::UTC)
                .map_err(Error::wrap)?
                .timestamp()
                .as_second(),
            0,
        )
        .ok_or_else(|| Error::Other("time out of range".into()))?;
        let mut next = self
            .cron
            .find_next_occurrence(&wall, false)
            .map_err(|e| Error::invalid("cron expression", format!("{:?}: {e}", self.text)))?;
        loop {
            let civil_next = jiff::Timestamp::from_second(next.timestamp())
                .map_err(Error::wrap)?
                .to_zoned(jiff::tz::TimeZone::UTC)
                .datetime();
            let zoned = civil_next.to_zoned(tz.clone()).map_err(Error::wrap)?;
            let ms = zoned.timestamp().as_millisecond();
            if ms > after {
                return Ok(ms);
            }
            // A DST fold can map a later wall time to an earlier instant: look further.
            next = self
                .cron
                .find_next_occurrence(&next, false)
                .map_err(|e| Error::invalid("cron expression", e.to_string()))?;
        }
    }
}

/// What [`tick`] did for one schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleTick {
    pub name: String,
    /// The task submitted (None when only registered).
    pub task: Option<String>,
    /// Ticks that fell while keel was down and were folded into this one run.
    pub missed: u32,
}

/// Registers new schedules and fires due ones (once, however many ticks were missed).
/// Returns what fired, for notifications.
pub fn tick(
    tx: &Transaction<'_>,
    now: Millis,
    settings: &SchedulerSettings,
    catalog: &RoleCatalog,
) -> Result<Vec<ScheduleTick>> {
    let tz_name = settings
        .timezone
        .iana_name()
        .unwrap_or("system")
        .to_string();
    let actor = Actor::system("scheduler");
    let mut fired = Vec::new();
    for (config, spec) in &settings.schedules {
        let row: Option<(String, String, Option<i64>)> = tx
            .query_row(
                "SELECT cron, timezone, next_ms FROM schedules WHERE name = ?1",
                [&config.name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let subject = format!("schedule/{}", config.name);
        match row {
            Some((cron, tz, Some(next))) if cron == spec.text && tz == tz_name => {
                if next > now {
                    continue;
                }
                let mut missed = 0;
                let mut t = next;
                while missed < MISSED_COUNT_CAP {
                    t = spec.next_after(t, &settings.timezone)?;
                    if t > now {
                        break;
                    }
                    missed += 1;
                }
                let mut task = config.task.clone();
                task.idempotency_key = Some(format!("schedule:{}:{next}", config.name));
                if task.title.is_empty() {
                    task.title = format!("{} (scheduled)", config.name);
                }
                let submitted = crate::core::queue::submit(tx, now, &actor, catalog, task);
                let (task_id, error) = match submitted {
                    Ok(s) => (Some(s.task.id), None),
                    Err(e) => (None, Some(e.to_string())),
                };
                let following = spec.next_after(now, &settings.timezone)?;
                tx.execute(
                    "UPDATE schedules SET last_ms = ?2, next_ms = ?3 WHERE name = ?1",
                    params![config.name, now, following],
                )?;
                audit::append(
                    tx,
                    now,
                    &actor,
                    "schedule.fired",
                    &subject,
                    &json!({
                        "due_ms": next, "missed": missed, "task": task_id, "error": error, "next_ms": following,
                    }),
                )?;
                fired.push(ScheduleTick {
                    name: config.name.clone(),
                    task: task_id,
                    missed,
                });
            }
            _ => {
                let next = spec.next_after(now, &settings.timezone)?;
                tx.execute(
                    "INSERT INTO schedules (name, cron, timezone, next_ms) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT(name) DO UPDATE SET cron = excluded.cron,
                         timezone = excluded.timezone, next_ms = excluded.next_ms",
                    params![config.name, spec.text, tz_name, next],
                )?;
                audit::append(
                    tx,
                    now,
                    &actor,
                    "schedule.registered",
                    &subject,
                    &json!({
                        "cron": spec.text, "timezone": tz_name, "next_ms": next,
                    }),
                )?;
                fired.push(ScheduleTick {
                    name: config.name.clone(),
                    task: None,
                    missed: 0,
                });
            }
        }
    }
    Ok(fired)
}

/// Whether any schedule needs a write (registration or a due tick) at `now`.
pub fn anything_due(
    conn: &rusqlite::Connection,
    now: Millis,
    settings: &SchedulerSettings,
) -> Result<bool> {
    let tz_name = settings
        .timezone
        .iana_name()
        .unwrap_or("system")
        .to_string();
    for (config, spec) in &settings.schedules {
        let row: Option<(String, String, Option<i64>)> = conn
            .query_row(
                "SELECT cron, timezone, next_ms FROM schedules WHERE name = ?1",
                [&config.name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        match row {
            Some((cron, tz, Some(next))) if cron == spec.text && tz == tz_name && next > now => {}
            _ => return Ok(true),
        }
    }
    Ok(false)
}

/// The schedules as the health view shows them.
pub fn rows(conn: &rusqlite::Connection) -> Result<Vec<crate::protocol::ScheduleRow>> {
    let mut stmt =
        conn.prepare("SELECT name, cron, next_ms, last_ms FROM schedules ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok(crate::protocol::ScheduleRow {
            name: r.get(0)?,
            cron: r.get(1)?,
            next_ms: r.get(2)?,
            last_ms: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> Millis {
        s.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn next_tick_follows_the_operator_timezone_across_dst() {
        let tz = jiff::tz::TimeZone::get("America/New_York").unwrap();
        let spec = CronSpec::parse("0 9 * * *").unwrap();
        // 09:00 EST = 14:00 UTC in winter; 09:00 EDT = 13:00 UTC in summer.
        assert_eq!(
            spec.next_after(ms("2026-01-10T15:00:00Z"), &tz).unwrap(),
            ms("2026-01-11T14:00:00Z")
        );
        assert_eq!(
            spec.next_after(ms("2026-07-10T15:00:00Z"), &tz).unwrap(),
            ms("2026-07-11T13:00:00Z")
        );
        assert!(CronSpec::parse("61 * * * *").is_err());
    }
}
