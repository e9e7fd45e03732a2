//! ICE (placeholder)
