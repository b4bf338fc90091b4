//! Concurrency (filled in below).
