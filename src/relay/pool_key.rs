//! A pool key's part in one upstream attempt, the same for the sequential path and for
//! racers: before sending, reserve the key's share of the fleet's rate-limit window
//! (`cache.mode: ha`); after the answer's head, learn from it — rate-limit headers, a
//! 429's cooldown (told to the fleet too), a 401/403 that marks the key bad — and say
//! whether the key refused the request, so the same request can move to the next key;
//! when the attempt ends, settle the reservation with real usage or give it back.

use std::time::{Duration, Instant};

use crate::config::ProviderConfig;
use crate::net::client::UpstreamResponse;
use crate::provider::Provider;
use crate::relay::Relay;
use crate::route::{KeyLease, KeyPool, RateLimitHeaders};
use crate::state::shared::{Charge, KeyRef, Limits, Reservation, Usage as FleetUsage};

/// When a 429 names no wait (SPEC §4.2).
const DEFAULT_COOLDOWN: Duration = Duration::from_secs(60);

/// A key's reservation in Redis, settled when the attempt ends.
pub struct FleetHold {
    provider: String,
    key: KeyRef,
    limits: Limits,
    charged: Charge,
}

/// Whether the fleet lets this instance use a key now.
pub enum FleetGrant {
    /// Go ahead; `Some` holds the reservation to settle (None: no fleet, or Redis
    /// unreachable, in which case this instance's own state decides).
    Go(Option<FleetHold>),
    /// The fleet has used this key's window (or another instance saw a 429): the key is
    /// cooling down here too; give the lease back and take the next key.
    Denied,
}

/// Reserves `estimate` tokens of the leased key's window across the fleet.
pub fn reserve(
    relay: &Relay,
    provider: &Provider,
    pool: &KeyPool,
    lease: &KeyLease,
    estimate: u64,
    now: Instant,
) -> FleetGrant {
    let Some(shared) = &relay.shared else {
        return FleetGrant::Go(None);
    };
    let key = KeyRef::from_secret(lease.secret());
    let limits = key_limits(&provider.config, lease.secret());
    match shared.reserve(provider.name(), &key, limits, estimate, now_unix_ms()) {
        Ok(Reservation::Granted { charged, .. }) => FleetGrant::Go(Some(FleetHold {
            provider: provider.name().to_string(),
            key,
            limits,
            charged,
        })),
        Ok(Reservation::Denied { retry_after_ms }) => {
            let wait = Duration::from_millis(retry_after_ms.max(1));
            cool_down(relay, provider, pool, lease, wait, now);
            FleetGrant::Denied
        }
        // Redis unreachable or slow: this instance's own state decides.
        Err(_) => FleetGrant::Go(None),
    }
}

/// Ends a reservation: real usage corrects the estimate, None gives it back.
pub fn settle(relay: &Relay, hold: Option<FleetHold>, usage: Option<FleetUsage>) {
    let (Some(hold), Some(shared)) = (hold, relay.shared.as_ref()) else {
        return;
    };
    let now = now_unix_ms();
    let _ = match usage {
        Some(u) => {
            shared.correct_usage(&hold.provider, &hold.key, hold.limits, hold.charged, u, now)
        }
        None => shared.refund(&hold.provider, &hold.key, hold.limits, hold.charged, now),
    };
}

/// Learns from an upstream answer's head and returns whether the pool key refused the
/// request (429, 401 or 403), in which case the caller moves the same request to the
/// provider's next key. A 401/403 also tells the provider (a cached cloud token is
/// dropped) whether or not a pool key was used.
pub fn learn_from_answer(
    relay: &Relay,
    provider: &Provider,
    pool: &KeyPool,
    lease: Option<&KeyLease>,
    upstream: &UpstreamResponse,
    now: Instant,
) -> bool {
    let status = upstream.status();
    if status == 401 || status == 403 {
        provider.on_unauthorized();
    }
    let Some(lease) = lease else {
        return false;
    };
    let limits = RateLimitHeaders::parse(upstream.head.headers.iter());
    pool.learn_limits(lease.key(), &limits, now);
    match status {
        429 => {
            let wait = limits.cooldown(now_unix_ms()).unwrap_or(DEFAULT_COOLDOWN);
            cool_down(relay, provider, pool, lease, wait, now);
            true
        }
        401 | 403 => {
            if pool.mark_bad(lease.key()) {
                crate::obs::log::warn(format_args!(
                    "provider {}: key {} was refused with {status}; it is not used until the next reload",
                    provider.name(),
                    pool.label(lease.key()).unwrap_or("?")
                ));
            }
            true
        }
        _ => false,
    }
}

/// Rests a key here and, in a fleet, on every instance.
fn cool_down(
    relay: &Relay,
    provider: &Provider,
    pool: &KeyPool,
    lease: &KeyLease,
    wait: Duration,
    now: Instant,
) {
    pool.cooldown_for(lease.key(), now, wait);
    if let Some(shared) = &relay.shared {
        let now_ms = now_unix_ms();
        let until = now_ms + wait.as_millis() as u64;
        let key = KeyRef::from_secret(lease.secret());
        let _ = shared.set_cooldown(provider.name(), &key, until, now_ms);
    }
}

/// The configured per-minute limits of the pool key with this secret.
fn key_limits(config: &ProviderConfig, secret: &str) -> Limits {
    config
        .keys
        .iter()
        .find(|k| k.key == secret)
        .map(|k| Limits {
            rpm: k.rpm_limit,
            tpm: k.tpm_limit,
            itpm: k.itpm_limit,
            otpm: k.otpm_limit,
        })
        .unwrap_or_default()
}

pub fn now_unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
