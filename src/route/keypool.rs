//! The key pool of one provider (SPEC §4.2): which API key serves the next request, each
//! key's rpm / tpm / itpm / otpm buckets, 429 cooldowns, keys marked bad after 401/403,
//! limits learned from `anthropic-ratelimit-*` headers, and the state a config reload
//! keeps. Pure state: every method takes the time (`Instant`), nothing here sleeps, reads
//! a clock or talks to the network; the caller decides what an upstream answer means and
//! tells the pool.
//!
//! Call order for one attempt at a provider:
//! 1. [`KeyPool::acquire`]`(now, estimated_input_tokens)` -> a [`KeyLease`] (send with
//!    `lease.secret()`), or [`AcquireError::Exhausted`] with the exact wait, or
//!    [`AcquireError::NoUsableKey`] (no key at all, or every key bad).
//! 2. When the response head arrives: [`KeyPool::learn_limits`] with the parsed
//!    [`RateLimitHeaders`]. On 429: [`KeyPool::cooldown_for`] (length from
//!    [`RateLimitHeaders::cooldown`], else 60 s) and acquire again for the same request.
//!    On 401/403: [`KeyPool::mark_bad`] and acquire again.
//! 3. When the response ends, however it ends: [`KeyPool::record_usage`] with the
//!    `usage` numbers (0, 0 when there were none), or [`KeyPool::refund`] when the request
//!    never reached the upstream (connect failed).
//!
//! Concurrency: all methods take `&self`; the pool is shared by every connection thread.
//! Each key's numbers live in atomics, so choosing a key reads them without any lock;
//! only the chosen key's own small mutex is taken to re-check and take (a few integer
//! operations), and updates to one key never block another. While choosing, a key whose
//! lock is busy, or that was taken meanwhile, is passed over and the choice is made again;
//! only before answering `Exhausted` does `acquire` wait for the locks of the keys that
//! still fit, so a key with room is never missed.
//!
//! least_loaded ranks keys by how used their busiest bucket is. In a token bucket kept as
//! "full again at" (see `bucket`), the used fraction is `(full_at - now) / 60 s` whatever
//! the limit, so one maintained timestamp per key, read without any division, orders the
//! keys by headroom; equal ones (typically: all full) rotate round robin.
//!
//! Rules where SPEC leaves room:
//! - Learned limits: a learned limit is the upstream's hard limit, a configured limit is
//!   the operator's own cap, so the effective limit is the smaller of the two (either
//!   alone when the other is absent/0). `remaining` only ever lowers our level (our count
//!   already includes requests in flight that the upstream has not counted yet).
//! - A request estimated larger than a whole bucket is admitted when the bucket is full.
//! - `otpm` needs at least one token left (output is charged after the response).
//! - Weight 0 keys are picked by `weighted` only when no weighted key has headroom.
//! - Cooldowns only lengthen: an older, shorter `retry-after` never cuts a newer one.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use super::bucket::{TokenBucket, WINDOW_NS};
use super::ratelimit::RateLimitHeaders;
use super::rng::{fresh_seed, SharedRng};
use crate::config::schema::{KeyConfig, KeyStrategy};

/// Bucket order everywhere in this module (and in `RateLimitHeaders::kinds`).
const RPM: usize = 0;
const TPM: usize = 1;
const ITPM: usize = 2;
const OTPM: usize = 3;
const BUCKETS: usize = 4;

/// Lease ids name their pool so a lease from a pool replaced by a reload is ignored by
/// the new one instead of touching whichever key now has its index.
static NEXT_POOL_ID: AtomicU64 = AtomicU64::new(1);

/// One key of one pool; cheap to copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId {
    pool: u64,
    index: u32,
}

impl KeyId {
    /// Position of the key in the provider's `keys` list.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

/// A key handed out for one attempt. Give it back with `record_usage` or `refund`.
pub struct KeyLease {
    key: KeyId,
    secret: Arc<str>,
    charged_tokens: u64,
    charged_input: u64,
}

impl KeyLease {
    pub fn key(&self) -> KeyId {
        self.key
    }

    /// The API key to send upstream.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// Input tokens charged at acquire (the estimate, clamped to the bucket size).
    pub fn charged_input_tokens(&self) -> u64 {
        self.charged_input
    }
}

impl fmt::Debug for KeyLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyLease")
            .field("key", &self.key)
            .field("charged_input", &self.charged_input)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcquireError {
    /// Every usable key is out of headroom or cooling down; the earliest one can take
    /// this request after `retry_after`.
    Exhausted { retry_after: Duration },
    /// The pool has no keys, or all are marked bad: waiting will not help.
    NoUsableKey,
}

impl AcquireError {
    /// `retry-after` header value in whole seconds: rounded up, at least 1.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AcquireError::Exhausted { retry_after } => {
                let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
                Some(secs.max(1))
            }
            AcquireError::NoUsableKey => None,
        }
    }
}

/// One key as `/v1/providers` shows it. `*_remaining` is `None` when that limit is
/// unlimited; limits are the effective ones (configured or learned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStatus {
    pub label: String,
    pub rpm_limit: u64,
    pub rpm_remaining: Option<u64>,
    pub tpm_limit: u64,
    pub tpm_remaining: Option<u64>,
    pub itpm_limit: u64,
    pub itpm_remaining: Option<u64>,
    pub otpm_limit: u64,
    pub otpm_remaining: Option<u64>,
    /// Time left in a 429 cooldown.
    pub cooling_down_for: Option<Duration>,
    pub bad: bool,
}

/// A bucket readable without a lock: two atomics written only under the key's mutex.
#[derive(Debug, Default)]
struct AtomicBucket {
    limit: AtomicU64,
    full_at: AtomicU64,
}

impl AtomicBucket {
    fn load(&self) -> TokenBucket {
        TokenBucket::from_parts(
            self.limit.load(Ordering::Acquire),
            self.full_at.load(Ordering::Acquire),
        )
    }

    fn store(&self, bucket: TokenBucket) {
        let (limit, full_at) = bucket.parts();
        self.limit.store(limit, Ordering::Release);
        self.full_at.store(full_at, Ordering::Release);
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Limits {
    configured: [u64; BUCKETS],
    learned: [u64; BUCKETS],
}

impl Limits {
    fn effective(&self, i: usize) -> u64 {
        match (self.configured[i], self.learned[i]) {
            (0, learned) => learned,
            (configured, 0) => configured,
            (configured, learned) => configured.min(learned),
        }
    }
}

/// Everything that changes about one key. Shared (`Arc`) between the pool of the old
/// and the new config across a reload, so in-flight requests of the old config still
/// account into the same numbers.
#[derive(Debug)]
struct KeyState {
    /// What least_loaded reads for every key on every request, on one cache line.
    scan: ScanLine,
    buckets: [AtomicBucket; BUCKETS],
    /// Serialises writers; readers use the atomics.
    writer: Mutex<Limits>,
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct ScanLine {
    /// The latest `full_at` of the four buckets (written with them): how used the key is.
    busiest_full_at: AtomicU64,
    /// Nanoseconds since the pool epoch; 0 = not cooling down.
    cooldown_until: AtomicU64,
    bad: AtomicBool,
}

impl KeyState {
    fn new(configured: [u64; BUCKETS]) -> KeyState {
        let state = KeyState {
            scan: ScanLine::default(),
            buckets: Default::default(),
            writer: Mutex::new(Limits {
                configured,
                learned: [0; BUCKETS],
            }),
        };
        for (bucket, limit) in state.buckets.iter().zip(configured) {
            bucket.store(TokenBucket::new(limit));
        }
        state
    }

    fn lock(&self) -> MutexGuard<'_, Limits> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load_all(&self) -> [TokenBucket; BUCKETS] {
        [
            self.buckets[RPM].load(),
            self.buckets[TPM].load(),
            self.buckets[ITPM].load(),
            self.buckets[OTPM].load(),
        ]
    }

    fn store_all(&self, buckets: &[TokenBucket; BUCKETS]) {
        let mut busiest = 0;
        for (slot, bucket) in self.buckets.iter().zip(buckets) {
            slot.store(*bucket);
            busiest = busiest.max(bucket.parts().1);
        }
        self.scan.busiest_full_at.store(busiest, Ordering::Release);
    }

    fn usable(&self, now_ns: u64) -> bool {
        !self.scan.bad.load(Ordering::Acquire)
            && self.scan.cooldown_until.load(Ordering::Acquire) <= now_ns
    }

    /// Lock-free, exact: whether this key could take the request now.
    fn fits(&self, now_ns: u64, input: u64) -> bool {
        self.usable(now_ns)
            && self
                .buckets
                .iter()
                .enumerate()
                .all(|(i, slot)| slot.load().fits(now_ns, need(i, input)))
    }

    /// Lock-free, cheap: how used the key is — the largest bucket deficit in ns (fraction
    /// used = deficit / 60 s, comparable across limits). `None` if it cannot be used at
    /// all (bad, cooling down, a bucket empty or in debt). No division, no limit load:
    /// this is what least_loaded evaluates for every key on every request.
    fn load(&self, now_ns: u64) -> Option<u64> {
        if !self.usable(now_ns) {
            return None;
        }
        let worst = self
            .scan
            .busiest_full_at
            .load(Ordering::Acquire)
            .saturating_sub(now_ns);
        (worst < WINDOW_NS).then_some(worst)
    }

    /// Under the key's lock: re-check and take. Returns `(charged tpm, charged itpm)`.
    /// Without `wait`, a key another thread is updating right now is passed over: under
    /// least_loaded every thread's scan converges on the same key, and queueing on its
    /// lock would cost more than choosing again.
    fn try_take(&self, now_ns: u64, input: u64, wait: bool) -> Option<(u64, u64)> {
        let _writer = if wait {
            self.lock()
        } else {
            match self.writer.try_lock() {
                Ok(guard) => guard,
                Err(TryLockError::Poisoned(e)) => e.into_inner(),
                Err(TryLockError::WouldBlock) => return None,
            }
        };
        if !self.usable(now_ns) {
            return None;
        }
        let mut buckets = self.load_all();
        if (0..BUCKETS).any(|i| !buckets[i].fits(now_ns, need(i, input))) {
            return None;
        }
        let charged = |b: &TokenBucket| {
            if b.is_unlimited() {
                input
            } else {
                input.min(b.limit())
            }
        };
        let charged_tokens = charged(&buckets[TPM]);
        let charged_input = charged(&buckets[ITPM]);
        buckets[RPM].try_take(now_ns, 1);
        buckets[TPM].try_take(now_ns, input);
        buckets[ITPM].try_take(now_ns, input);
        self.store_all(&buckets);
        Some((charged_tokens, charged_input))
    }

    /// Nanoseconds until this key could take the request; `None` if it never will (bad).
    fn wait_ns(&self, now_ns: u64, input: u64) -> Option<u64> {
        if self.scan.bad.load(Ordering::Acquire) {
            return None;
        }
        let cooldown = self
            .scan
            .cooldown_until
            .load(Ordering::Acquire)
            .saturating_sub(now_ns);
        let buckets = self.load_all();
        let limits = (0..BUCKETS).map(|i| buckets[i].wait_ns(now_ns, need(i, input)));
        Some(limits.fold(cooldown, u64::max))
    }
}

/// Tokens a bucket must hold before a request may use the key.
fn need(bucket: usize, input: u64) -> u64 {
    match bucket {
        TPM | ITPM => input,
        _ => 1,
    }
}

struct PoolKey {
    secret: Arc<str>,
    label: String,
    weight: u64,
    state: Arc<KeyState>,
}

pub struct KeyPool {
    id: u64,
    strategy: KeyStrategy,
    /// Instants are stored as nanoseconds since this moment.
    epoch: Instant,
    keys: Vec<PoolKey>,
    /// `cumulative_weight[i]` = sum of the weights of keys `0..=i`.
    cumulative_weight: Vec<u64>,
    /// Rotation point for round robin and for least_loaded ties.
    cursor: AtomicUsize,
    rng: SharedRng,
}

impl fmt::Debug for KeyPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<&str> = self.keys.iter().map(|k| k.label.as_str()).collect();
        f.debug_struct("KeyPool")
            .field("strategy", &self.strategy)
            .field("keys", &labels)
            .finish_non_exhaustive()
    }
}

/// Rounds of "choose lock-free, then take under the key's lock" before falling back to
/// trying every key in turn under its lock.
const CHOOSE_ROUNDS: usize = 4;

impl KeyPool {
    /// A pool for a provider's `keys`, every bucket full. `now` anchors the pool's clock.
    pub fn new(keys: &[KeyConfig], strategy: KeyStrategy, now: Instant) -> KeyPool {
        KeyPool::with_seed(keys, strategy, now, fresh_seed())
    }

    /// As `new`, with a fixed seed for the `random`/`weighted` picks (tests, benches).
    pub fn with_seed(
        keys: &[KeyConfig],
        strategy: KeyStrategy,
        now: Instant,
        seed: u64,
    ) -> KeyPool {
        let keys: Vec<PoolKey> = keys
            .iter()
            .map(|k| PoolKey {
                secret: Arc::from(k.key.as_str()),
                label: k.label(),
                weight: u64::from(k.weight),
                state: Arc::new(KeyState::new(configured_limits(k))),
            })
            .collect();
        let cumulative_weight = keys
            .iter()
            .scan(0u64, |sum, k| {
                *sum = sum.saturating_add(k.weight);
                Some(*sum)
            })
            .collect();
        KeyPool {
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            strategy,
            epoch: now,
            keys,
            cumulative_weight,
            cursor: AtomicUsize::new(0),
            rng: SharedRng::new(seed),
        }
    }

    /// After a config reload: every key of this (new, not yet shared) pool whose secret
    /// was in `old` takes over that key's usage, cooldown and learned limits — also when
    /// it was renamed or moved. Its configured limits become the new ones; the bad mark
    /// is cleared (SPEC §4.2: a reload clears it). Keys new to the config start fresh.
    pub fn carry_over_from(&mut self, old: &KeyPool, now: Instant) {
        self.epoch = old.epoch;
        self.cursor = AtomicUsize::new(old.cursor.load(Ordering::Relaxed));
        let now_ns = self.ns(now);
        let mut old_by_secret: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, key) in old.keys.iter().enumerate().rev() {
            old_by_secret.entry(&key.secret).or_default().push(i);
        }
        for key in &mut self.keys {
            let configured = key.state.lock().configured;
            let reused = old_by_secret
                .get_mut(&*key.secret)
                .and_then(|candidates| candidates.pop())
                .and_then(|i| old.keys.get(i));
            key.state = match reused {
                Some(old_key) => {
                    let state = Arc::clone(&old_key.state);
                    state.reconfigure(configured, now_ns);
                    state
                }
                // A state built against this pool's own epoch would be misread now.
                None => Arc::new(KeyState::new(configured)),
            };
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn strategy(&self) -> KeyStrategy {
        self.strategy
    }

    /// The id of the key at `index` in the provider's `keys` list.
    pub fn key_id(&self, index: usize) -> Option<KeyId> {
        let index = u32::try_from(index).ok()?;
        ((index as usize) < self.keys.len()).then_some(KeyId {
            pool: self.id,
            index,
        })
    }

    /// The key's log/status label (never the secret).
    pub fn label(&self, key: KeyId) -> Option<&str> {
        self.get(key).map(|k| k.label.as_str())
    }

    fn get(&self, key: KeyId) -> Option<&PoolKey> {
        if key.pool != self.id {
            return None;
        }
        self.keys.get(key.index as usize)
    }

    fn ns(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    fn lease(&self, index: usize, charged: (u64, u64)) -> KeyLease {
        KeyLease {
            key: KeyId {
                pool: self.id,
                index: index as u32,
            },
            secret: Arc::clone(&self.keys[index].secret),
            charged_tokens: charged.0,
            charged_input: charged.1,
        }
    }

    /// Picks a key with headroom for a request of `estimated_input_tokens` by the pool's
    /// strategy and charges it one request and the estimate.
    pub fn acquire(
        &self,
        now: Instant,
        estimated_input_tokens: u64,
    ) -> Result<KeyLease, AcquireError> {
        let n = self.keys.len();
        if n == 0 {
            return Err(AcquireError::NoUsableKey);
        }
        let now_ns = self.ns(now);
        let input = estimated_input_tokens;
        for round in 0..CHOOSE_ROUNDS {
            let Some(index) = self.choose(now_ns, input, round > 0) else {
                break;
            };
            if let Some(charged) = self.keys[index].state.try_take(now_ns, input, false) {
                return Ok(self.lease(index, charged));
            }
        }
        // Every round lost a race, or nothing looked free. Before answering "exhausted",
        // wait for the lock of each key that still fits, so a key with room is never
        // missed; keys that do not fit are not locked at all.
        let start = self.cursor.load(Ordering::Relaxed) % n;
        for index in (start..n).chain(0..start) {
            let state = &self.keys[index].state;
            if !state.fits(now_ns, input) {
                continue;
            }
            if let Some(charged) = state.try_take(now_ns, input, true) {
                return Ok(self.lease(index, charged));
            }
        }
        let earliest = self
            .keys
            .iter()
            .filter_map(|k| k.state.wait_ns(now_ns, input))
            .min();
        match earliest {
            // Freed up between our tries and this look: report the shortest wait
            // rather than a zero that would invite a busy retry loop.
            Some(ns) => Err(AcquireError::Exhausted {
                retry_after: Duration::from_nanos(ns.max(1)),
            }),
            None => Err(AcquireError::NoUsableKey),
        }
    }

    /// A lock-free choice of a key that looks able to take the request. least_loaded's
    /// first round ranks by the cheap `load` alone; if that key cannot take the request
    /// after all, later rounds (`exact`) only rank keys that fit it exactly.
    fn choose(&self, now_ns: u64, input: u64, exact: bool) -> Option<usize> {
        let n = self.keys.len();
        let fits = |i: usize| self.keys[i].state.fits(now_ns, input);
        match self.strategy {
            KeyStrategy::LeastLoaded => {
                // Starting the scan at a rotating point makes equal load rotate.
                let start = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
                let mut best: Option<(usize, u64)> = None;
                // One division for the start, not one per key: this loop runs for every
                // key on every request.
                for i in (start..n).chain(0..start) {
                    let Some(load) = self.keys[i].state.load(now_ns) else {
                        continue;
                    };
                    if best.is_some_and(|(_, best_load)| best_load <= load) {
                        continue;
                    }
                    if exact && !fits(i) {
                        continue;
                    }
                    best = Some((i, load));
                }
                best.map(|(i, _)| i)
            }
            KeyStrategy::RoundRobin => {
                let start = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
                (start..n).chain(0..start).find(|&i| fits(i))
            }
            KeyStrategy::Random => {
                let first = self.rng.below(n as u64) as usize;
                if fits(first) {
                    return Some(first);
                }
                self.uniform_among_fitting(&fits)
            }
            KeyStrategy::Weighted => {
                let total = self.cumulative_weight.last().copied().unwrap_or(0);
                if total > 0 {
                    let ticket = self.rng.below(total);
                    let first = self.cumulative_weight.partition_point(|&c| c <= ticket);
                    if first < n && fits(first) {
                        return Some(first);
                    }
                }
                let weights: u64 = (0..n)
                    .filter(|&i| fits(i))
                    .map(|i| self.keys[i].weight)
                    .sum();
                if weights == 0 {
                    return self.uniform_among_fitting(&fits);
                }
                let mut ticket = self.rng.below(weights);
                for i in 0..n {
                    let weight = self.keys[i].weight;
                    if weight == 0 || !fits(i) {
                        continue;
                    }
                    if ticket < weight {
                        return Some(i);
                    }
                    ticket -= weight;
                }
                None
            }
        }
    }

    fn uniform_among_fitting(&self, fits: &dyn Fn(usize) -> bool) -> Option<usize> {
        let n = self.keys.len();
        let count = (0..n).filter(|&i| fits(i)).count();
        if count == 0 {
            return None;
        }
        let pick = self.rng.below(count as u64) as usize;
        (0..n).filter(|&i| fits(i)).nth(pick)
    }

    /// The response's `usage`: moves the input estimate to the real count and charges the
    /// output tokens (tpm and otpm). The request stays counted in rpm.
    pub fn record_usage(
        &self,
        lease: KeyLease,
        input_tokens: u64,
        output_tokens: u64,
        now: Instant,
    ) {
        let Some(key) = self.get(lease.key) else {
            return;
        };
        let now_ns = self.ns(now);
        let state = &key.state;
        let _writer = state.lock();
        let mut buckets = state.load_all();
        buckets[TPM].correct(now_ns, lease.charged_tokens, input_tokens);
        buckets[TPM].charge(now_ns, output_tokens);
        buckets[ITPM].correct(now_ns, lease.charged_input, input_tokens);
        buckets[OTPM].charge(now_ns, output_tokens);
        state.store_all(&buckets);
    }

    /// The request never reached the upstream: give back its request and input tokens.
    pub fn refund(&self, lease: KeyLease, now: Instant) {
        let Some(key) = self.get(lease.key) else {
            return;
        };
        let now_ns = self.ns(now);
        let state = &key.state;
        let _writer = state.lock();
        let mut buckets = state.load_all();
        buckets[RPM].give_back(now_ns, 1);
        buckets[TPM].give_back(now_ns, lease.charged_tokens);
        buckets[ITPM].give_back(now_ns, lease.charged_input);
        state.store_all(&buckets);
    }

    /// Rests the key until `until` (a 429). Never shortens a longer cooldown.
    pub fn cooldown_until(&self, key: KeyId, until: Instant) {
        if let Some(k) = self.get(key) {
            let until_ns = self.ns(until).max(1);
            k.state
                .scan
                .cooldown_until
                .fetch_max(until_ns, Ordering::AcqRel);
        }
    }

    /// Rests the key for `duration` from `now` (a 429; see `RateLimitHeaders::cooldown`).
    pub fn cooldown_for(&self, key: KeyId, now: Instant, duration: Duration) {
        if let Some(k) = self.get(key) {
            let ns = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
            let until_ns = self.ns(now).saturating_add(ns).max(1);
            k.state
                .scan
                .cooldown_until
                .fetch_max(until_ns, Ordering::AcqRel);
        }
    }

    /// The key got 401/403: never pick it again until a reload. Returns true the first
    /// time, so the caller logs it once.
    pub fn mark_bad(&self, key: KeyId) -> bool {
        match self.get(key) {
            Some(k) => !k.state.scan.bad.swap(true, Ordering::AcqRel),
            None => false,
        }
    }

    pub fn is_bad(&self, key: KeyId) -> bool {
        self.get(key)
            .is_some_and(|k| k.state.scan.bad.load(Ordering::Acquire))
    }

    /// Applies the limits a response reported for this key (rule in the module doc).
    pub fn learn_limits(&self, key: KeyId, headers: &RateLimitHeaders, now: Instant) {
        let Some(k) = self.get(key) else {
            return;
        };
        let now_ns = self.ns(now);
        let state = &k.state;
        let mut limits = state.lock();
        let mut buckets = state.load_all();
        for (i, reported) in headers.kinds().iter().enumerate() {
            if let Some(limit) = reported.limit.filter(|&l| l > 0) {
                limits.learned[i] = limit;
                buckets[i].set_limit(now_ns, limits.effective(i));
            }
            if let Some(remaining) = reported.remaining {
                buckets[i].sync_remaining(now_ns, remaining);
            }
        }
        state.store_all(&buckets);
    }

    /// Every key's limits, headroom, cooldown and bad mark at `now`.
    pub fn snapshot(&self, now: Instant) -> Vec<KeyStatus> {
        let now_ns = self.ns(now);
        self.keys
            .iter()
            .map(|k| {
                let b = k.state.load_all();
                let remaining = |bucket: &TokenBucket| {
                    (!bucket.is_unlimited()).then(|| bucket.available(now_ns))
                };
                let cooldown_left = k
                    .state
                    .scan
                    .cooldown_until
                    .load(Ordering::Acquire)
                    .saturating_sub(now_ns);
                KeyStatus {
                    label: k.label.clone(),
                    rpm_limit: b[RPM].limit(),
                    rpm_remaining: remaining(&b[RPM]),
                    tpm_limit: b[TPM].limit(),
                    tpm_remaining: remaining(&b[TPM]),
                    itpm_limit: b[ITPM].limit(),
                    itpm_remaining: remaining(&b[ITPM]),
                    otpm_limit: b[OTPM].limit(),
                    otpm_remaining: remaining(&b[OTPM]),
                    cooling_down_for: (cooldown_left > 0)
                        .then(|| Duration::from_nanos(cooldown_left)),
                    bad: k.state.scan.bad.load(Ordering::Acquire),
                }
            })
            .collect()
    }
}

impl KeyState {
    /// New configured limits after a reload; learned limits and usage stay.
    fn reconfigure(&self, configured: [u64; BUCKETS], now_ns: u64) {
        let mut limits = self.lock();
        limits.configured = configured;
        let mut buckets = self.load_all();
        for (i, bucket) in buckets.iter_mut().enumerate() {
            bucket.set_limit(now_ns, limits.effective(i));
        }
        self.store_all(&buckets);
        self.scan.bad.store(false, Ordering::Release);
    }
}

fn configured_limits(k: &KeyConfig) -> [u64; BUCKETS] {
    let mut limits = [0; BUCKETS];
    limits[RPM] = k.rpm_limit;
    limits[TPM] = k.tpm_limit;
    limits[ITPM] = k.itpm_limit;
    limits[OTPM] = k.otpm_limit;
    limits
}
