//! Crash-test hooks. `KEEL_FAILPOINT=<name>:<ms>` makes the process pause `ms` milliseconds
//! at the named point, so a test can SIGKILL it exactly there (e.g. between an effect's
//! intent and its completion). `KEEL_FAILPOINT=<name>:<ms>:<file>` also creates `file` on
//! arrival, so the test knows the process is there. Unset — always, outside tests — it
//! costs one env lookup.

/// Pauses here if `KEEL_FAILPOINT` names this point.
pub fn pause(name: &str) {
    let Ok(spec) = std::env::var("KEEL_FAILPOINT") else {
        return;
    };
    let mut parts = spec.splitn(3, ':');
    if parts.next() == Some(name)
        && let Some(Ok(ms)) = parts.next().map(str::parse::<u64>)
    {
        tracing::warn!(point = name, ms, "failpoint: pausing");
        if let Some(marker) = parts.next()
            && let Err(e) = std::fs::write(marker, name)
        {
            tracing::warn!(error = %e, "failpoint: cannot create the arrival marker");
        }
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
}
