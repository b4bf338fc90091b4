//! The triage role: routing, escalation, spam and recorded decisions.

use super::*;

#[test]
fn priority_labels_map_to_queue_priorities() {
    assert_eq!(priority_value("high"), Some(10));
    assert_eq!(priority_value("low"), Some(-10));
    assert_eq!(priority_value("7"), Some(7));
    assert_eq!(priority_value("whenever"), None);
}

#[test]
fn only_real_roles_and_workflows_are_targets() {
    let catalog = RoleCatalog::builtin();
    assert_eq!(target_kind(&catalog, "noop"), Some("role"));
    for label in ["", "operator", SPAM, "triage", "nobody"] {
        assert_eq!(target_kind(&catalog, label), None, "{label}");
    }
}
