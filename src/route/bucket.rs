//! One per-minute token bucket (SPEC §4.2): capacity = limit, refilled continuously at
//! limit/60 tokens per second, `limit == 0` = unlimited. Pure arithmetic on a `Copy`
//! value and a caller-supplied monotonic clock in nanoseconds; it never reads a clock and
//! never locks — `keypool` stores the two numbers in atomics and serialises writers.
//!
//! The state is a single timestamp, `full_at`: the moment the bucket will be full again
//! (the "theoretical arrival time" of GCRA). The level at `now` is
//! `limit * (1 - (full_at - now) / 60 s)`, so refilling needs no timer and no update.
//! `full_at` may lie more than a window ahead: the bucket is then in debt (negative
//! level), which happens when output tokens are charged after the fact.

/// The refill window: a full bucket's worth of tokens arrives every 60 s.
pub const WINDOW_NS: u64 = 60_000_000_000;

const WINDOW: u128 = WINDOW_NS as u128;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenBucket {
    limit: u64,
    full_at: u64,
}

impl TokenBucket {
    /// A full bucket holding `limit` tokens (0 = unlimited).
    pub fn new(limit: u64) -> TokenBucket {
        TokenBucket { limit, full_at: 0 }
    }

    /// Rebuilds a bucket from the two numbers `parts` returned (atomic storage).
    pub fn from_parts(limit: u64, full_at_ns: u64) -> TokenBucket {
        TokenBucket {
            limit,
            full_at: full_at_ns,
        }
    }

    /// `(limit, full_at_ns)`.
    pub fn parts(&self) -> (u64, u64) {
        (self.limit, self.full_at)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    pub fn is_unlimited(&self) -> bool {
        self.limit == 0
    }

    /// Nanoseconds of refill still owed before the bucket is full. `deficit / 60 s` is the
    /// fraction of the capacity in use, whatever the limit, so deficits of buckets with
    /// different limits compare directly (0 for an unlimited bucket).
    pub fn deficit(&self, now_ns: u64) -> u64 {
        self.full_at.saturating_sub(now_ns)
    }

    /// A request larger than the whole bucket could never fit; it is admitted when the
    /// bucket is full (and leaves it in debt) instead of being refused forever.
    fn clamp(&self, tokens: u64) -> u64 {
        tokens.min(self.limit)
    }

    /// Refill time worth `tokens`, rounded down so that exactly `limit` takes fit into
    /// one full bucket.
    fn cost_ns(&self, tokens: u64) -> u64 {
        if self.limit == 0 {
            return 0;
        }
        // u128 division is a library call; every realistic token count fits in u64.
        if let Some(product) = tokens.checked_mul(WINDOW_NS) {
            return product / self.limit;
        }
        let ns = tokens as u128 * WINDOW / self.limit as u128;
        u64::try_from(ns).unwrap_or(u64::MAX)
    }

    /// Whole tokens available at `now` (0 while in debt); `u64::MAX` when unlimited.
    pub fn available(&self, now_ns: u64) -> u64 {
        if self.limit == 0 {
            return u64::MAX;
        }
        let deficit = self.deficit(now_ns) as u128;
        if deficit >= WINDOW {
            return 0;
        }
        let used = (deficit * self.limit as u128).div_ceil(WINDOW);
        self.limit - used as u64
    }

    /// Whether `tokens` (clamped to the capacity) could be taken at `now`.
    pub fn fits(&self, now_ns: u64, tokens: u64) -> bool {
        if self.limit == 0 {
            return true;
        }
        let limit = self.limit as u128;
        let need = self.clamp(tokens) as u128;
        self.deficit(now_ns) as u128 * limit + need * WINDOW <= WINDOW * limit
    }

    /// Check and take in one step; returns whether the tokens were taken.
    pub fn try_take(&mut self, now_ns: u64, tokens: u64) -> bool {
        if !self.fits(now_ns, tokens) {
            return false;
        }
        if self.limit != 0 {
            let cost = self.cost_ns(self.clamp(tokens));
            self.full_at = self.full_at.max(now_ns).saturating_add(cost);
        }
        true
    }

    /// Takes `tokens` whether or not they are there (usage reported after the fact);
    /// the bucket may go into debt.
    pub fn charge(&mut self, now_ns: u64, tokens: u64) {
        if self.limit != 0 && tokens != 0 {
            let cost = self.cost_ns(tokens);
            self.full_at = self.full_at.max(now_ns).saturating_add(cost);
        }
    }

    /// Returns `tokens` taken earlier (an over-estimate, or a request that never left);
    /// never fills the bucket beyond its capacity.
    pub fn give_back(&mut self, now_ns: u64, tokens: u64) {
        if self.limit == 0 || self.full_at <= now_ns {
            return;
        }
        let cost = self.cost_ns(tokens);
        self.full_at = self.full_at.saturating_sub(cost).max(now_ns);
    }

    /// Moves a charge of `charged` tokens to `actual` tokens.
    pub fn correct(&mut self, now_ns: u64, charged: u64, actual: u64) {
        if actual > charged {
            self.charge(now_ns, actual - charged);
        } else {
            self.give_back(now_ns, charged - actual);
        }
    }

    /// Nanoseconds until `tokens` (clamped to the capacity) fit; 0 if they fit now.
    /// Rounded up, so that `fits(now + wait_ns(now, n), n)` holds.
    pub fn wait_ns(&self, now_ns: u64, tokens: u64) -> u64 {
        if self.limit == 0 {
            return 0;
        }
        let limit = self.limit as u128;
        let have = self.deficit(now_ns) as u128 * limit;
        let allowed = WINDOW * (limit - self.clamp(tokens) as u128);
        if have <= allowed {
            return 0;
        }
        u64::try_from((have - allowed).div_ceil(limit)).unwrap_or(u64::MAX)
    }

    /// Headroom as parts per million of the capacity (1_000_000 = full or unlimited).
    pub fn headroom_ppm(&self, now_ns: u64) -> u32 {
        if self.limit == 0 {
            return 1_000_000;
        }
        let deficit = self.deficit(now_ns);
        if deficit >= WINDOW_NS {
            return 0;
        }
        // deficit < 6e10, so the product stays far below u64::MAX.
        ((WINDOW_NS - deficit) * 1_000_000 / WINDOW_NS) as u32
    }

    /// Changes the capacity, keeping the tokens already used (a bucket 30 % used stays
    /// at the same absolute usage). Going from or to unlimited starts full.
    pub fn set_limit(&mut self, now_ns: u64, new_limit: u64) {
        if new_limit == self.limit {
            return;
        }
        if self.limit == 0 || new_limit == 0 {
            *self = TokenBucket::new(new_limit);
            return;
        }
        let deficit = self.deficit(now_ns) as u128;
        let rescaled = deficit * self.limit as u128 / new_limit as u128;
        self.limit = new_limit;
        self.full_at = now_ns.saturating_add(u64::try_from(rescaled).unwrap_or(u64::MAX));
    }

    /// Lowers the level to `remaining` when the upstream reports less than we think is
    /// left; never raises it, because our own count already includes requests the
    /// upstream has not seen yet.
    pub fn sync_remaining(&mut self, now_ns: u64, remaining: u64) {
        if self.limit == 0 || remaining >= self.limit {
            return;
        }
        let used = self.limit - remaining;
        let target = (used as u128 * WINDOW).div_ceil(self.limit as u128);
        let target = u64::try_from(target).unwrap_or(u64::MAX);
        if self.deficit(now_ns) < target {
            self.full_at = now_ns.saturating_add(target);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn exactly_limit_takes_fit_into_a_full_bucket() {
        for limit in [1u64, 3, 7, 60, 1000, 999_983] {
            let mut b = TokenBucket::new(limit);
            let now = 5 * SEC;
            for i in 0..limit.min(5000) {
                assert!(b.try_take(now, 1), "limit {limit} take {i}");
            }
            if limit <= 5000 {
                assert!(!b.try_take(now, 1), "limit {limit}: one too many");
                assert_eq!(b.available(now), 0);
            }
        }
    }

    #[test]
    fn refills_one_token_per_limit_sixtieth_of_a_minute() {
        let mut b = TokenBucket::new(60);
        for _ in 0..60 {
            assert!(b.try_take(0, 1));
        }
        assert_eq!(b.wait_ns(0, 1), SEC);
        assert!(!b.fits(SEC - 1, 1));
        assert!(b.fits(SEC, 1));
        assert_eq!(b.available(30 * SEC), 30);
        assert_eq!(b.available(60 * SEC), 60);
        assert_eq!(b.available(600 * SEC), 60, "never above capacity");
    }

    #[test]
    fn wait_is_exact_and_rounded_up() {
        let mut b = TokenBucket::new(7);
        for _ in 0..7 {
            assert!(b.try_take(0, 1));
        }
        let w = b.wait_ns(0, 3);
        assert!(b.fits(w, 3));
        assert!(!b.fits(w - 1, 3));
    }

    #[test]
    fn oversized_request_waits_for_a_full_bucket_then_goes_into_debt() {
        let mut b = TokenBucket::new(100);
        assert!(b.try_take(0, 30));
        assert!(!b.fits(0, 500));
        assert_eq!(b.wait_ns(0, 500), 18 * SEC);
        assert!(b.try_take(18 * SEC, 500));
        assert_eq!(b.available(18 * SEC), 0);
    }

    #[test]
    fn charge_creates_debt_that_blocks_until_repaid() {
        let mut b = TokenBucket::new(60);
        b.charge(0, 120);
        assert_eq!(b.available(0), 0);
        assert!(!b.fits(0, 0), "a bucket in debt has no headroom at all");
        assert_eq!(b.wait_ns(0, 1), 61 * SEC);
        assert_eq!(b.available(90 * SEC), 30);
    }

    #[test]
    fn give_back_never_exceeds_capacity() {
        let mut b = TokenBucket::new(10);
        assert!(b.try_take(0, 4));
        b.give_back(0, 100);
        assert_eq!(b.available(0), 10);
        assert_eq!(b.parts(), (10, 0));
    }

    #[test]
    fn correct_moves_an_estimate_to_the_actual_amount() {
        let mut b = TokenBucket::new(1000);
        assert!(b.try_take(0, 400));
        b.correct(0, 400, 100);
        assert_eq!(b.available(0), 900);
        b.correct(0, 100, 350);
        assert_eq!(b.available(0), 650);
    }

    #[test]
    fn unlimited_never_changes() {
        let mut b = TokenBucket::new(0);
        assert!(b.try_take(0, u64::MAX));
        b.charge(0, u64::MAX);
        assert_eq!(b.parts(), (0, 0));
        assert_eq!(b.wait_ns(0, u64::MAX), 0);
        assert_eq!(b.headroom_ppm(0), 1_000_000);
    }

    #[test]
    fn set_limit_keeps_absolute_usage() {
        let mut b = TokenBucket::new(100);
        assert!(b.try_take(0, 40));
        b.set_limit(0, 200);
        assert_eq!(b.available(0), 160);
        b.set_limit(0, 50);
        assert_eq!(b.available(0), 10);
        b.set_limit(0, 0);
        assert!(b.is_unlimited());
        b.set_limit(0, 10);
        assert_eq!(b.available(0), 10);
    }

    #[test]
    fn sync_remaining_only_lowers() {
        let mut b = TokenBucket::new(100);
        assert!(b.try_take(0, 50));
        b.sync_remaining(0, 80);
        assert_eq!(b.available(0), 50);
        b.sync_remaining(0, 20);
        assert_eq!(b.available(0), 20);
        b.sync_remaining(0, 0);
        assert_eq!(b.available(0), 0);
        assert_eq!(b.wait_ns(0, 100), 60 * SEC);
    }

    #[test]
    fn headroom_fraction() {
        let mut b = TokenBucket::new(4);
        assert_eq!(b.headroom_ppm(0), 1_000_000);
        assert!(b.try_take(0, 1));
        assert_eq!(b.headroom_ppm(0), 750_000);
        b.charge(0, 10);
        assert_eq!(b.headroom_ppm(0), 0);
    }
}
