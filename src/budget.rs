//! [`Budget`]: a token bucket, the one rate bound of the crate (new tenants' key stores,
//! introspection calls). A budget spent answers at once with how long to wait: callers
//! turn that into a 503 with `Retry-After`, never a queue.

use std::time::Duration;

use tokio::time::Instant;

/// A token bucket of `burst` tokens refilled at `per_second`. Pure logic over the
/// instants it is given.
#[derive(Debug)]
pub(crate) struct Budget {
    burst: f64,
    per_second: f64,
    tokens: f64,
    at: Option<Instant>,
}

impl Budget {
    pub(crate) fn new(burst: u32, per_second: f64) -> Self {
        Self {
            burst: f64::from(burst.max(1)),
            per_second: if per_second.is_finite() {
                per_second.max(0.001)
            } else {
                1.0
            },
            tokens: f64::from(burst.max(1)),
            at: None,
        }
    }

    /// Takes one token at `now`, or says how long until one is there.
    pub(crate) fn take(&mut self, now: Instant) -> Result<(), Duration> {
        if let Some(at) = self.at {
            let refill = now.saturating_duration_since(at).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.at = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.per_second;
            Err(Duration::try_from_secs_f64(wait).unwrap_or(Duration::MAX))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_is_a_burst_then_a_rate_and_refills() {
        let mut budget = Budget::new(3, 2.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(budget.take(t0), Ok(()));
        }
        assert_eq!(budget.take(t0), Err(Duration::from_millis(500)));
        assert_eq!(budget.take(t0 + Duration::from_millis(500)), Ok(()));
        assert!(budget.take(t0 + Duration::from_millis(600)).is_err());
        // A long pause refills the burst, no more.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(budget.take(later), Ok(()));
        }
        assert!(budget.take(later).is_err());
    }
}
