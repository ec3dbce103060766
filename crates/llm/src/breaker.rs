//! A circuit breaker: closed → open after N consecutive failed calls → half-open after a
//! cool-down (one probe call let through) → closed on its success, open again on failure.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, PartialEq)]
pub struct BreakerConfig {
    /// Consecutive failed calls that open the circuit.
    pub failure_threshold: u32,
    /// How long the circuit stays open before a probe is allowed.
    pub cool_down: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            cool_down: Duration::from_secs(30),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// Calls fail at once.
    Open,
    /// The cool-down is over: the next call is a probe (and further calls wait for its
    /// outcome, failing at once meanwhile).
    HalfOpen,
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
pub struct CircuitBreaker {
    config: BreakerConfig,
    inner: Mutex<Inner>,
}

impl CircuitBreaker {
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn state(&self) -> CircuitState {
        match *self.lock() {
            Inner::Closed { .. } => CircuitState::Closed,
            Inner::Open { until } if Instant::now() < until => CircuitState::Open,
            Inner::Open { .. } | Inner::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Whether calls currently fail at once (open, cool-down not over).
    pub fn is_open(&self) -> bool {
        self.state() == CircuitState::Open
    }

    /// Asks to make a call: `Err(wait)` if the circuit refuses it.
    pub(crate) fn acquire(&self) -> Result<(), Duration> {
        let mut inner = self.lock();
        let now = Instant::now();
        match *inner {
            Inner::Closed { .. } => Ok(()),
            Inner::Open { until } if now < until => Err(until - now),
            Inner::Open { .. } | Inner::HalfOpen { probing: false } => {
                *inner = Inner::HalfOpen { probing: true };
                Ok(())
            }
            // A probe is in flight; ask again shortly.
            Inner::HalfOpen { probing: true } => {
                Err(self.config.cool_down.min(Duration::from_secs(1)))
            }
        }
    }

    pub(crate) fn on_success(&self) {
        *self.lock() = Inner::Closed { failures: 0 };
    }

    pub(crate) fn on_failure(&self) {
        let mut inner = self.lock();
        let open = Inner::Open {
            until: Instant::now() + self.config.cool_down,
        };
        *inner = match *inner {
            Inner::Closed { failures } if failures + 1 < self.config.failure_threshold => {
                Inner::Closed {
                    failures: failures + 1,
                }
            }
            _ => open,
        };
    }

    /// The call ended without saying anything about the remote's health (e.g. a 400): a
    /// probe slot is released, the failure count is kept.
    pub(crate) fn on_neutral(&self) {
        let mut inner = self.lock();
        if let Inner::HalfOpen { probing: true } = *inner {
            *inner = Inner::HalfOpen { probing: false };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_threshold_and_half_opens_after_cool_down() {
        let b = CircuitBreaker::new(BreakerConfig {
            failure_threshold: 2,
            cool_down: Duration::from_millis(50),
        });
        b.on_failure();
        assert_eq!(b.state(), CircuitState::Closed);
        b.on_success();
        b.on_failure();
        assert_eq!(b.state(), CircuitState::Closed, "success resets the count");
        b.on_failure();
        assert!(b.is_open());
        assert!(b.acquire().is_err());
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.state(), CircuitState::HalfOpen);
        assert!(b.acquire().is_ok(), "one probe");
        assert!(b.acquire().is_err(), "only one probe");
        b.on_failure();
        assert!(b.is_open(), "a failed probe re-opens");
        std::thread::sleep(Duration::from_millis(60));
        assert!(b.acquire().is_ok());
        b.on_success();
        assert_eq!(b.state(), CircuitState::Closed);
    }
}
