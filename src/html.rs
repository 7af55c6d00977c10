//! `--report FILE.html`: one self-contained page describing a finished run.
//!
//! (Placeholder: the renderer is being written; see the issue on discoverability.)

use std::path::Path;

use crate::config::Config;
use crate::report::{FileRecord, Summary};

/// Renders the report page. `report_path` is where the page will live, so links to outputs can
/// be made relative to it (the page must work when opened straight from disk).
pub fn render(
    records: &[FileRecord],
    summary: &Summary,
    config: &Config,
    report_path: &Path,
) -> String {
    let _ = (records, summary, config, report_path);
    String::from("<!doctype html><title>presize report</title>")
}

/// Renders and writes the report atomically.
pub fn write(
    records: &[FileRecord],
    summary: &Summary,
    config: &Config,
    report_path: &Path,
) -> anyhow::Result<()> {
    let page = render(records, summary, config, report_path);
    crate::pipeline::encode::write_atomic(report_path, page.as_bytes(), true)
        .map_err(|e| anyhow::anyhow!("cannot write report {}: {e}", report_path.display()))
}
