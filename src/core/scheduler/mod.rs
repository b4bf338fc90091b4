//! The scheduler: recurring work by cron expression in the operator's timezone, one-off
//! timers (a task's `not_before_ms`, or a run that waits for a timer) and the off-peak
//! window that background work waits for.
//!
//! Missed schedules: when keel was not running at a schedule's due time, the schedule fires
//! **once** at the next start (not once per missed tick) and the audit entry records how many
//! ticks were missed. A schedule seen for the first time waits for its first tick.

pub mod cron;

use serde::{Deserialize, Serialize};

use crate::core::clock::Millis;
use crate::core::config::Config;
use crate::core::error::{Error, Result};
use crate::core::queue::NewTask;

pub use cron::{CronSpec, ScheduleTick, tick};

/// `[scheduler]` in config.toml.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// IANA timezone for cron expressions and the off-peak window; empty = the system's.
    pub timezone: String,
    /// Window in which background work runs, e.g. "22:00-06:00"; empty = any time.
    pub off_peak: String,
}

/// One `[[schedules]]` entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleConfig {
    pub name: String,
    /// Five fields (minute hour day month weekday) or six with seconds first.
    pub cron: String,
    /// The work item submitted at each tick.
    pub task: NewTask,
}

/// The parsed scheduler settings a coordinator uses.
#[derive(Debug, Clone)]
pub struct SchedulerSettings {
    pub timezone: jiff::tz::TimeZone,
    /// Minutes after local midnight: [start, end); wraps past midnight when start > end.
    pub off_peak: Option<(u32, u32)>,
    pub schedules: Vec<(ScheduleConfig, CronSpec)>,
}

impl Default for SchedulerSettings {
    fn default() -> Self {
        SchedulerSettings {
            timezone: jiff::tz::TimeZone::UTC,
            off_peak: None,
            schedules: Vec::new(),
        }
    }
}

impl SchedulerSettings {
    pub fn from_config(config: &Config) -> Result<Self> {
        let timezone = if config.scheduler.timezone.is_empty() {
            jiff::tz::TimeZone::system()
        } else {
            jiff::tz::TimeZone::get(&config.scheduler.timezone).map_err(|e| {
                Error::invalid(
                    "[scheduler] timezone",
                    format!("{:?}: {e}", config.scheduler.timezone),
                )
            })?
        };
        let off_peak = parse_window(&config.scheduler.off_peak)?;
        let mut schedules = Vec::new();
        for s in &config.schedules {
            if s.name.is_empty() {
                return Err(Error::invalid(
                    "[[schedules]]",
                    "every schedule needs a name",
                ));
            }
            let spec = CronSpec::parse(&s.cron)
                .map_err(|e| Error::invalid(format!("schedule {:?}", s.name), e.to_string()))?;
            schedules.push((s.clone(), spec));
        }
        Ok(SchedulerSettings {
            timezone,
            off_peak,
            schedules,
        })
    }

    /// Whether background work may run at `now` (always, when no window is configured).
    #[must_use]
    pub fn in_off_peak(&self, now: Millis) -> bool {
        let Some((start, end)) = self.off_peak else {
            return true;
        };
        let Ok(ts) = jiff::Timestamp::from_millisecond(now) else {
            return true;
        };
        let local = ts.to_zoned(self.timezone.clone());
        let minute =
            u32::try_from(i32::from(local.hour()) * 60 + i32::from(local.minute())).unwrap_or(0);
        if start <= end {
            (start..end).contains(&minute)
        } else {
            minute >= start || minute < end
        }
    }
}

/// Parses "HH:MM-HH:MM" (empty = no window).
pub fn parse_window(text: &str) -> Result<Option<(u32, u32)>> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    let bad = || {
        Error::invalid(
            "[scheduler] off_peak",
            format!("{text:?}: expected \"HH:MM-HH:MM\", e.g. \"22:00-06:00\""),
        )
    };
    let (a, b) = text.split_once('-').ok_or_else(bad)?;
    let minutes = |s: &str| -> Option<u32> {
        let (h, m) = s.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    Ok(Some((
        minutes(a).ok_or_else(bad)?,
        minutes(b).ok_or_else(bad)?,
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_come_from_config() {
        let text = "[scheduler]\ntimezone = \"Europe/Paris\"\noff_peak = \"22:00-06:00\"\n\n\
                    [[schedules]]\nname = \"weekly\"\ncron = \"0 9 * * MON\"\n\
                    task = { role = \"noop\", title = \"Weekly report\", input = { week = true } }\n";
        let config: Config =
            crate::core::toml_text::parse(text, std::path::Path::new("config.toml")).unwrap();
        let settings = SchedulerSettings::from_config(&config).unwrap();
        assert_eq!(settings.schedules.len(), 1);
        assert_eq!(
            settings.schedules[0].0.task.input,
            serde_json::json!({"week": true})
        );
        assert_eq!(settings.off_peak, Some((22 * 60, 6 * 60)));
        let bad = "[[schedules]]\nname = \"x\"\ncron = \"99 * * * *\"\n";
        let config: Config =
            crate::core::toml_text::parse(bad, std::path::Path::new("config.toml")).unwrap();
        let err = SchedulerSettings::from_config(&config)
            .unwrap_err()
            .to_string();
        assert!(err.contains("schedule \"x\""), "{err}");
        let typo = "[[schedules]]\nname = \"x\"\ncorn = \"* * * * *\"\n";
        let err =
            crate::core::toml_text::parse::<Config>(typo, std::path::Path::new("config.toml"))
                .unwrap_err();
        assert!(err.to_string().starts_with("config.toml:3:1:"), "{err}");
    }

    #[test]
    fn off_peak_window_wraps_midnight_in_the_operator_timezone() {
        let settings = SchedulerSettings {
            timezone: jiff::tz::TimeZone::get("Europe/Paris").unwrap(),
            off_peak: parse_window("22:00-06:00").unwrap(),
            schedules: Vec::new(),
        };
        let at = |s: &str| s.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        // 21:30 UTC in January is 22:30 in Paris.
        assert!(settings.in_off_peak(at("2026-01-10T21:30:00Z")));
        assert!(settings.in_off_peak(at("2026-01-10T04:30:00Z")));
        assert!(!settings.in_off_peak(at("2026-01-10T12:00:00Z")));
        assert!(!settings.in_off_peak(at("2026-01-10T20:30:00Z")));
        assert!(parse_window("25:00-01:00").is_err());
    }
}
