//! Output file-name templates (in progress).
