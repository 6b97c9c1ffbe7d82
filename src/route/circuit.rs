//! The per-provider circuit breaker of SPEC §4.3 and the classification of an attempt's
//! outcome (what counts as a breaker failure, what triggers failover). A state machine
//! driven by explicit `Instant`s: it never reads a clock, never sleeps and never probes —
//! the health prober calls [`CircuitBreaker::probe_succeeded`] when its request got any
//! HTTP answer.
//!
//! ```text
//!            failure_threshold consecutive failures
//!   CLOSED ───────────────────────────────────────────▶ OPEN ◀──────────────┐
//!     ▲                                                  │                  │
//!     │ all half_open_probes        open_duration passed │ or probe_succeeded│ any failure
//!     │ succeeded                                        ▼ (or a success)    │
//!     └───────────────────────────────────────────── HALF_OPEN ─────────────┘
//! ```
//!
//! Every attempt: [`admit`](CircuitBreaker::admit) before sending (skip the provider on
//! `Rejected`), then exactly one of [`on_success`](CircuitBreaker::on_success) /
//! [`on_failure`](CircuitBreaker::on_failure) (classified with [`is_breaker_failure`]),
//! or [`on_abandoned`](CircuitBreaker::on_abandoned) when the attempt ended without a
//! verdict (client gone). CLOSED is served from atomics without taking the lock.
//!
//! Decisions where SPEC is silent (documented here so they can be added to it):
//! - a success reported while OPEN (a last-resort attempt, or a request admitted before
//!   the breaker opened) is as good as a health probe: the breaker goes HALF_OPEN;
//! - a failure reported while OPEN changes nothing (in-flight requests that were already
//!   failing must not keep pushing the reopen time out);
//! - probe slots that got no verdict within `open_duration` are given back, so a lost
//!   verdict can never wedge a breaker in HALF_OPEN;
//! - `failure_threshold` and `half_open_probes` of 0 act as 1.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::config::schema::HealthConfig;

/// What one attempt at a provider came to, as the caller saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// A usable response (2xx) whose body reached the client.
    Success,
    /// The upstream answered with this status.
    Status(u16),
    /// Connect, TLS, DNS, reset or malformed-response error.
    Transport,
    /// Connect, first-byte or stream-idle deadline passed.
    Timeout,
}

/// Whether the outcome counts towards opening the breaker (SPEC §4.3): transport errors,
/// timeouts, 5xx and 529 do; 429 and every other 4xx do not (the provider is up).
pub fn is_breaker_failure(outcome: AttemptOutcome) -> bool {
    match outcome {
        AttemptOutcome::Success => false,
        AttemptOutcome::Transport | AttemptOutcome::Timeout => true,
        AttemptOutcome::Status(status) => status >= 500,
    }
}

/// Whether the request should move on to the next provider (SPEC §4.1): connect / TLS /
/// DNS errors, timeouts, 5xx, 529 and 429. Call it for a 429 only once the provider's key
/// pool has no other key to retry on — a 429 first retries on the provider's next key.
/// Other 4xx never fail over: the request itself is wrong and would be wrong anywhere.
pub fn is_failover_trigger(outcome: AttemptOutcome) -> bool {
    match outcome {
        AttemptOutcome::Success => false,
        AttemptOutcome::Transport | AttemptOutcome::Timeout => true,
        AttemptOutcome::Status(status) => status == 429 || status >= 500,
    }
}

/// The breaker's settings, from `health.circuit_breaker`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    pub failure_threshold: u32,
    pub open_duration: Duration,
    pub half_open_probes: u32,
}

impl BreakerSettings {
    pub fn from_config(health: &HealthConfig) -> BreakerSettings {
        BreakerSettings {
            failure_threshold: health.failure_threshold,
            open_duration: Duration::from_millis(health.open_duration_ms),
            half_open_probes: health.half_open_probes,
        }
    }

    fn threshold(&self) -> u32 {
        self.failure_threshold.max(1)
    }

    fn probes(&self) -> u32 {
        self.half_open_probes.max(1)
    }
}

/// The three states of SPEC §4.3.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    Open,
    HalfOpen,
}

impl CircuitState {
    /// Lower-case name for `/v1/providers`, metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
        }
    }
}

/// The answer to "may this request try the provider now?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Normal traffic.
    Closed,
    /// One of the `half_open_probes` trial requests: its verdict decides the state.
    HalfOpenProbe,
    /// Open, or half-open with every probe slot taken: go elsewhere, do not wait.
    Rejected,
}

/// What routing needs to know when ordering providers (see `strategy::Router::plan`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// `admit` would let a request through right now.
    Available,
    /// `admit` would reject; `opened_at` orders the all-open last resort.
    Unavailable { opened_at: Instant },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inner {
    Closed,
    Open {
        since: Instant,
    },
    HalfOpen {
        opened_at: Instant,
        entered: Instant,
        admitted: u32,
        succeeded: u32,
    },
}

#[derive(Debug)]
pub struct CircuitBreaker {
    settings: BreakerSettings,
    /// Mirrors `inner == Closed` so CLOSED traffic never touches the mutex.
    closed: AtomicBool,
    consecutive_failures: AtomicU32,
    inner: Mutex<Inner>,
    /// When the breaker last opened; kept after it closes again, for status pages.
    last_opened: Mutex<Option<Instant>>,
}

impl CircuitBreaker {
    pub fn new(settings: BreakerSettings) -> CircuitBreaker {
        CircuitBreaker {
            settings,
            closed: AtomicBool::new(true),
            consecutive_failures: AtomicU32::new(0),
            inner: Mutex::new(Inner::Closed),
            last_opened: Mutex::new(None),
        }
    }

    pub fn settings(&self) -> BreakerSettings {
        self.settings
    }

    /// After a config reload: keep the old breaker's state (SPEC §1.3) under the new
    /// settings. Call before the new breaker is shared.
    pub fn carry_over_from(&mut self, old: &CircuitBreaker) {
        let inner = *lock(&old.inner);
        *self.inner.get_mut().unwrap_or_else(|e| e.into_inner()) = inner;
        *self
            .last_opened
            .get_mut()
            .unwrap_or_else(|e| e.into_inner()) = *lock(&old.last_opened);
        self.closed = AtomicBool::new(inner == Inner::Closed);
        self.consecutive_failures =
            AtomicU32::new(old.consecutive_failures.load(Ordering::Relaxed));
    }

    /// Asks to send one request. `HalfOpenProbe` takes a probe slot that the verdict
    /// (or `on_abandoned`) gives back.
    pub fn admit(&self, now: Instant) -> Admission {
        if self.closed.load(Ordering::Acquire) {
            return Admission::Closed;
        }
        let mut inner = lock(&self.inner);
        self.expire(&mut inner, now);
        match &mut *inner {
            Inner::Closed => Admission::Closed,
            Inner::Open { .. } => Admission::Rejected,
            Inner::HalfOpen { admitted, .. } => {
                if *admitted < self.settings.probes() {
                    *admitted += 1;
                    Admission::HalfOpenProbe
                } else {
                    Admission::Rejected
                }
            }
        }
    }

    /// Time-driven transitions: OPEN -> HALF_OPEN once `open_duration` has passed, and a
    /// HALF_OPEN round whose verdicts never all arrived restarts with its slots free.
    fn expire(&self, inner: &mut Inner, now: Instant) {
        match *inner {
            Inner::Open { since }
                if now.saturating_duration_since(since) >= self.settings.open_duration =>
            {
                *inner = Inner::HalfOpen {
                    opened_at: since,
                    entered: now,
                    admitted: 0,
                    succeeded: 0,
                };
            }
            Inner::HalfOpen {
                opened_at, entered, ..
            } if now.saturating_duration_since(entered) >= self.settings.open_duration => {
                *inner = Inner::HalfOpen {
                    opened_at,
                    entered: now,
                    admitted: 0,
                    succeeded: 0,
                };
            }
            _ => {}
        }
    }

    pub fn on_success(&self, now: Instant) {
        if self.closed.load(Ordering::Acquire) {
            // Only write when needed: a shared counter written on every success would
            // bounce its cache line between all connection threads.
            if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
                self.consecutive_failures.store(0, Ordering::Relaxed);
            }
            return;
        }
        let mut inner = lock(&self.inner);
        self.expire(&mut inner, now);
        match *inner {
            Inner::Closed => self.consecutive_failures.store(0, Ordering::Relaxed),
            Inner::Open { since } => {
                *inner = Inner::HalfOpen {
                    opened_at: since,
                    entered: now,
                    admitted: 0,
                    succeeded: 0,
                };
            }
            Inner::HalfOpen {
                opened_at,
                entered,
                admitted,
                succeeded,
            } => {
                let succeeded = succeeded + 1;
                if succeeded >= self.settings.probes() {
                    self.close(&mut inner);
                } else {
                    *inner = Inner::HalfOpen {
                        opened_at,
                        entered,
                        admitted,
                        succeeded,
                    };
                }
            }
        }
    }

    pub fn on_failure(&self, now: Instant) {
        if self.closed.load(Ordering::Acquire) {
            let failures = self
                .consecutive_failures
                .fetch_add(1, Ordering::AcqRel)
                .saturating_add(1);
            if failures < self.settings.threshold() {
                return;
            }
        }
        let mut inner = lock(&self.inner);
        self.expire(&mut inner, now);
        match *inner {
            Inner::Closed => {
                // Re-check under the lock: a success may have reset the count meanwhile.
                if self.consecutive_failures.load(Ordering::Acquire) >= self.settings.threshold() {
                    self.open(&mut inner, now);
                }
            }
            Inner::Open { .. } => {}
            Inner::HalfOpen { .. } => self.open(&mut inner, now),
        }
    }

    /// The attempt admitted earlier ended without a verdict (client went away before the
    /// upstream answered): give its probe slot back.
    pub fn on_abandoned(&self, admission: Admission) {
        if admission != Admission::HalfOpenProbe {
            return;
        }
        let mut inner = lock(&self.inner);
        if let Inner::HalfOpen { admitted, .. } = &mut *inner {
            *admitted = admitted.saturating_sub(1);
        }
    }

    /// The health prober reached the provider: OPEN -> HALF_OPEN at once.
    pub fn probe_succeeded(&self, now: Instant) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        let mut inner = lock(&self.inner);
        if let Inner::Open { since } = *inner {
            *inner = Inner::HalfOpen {
                opened_at: since,
                entered: now,
                admitted: 0,
                succeeded: 0,
            };
        }
    }

    /// The state as a request arriving at `now` would find it (an OPEN breaker whose
    /// `open_duration` has passed already reads HALF_OPEN).
    pub fn state(&self, now: Instant) -> CircuitState {
        if self.closed.load(Ordering::Acquire) {
            return CircuitState::Closed;
        }
        let mut inner = *lock(&self.inner);
        self.expire(&mut inner, now);
        match inner {
            Inner::Closed => CircuitState::Closed,
            Inner::Open { .. } => CircuitState::Open,
            Inner::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    /// Whether `admit(now)` would let a request through, without taking a slot.
    pub fn availability(&self, now: Instant) -> Availability {
        if self.closed.load(Ordering::Acquire) {
            return Availability::Available;
        }
        let mut inner = *lock(&self.inner);
        self.expire(&mut inner, now);
        match inner {
            Inner::Closed => Availability::Available,
            Inner::Open { since } => Availability::Unavailable { opened_at: since },
            Inner::HalfOpen {
                opened_at,
                admitted,
                ..
            } => {
                if admitted < self.settings.probes() {
                    Availability::Available
                } else {
                    Availability::Unavailable { opened_at }
                }
            }
        }
    }

    /// When the breaker last went OPEN (`None` if it never did). Reopening from
    /// HALF_OPEN counts as opening.
    pub fn opened_at(&self) -> Option<Instant> {
        *lock(&self.last_opened)
    }

    /// Whether the health prober should probe this provider (SPEC §4.3: only OPEN ones).
    pub fn wants_probe(&self, now: Instant) -> bool {
        self.state(now) == CircuitState::Open
    }

    /// The consecutive failures counted while CLOSED.
    pub fn consecutive_failures(&self) -> u32 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    fn open(&self, inner: &mut Inner, now: Instant) {
        *inner = Inner::Open { since: now };
        self.closed.store(false, Ordering::Release);
        *lock(&self.last_opened) = Some(now);
    }

    fn close(&self, inner: &mut Inner) {
        *inner = Inner::Closed;
        self.consecutive_failures.store(0, Ordering::Relaxed);
        self.closed.store(true, Ordering::Release);
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain data that is
/// valid in every state; keep serving.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
