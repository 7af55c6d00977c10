//! The decoder process's confinement. On Linux, a seccomp filter allows what decoding in memory
//! needs: reading and writing its open pipes, memory, threads of its own, time, and ending.
//! Any other system call, such as opening a file, starting a program or a socket, kills the
//! process (SIGSYS), so an exploited decoder can read no file, start nothing and reach no
//! network. Elsewhere the process runs unconfined (isolated from crashes only).

/// Confines the calling process for good; `Err` with the reason if the kernel refused.
#[cfg(target_os = "linux")]
pub(super) fn confine() -> Result<(), String> {
    use std::collections::BTreeMap;

    use seccompiler::{
        apply_filter_all_threads, BpfProgram, SeccompAction, SeccompCmpArgLen as Len,
        SeccompCmpOp as Op, SeccompCondition as Cond, SeccompFilter, SeccompRule,
    };

    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("seccomp on {}: {e}", std::env::consts::ARCH))?;
    let pid = u64::from(
        rustix::process::getpid()
            .as_raw_nonzero()
            .get()
            .unsigned_abs(),
    );
    let rule = |conds: Vec<Cond>| SeccompRule::new(conds).map_err(|e| e.to_string());
    let arg = |i, op, v| Cond::new(i, Len::Qword, op, v).map_err(|e| e.to_string());
    let mut allowed: BTreeMap<i64, Vec<SeccompRule>> =
        ALLOWED.iter().map(|&s| (s, vec![])).collect();
    // Threads (a JPEG decoded in bands, libheif's decoders), never a new process: clone must
    // ask for a thread; clone3 (whose flags a filter cannot read) fails below and the C
    // library falls back to clone.
    let thread = libc::CLONE_THREAD as u64;
    allowed.insert(
        libc::SYS_clone,
        vec![rule(vec![arg(0, Op::MaskedEq(thread), thread)?])?],
    );
    allowed.insert(libc::SYS_clone3, vec![]);
    // Signals to itself only (abort() raises SIGABRT this way); no other process.
    allowed.insert(libc::SYS_tgkill, vec![rule(vec![arg(0, Op::Eq, pid)?])?]);
    allowed.insert(libc::SYS_kill, vec![rule(vec![arg(0, Op::Eq, pid)?])?]);
    // Naming its own threads.
    allowed.insert(
        libc::SYS_prctl,
        vec![rule(vec![arg(0, Op::Eq, libc::PR_SET_NAME as u64)?])?],
    );
    let no_clone3: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, vec![])].into();
    let programs = [
        SeccompFilter::new(
            no_clone3,
            SeccompAction::Allow,
            SeccompAction::Errno(libc::ENOSYS as u32),
            arch,
        ),
        SeccompFilter::new(
            allowed,
            SeccompAction::KillProcess,
            SeccompAction::Allow,
            arch,
        ),
    ];
    for filter in programs {
        let program: BpfProgram = filter
            .map_err(|e| e.to_string())?
            .try_into()
            .map_err(|e: seccompiler::BackendError| e.to_string())?;
        apply_filter_all_threads(&program).map_err(|e| format!("seccomp: {e}"))?;
    }
    Ok(())
}

/// System calls allowed without condition.
#[cfg(target_os = "linux")]
const ALLOWED: &[i64] = &[
    // Its pipes (stdin, stdout) and stderr.
    libc::SYS_read,
    libc::SYS_readv,
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_close,
    libc::SYS_fstat,
    // Memory.
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    // Threads and their synchronisation.
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_sigaltstack,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigreturn,
    libc::SYS_getpid,
    libc::SYS_gettid,
    // Time and randomness (hash maps).
    libc::SYS_clock_gettime,
    libc::SYS_clock_nanosleep,
    libc::SYS_nanosleep,
    libc::SYS_getrandom,
    // Ending.
    libc::SYS_exit,
    libc::SYS_exit_group,
];

/// Elsewhere: no confinement (the process still contains crashes).
#[cfg(not(target_os = "linux"))]
pub(super) fn confine() -> Result<(), String> {
    Ok(())
}
