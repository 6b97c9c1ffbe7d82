//! Fleet-wide state for `cache.mode: ha` (SPEC §4.5): key-pool windows reserved
//! atomically in Redis, usage corrections, 429 cooldowns, learned limits, circuit states
//! and thinking-signature origins, shared by every cc-relay instance that points at the
//! same Redis. It owns the key layout and the Lua scripts; it never decides routing
//! (the key pool and breaker ask it and keep their own local state as the fallback), and
//! it never stores a secret: keys are named by [`KeyRef`] (a label or a SHA-256 of the
//! secret) and signatures by their hash.
//!
//! Two layers:
//! - [`SharedStore`]: one Redis round trip per operation, errors as [`RedisError`].
//! - [`SharedState`]: what the relay calls. Any error or missed deadline becomes
//!   [`Unavailable`]: logged once, `cc_relay_redis_up 0`, and from then on every call
//!   fails fast (no Redis traffic on the request path) until the background refresher
//!   reaches Redis again, logs the recovery and continues from Redis's state. Reads that
//!   happen on every request (cooldowns, circuit states) are answered from a local copy
//!   the refresher renews every ~100 ms; only [`SharedState::reserve`] waits on Redis.
//!
//! Key layout (`P` = `cache.redis.key_prefix`, default `cc-relay:`; `{provider}` is a
//! Redis Cluster hash tag, so all keys one script touches live in one slot):
//! - `P{provider}:key:<key>:rpm|tpm|itpm|otpm` — hash `l` level, `t` last refill (ms),
//!   `c` the limit the level belongs to. A missing bucket is full; each expires when it
//!   would be full again.
//! - `P{provider}:key:<key>:learned` — hash `rpm tpm itpm otpm`: limits the upstream
//!   reported (`anthropic-ratelimit-*-limit`), 1 h TTL, refreshed by every response.
//! - `P{provider}:cooldowns` — hash `<key>` -> cooldown end (unix ms).
//! - `P{provider}:circuit` — hash `state`, `opened_at` (unix ms, 0 = never),
//!   `updated_at` (unix ms; an older writer never overwrites a newer one).
//! - `Psig:<sha256 hex>` — the signature family, `EX 10800`.
//!
//! Buckets follow `route::bucket` exactly (capacity = limit, refill limit/60 per second,
//! a request larger than the bucket fits a full bucket, charges may go into debt,
//! give-backs never overfill) but keep the level in token-milliseconds (tokens × 60000)
//! so refill (`elapsed_ms × limit`) and every charge are integers, exact in Lua's
//! doubles. Effective limit = the smaller of configured and learned (either alone when
//! the other is 0), as in `route::keypool`; a changed limit keeps the absolute usage.
//! Time is the caller's unix ms: instances are assumed NTP-synced; a caller whose clock
//! is behind the last writer's gets no refill until it catches up (never extra tokens).

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::redis::{hex, Cmd, RedisClient, RedisError, RedisOptions, Script};
use crate::codec::resp2::Value;
use crate::config::{CacheMode, Config};
use crate::obs::metrics::Metrics;
use crate::route::circuit::CircuitState;

/// How long a signature's origin is remembered (SPEC §4.4: 3 h).
pub const SIGNATURE_TTL_SECS: u64 = 10_800;
/// How long learned limits live without a response re-reporting them.
pub const LEARNED_TTL_MS: u64 = 3_600_000;
/// How long a circuit record lives after its last change.
pub const CIRCUIT_TTL_MS: u64 = 86_400_000;
/// Limits and token counts are capped here so that token-milliseconds (× 60000) stay
/// below 2^53, where Lua's doubles are exact integers. ~6.9e10 per minute is far above
/// any real limit.
pub const MAX_TOKENS: u64 = 1 << 36;

fn capped(n: u64) -> String {
    n.min(MAX_TOKENS).to_string()
}

/// Unix time in milliseconds (the clock every shared timestamp uses).
pub fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Values

/// How a key is named in Redis: never the secret itself.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyRef(String);

impl KeyRef {
    /// The first 16 bytes of SHA-256(secret), hex: stable across instances and reloads
    /// (SPEC: key-pool state follows the key secret), useless for recovering the key.
    pub fn from_secret(secret: &str) -> KeyRef {
        let digest = Sha256::digest(secret.as_bytes());
        KeyRef(hex(digest.get(..16).unwrap_or(&digest)))
    }

    /// An operator-given key name: 1-64 characters of `A-Z a-z 0-9 _ . -`.
    pub fn from_label(label: &str) -> Result<KeyRef, String> {
        let ok = !label.is_empty()
            && label.len() <= 64
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if ok {
            Ok(KeyRef(label.to_string()))
        } else {
            Err(format!(
                "key label {label:?} cannot name a shared key (1-64 of A-Z a-z 0-9 _ . -)"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyRef({})", self.0)
    }
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Per-minute limits of one key; 0 = none. For `reserve` these are the configured
/// limits (learned ones are applied by Redis); for `learn_limits`, what was reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Limits {
    pub rpm: u64,
    pub tpm: u64,
    pub itpm: u64,
    pub otpm: u64,
}

impl Limits {
    fn array(&self) -> [u64; 4] {
        [self.rpm, self.tpm, self.itpm, self.otpm]
    }

    fn from_array(a: [u64; 4]) -> Limits {
        Limits {
            rpm: a[0],
            tpm: a[1],
            itpm: a[2],
            otpm: a[3],
        }
    }
}

/// Whole tokens left per bucket after a grant; `None` = that bucket is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Remaining {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
    pub itpm: Option<u64>,
    pub otpm: Option<u64>,
}

/// Tokens a grant took from tpm and itpm (the estimate, clamped to each bucket's size);
/// hand it back to `correct_usage` or `refund`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Charge {
    pub tpm: u64,
    pub itpm: u64,
}

/// A response's `usage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

/// The answer of [`SharedStore::reserve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// One request and the estimate were taken. Keep `charged` for
    /// [`SharedStore::correct_usage`] / [`SharedStore::refund`].
    Granted {
        remaining: Remaining,
        charged: Charge,
    },
    /// Nothing was taken; the key can take this request in `retry_after_ms` (cooldown
    /// and every window considered).
    Denied { retry_after_ms: u64 },
}

/// What a response reported about a key (`anthropic-ratelimit-*` headers); `None` =
/// not reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Reported {
    pub limits: [Option<u64>; 4],
    pub remaining: [Option<u64>; 4],
}

impl Reported {
    /// From the parsed headers, in the key pool's bucket order (requests, tokens, input,
    /// output = rpm, tpm, itpm, otpm).
    pub fn from_headers(headers: &crate::route::ratelimit::RateLimitHeaders) -> Reported {
        let kinds = headers.kinds();
        Reported {
            limits: kinds.map(|k| k.limit.filter(|&l| l > 0)),
            remaining: kinds.map(|k| k.remaining),
        }
    }
}

/// A provider's circuit as the fleet sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharedCircuit {
    pub state: CircuitState,
    /// When it last opened (unix ms), if ever.
    pub opened_at_ms: Option<u64>,
    /// When this record was written (unix ms).
    pub updated_at_ms: u64,
}

fn circuit_state_name(state: CircuitState) -> &'static str {
    state.as_str()
}

fn parse_circuit_state(name: &[u8]) -> Option<CircuitState> {
    match name {
        b"closed" => Some(CircuitState::Closed),
        b"open" => Some(CircuitState::Open),
        b"half_open" => Some(CircuitState::HalfOpen),
        _ => None,
    }
}

/// What the refresher reads for one provider.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProviderView {
    /// Key -> cooldown end (unix ms); may include ended ones until Redis prunes them.
    pub cooldowns: HashMap<String, u64>,
    pub circuit: Option<SharedCircuit>,
}

// ---------------------------------------------------------------------------------------
// Scripts

/// Helpers every script starts with. `int` writes integers in full: Lua's own
/// number-to-string switches to exponent notation above 1e14.
const LUA_COMMON: &str = r#"
local function num(x) return tonumber(x) or 0 end
local function int(x) return string.format('%.0f', x) end
"#;

/// Bucket helpers (see the module docs for the model).
const LUA_BUCKETS: &str = r#"
local W = 60000
local function effective(configured, learned)
  if configured <= 0 then return math.max(learned, 0) end
  if learned <= 0 then return configured end
  return math.min(configured, learned)
end
-- Level (token-ms) refilled up to now, and the refill time to store.
local function load(key, limit, now)
  local v = redis.call('HMGET', key, 'l', 't', 'c')
  local level, t, cap = tonumber(v[1]), tonumber(v[2]), tonumber(v[3])
  if level == nil or t == nil or cap == nil or cap <= 0 then return limit * W, now end
  if now > t then
    level = math.min(cap * W, level + (now - t) * cap)
    t = now
  end
  if cap ~= limit then
    -- A changed limit keeps the tokens already used.
    level = math.min(limit * W, level + (limit - cap) * W)
  end
  return level, t
end
local function store(key, level, t, limit)
  local full = limit * W
  if level >= full then
    redis.call('DEL', key)
    return
  end
  redis.call('HSET', key, 'l', int(level), 't', int(t), 'c', int(limit))
  redis.call('PEXPIRE', key, int(math.ceil((full - level) / limit) + 1000))
end
local function limits_of(learned_key, first_argv)
  local learned = redis.call('HMGET', learned_key, 'rpm', 'tpm', 'itpm', 'otpm')
  local out = {}
  for i = 1, 4 do out[i] = effective(num(ARGV[first_argv + i - 1]), num(learned[i])) end
  return out
end
"#;

/// KEYS: rpm tpm itpm otpm learned cooldowns. ARGV: now, 4 configured limits,
/// estimate, key ref. Returns {1, 0, rem x4, charged_tpm, charged_itpm} (rem -1 =
/// unlimited) or {0, retry_after_ms}.
const LUA_RESERVE: &str = r#"
local now = num(ARGV[1])
local est = num(ARGV[6])
local limits = limits_of(KEYS[5], 2)
local wait = 0
local cooldown = num(redis.call('HGET', KEYS[6], ARGV[7]))
if cooldown > now then wait = cooldown - now end
local need = {1, est, est, 1}
local take = {1, est, est, 0}
local levels, times = {}, {}
for i = 1, 4 do
  local limit = limits[i]
  if limit > 0 then
    local level, t = load(KEYS[i], limit, now)
    levels[i], times[i] = level, t
    local n = math.min(need[i], limit) * W
    if level < n then wait = math.max(wait, math.ceil((n - level) / limit)) end
  end
end
if wait > 0 then return {0, wait} end
local out = {1, 0, -1, -1, -1, -1, est, est}
for i = 1, 4 do
  local limit = limits[i]
  if limit > 0 then
    local taken = math.min(take[i], limit)
    local level = levels[i] - taken * W
    if take[i] > 0 then store(KEYS[i], level, times[i], limit) end
    out[2 + i] = math.max(0, math.floor(level / W))
    if i == 2 then out[7] = taken end
    if i == 3 then out[8] = taken end
  end
end
return out
"#;

/// KEYS: rpm tpm itpm otpm learned. ARGV: now, 4 configured limits, 4 signed deltas in
/// tokens (positive = charge, may go into debt; negative = give back, never overfills).
const LUA_ADJUST: &str = r#"
local now = num(ARGV[1])
local limits = limits_of(KEYS[5], 2)
for i = 1, 4 do
  local delta = num(ARGV[5 + i])
  local limit = limits[i]
  if limit > 0 and delta ~= 0 then
    local level, t = load(KEYS[i], limit, now)
    level = level - delta * W
    if delta < 0 then level = math.min(level, limit * W) end
    store(KEYS[i], level, t, limit)
  end
end
return 1
"#;

/// KEYS: rpm tpm itpm otpm learned. ARGV: now, 4 configured limits, 4 reported limits
/// (0 = none), 4 reported remaining (-1 = none).
const LUA_LEARN: &str = r#"
local now = num(ARGV[1])
local names = {'rpm', 'tpm', 'itpm', 'otpm'}
local learned = false
for i = 1, 4 do
  local limit = num(ARGV[5 + i])
  if limit > 0 then
    redis.call('HSET', KEYS[5], names[i], int(limit))
    learned = true
  end
end
if learned then redis.call('PEXPIRE', KEYS[5], ARGV[14]) end
local limits = limits_of(KEYS[5], 2)
for i = 1, 4 do
  local remaining = tonumber(ARGV[9 + i]) or -1
  local limit = limits[i]
  if limit > 0 and remaining >= 0 and remaining < limit then
    local level, t = load(KEYS[i], limit, now)
    -- Only ever lowers: our count includes requests the upstream has not seen yet.
    if level > remaining * W then store(KEYS[i], remaining * W, t, limit) end
  end
end
return 1
"#;

/// KEYS: cooldowns. ARGV: key ref, until, now. Returns the cooldown end now in force.
const LUA_COOLDOWN: &str = r#"
local key, u, now = ARGV[1], num(ARGV[2]), num(ARGV[3])
local current = num(redis.call('HGET', KEYS[1], key))
if u > current then redis.call('HSET', KEYS[1], key, int(u)) end
local all = redis.call('HGETALL', KEYS[1])
local latest = 0
for i = 1, #all, 2 do
  local v = num(all[i + 1])
  if v <= now then redis.call('HDEL', KEYS[1], all[i]) elseif v > latest then latest = v end
end
if latest > now then redis.call('PEXPIRE', KEYS[1], int(latest - now)) end
return math.max(u, current)
"#;

/// KEYS: circuit. ARGV: state, opened_at, updated_at, ttl. Returns 1 if written, 0 if a
/// newer record was already there.
const LUA_CIRCUIT: &str = r#"
local current = tonumber(redis.call('HGET', KEYS[1], 'updated_at')) or 0
if tonumber(ARGV[3]) < current then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'opened_at', ARGV[2], 'updated_at', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
"#;

struct Scripts {
    reserve: Script,
    adjust: Script,
    learn: Script,
    cooldown: Script,
    circuit: Script,
}

impl Scripts {
    fn new() -> Scripts {
        let plain = |body: &str| Script::new(&format!("{LUA_COMMON}{body}"));
        let with_buckets = |body: &str| Script::new(&format!("{LUA_COMMON}{LUA_BUCKETS}{body}"));
        Scripts {
            reserve: with_buckets(LUA_RESERVE),
            adjust: with_buckets(LUA_ADJUST),
            learn: with_buckets(LUA_LEARN),
            cooldown: plain(LUA_COOLDOWN),
            circuit: plain(LUA_CIRCUIT),
        }
    }
}

// ---------------------------------------------------------------------------------------
// SharedStore: one round trip per operation

/// The fleet operations over one [`RedisClient`]. Cheap to clone.
#[derive(Clone)]
pub struct SharedStore {
    client: RedisClient,
    prefix: Arc<str>,
    scripts: Arc<Scripts>,
}

impl fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedStore")
            .field("client", &self.client)
            .field("prefix", &self.prefix)
            .finish()
    }
}

fn protocol(what: &str, reply: &Value) -> RedisError {
    RedisError::Protocol(format!("unexpected reply to {what}: {reply:?}"))
}

fn check_provider(provider: &str) -> Result<(), RedisError> {
    // Braces would move the hash tag; the config already limits names to [a-z0-9_-].
    if provider.is_empty() || provider.contains(['{', '}']) {
        return Err(RedisError::Server(format!(
            "provider name {provider:?} cannot be used in a Redis key"
        )));
    }
    Ok(())
}

impl SharedStore {
    /// `prefix` is `cache.redis.key_prefix` (`cc-relay:`).
    pub fn new(client: RedisClient, prefix: &str) -> SharedStore {
        SharedStore {
            client,
            prefix: Arc::from(prefix),
            scripts: Arc::new(Scripts::new()),
        }
    }

    pub fn client(&self) -> &RedisClient {
        &self.client
    }

    /// `P{provider}:key:<key>:<suffix>`.
    pub fn key_name(&self, provider: &str, key: &KeyRef, suffix: &str) -> String {
        format!("{}{{{provider}}}:key:{}:{suffix}", self.prefix, key.0)
    }

    fn provider_key(&self, provider: &str, suffix: &str) -> String {
        format!("{}{{{provider}}}:{suffix}", self.prefix)
    }

    fn signature_key(&self, hash: &[u8; 32]) -> String {
        format!("{}sig:{}", self.prefix, hex(hash))
    }

    fn bucket_keys(&self, provider: &str, key: &KeyRef) -> Vec<String> {
        ["rpm", "tpm", "itpm", "otpm", "learned"]
            .iter()
            .map(|suffix| self.key_name(provider, key, suffix))
            .collect()
    }

    /// Checks every window of the key (and its cooldown) and, only if all have room,
    /// takes one request and `estimated_tokens` from rpm/tpm/itpm — one atomic script.
    pub fn reserve(
        &self,
        provider: &str,
        key: &KeyRef,
        limits: Limits,
        estimated_tokens: u64,
        now_ms: u64,
        deadline: Instant,
    ) -> Result<Reservation, RedisError> {
        check_provider(provider)?;
        let mut keys = self.bucket_keys(provider, key);
        keys.push(self.provider_key(provider, "cooldowns"));
        let mut args = vec![now_ms.to_string()];
        args.extend(limits.array().iter().map(|&l| capped(l)));
        args.push(capped(estimated_tokens));
        args.push(key.0.clone());
        let reply = self
            .client
            .eval(&self.scripts.reserve, &keys, &args, deadline)?;
        let numbers: Vec<i64> = reply
            .as_array()
            .and_then(|items| items.iter().map(Value::as_i64).collect())
            .ok_or_else(|| protocol("reserve", &reply))?;
        let count = |n: i64| u64::try_from(n).ok();
        match numbers.as_slice() {
            [1, _, rpm, tpm, itpm, otpm, charged_tpm, charged_itpm] => Ok(Reservation::Granted {
                remaining: Remaining {
                    rpm: count(*rpm),
                    tpm: count(*tpm),
                    itpm: count(*itpm),
                    otpm: count(*otpm),
                },
                charged: Charge {
                    tpm: count(*charged_tpm).unwrap_or(0),
                    itpm: count(*charged_itpm).unwrap_or(0),
                },
            }),
            [0, wait] => Ok(Reservation::Denied {
                retry_after_ms: count(*wait).unwrap_or(0).max(1),
            }),
            _ => Err(protocol("reserve", &reply)),
        }
    }

    /// After the response: moves the estimate to the real input count and charges the
    /// output (tpm and otpm), as `KeyPool::record_usage`. The request stays counted.
    #[allow(clippy::too_many_arguments)]
    pub fn correct_usage(
        &self,
        provider: &str,
        key: &KeyRef,
        limits: Limits,
        charged: Charge,
        usage: Usage,
        now_ms: u64,
        deadline: Instant,
    ) -> Result<(), RedisError> {
        let signed = |n: u64| n.min(MAX_TOKENS) as i64;
        let (input, output) = (signed(usage.input_tokens), signed(usage.output_tokens));
        let deltas = [
            0,
            input + output - signed(charged.tpm),
            input - signed(charged.itpm),
            output,
        ];
        self.adjust(provider, key, limits, deltas, now_ms, deadline)
    }

    /// The request never reached the upstream: gives back its request and estimate, as
    /// `KeyPool::refund`.
    pub fn refund(
        &self,
        provider: &str,
        key: &KeyRef,
        limits: Limits,
        charged: Charge,
        now_ms: u64,
        deadline: Instant,
    ) -> Result<(), RedisError> {
        let signed = |n: u64| n.min(MAX_TOKENS) as i64;
        let deltas = [-1, -signed(charged.tpm), -signed(charged.itpm), 0];
        self.adjust(provider, key, limits, deltas, now_ms, deadline)
    }

    fn adjust(
        &self,
        provider: &str,
        key: &KeyRef,
        limits: Limits,
        deltas: [i64; 4],
        now_ms: u64,
        deadline: Instant,
    ) -> Result<(), RedisError> {
        check_provider(provider)?;
        let keys = self.bucket_keys(provider, key);
        let mut args = vec![now_ms.to_string()];
        args.extend(limits.array().iter().map(|&l| capped(l)));
        args.extend(deltas.iter().map(i64::to_string));
        self.client
            .eval(&self.scripts.adjust, &keys, &args, deadline)
            .map(drop)
    }

    /// Stores the limits a response reported (shared with the fleet; the smaller of
    /// configured and learned applies) and lowers buckets to a reported `remaining`.
    /// `configured` is the key's configured limits.
    pub fn learn_limits(
        &self,
        provider: &str,
        key: &KeyRef,
        configured: Limits,
        reported: &Reported,
        now_ms: u64,
        deadline: Instant,
    ) -> Result<(), RedisError> {
        check_provider(provider)?;
        let keys = self.bucket_keys(provider, key);
        let mut args = vec![now_ms.to_string()];
        args.extend(configured.array().iter().map(|&l| capped(l)));
        args.extend(reported.limits.iter().map(|l| capped(l.unwrap_or(0))));
        args.extend(
            reported
                .remaining
                .iter()
                .map(|r| r.map_or_else(|| "-1".to_string(), capped)),
        );
        args.push(LEARNED_TTL_MS.to_string());
        self.client
            .eval(&self.scripts.learn, &keys, &args, deadline)
            .map(drop)
    }

    /// The limits the fleet has learned for a key (0 = none learned).
    pub fn learned_limits(
        &self,
        provider: &str,
        key: &KeyRef,
        deadline: Instant,
    ) -> Result<Limits, RedisError> {
        check_provider(provider)?;
        let cmd = Cmd::new("HMGET")
            .arg(self.key_name(provider, key, "learned"))
            .arg("rpm")
            .arg("tpm")
            .arg("itpm")
            .arg("otpm");
        let reply = self.client.query(&cmd, deadline)?;
        let items = reply
            .as_array()
            .filter(|items| items.len() == 4)
            .ok_or_else(|| protocol("HMGET", &reply))?;
        let mut limits = [0u64; 4];
        for (slot, item) in limits.iter_mut().zip(items) {
            *slot = item
                .as_i64()
                .and_then(|n| u64::try_from(n).ok())
                .unwrap_or(0);
        }
        Ok(Limits::from_array(limits))
    }

    /// Rests the key until `until_ms` fleet-wide (a 429). Never shortens a longer
    /// cooldown; returns the end now in force.
    pub fn set_cooldown(
        &self,
        provider: &str,
        key: &KeyRef,
        until_ms: u64,
        now_ms: u64,
        deadline: Instant,
    ) -> Result<u64, RedisError> {
        check_provider(provider)?;
        let keys = [self.provider_key(provider, "cooldowns")];
        let args = [key.0.clone(), until_ms.to_string(), now_ms.to_string()];
        let reply = self
            .client
            .eval(&self.scripts.cooldown, &keys, &args, deadline)?;
        reply
            .as_i64()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| protocol("cooldown", &reply))
    }

    /// Cooldowns of a provider's keys still running at `now_ms`.
    pub fn cooldowns(
        &self,
        provider: &str,
        now_ms: u64,
        deadline: Instant,
    ) -> Result<HashMap<String, u64>, RedisError> {
        check_provider(provider)?;
        let cmd = Cmd::new("HGETALL").arg(self.provider_key(provider, "cooldowns"));
        let reply = self.client.query(&cmd, deadline)?;
        let mut map = parse_cooldowns(&reply)?;
        map.retain(|_, until| *until > now_ms);
        Ok(map)
    }

    /// Publishes a circuit transition. A record written later (by `updated_at_ms`) wins;
    /// returns whether this one was stored.
    pub fn publish_circuit(
        &self,
        provider: &str,
        circuit: SharedCircuit,
        deadline: Instant,
    ) -> Result<bool, RedisError> {
        check_provider(provider)?;
        let keys = [self.provider_key(provider, "circuit")];
        let args = [
            circuit_state_name(circuit.state).to_string(),
            circuit.opened_at_ms.unwrap_or(0).to_string(),
            circuit.updated_at_ms.to_string(),
            CIRCUIT_TTL_MS.to_string(),
        ];
        let reply = self
            .client
            .eval(&self.scripts.circuit, &keys, &args, deadline)?;
        match reply.as_i64() {
            Some(n) => Ok(n == 1),
            None => Err(protocol("circuit", &reply)),
        }
    }

    /// The fleet's record of a provider's circuit, if any instance published one.
    pub fn circuit(
        &self,
        provider: &str,
        deadline: Instant,
    ) -> Result<Option<SharedCircuit>, RedisError> {
        check_provider(provider)?;
        let cmd = Cmd::new("HGETALL").arg(self.provider_key(provider, "circuit"));
        parse_circuit(&self.client.query(&cmd, deadline)?)
    }

    /// Cooldowns and circuit of every provider in one pipelined round trip (what the
    /// refresher reads).
    pub fn snapshot(
        &self,
        providers: &[String],
        deadline: Instant,
    ) -> Result<HashMap<String, ProviderView>, RedisError> {
        let mut cmds = Vec::with_capacity(providers.len() * 2);
        for provider in providers {
            check_provider(provider)?;
            cmds.push(Cmd::new("HGETALL").arg(self.provider_key(provider, "cooldowns")));
            cmds.push(Cmd::new("HGETALL").arg(self.provider_key(provider, "circuit")));
        }
        if cmds.is_empty() {
            // Still a round trip: the refresher doubles as the health check.
            self.client.ping(deadline)?;
            return Ok(HashMap::new());
        }
        let replies = self.client.pipeline(&cmds, deadline)?;
        let mut views = HashMap::with_capacity(providers.len());
        for (provider, pair) in providers.iter().zip(replies.chunks(2)) {
            let [cooldowns, circuit] = pair else {
                return Err(RedisError::Protocol("missing replies".into()));
            };
            views.insert(
                provider.clone(),
                ProviderView {
                    cooldowns: parse_cooldowns(cooldowns)?,
                    circuit: parse_circuit(circuit)?,
                },
            );
        }
        Ok(views)
    }

    /// Remembers which signature family issued a thinking signature, by the signature's
    /// SHA-256 (never the signature), for 3 h.
    pub fn remember_signature(
        &self,
        signature_sha256: &[u8; 32],
        family: &str,
        deadline: Instant,
    ) -> Result<(), RedisError> {
        let cmd = Cmd::new("SET")
            .arg(self.signature_key(signature_sha256))
            .arg(family)
            .arg("EX")
            .arg(SIGNATURE_TTL_SECS);
        match self.client.query(&cmd, deadline)? {
            Value::Simple(ok) if ok == "OK" => Ok(()),
            other => Err(protocol("SET", &other)),
        }
    }

    /// The family that issued the signature with this SHA-256, if known to the fleet.
    pub fn signature_family(
        &self,
        signature_sha256: &[u8; 32],
        deadline: Instant,
    ) -> Result<Option<String>, RedisError> {
        let cmd = Cmd::new("GET").arg(self.signature_key(signature_sha256));
        match self.client.query(&cmd, deadline)? {
            Value::Nil => Ok(None),
            Value::Bulk(b) => Ok(Some(String::from_utf8_lossy(&b).into_owned())),
            other => Err(protocol("GET", &other)),
        }
    }
}

/// HGETALL's flat `[field, value, ...]` as pairs.
fn hash_pairs(reply: &Value) -> Result<Vec<(&[u8], &Value)>, RedisError> {
    let items = reply
        .as_array()
        .filter(|items| items.len() % 2 == 0)
        .ok_or_else(|| protocol("HGETALL", reply))?;
    items
        .chunks(2)
        .map(|pair| match pair {
            [field, value] => field
                .as_bytes()
                .map(|f| (f, value))
                .ok_or_else(|| protocol("HGETALL", reply)),
            _ => Err(protocol("HGETALL", reply)),
        })
        .collect()
}

fn parse_cooldowns(reply: &Value) -> Result<HashMap<String, u64>, RedisError> {
    let mut map = HashMap::new();
    for (field, value) in hash_pairs(reply)? {
        if let Some(until) = value.as_i64().and_then(|n| u64::try_from(n).ok()) {
            map.insert(String::from_utf8_lossy(field).into_owned(), until);
        }
    }
    Ok(map)
}

fn parse_circuit(reply: &Value) -> Result<Option<SharedCircuit>, RedisError> {
    let pairs = hash_pairs(reply)?;
    if pairs.is_empty() {
        return Ok(None);
    }
    let field = |name: &[u8]| pairs.iter().find(|(f, _)| *f == name).map(|(_, v)| *v);
    let number = |name: &[u8]| {
        field(name)
            .and_then(Value::as_i64)
            .and_then(|n| u64::try_from(n).ok())
    };
    let state = field(b"state")
        .and_then(Value::as_bytes)
        .and_then(parse_circuit_state)
        .ok_or_else(|| protocol("circuit HGETALL", reply))?;
    Ok(Some(SharedCircuit {
        state,
        opened_at_ms: number(b"opened_at").filter(|&t| t > 0),
        updated_at_ms: number(b"updated_at").unwrap_or(0),
    }))
}

// ---------------------------------------------------------------------------------------
// SharedState: degrade to local state, refresh in the background

/// Redis could not answer (down, slow, refused, or an error reply): use local state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable;

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("shared state (Redis) unavailable")
    }
}

impl std::error::Error for Unavailable {}

/// How [`SharedState`] runs.
#[derive(Clone)]
pub struct SharedOptions {
    /// Period of the background refresh of cooldowns and circuits, which is also the
    /// re-check while Redis is down.
    pub refresh_every: Duration,
    /// Spawn the refresher thread (tests drive [`SharedState::refresh_now`] instead).
    pub background: bool,
    /// Where `cc_relay_redis_up` is reported.
    pub metrics: Option<Arc<Metrics>>,
}

impl Default for SharedOptions {
    fn default() -> Self {
        SharedOptions {
            refresh_every: Duration::from_millis(100),
            background: true,
            metrics: None,
        }
    }
}

/// For `status` and `/v1/providers`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedStatus {
    pub available: bool,
    /// The Redis URL, password redacted.
    pub url: String,
    /// The error that made it unavailable (no secrets: see `RedisError`).
    pub last_error: Option<String>,
    /// Time since the local copy was last refreshed.
    pub refreshed_ago: Option<Duration>,
}

#[derive(Default)]
struct Mirror {
    providers: HashMap<String, ProviderView>,
    refreshed_at: Option<Instant>,
    /// This instance's own writes, applied at once and re-applied over a snapshot whose
    /// read may have started before Redis had them.
    own_writes: Vec<OwnWrite>,
}

struct OwnWrite {
    at: Instant,
    provider: String,
    change: Change,
}

enum Change {
    Cooldown { key: String, until_ms: u64 },
    Circuit(SharedCircuit),
}

impl Mirror {
    fn apply(&mut self, provider: &str, change: &Change) {
        let view = self.providers.entry(provider.to_string()).or_default();
        match change {
            Change::Cooldown { key, until_ms } => {
                let slot = view.cooldowns.entry(key.clone()).or_insert(0);
                *slot = (*slot).max(*until_ms);
            }
            Change::Circuit(circuit) => {
                if view
                    .circuit
                    .is_none_or(|c| c.updated_at_ms <= circuit.updated_at_ms)
                {
                    view.circuit = Some(*circuit);
                }
            }
        }
    }

    fn record(&mut self, provider: &str, change: Change) {
        self.apply(provider, &change);
        self.own_writes.push(OwnWrite {
            at: Instant::now(),
            provider: provider.to_string(),
            change,
        });
    }

    /// Replaces the copy with a snapshot whose read started at `started`, keeping own
    /// writes made since (the snapshot may predate them). Redis's state wins otherwise:
    /// after a restart the fleet continues from what Redis holds.
    fn replace(&mut self, fetched: HashMap<String, ProviderView>, started: Instant) {
        self.providers = fetched;
        self.own_writes.retain(|w| w.at >= started);
        let writes = std::mem::take(&mut self.own_writes);
        for write in &writes {
            self.apply(&write.provider, &write.change);
        }
        self.own_writes = writes;
        self.refreshed_at = Some(Instant::now());
    }
}

struct Inner {
    store: SharedStore,
    up: AtomicBool,
    last_error: Mutex<Option<String>>,
    /// Serialises up/down transitions so each is logged and reported exactly once.
    transition: Mutex<()>,
    tracked: RwLock<Vec<String>>,
    mirror: RwLock<Mirror>,
    metrics: Option<Arc<Metrics>>,
    /// Dropping the sender (with `Inner`, or in `shutdown`) stops the refresher.
    stop: Mutex<Option<crossbeam_channel::Sender<()>>>,
    refresher: Mutex<Option<JoinHandle<()>>>,
}

/// The relay's handle on shared state; cheap to clone. See the module docs.
#[derive(Clone)]
pub struct SharedState {
    inner: Arc<Inner>,
}

impl fmt::Debug for SharedState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedState")
            .field("store", &self.inner.store)
            .field("available", &self.is_available())
            .finish()
    }
}

const LOG_UNAVAILABLE: &str = "redis-unavailable";
const LOG_ERROR_REPLY: &str = "redis-error-reply";

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SharedState {
    /// `None` unless `cache.mode` is `ha`. Builds the client from `cache.redis` (TLS
    /// trust from `server.upstream_ca_*`), checks Redis once (a failure is a logged
    /// warning, never an error: the instance serves on local state) and starts the
    /// refresher for every configured provider.
    pub fn from_config(
        config: &Config,
        metrics: Option<Arc<Metrics>>,
    ) -> Result<Option<SharedState>, RedisError> {
        if config.cache.mode != CacheMode::Ha {
            return Ok(None);
        }
        let redis = &config.cache.redis;
        let url = redis
            .url
            .as_deref()
            .ok_or_else(|| RedisError::BadUrl("cache.mode ha needs cache.redis.url".into()))?;
        let options = RedisOptions::from_config(
            redis,
            config.server.upstream_ca_file.as_deref(),
            config.server.upstream_ca_only,
        )?;
        let client = RedisClient::new(url, options)?;
        let store = SharedStore::new(client, &redis.key_prefix);
        let state = SharedState::start(
            store,
            SharedOptions {
                metrics,
                ..SharedOptions::default()
            },
        );
        let providers: Vec<&str> = config
            .providers
            .iter()
            .filter(|p| p.enabled)
            .map(|p| p.name.as_str())
            .collect();
        state.track_providers(&providers);
        Ok(Some(state))
    }

    /// Checks Redis once (logging a warning if it cannot be reached) and starts the
    /// refresher.
    pub fn start(store: SharedStore, options: SharedOptions) -> SharedState {
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(0);
        let inner = Arc::new(Inner {
            store,
            up: AtomicBool::new(false),
            last_error: Mutex::new(None),
            transition: Mutex::new(()),
            tracked: RwLock::new(Vec::new()),
            mirror: RwLock::new(Mirror::default()),
            metrics: options.metrics.clone(),
            stop: Mutex::new(Some(stop_tx)),
            refresher: Mutex::new(None),
        });
        if let Some(metrics) = &inner.metrics {
            metrics.set_redis_up(Some(false));
        }
        let state = SharedState { inner };
        let _ = state.refresh_now();
        if options.background {
            let weak = Arc::downgrade(&state.inner);
            let every = options.refresh_every.max(Duration::from_millis(1));
            let handle = std::thread::Builder::new()
                .name("redis-refresh".into())
                .stack_size(256 * 1024)
                .spawn(move || refresh_loop(weak, stop_rx, every));
            match handle {
                Ok(handle) => *lock(&state.inner.refresher) = Some(handle),
                Err(e) => {
                    crate::obs::log::once(
                        "redis-refresher-spawn",
                        format!("cannot start the Redis refresher thread: {e}"),
                    );
                }
            }
        }
        state
    }

    pub fn store(&self) -> &SharedStore {
        &self.inner.store
    }

    /// Whether Redis answered the last time it was asked.
    pub fn is_available(&self) -> bool {
        self.inner.up.load(Ordering::Acquire)
    }

    pub fn status(&self) -> SharedStatus {
        SharedStatus {
            available: self.is_available(),
            url: self.inner.store.client.url().redacted(),
            last_error: lock(&self.inner.last_error).clone(),
            refreshed_ago: read(&self.inner.mirror).refreshed_at.map(|at| at.elapsed()),
        }
    }

    /// The providers whose cooldowns and circuits the refresher keeps (call again after
    /// a reload).
    pub fn track_providers(&self, providers: &[&str]) {
        let names: Vec<String> = providers
            .iter()
            .filter(|p| check_provider(p).is_ok())
            .map(|p| p.to_string())
            .collect();
        *write(&self.inner.tracked) = names;
    }

    /// Reads Redis into the local copy now (the refresher does this every
    /// `refresh_every`). Success while unavailable is the recovery.
    pub fn refresh_now(&self) -> Result<(), Unavailable> {
        self.inner.refresh()
    }

    /// Stops the refresher (also stops when the last handle is dropped).
    pub fn shutdown(&self) {
        drop(lock(&self.inner.stop).take());
        let handle = lock(&self.inner.refresher).take();
        if let Some(handle) = handle {
            if handle.thread().id() != std::thread::current().id() {
                let _ = handle.join();
            }
        }
    }

    /// Runs `op` against Redis unless it is known to be down (fail fast); any failure
    /// becomes `Unavailable`.
    fn call<T>(
        &self,
        op: impl FnOnce(&SharedStore, Instant) -> Result<T, RedisError>,
    ) -> Result<T, Unavailable> {
        if !self.is_available() {
            return Err(Unavailable);
        }
        let deadline = self.inner.store.client.deadline();
        op(&self.inner.store, deadline).map_err(|e| self.inner.failed(e))
    }

    /// See [`SharedStore::reserve`].
    pub fn reserve(
        &self,
        provider: &str,
        key: &KeyRef,
        limits: Limits,
        estimated_tokens: u64,
        now_ms: u64,
    ) -> Result<Reservation, Unavailable> {
        self.call(|s, d| s.reserve(provider, key, limits, estimated_tokens, now_ms, d))
    }

    /// See [`SharedStore::correct_usage`].
    pub fn correct_usage(
        &self,
        provider: &str,
        key: &KeyRef,
        limits: Limits,
        charged: Charge,
        usage: Usage,
        now_ms: u64,
    ) -> Result<(), Unavailable> {
        self.call(|s, d| s.correct_usage(provider, key, limits, charged, usage, now_ms, d))
    }

    /// See [`SharedStore::refund`].
    pub fn refund(
        &self,
        provider: &str,
        key: &KeyRef,
        limits: Limits,
        charged: Charge,
        now_ms: u64,
    ) -> Result<(), Unavailable> {
        self.call(|s, d| s.refund(provider, key, limits, charged, now_ms, d))
    }

    /// See [`SharedStore::learn_limits`].
    pub fn learn_limits(
        &self,
        provider: &str,
        key: &KeyRef,
        configured: Limits,
        reported: &Reported,
        now_ms: u64,
    ) -> Result<(), Unavailable> {
        self.call(|s, d| s.learn_limits(provider, key, configured, reported, now_ms, d))
    }

    /// Publishes a 429 cooldown to the fleet and to this instance's local copy.
    pub fn set_cooldown(
        &self,
        provider: &str,
        key: &KeyRef,
        until_ms: u64,
        now_ms: u64,
    ) -> Result<(), Unavailable> {
        let until = self.call(|s, d| s.set_cooldown(provider, key, until_ms, now_ms, d))?;
        write(&self.inner.mirror).record(
            provider,
            Change::Cooldown {
                key: key.0.clone(),
                until_ms: until,
            },
        );
        Ok(())
    }

    /// The fleet's cooldown of a key, from the local copy: `Some(end)` while it runs.
    pub fn cooldown_until(
        &self,
        provider: &str,
        key: &KeyRef,
        now_ms: u64,
    ) -> Result<Option<u64>, Unavailable> {
        if !self.is_available() {
            return Err(Unavailable);
        }
        let mirror = read(&self.inner.mirror);
        Ok(mirror
            .providers
            .get(provider)
            .and_then(|v| v.cooldowns.get(&key.0))
            .copied()
            .filter(|&until| until > now_ms))
    }

    /// Every running cooldown of a provider's keys, from the local copy.
    pub fn cooldowns(
        &self,
        provider: &str,
        now_ms: u64,
    ) -> Result<HashMap<String, u64>, Unavailable> {
        if !self.is_available() {
            return Err(Unavailable);
        }
        let mirror = read(&self.inner.mirror);
        let mut map = mirror
            .providers
            .get(provider)
            .map(|v| v.cooldowns.clone())
            .unwrap_or_default();
        map.retain(|_, until| *until > now_ms);
        Ok(map)
    }

    /// Publishes a circuit transition to the fleet and to the local copy.
    pub fn publish_circuit(
        &self,
        provider: &str,
        circuit: SharedCircuit,
    ) -> Result<(), Unavailable> {
        let stored = self.call(|s, d| s.publish_circuit(provider, circuit, d))?;
        if stored {
            write(&self.inner.mirror).record(provider, Change::Circuit(circuit));
        }
        Ok(())
    }

    /// The fleet's circuit record of a provider, from the local copy.
    pub fn circuit(&self, provider: &str) -> Result<Option<SharedCircuit>, Unavailable> {
        if !self.is_available() {
            return Err(Unavailable);
        }
        Ok(read(&self.inner.mirror)
            .providers
            .get(provider)
            .and_then(|v| v.circuit))
    }

    /// See [`SharedStore::remember_signature`].
    pub fn remember_signature(
        &self,
        signature_sha256: &[u8; 32],
        family: &str,
    ) -> Result<(), Unavailable> {
        self.call(|s, d| s.remember_signature(signature_sha256, family, d))
    }

    /// See [`SharedStore::signature_family`].
    pub fn signature_family(
        &self,
        signature_sha256: &[u8; 32],
    ) -> Result<Option<String>, Unavailable> {
        self.call(|s, d| s.signature_family(signature_sha256, d))
    }
}

impl Inner {
    fn refresh(&self) -> Result<(), Unavailable> {
        let providers = read(&self.tracked).clone();
        let started = Instant::now();
        let deadline = self.store.client.deadline();
        match self.store.snapshot(&providers, deadline) {
            Ok(views) => {
                write(&self.mirror).replace(views, started);
                self.recovered();
                Ok(())
            }
            Err(e) => Err(self.failed(e)),
        }
    }

    /// Records a failed call. An error reply to one command (`ERR`, `WRONGTYPE`) is that
    /// call's problem, logged once; anything else (unreachable, slow, auth, a server
    /// that is loading, read-only or busy) means Redis is unusable: go local until the
    /// refresher gets through again.
    fn failed(&self, error: RedisError) -> Unavailable {
        let message = error.to_string();
        if let RedisError::Server(text) = &error {
            let code = text.split(' ').next().unwrap_or("");
            if code == "ERR" || code == "WRONGTYPE" {
                crate::obs::log::once(
                    LOG_ERROR_REPLY,
                    format!(
                        "Redis at {} answered an error ({message}); that call used local state",
                        self.store.client.url()
                    ),
                );
                return Unavailable;
            }
        }
        let _transition = lock(&self.transition);
        *lock(&self.last_error) = Some(message.clone());
        self.up.store(false, Ordering::Release);
        if let Some(metrics) = &self.metrics {
            metrics.set_redis_up(Some(false));
        }
        // `once` logs the first failure of each outage: `recovered` resets the key.
        crate::obs::log::once(
            LOG_UNAVAILABLE,
            format!(
                "Redis at {} unavailable ({message}); serving from local state until it returns",
                self.store.client.url()
            ),
        );
        Unavailable
    }

    fn recovered(&self) {
        let _transition = lock(&self.transition);
        if self.up.swap(true, Ordering::AcqRel) {
            return;
        }
        *lock(&self.last_error) = None;
        if let Some(metrics) = &self.metrics {
            metrics.set_redis_up(Some(true));
        }
        if crate::obs::log::reset_once(LOG_UNAVAILABLE) {
            crate::obs::log::info(format!(
                "Redis at {} reachable again; sharing state with the fleet",
                self.store.client.url()
            ));
        }
        crate::obs::log::reset_once(LOG_ERROR_REPLY);
    }
}

fn refresh_loop(weak: Weak<Inner>, stop: crossbeam_channel::Receiver<()>, every: Duration) {
    loop {
        match stop.recv_timeout(every) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
        let Some(inner) = weak.upgrade() else {
            return;
        };
        let _ = inner.refresh();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cooldown(key: &str, until_ms: u64) -> Change {
        Change::Cooldown {
            key: key.to_string(),
            until_ms,
        }
    }

    #[test]
    fn own_writes_survive_a_snapshot_that_started_before_them_only() {
        let mut mirror = Mirror::default();
        let before = Instant::now();
        mirror.record("p", cooldown("k", 500));
        // The snapshot's read began before the write: Redis may not have had it yet.
        mirror.replace(HashMap::new(), before);
        assert_eq!(mirror.providers["p"].cooldowns["k"], 500);
        // A snapshot begun after the write reflects Redis: here it no longer has it
        // (a restart), so neither does the copy.
        let after = Instant::now();
        mirror.replace(HashMap::new(), after);
        assert!(mirror.providers.is_empty());
        assert!(mirror.own_writes.is_empty());
    }

    #[test]
    fn a_fetched_longer_cooldown_and_newer_circuit_win_over_own_writes() {
        let mut mirror = Mirror::default();
        let before = Instant::now();
        let old = SharedCircuit {
            state: CircuitState::Open,
            opened_at_ms: Some(1),
            updated_at_ms: 10,
        };
        mirror.record("p", cooldown("k", 500));
        mirror.record("p", Change::Circuit(old));
        let newer = SharedCircuit {
            state: CircuitState::Closed,
            opened_at_ms: Some(1),
            updated_at_ms: 20,
        };
        let fetched = HashMap::from([(
            "p".to_string(),
            ProviderView {
                cooldowns: HashMap::from([("k".to_string(), 900)]),
                circuit: Some(newer),
            },
        )]);
        mirror.replace(fetched, before);
        assert_eq!(mirror.providers["p"].cooldowns["k"], 900);
        assert_eq!(mirror.providers["p"].circuit, Some(newer));
    }

    #[test]
    fn hash_replies_parse_and_reject_garbage() {
        let bulk = |s: &str| Value::Bulk(s.as_bytes().to_vec());
        let reply = Value::Array(vec![
            bulk("state"),
            bulk("half_open"),
            bulk("opened_at"),
            bulk("0"),
            bulk("updated_at"),
            bulk("42"),
        ]);
        assert_eq!(
            parse_circuit(&reply).unwrap(),
            Some(SharedCircuit {
                state: CircuitState::HalfOpen,
                opened_at_ms: None,
                updated_at_ms: 42,
            })
        );
        assert_eq!(parse_circuit(&Value::Array(vec![])).unwrap(), None);
        assert!(parse_circuit(&Value::Array(vec![bulk("state"), bulk("weird")])).is_err());
        assert!(parse_circuit(&Value::Array(vec![bulk("state")])).is_err());
        assert!(parse_cooldowns(&Value::Nil).is_err());
        let cooldowns = Value::Array(vec![bulk("a"), bulk("7"), bulk("b"), bulk("x")]);
        assert_eq!(
            parse_cooldowns(&cooldowns).unwrap(),
            HashMap::from([("a".to_string(), 7)])
        );
    }

    #[test]
    fn key_names_carry_the_provider_hash_tag() {
        let client = RedisClient::new("redis://127.0.0.1:1", RedisOptions::default()).unwrap();
        let store = SharedStore::new(client, "cc-relay:");
        let key = KeyRef::from_label("main").unwrap();
        assert_eq!(
            store.key_name("zai", &key, "rpm"),
            "cc-relay:{zai}:key:main:rpm"
        );
        assert_eq!(
            store.provider_key("zai", "circuit"),
            "cc-relay:{zai}:circuit"
        );
        assert!(check_provider("a{b").is_err());
        assert!(check_provider("").is_err());
    }
}
