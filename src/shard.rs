//! Splitting inputs across machines (in progress).
