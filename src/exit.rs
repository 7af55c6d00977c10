//! Exit codes: a pure function of the run's [`Summary`].

use crate::report::Summary;

/// The process exit status, documented in `--help` and the README.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Exit {
    /// Every input was written or skipped.
    Success = 0,
    /// At least one input failed.
    SomeFailed = 1,
    /// Usage or fatal error: nothing (more) could be done.
    Fatal = 2,
    /// `--timeout` stopped the run early (as `timeout(1)` reports).
    TimeLimit = 124,
    /// Ctrl-C or SIGTERM stopped the run early.
    Interrupted = 130,
}

impl Exit {
    /// The exit status a finished run reports. Interruption wins over failures: the user needs to
    /// know the run is incomplete.
    pub fn from_summary(summary: &Summary) -> Exit {
        if summary.time_limit {
            Exit::TimeLimit
        } else if summary.interrupted {
            Exit::Interrupted
        } else if summary.failed > 0 {
            Exit::SomeFailed
        } else {
            Exit::Success
        }
    }

    /// The numeric code.
    pub fn code(self) -> u8 {
        self as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_code_tells_the_truth() {
        let mut s = Summary::default();
        assert_eq!(Exit::from_summary(&s), Exit::Success);
        s.skipped = 3;
        assert_eq!(Exit::from_summary(&s).code(), 0);
        s.failed = 1;
        s.written = 1000;
        assert_eq!(
            Exit::from_summary(&s).code(),
            1,
            "one failure among many successes is still 1"
        );
        s.interrupted = true;
        assert_eq!(Exit::from_summary(&s).code(), 130);
        s.time_limit = true;
        assert_eq!(Exit::from_summary(&s).code(), 124);
        assert_eq!(Exit::Fatal.code(), 2);
    }
}
