//! worker (stub: filled in by its own change).
