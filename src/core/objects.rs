//! Versioned canonical business objects (built by the foundation issue).
