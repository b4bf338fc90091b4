//! Crash-test hooks. `KEEL_FAILPOINT=<name>:<ms>` makes the process pause `ms` milliseconds
//! at the named point, so a test can SIGKILL it exactly there (e.g. between an effect's
//! intent and its completion). Unset — always, outside tests — it costs one env lookup.

/// Pauses here if `KEEL_FAILPOINT` names this point.
pub fn pause(name: &str) {
    let Ok(spec) = std::env::var("KEEL_FAILPOINT") else {
        return;
    };
    if let Some((point, ms)) = spec.split_once(':')
        && point == name
        && let Ok(ms) = ms.parse::<u64>()
    {
        tracing::warn!(point, ms, "failpoint: pausing");
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}
