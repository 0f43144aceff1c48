//! Meta allows 80 messages per second per business number by default
//! (130429 past that): sends are spaced per `phone_number_id`, and a 130429
//! pauses that number for the backoff delay. The limiter is per process, so
//! with many concurrent Lambda instances it bounds each one, not their sum;
//! 130429 and the retries cover the rest.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

/// Spaces calls per key (business number) to at most `per_second`; a burst
/// is never more than one call ahead of the rate.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    interval: Option<Duration>,
    next_free: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    pub(crate) fn new(per_second: u32) -> Self {
        RateLimiter {
            interval: (per_second > 0).then(|| Duration::from_secs(1) / per_second),
            next_free: Mutex::new(HashMap::new()),
        }
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        // A panic while holding the lock cannot leave the map inconsistent.
        self.next_free.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves the next slot for `key` and waits for it.
    pub(crate) async fn acquire(&self, key: &str) {
        let Some(interval) = self.interval else {
            return;
        };
        let wait = {
            let mut slots = self.slots();
            let now = Instant::now();
            let slot = slots.entry(key.to_string()).or_insert(now);
            let at = (*slot).max(now);
            *slot = at + interval;
            at - now
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// No call for `key` before `delay` from now (Meta said 130429).
    pub(crate) fn pause(&self, key: &str, delay: Duration) {
        if self.interval.is_none() {
            return;
        }
        let until = Instant::now() + delay;
        let mut slots = self.slots();
        let slot = slots.entry(key.to_string()).or_insert(until);
        if *slot < until {
            *slot = until;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_limiter_spaces_calls_per_number() {
        let limiter = RateLimiter::new(10);
        let started = Instant::now();
        for _ in 0..3 {
            limiter.acquire("1").await;
        }
        // The first goes at once, then one every 100 ms.
        assert_eq!(started.elapsed(), Duration::from_millis(200));
        // Another number has its own budget.
        let other = Instant::now();
        limiter.acquire("2").await;
        assert_eq!(other.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_back_the_next_call() {
        let limiter = RateLimiter::new(80);
        limiter.pause("1", Duration::from_secs(1));
        let started = Instant::now();
        limiter.acquire("1").await;
        assert_eq!(started.elapsed(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_zero_rate_turns_the_limiter_off() {
        let limiter = RateLimiter::new(0);
        let started = Instant::now();
        for _ in 0..100 {
            limiter.acquire("1").await;
        }
        assert_eq!(started.elapsed(), Duration::ZERO);
    }
}
