//! Disk faults (filled in below).
