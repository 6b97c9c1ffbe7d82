//! The signature-origin cache of SPEC §4.4: which *signature family* issued a thinking
//! signature (or a `redacted_thinking` payload), keyed by its SHA-256 so the cache never
//! holds a signature itself. Entries live 3 hours from the last time they were recorded or
//! looked up (an active conversation keeps its origin), and the whole store stays within
//! a byte budget (`cache.max_bytes`), dropping the oldest entries first.
//!
//! It owns memory only: no I/O, no clock (callers pass `now`), no knowledge of providers
//! or of the request body. `SignatureBackend` is the seam where the Redis backend of
//! `cache.mode: ha` plugs in; `SignatureStore` is the in-process one. Locking is sharded
//! by the first byte of the hash and every critical section is a few map operations.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long an origin is remembered after it was last recorded or looked up.
pub const SIGNATURE_TTL: Duration = Duration::from_secs(3 * 60 * 60);

/// A signature family name (`claude`, or a provider name). Shared, so a lookup clones a
/// pointer instead of allocating.
pub type Family = Arc<str>;

/// SHA-256 of a signature or redacted-thinking payload: what the cache stores instead of
/// the secret-looking value itself.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SignatureHash(pub [u8; 32]);

impl SignatureHash {
    pub fn of(signature: &[u8]) -> SignatureHash {
        SignatureHash(Sha256::digest(signature).into())
    }

    /// Lower-case hex, the form a shared (Redis) backend uses in its keys.
    pub fn to_hex(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::with_capacity(64);
        for byte in self.0 {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }
}

impl fmt::Debug for SignatureHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight bytes are plenty to tell entries apart in test output and logs.
        write!(f, "SignatureHash({}…)", &self.to_hex()[..16])
    }
}

/// Where signature origins are kept. Implementations must be cheap to call from a
/// connection thread (no blocking beyond their own short timeout) and must never fail the
/// request: a backend that cannot answer answers `None`.
pub trait SignatureBackend: Send + Sync {
    /// Remembers that `family` issued the signature hashed to `hash`.
    fn record(&self, hash: &SignatureHash, family: &str, now: Instant);
    /// The family that issued `hash`, if it is still remembered at `now`.
    fn family_of(&self, hash: &SignatureHash, now: Instant) -> Option<Family>;
}

/// Estimated memory of one remembered signature in the map: the 32-byte key, the entry
/// (family pointer, timestamp, sequence number) and the hash table's slack at its load
/// factor. An estimate, deliberately on the high side so the budget is an upper bound.
const MAP_ENTRY_BYTES: usize = 112;
/// Estimated memory of one slot in the oldest-first queue (key + sequence number).
const ORDER_ENTRY_BYTES: usize = 48;
const SHARD_COUNT: usize = 16;
/// Family names are few (one per configured family); interning stops at this many per
/// shard so a pathological caller cannot grow the table without bound.
const MAX_INTERNED_FAMILIES: usize = 64;

/// The in-process signature cache. See the module docs.
pub struct SignatureStore {
    shards: Vec<Mutex<Shard>>,
    shard_budget: usize,
    ttl: Duration,
}

struct Entry {
    family: Family,
    last_seen: Instant,
    /// Which queue slot is current for this entry; older slots for it are stale.
    seq: u64,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<SignatureHash, Entry>,
    /// Insertion (and touch) order, oldest first. A slot whose `seq` no longer matches the
    /// entry is stale and skipped.
    order: VecDeque<(SignatureHash, u64)>,
    next_seq: u64,
    families: Vec<Family>,
}

impl Shard {
    fn bytes(&self) -> usize {
        self.entries.len() * MAP_ENTRY_BYTES + self.order.len() * ORDER_ENTRY_BYTES
    }

    fn intern(&mut self, family: &str) -> Family {
        if let Some(known) = self.families.iter().find(|f| &***f == family) {
            return known.clone();
        }
        let fresh: Family = Arc::from(family);
        if self.families.len() < MAX_INTERNED_FAMILIES {
            self.families.push(fresh.clone());
        }
        fresh
    }

    fn next_seq(&mut self) -> u64 {
        self.next_seq = self.next_seq.wrapping_add(1);
        self.next_seq
    }

    fn is_current(&self, hash: &SignatureHash, seq: u64) -> bool {
        self.entries.get(hash).is_some_and(|e| e.seq == seq)
    }

    /// Drops stale slots and expired entries from the old end of the queue.
    fn expire(&mut self, now: Instant, ttl: Duration) {
        while let Some(&(hash, seq)) = self.order.front() {
            match self.entries.get(&hash) {
                Some(entry) if entry.seq == seq => {
                    if now.saturating_duration_since(entry.last_seen) < ttl {
                        break;
                    }
                    self.entries.remove(&hash);
                }
                _ => {}
            }
            self.order.pop_front();
        }
    }

    /// Oldest out first until the shard fits its budget again.
    fn evict_to(&mut self, budget: usize) {
        while self.bytes() > budget {
            let Some((hash, seq)) = self.order.pop_front() else {
                break;
            };
            if self.is_current(&hash, seq) {
                self.entries.remove(&hash);
            }
        }
        // Lookups push a fresh slot each time; when stale slots dominate, sweep them so the
        // budget is spent on entries rather than on history.
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order
                .retain(|(hash, seq)| entries.get(hash).is_some_and(|e| e.seq == *seq));
        }
    }
}

impl SignatureStore {
    /// A store that never holds more than about `max_bytes` (0 remembers nothing).
    pub fn new(max_bytes: u64) -> SignatureStore {
        SignatureStore::with_ttl(max_bytes, SIGNATURE_TTL)
    }

    /// As `new`, with another lifetime (tests and the HA layer's local mirror).
    pub fn with_ttl(max_bytes: u64, ttl: Duration) -> SignatureStore {
        let max_bytes = usize::try_from(max_bytes).unwrap_or(usize::MAX);
        SignatureStore {
            shards: (0..SHARD_COUNT)
                .map(|_| Mutex::new(Shard::default()))
                .collect(),
            shard_budget: max_bytes / SHARD_COUNT,
            ttl,
        }
    }

    fn shard(&self, hash: &SignatureHash) -> MutexGuard<'_, Shard> {
        lock(&self.shards[usize::from(hash.0[0]) % SHARD_COUNT])
    }

    /// How many origins are remembered (expired ones not yet swept included).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The store's own estimate of the memory it holds, the figure the budget bounds.
    pub fn approx_bytes(&self) -> usize {
        self.shards.iter().map(|s| lock(s).bytes()).sum()
    }
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic elsewhere while holding the lock leaves a valid map (every operation keeps it
    // consistent between statements), so keep serving from it rather than failing requests.
    match shard.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl SignatureBackend for SignatureStore {
    fn record(&self, hash: &SignatureHash, family: &str, now: Instant) {
        if self.shard_budget < MAP_ENTRY_BYTES + ORDER_ENTRY_BYTES {
            return;
        }
        let mut shard = self.shard(hash);
        shard.expire(now, self.ttl);
        let seq = shard.next_seq();
        let family = shard.intern(family);
        shard.entries.insert(
            *hash,
            Entry {
                family,
                last_seen: now,
                seq,
            },
        );
        shard.order.push_back((*hash, seq));
        shard.evict_to(self.shard_budget);
    }

    fn family_of(&self, hash: &SignatureHash, now: Instant) -> Option<Family> {
        let mut shard = self.shard(hash);
        let entry = shard.entries.get(hash)?;
        if now.saturating_duration_since(entry.last_seen) >= self.ttl {
            shard.entries.remove(hash);
            return None;
        }
        let seq = shard.next_seq();
        let entry = shard.entries.get_mut(hash)?;
        // Seen again: the conversation is alive, so its origin lives another TTL and moves
        // to the young end of the eviction order.
        if now > entry.last_seen {
            entry.last_seen = now;
        }
        entry.seq = seq;
        let family = entry.family.clone();
        shard.order.push_back((*hash, seq));
        shard.evict_to(self.shard_budget);
        Some(family)
    }
}

/// The signature store of an instance in a fleet (`cache.mode: ha`): every origin goes
/// to the local store and to Redis; a lookup the local store cannot answer asks Redis
/// and remembers the answer. Redis being down only means local answers.
pub struct FleetSignatures {
    pub local: SignatureStore,
    pub shared: std::sync::Arc<crate::state::shared::SharedState>,
}

impl SignatureBackend for FleetSignatures {
    fn record(&self, hash: &SignatureHash, family: &str, now: Instant) {
        self.local.record(hash, family, now);
        let _ = self.shared.remember_signature(&hash.0, family);
    }

    fn family_of(&self, hash: &SignatureHash, now: Instant) -> Option<Family> {
        if let Some(f) = self.local.family_of(hash, now) {
            return Some(f);
        }
        let family = self.shared.signature_family(&hash.0).ok().flatten()?;
        self.local.record(hash, &family, now);
        self.local.family_of(hash, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u32) -> SignatureHash {
        SignatureHash::of(format!("signature-{n}").as_bytes())
    }

    #[test]
    fn hash_is_sha256() {
        assert_eq!(
            SignatureHash::of(b"abc").to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn records_and_answers_the_family() {
        let store = SignatureStore::new(1 << 20);
        let t0 = Instant::now();
        store.record(&key(1), "claude", t0);
        store.record(&key(2), "zai", t0);
        assert_eq!(store.family_of(&key(1), t0).as_deref(), Some("claude"));
        assert_eq!(store.family_of(&key(2), t0).as_deref(), Some("zai"));
        assert_eq!(store.family_of(&key(3), t0), None);
        // A later record of the same signature wins.
        store.record(&key(1), "minimax", t0);
        assert_eq!(store.family_of(&key(1), t0).as_deref(), Some("minimax"));
        assert_eq!(store.len(), 2);
    }

    #[test]
    fn entries_expire_after_the_ttl_unless_seen_again() {
        let store = SignatureStore::new(1 << 20);
        let t0 = Instant::now();
        store.record(&key(1), "claude", t0);
        store.record(&key(2), "claude", t0);
        let almost = t0 + SIGNATURE_TTL - Duration::from_secs(1);
        assert!(store.family_of(&key(1), almost).is_some());
        let after = t0 + SIGNATURE_TTL;
        assert_eq!(store.family_of(&key(2), after), None);
        // key 1 was looked up one second before its end: it lives a full TTL from then.
        assert!(store.family_of(&key(1), after).is_some());
        assert_eq!(store.family_of(&key(1), after + SIGNATURE_TTL), None);
    }

    #[test]
    fn zero_budget_remembers_nothing() {
        let store = SignatureStore::new(0);
        let t0 = Instant::now();
        store.record(&key(1), "claude", t0);
        assert_eq!(store.family_of(&key(1), t0), None);
        assert!(store.is_empty());
    }

    #[test]
    fn budget_evicts_oldest_first() {
        // One shard's worth of budget for exactly 10 fresh entries per shard.
        let per_entry = MAP_ENTRY_BYTES + ORDER_ENTRY_BYTES;
        let store = SignatureStore::new((per_entry * 10 * SHARD_COUNT) as u64);
        let t0 = Instant::now();
        let keys: Vec<SignatureHash> = (0..2000).map(key).collect();
        for (i, k) in keys.iter().enumerate() {
            store.record(k, "claude", t0 + Duration::from_millis(i as u64));
        }
        assert!(store.approx_bytes() <= per_entry * 10 * SHARD_COUNT);
        let now = t0 + Duration::from_secs(10);
        // The newest key of every shard survives; the oldest of every shard is gone.
        for shard in 0..SHARD_COUNT {
            let in_shard: Vec<&SignatureHash> = keys
                .iter()
                .filter(|k| usize::from(k.0[0]) % SHARD_COUNT == shard)
                .collect();
            let (Some(first), Some(last)) = (in_shard.first(), in_shard.last()) else {
                continue;
            };
            assert_eq!(store.family_of(first, now), None);
            assert!(store.family_of(last, now).is_some());
        }
    }

    #[test]
    fn lookups_do_not_grow_memory_without_bound() {
        let store = SignatureStore::new(1 << 20);
        let t0 = Instant::now();
        store.record(&key(1), "claude", t0);
        for i in 0..100_000u64 {
            assert!(store
                .family_of(&key(1), t0 + Duration::from_millis(i))
                .is_some());
        }
        assert!(store.approx_bytes() < 100 * (MAP_ENTRY_BYTES + ORDER_ENTRY_BYTES));
    }

    #[test]
    fn shared_between_threads() {
        let store = Arc::new(SignatureStore::new(1 << 24));
        let t0 = Instant::now();
        let workers: Vec<_> = (0..4u32)
            .map(|w| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for n in 0..1000 {
                        store.record(&key(w * 1000 + n), &format!("family-{w}"), t0);
                    }
                })
            })
            .collect();
        for worker in workers {
            assert!(worker.join().is_ok());
        }
        assert_eq!(store.len(), 4000);
        assert_eq!(store.family_of(&key(2500), t0).as_deref(), Some("family-2"));
    }
}
