//! Rate limits: one token bucket per key (visitor id, IP address).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Buckets beyond which idle (full) ones are dropped, so a flood of new keys cannot grow memory.
const PRUNE_AT: usize = 10_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Up to `per_minute` at once, refilled at `per_minute` a minute.
pub struct RateLimiter<K> {
    per_minute: f64,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    pub fn new(per_minute: u32) -> RateLimiter<K> {
        RateLimiter {
            per_minute: f64::from(per_minute.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Take one token for `key`: Ok, or Err(how long until one is free).
    pub fn check(&self, key: &K) -> Result<(), Duration> {
        self.check_at(key, Instant::now())
    }

    pub fn check_at(&self, key: &K, now: Instant) -> Result<(), Duration> {
        let mut map = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let rate = self.per_minute / 60.0;
        if map.len() >= PRUNE_AT && !map.contains_key(key) {
            let cap = self.per_minute;
            map.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * rate < cap
            });
        }
        let b = map.entry(key.clone()).or_insert(Bucket {
            tokens: self.per_minute,
            at: now,
        });
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(self.per_minute);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let l = RateLimiter::new(3);
        let t = Instant::now();
        for _ in 0..3 {
            assert!(l.check_at(&"a", t).is_ok());
        }
        let wait = l.check_at(&"a", t).unwrap_err();
        assert!(wait > Duration::from_secs(19) && wait <= Duration::from_secs(20));
        assert!(l.check_at(&"b", t).is_ok(), "keys are independent");
        assert!(l.check_at(&"a", t + Duration::from_secs(20)).is_ok());
        assert!(l.check_at(&"a", t + Duration::from_secs(21)).is_err());
    }

    #[test]
    fn retry_after_at_a_partly_refilled_bucket_is_exact() {
        // 3 a minute: one token every 20 s. Empty at t; at t+10 s half a token is back, so
        // the next one is 10 s away.
        let l = RateLimiter::new(3);
        let t = Instant::now();
        for _ in 0..3 {
            l.check_at(&"a", t).unwrap();
        }
        let wait = l.check_at(&"a", t + Duration::from_secs(10)).unwrap_err();
        assert!(
            (wait.as_secs_f64() - 10.0).abs() < 1e-6,
            "{wait:?}, expected 10 s"
        );
        let wait = l.check_at(&"a", t + Duration::from_secs(15)).unwrap_err();
        assert!(
            (wait.as_secs_f64() - 5.0).abs() < 1e-6,
            "{wait:?}, expected 5 s"
        );
    }

    #[test]
    fn a_flood_of_new_keys_does_not_free_a_throttled_one() {
        let l = RateLimiter::new(10);
        let t = Instant::now();
        for _ in 0..10 {
            l.check_at(&0usize, t).unwrap();
        }
        assert!(l.check_at(&0usize, t).is_err());
        // Far more new keys than the pruning threshold, each full again a while later.
        for i in 1..(PRUNE_AT * 2) {
            let at = t + Duration::from_millis(i as u64);
            let _ = l.check_at(&i, at);
        }
        // Two seconds on, key 0 has a third of a token: still throttled.
        let later = t + Duration::from_secs(2);
        assert!(l.check_at(&0usize, later).is_err(), "the flood reset key 0");
    }

    #[test]
    fn check_uses_the_clock_and_throttles() {
        let l = RateLimiter::new(2);
        assert!(l.check(&"a").is_ok());
        assert!(l.check(&"a").is_ok());
        let wait = l.check(&"a").unwrap_err();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
    }

    fn len<K>(l: &RateLimiter<K>) -> usize {
        l.buckets.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    #[test]
    fn pruning_drops_exactly_the_full_buckets_and_only_past_the_threshold() {
        // 60 a minute: one token a second, so a bucket used once is exactly full a second later.
        let l = RateLimiter::new(60);
        let t = Instant::now();
        for i in 0..10usize {
            l.check_at(&i, t).unwrap();
        }
        // Below the threshold a new key prunes nothing (no walk over the map per request).
        l.check_at(&10, t + Duration::from_secs(1)).unwrap();
        assert_eq!(len(&l), 11);
        for i in 11..PRUNE_AT {
            l.check_at(&i, t).unwrap();
        }
        assert_eq!(len(&l), PRUNE_AT);
        // At the threshold, every bucket full again (59 + 1 = 60) goes; the one used a second
        // later (key 10, 59 tokens) stays, as does the new one.
        l.check_at(&usize::MAX, t + Duration::from_secs(1)).unwrap();
        assert_eq!(len(&l), 2);
    }

    #[test]
    fn many_keys_are_pruned() {
        let l = RateLimiter::new(10);
        let t = Instant::now();
        for i in 0..(PRUNE_AT * 3) {
            assert!(l.check_at(&i, t + Duration::from_secs(i as u64)).is_ok());
        }
        assert!(l.buckets.lock().unwrap_or_else(|e| e.into_inner()).len() <= PRUNE_AT + 100);
    }
}
