//! A lock-free count of events over the last minute (`cc-relay status`' req/s): 60
//! one-second buckets, each one `AtomicU64` that packs the second it belongs to with
//! the events counted in it, so reusing a bucket for a new second and counting in it
//! are one compare-and-swap and a reader never sees a stale count under a new second.
//!
//! Pure: the caller passes the current second on a monotonic clock of its choice (the
//! same clock for every call), so tests move time by hand. It owns no clock, no lock
//! and no thread, and it does not know what the events are.

use std::sync::atomic::{AtomicU64, Ordering};

/// The window: the current second and the 59 before it.
pub const WINDOW_SECONDS: u64 = 60;

/// Low bits of a bucket: its count (16.7 million events per second before it saturates).
const COUNT_BITS: u32 = 24;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
/// High bits of a bucket: its second. 2^40 seconds is 34,000 years of uptime; later
/// seconds are clamped, which only merges buckets no one will live to read.
const LAST_SECOND: u64 = (1 << (64 - COUNT_BITS)) - 1;

/// Events of the last [`WINDOW_SECONDS`] seconds. `Sync`: any thread may record.
#[derive(Debug)]
pub struct RollingCount {
    buckets: [AtomicU64; WINDOW_SECONDS as usize],
}

impl Default for RollingCount {
    fn default() -> Self {
        RollingCount::new()
    }
}

fn second_of(bucket: u64) -> u64 {
    bucket >> COUNT_BITS
}

impl RollingCount {
    pub fn new() -> RollingCount {
        RollingCount {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }

    fn bucket(&self, second: u64) -> Option<&AtomicU64> {
        self.buckets.get((second % WINDOW_SECONDS) as usize)
    }

    /// One event during `second`.
    pub fn record(&self, second: u64) {
        let second = second.min(LAST_SECOND);
        let Some(bucket) = self.bucket(second) else {
            return;
        };
        let mut current = bucket.load(Ordering::Relaxed);
        loop {
            let next = match second_of(current) {
                same if same == second => {
                    if current & COUNT_MASK == COUNT_MASK {
                        return;
                    }
                    current + 1
                }
                // The bucket still holds a second that has left the window: start over.
                older if older < second => (second << COUNT_BITS) | 1,
                // A thread that read the clock later already reused the bucket; this
                // event is a full window older than what the bucket counts now.
                _ => return,
            };
            match bucket.compare_exchange_weak(current, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Events recorded during `now` and the `WINDOW_SECONDS - 1` seconds before it.
    pub fn total(&self, now: u64) -> u64 {
        let now = now.min(LAST_SECOND);
        self.buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .filter(|&b| second_of(b) <= now && now - second_of(b) < WINDOW_SECONDS)
            .map(|b| b & COUNT_MASK)
            .sum()
    }
}

/// A window's [`total`](RollingCount::total) as events per second, to two decimals.
pub fn per_second(total: u64) -> f64 {
    (total as f64 / WINDOW_SECONDS as f64 * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_the_current_second_and_the_59_before() {
        let count = RollingCount::new();
        assert_eq!(count.total(0), 0);
        count.record(100);
        count.record(100);
        count.record(130);
        count.record(159);
        assert_eq!(count.total(100), 2);
        assert_eq!(count.total(159), 4);
        // 100 leaves the window when 160 begins; 130 when 190 begins.
        assert_eq!(count.total(160), 2);
        assert_eq!(count.total(189), 2);
        assert_eq!(count.total(190), 1);
        assert_eq!(count.total(218), 1);
        assert_eq!(count.total(219), 0);
        assert_eq!(count.total(10_000), 0);
    }

    #[test]
    fn a_bucket_is_reused_by_newer_seconds_only() {
        let count = RollingCount::new();
        for _ in 0..5 {
            count.record(7);
        }
        // 67 falls in 7's bucket: it starts over at 1 instead of adding to 5.
        count.record(67);
        assert_eq!(count.total(67), 1);
        count.record(127);
        count.record(127);
        assert_eq!(count.total(127), 2);
        // A thread that read second 67 before being descheduled records late: the
        // bucket now counts 127, which that event must not wipe.
        count.record(67);
        assert_eq!(count.total(127), 2);
        // A reader whose clock is behind sees neither: 67's count is gone and 127 has
        // not happened yet for it.
        assert_eq!(count.total(126), 0);
    }

    #[test]
    fn per_second_is_rounded_to_two_decimals() {
        assert_eq!(per_second(0), 0.0);
        assert_eq!(per_second(1), 0.02);
        assert_eq!(per_second(7), 0.12);
        assert_eq!(per_second(120), 2.0);
        assert_eq!(per_second(6_000), 100.0);
    }

    #[test]
    fn a_full_bucket_saturates_instead_of_spilling_into_its_second() {
        let count = RollingCount::new();
        let bucket = count.bucket(3).unwrap_or_else(|| panic!("bucket"));
        bucket.store((3 << COUNT_BITS) | (COUNT_MASK - 1), Ordering::Relaxed);
        count.record(3);
        count.record(3);
        assert_eq!(count.total(3), COUNT_MASK);
        assert_eq!(second_of(bucket.load(Ordering::Relaxed)), 3);
    }

    #[test]
    fn far_future_seconds_are_clamped() {
        let count = RollingCount::new();
        count.record(u64::MAX);
        assert_eq!(count.total(u64::MAX), 1);
    }

    #[test]
    fn concurrent_records_are_all_counted() {
        let count = RollingCount::new();
        // Seconds 0 and 1 fill the buckets that 60 and 61 take over below.
        for second in [0, 0, 0, 1, 1, 1] {
            count.record(second);
        }
        std::thread::scope(|scope| {
            for thread in 0..8u64 {
                let count = &count;
                scope.spawn(move || {
                    for i in 0..5_000u64 {
                        // Half the threads straddle a second boundary.
                        let second = if thread % 2 == 0 { 61 } else { 60 + i % 2 };
                        count.record(second);
                    }
                });
            }
        });
        assert_eq!(count.total(61), 40_000);
        assert_eq!(count.total(119), 40_000);
        assert_eq!(count.total(120), 20_000 + 10_000);
        assert_eq!(count.total(121), 0);
    }
}
