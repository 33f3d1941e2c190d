//! A token bucket in driver time: the one rate limit used for wasted broadcast traffic (per peer),
//! membership requests (per peer), joins (per IP prefix) and the bytes of graft answers (per peer).

use meshwork_wire::Instant;

/// Tokens left and when they were last counted. Starts full.
#[derive(Clone, Copy, Debug)]
pub(crate) struct TokenBucket {
    tokens: f64,
    at: Instant,
}

impl TokenBucket {
    /// A full bucket of `burst` tokens.
    pub(crate) fn full(burst: f64, now: Instant) -> Self {
        Self {
            tokens: burst,
            at: now,
        }
    }

    /// Refills at `rate` per second up to `burst`, then takes one token; false if there was none (the
    /// caller drops what it was about to pay for).
    pub(crate) fn take(&mut self, now: Instant, burst: f64, rate: f64) -> bool {
        self.refill(now, burst, rate);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Refills, then takes `amount` tokens; false (and nothing taken) if fewer are left.
    pub(crate) fn take_amount(&mut self, now: Instant, amount: f64, burst: f64, rate: f64) -> bool {
        self.refill(now, burst, rate);
        if self.tokens >= amount {
            self.tokens -= amount;
            true
        } else {
            false
        }
    }

    /// Refills, then adds `amount` tokens (a reward earned, not time passed), up to `cap`: earned
    /// tokens may exceed `burst`, which bounds only what time refills.
    pub(crate) fn give(&mut self, now: Instant, amount: f64, cap: f64, burst: f64, rate: f64) {
        self.refill(now, burst, rate);
        self.tokens = (self.tokens + amount).min(cap.max(self.tokens));
    }

    /// True once the bucket has refilled completely: it can be forgotten, a new full one is the same.
    pub(crate) fn is_full(&mut self, now: Instant, burst: f64, rate: f64) -> bool {
        self.refill(now, burst, rate);
        self.tokens >= burst
    }

    fn refill(&mut self, now: Instant, burst: f64, rate: f64) {
        // A clock that went backwards (it must not) refills nothing; no time, no refill (and no
        // `0 × ∞` for an unlimited rate).
        if now > self.at {
            let secs = (now - self.at).as_secs_f64();
            // Tokens earned beyond the burst ([`TokenBucket::give`]) are kept, not cut back.
            if self.tokens < burst {
                self.tokens = (self.tokens + secs * rate).min(burst);
            }
            self.at = now;
        }
    }
}
