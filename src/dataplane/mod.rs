//! dataplane (stub: filled in by its own change).
