//! Routing: which provider and which key serve a request, in what order, and what
//! happened to them (key-pool usage, circuit breakers) — SPEC §4.1–§4.3. Pure state
//! driven by explicit `Instant`s: nothing here opens a socket, reads a clock, sleeps or
//! spawns a thread. The relay pipeline and the health prober own the I/O and report
//! what they saw.
//!
//! Pieces, one file each:
//! - [`bucket`]: one per-minute token bucket (rpm, tpm, itpm, otpm).
//! - [`keypool`]: a provider's keys — pick by strategy, cooldowns, bad keys, learned
//!   limits, usage correction, reload carry-over.
//! - [`circuit`]: a provider's circuit breaker and the outcome classification.
//! - [`strategy`]: the [`Router`] that orders providers per request.
//! - [`ratelimit`]: reading `retry-after` / `anthropic-ratelimit-*` headers.
//!
//! # One request, in call order
//!
//! ```text
//! plan = router.plan(model, |i| breakers[i].availability(now))
//! for provider in plan.providers (within failover_timeout):
//!     admission = breakers[p].admit(now)        (skip unless plan.last_resort when Rejected)
//!     loop:                                      (same request, next key)
//!         lease = pools[p].acquire(now, estimate)      Exhausted/NoUsableKey -> next provider
//!         send with lease.secret(); on the response head:
//!             pools[p].learn_limits(lease.key(), &RateLimitHeaders::parse(..), now)
//!             429     -> pools[p].cooldown_for(key, now, headers.cooldown(now_unix_ms) or 60 s); record; next key
//!             401/403 -> pools[p].mark_bad(key); record; next key
//!         when the response ends: pools[p].record_usage(lease, input, output, now)
//!     breakers[p].on_success / on_failure (is_breaker_failure(outcome)), or on_abandoned
//!     stop unless is_failover_trigger(outcome)
//! all keys of all providers exhausted -> 429 with retry-after = the smallest Exhausted wait
//! ```
//!
//! The same, run against the real types (a key with rpm 1 is used up by the first
//! request; the second fails over to `backup`):
//!
//! ```
//! use std::time::{Duration, Instant};
//! use cc_relay::config::schema::{Config, KeyConfig, ProviderConfig, ProviderType};
//! use cc_relay::route::{
//!     is_breaker_failure, AcquireError, Admission, AttemptOutcome, BreakerSettings,
//!     CircuitBreaker, KeyPool, RateLimitHeaders, Router,
//! };
//!
//! let mut primary = ProviderConfig::new("primary", ProviderType::Anthropic);
//! primary.priority = Some(2);
//! primary.keys.push(KeyConfig { rpm_limit: 1, ..KeyConfig::new("sk-one") });
//! let mut backup = ProviderConfig::new("backup", ProviderType::Zai);
//! backup.keys.push(KeyConfig::new("sk-two"));
//! let config = Config::with_providers(vec![primary, backup]);
//!
//! let start = Instant::now();
//! let router = Router::new(&config);
//! let settings = BreakerSettings::from_config(&config.health);
//! let breakers: Vec<CircuitBreaker> =
//!     config.providers.iter().map(|_| CircuitBreaker::new(settings)).collect();
//! let pools: Vec<KeyPool> = config
//!     .providers
//!     .iter()
//!     .map(|p| KeyPool::new(&p.keys, p.key_strategy, start))
//!     .collect();
//!
//! let mut served_by = Vec::new();
//! for request in 0..2u64 {
//!     let now = start + Duration::from_millis(request);
//!     let plan = router.plan("claude-sonnet-4-5", |i| breakers[i].availability(now));
//!     for &p in &plan.providers {
//!         if breakers[p].admit(now) == Admission::Rejected && !plan.last_resort {
//!             continue;
//!         }
//!         let lease = match pools[p].acquire(now, 1_000) {
//!             Ok(lease) => lease,
//!             Err(AcquireError::Exhausted { .. } | AcquireError::NoUsableKey) => continue,
//!         };
//!         // ... send with lease.secret(), get a 200 with these headers and usage ...
//!         let headers = RateLimitHeaders::parse([("anthropic-ratelimit-requests-limit", "1")]);
//!         pools[p].learn_limits(lease.key(), &headers, now);
//!         pools[p].record_usage(lease, 900, 50, now);
//!         let outcome = AttemptOutcome::Success;
//!         if is_breaker_failure(outcome) {
//!             breakers[p].on_failure(now);
//!         } else {
//!             breakers[p].on_success(now);
//!         }
//!         served_by.push(config.providers[p].name.as_str());
//!         break;
//!     }
//! }
//! assert_eq!(served_by, ["primary", "backup"]);
//! ```

pub mod bucket;
pub mod circuit;
pub mod keypool;
pub mod ratelimit;
pub mod rng;
pub mod strategy;

pub use bucket::TokenBucket;
pub use circuit::{
    is_breaker_failure, is_failover_trigger, Admission, AttemptOutcome, Availability,
    BreakerSettings, CircuitBreaker, CircuitState,
};
pub use keypool::{AcquireError, KeyId, KeyLease, KeyPool, KeyStatus};
pub use ratelimit::{parse_rfc3339_unix_ms, LimitHeaders, RateLimitHeaders};
pub use strategy::{Plan, Router};
