//! The memory budget shared by all workers (`--memory`).
//!
//! Before decoding, a worker reserves the bytes its image will occupy once decoded; the
//! reservation is released when the job ends (the guard is dropped). While the budget is
//! exhausted, workers wait, so many workers on a folder of huge panoramas slow down instead of
//! running the machine out of memory. A request larger than the whole budget is clamped to it:
//! such an image waits until nothing else is held and then runs alone, rather than never.

use std::sync::{Condvar, Mutex, PoisonError};

/// A counting semaphore over bytes.
#[derive(Debug)]
pub struct Budget {
    limit: u64,
    state: Mutex<State>,
    freed: Condvar,
}

#[derive(Debug, Default)]
struct State {
    used: u64,
    peak: u64,
}

/// Bytes held from a [`Budget`] until dropped.
#[derive(Debug)]
pub struct Reservation<'a> {
    budget: &'a Budget,
    bytes: u64,
}

impl Budget {
    /// A budget of `limit` bytes (at least 1).
    pub fn new(limit: u64) -> Budget {
        Budget {
            limit: limit.max(1),
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
        }
    }

    /// The limit in bytes.
    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Waits until `bytes` (clamped to the limit) fit, then holds them until the reservation is
    /// dropped.
    pub fn reserve(&self, bytes: u64) -> Reservation<'_> {
        let bytes = bytes.min(self.limit);
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while s.used + bytes > self.limit {
            s = self.freed.wait(s).unwrap_or_else(PoisonError::into_inner);
        }
        s.used += bytes;
        s.peak = s.peak.max(s.used);
        Reservation {
            budget: self,
            bytes,
        }
    }

    /// The most bytes held at once so far.
    pub fn peak(&self) -> u64 {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .peak
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut s = self
            .budget
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        s.used -= self.bytes;
        drop(s);
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    #[test]
    fn holders_never_exceed_the_limit_and_everyone_gets_through() {
        let budget = Budget::new(100);
        let inside = AtomicU64::new(0);
        let worst = AtomicU64::new(0);
        std::thread::scope(|s| {
            for i in 0..8u64 {
                let (budget, inside, worst) = (&budget, &inside, &worst);
                s.spawn(move || {
                    for _ in 0..20 {
                        let want = 30 + i * 5;
                        let _r = budget.reserve(want);
                        let now = inside.fetch_add(want, Ordering::SeqCst) + want;
                        worst.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_micros(200));
                        inside.fetch_sub(want, Ordering::SeqCst);
                    }
                });
            }
        });
        assert!(worst.load(Ordering::SeqCst) <= 100);
        assert!(budget.peak() <= 100);
        assert!(budget.peak() >= 65, "two reservations did fit at once");
    }

    #[test]
    fn a_request_over_the_whole_budget_runs_alone_instead_of_never() {
        let budget = Budget::new(100);
        let small = budget.reserve(10);
        std::thread::scope(|s| {
            let big = s.spawn(|| {
                let r = budget.reserve(1_000);
                assert_eq!(budget.peak(), 100, "it holds everything, alone");
                drop(r);
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(!big.is_finished(), "it waits for the small one");
            drop(small);
            big.join().unwrap();
        });
    }
}
