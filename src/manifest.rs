//! The build manifest (in progress).
