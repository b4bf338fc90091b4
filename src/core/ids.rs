//! Time-ordered identifiers (UUID v7), so ids sort by creation time.

#[must_use]
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
