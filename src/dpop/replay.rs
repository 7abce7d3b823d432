//! Replay protection for DPoP proofs (RFC 9449 §11.1): each proof is accepted once.
//!
//! A proof is identified by a [`ReplayKey`], a digest of its `jti` and its key's RFC 7638
//! thumbprint (two clients choosing the same `jti` do not collide), and remembered until
//! its `iat` leaves the window, after which the proof is refused by its `iat` anyway.
//!
//! [`ReplayStore`] is the trait; [`MemoryReplayStore`] the default (per process, bounded)
//! and, with feature `redis`, `RedisReplayStore` shares the
//! record between replicas. A store that cannot answer makes the request fail closed
//! (503 with `Retry-After`), never accept.

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::limits::{REPLAY_ENTRIES, SHARDS};
use crate::shards::Shards;

/// A proof's identity in a replay store: 128 bits of SHA-256 over its `jti` and its key's
/// thumbprint, and the identity of its key alone ([`client`](Self::client)), for
/// per-client shares. Nothing of the request can be recovered from either.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey {
    id: [u8; 16],
    client: [u8; 8],
}

impl ReplayKey {
    /// The key of a proof with this `jti` signed by the key with this thumbprint (what
    /// the layer computes; public for tests of your own stores).
    pub fn new(jti: &str, jkt: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(jti.as_bytes())
            .chain_update([0])
            .chain_update(jkt.as_bytes())
            .finalize();
        let mut id = [0; 16];
        id.copy_from_slice(&digest[..16]);
        let digest = Sha256::new()
            .chain_update(b"jwks-auth replay client\0")
            .chain_update(jkt.as_bytes())
            .finalize();
        let mut client = [0; 8];
        client.copy_from_slice(&digest[..8]);
        Self { id, client }
    }

    /// The digest's bytes (the proof's identity).
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.id
    }

    /// The identity of the proof's key (64 bits of a digest of its thumbprint): every
    /// proof a client signs has the same one. For stores that give each client a share.
    pub fn client(&self) -> [u8; 8] {
        self.client
    }

    /// The digest in lower-case hex (32 characters), e.g. for a key name.
    pub fn to_hex(&self) -> String {
        self.id.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for ReplayKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReplayKey({})", self.to_hex())
    }
}

/// Why a replay store could not answer. The request gets 503, never an accept.
#[derive(Debug)]
pub struct ReplayStoreError {
    source: Box<dyn Error + Send + Sync>,
}

impl ReplayStoreError {
    /// Wraps the store's own error.
    pub fn new(source: impl Into<Box<dyn Error + Send + Sync>>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

impl fmt::Display for ReplayStoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the DPoP replay store failed: {}", self.source)
    }
}

impl Error for ReplayStoreError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&*self.source)
    }
}

/// What [`ReplayStore::insert`] returns. It owns what it needs (no borrow of the store):
/// the layer polls it once at once, and keeps it only if the store has not answered yet.
pub type ReplayFuture = Pin<Box<dyn Future<Output = Result<bool, ReplayStoreError>> + Send>>;

/// Where DPoP proofs already seen are remembered.
///
/// Implementations must be atomic: of two concurrent inserts of one key, exactly one
/// gets `Ok(true)`.
pub trait ReplayStore: fmt::Debug + Send + Sync + 'static {
    /// Records `key` for `ttl`. `Ok(true)`: first seen, the proof may be accepted;
    /// `Ok(false)`: seen before, a replay; `Err`: no answer (the request gets 503).
    fn insert(&self, key: ReplayKey, ttl: Duration) -> ReplayFuture;
}

/// The default replay store: in memory, per process, bounded.
///
/// At most `capacity` entries (default [`REPLAY_ENTRIES`], about 92 MB when full,
/// measured) in 16 mutex-guarded shards. A proof's shard is chosen by a hash keyed with
/// a random key of this process (SipHash, [`RandomState`]): a client choosing its `jti`s
/// cannot aim at one shard.
///
/// Each client key (its [`ReplayKey::client`]) may hold at most a sixteenth of each
/// shard, so a sixteenth of the store: one client, however fast, cannot fill it for the
/// others; past its share its own proofs get 503 until some of its entries expire. At
/// the default capacity and a 60 s window, that is about 1,000 proofs a second for one
/// key, sustained.
///
/// A shard full of live entries (or a client at its share) drops its expired entries
/// first, at most once a second and not before its earliest entry expires, so a flood
/// costs no more than a lookup per request; if every entry is still live, the insert
/// fails and the request gets 503: a replay is never let through to make room.
///
/// Behind several replicas, a proof replayed to another replica is not seen here: use
/// the Redis store (feature `redis`) or your own [`ReplayStore`].
pub struct MemoryReplayStore {
    shards: Shards<Shard>,
    per_shard: usize,
    /// The most entries one client key may hold in one shard.
    per_client: u32,
    /// The key of the shard hash, random per store.
    hasher: RandomState,
}

/// One entry: when it expires, in milliseconds since the Unix epoch, and whose it is.
struct Entry {
    expires: u64,
    client: [u8; 8],
}

#[derive(Default)]
struct Shard {
    entries: HashMap<[u8; 16], Entry>,
    /// How many entries each client key holds here (no zero counts).
    clients: HashMap<[u8; 8], u32>,
    /// No entry expires before this: the shard is not swept until then.
    earliest: u64,
    /// When it was last swept.
    swept: Option<u64>,
}

/// How often a shard may be swept at most, in milliseconds.
const SWEEP_EVERY: u64 = 1_000;

impl Shard {
    /// Drops the expired entries, if a sweep is due.
    fn sweep(&mut self, now: u64) {
        if now < self.earliest || self.swept.is_some_and(|at| now < at + SWEEP_EVERY) {
            return;
        }
        let (mut earliest, clients) = (u64::MAX, &mut self.clients);
        self.entries.retain(|_, entry| {
            let live = entry.expires > now;
            if live {
                earliest = earliest.min(entry.expires);
            } else if let Some(count) = clients.get_mut(&entry.client) {
                *count -= 1;
                if *count == 0 {
                    clients.remove(&entry.client);
                }
            }
            live
        });
        self.earliest = earliest;
        self.swept = Some(now);
    }
}

impl MemoryReplayStore {
    /// A store of [`REPLAY_ENTRIES`] entries at most.
    pub fn new() -> Self {
        Self::with_capacity(REPLAY_ENTRIES)
    }

    /// A store of `capacity` entries at most (at least 16: one per shard). One client
    /// key may hold a sixteenth of it (at least one entry per shard).
    pub fn with_capacity(capacity: usize) -> Self {
        let per_shard = capacity.div_ceil(SHARDS).max(1);
        Self {
            shards: Shards::new(SHARDS),
            per_shard,
            per_client: u32::try_from(per_shard.div_ceil(SHARDS)).unwrap_or(u32::MAX),
            hasher: RandomState::new(),
        }
    }

    /// The entries held now, expired ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.shards.sum(|s| (s.entries.len(), 0)).0
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most entries it will hold.
    pub fn capacity(&self) -> usize {
        self.per_shard * SHARDS
    }

    /// The most entries one client key will hold.
    pub fn per_client_capacity(&self) -> usize {
        self.per_client as usize * SHARDS
    }

    /// Records `key` for `ttl` from `now` (milliseconds on the wall clock).
    fn insert_at(&self, key: ReplayKey, ttl: Duration, now: u64) -> Result<bool, ReplayStoreError> {
        // Rounded up: an entry never expires before its time.
        let ttl = u64::try_from(
            ttl.saturating_add(Duration::from_nanos(999_999))
                .as_millis(),
        );
        let expires = now.saturating_add(ttl.unwrap_or(u64::MAX));
        let mut shard = self.shards.lock(self.hasher.hash_one(key.id));
        if let Some(existing) = shard.entries.get_mut(&key.id) {
            if existing.expires > now {
                return Ok(false);
            }
            // The same proof key: its count stays.
            existing.expires = expires;
            shard.earliest = shard.earliest.min(expires);
            return Ok(true);
        }
        let held = |shard: &Shard| shard.clients.get(&key.client).copied().unwrap_or(0);
        if shard.entries.len() >= self.per_shard || held(&shard) >= self.per_client {
            shard.sweep(now);
            if shard.entries.len() >= self.per_shard {
                return Err(ReplayStoreError::new("the in-memory replay store is full"));
            }
            if held(&shard) >= self.per_client {
                return Err(ReplayStoreError::new(
                    "a client key holds its share of the in-memory replay store",
                ));
            }
        }
        shard.entries.insert(
            key.id,
            Entry {
                expires,
                client: key.client,
            },
        );
        *shard.clients.entry(key.client).or_default() += 1;
        shard.earliest = shard.earliest.min(expires);
        Ok(true)
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MemoryReplayStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReplayStore")
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("per_client_capacity", &self.per_client_capacity())
            .finish_non_exhaustive()
    }
}

impl ReplayStore for MemoryReplayStore {
    fn insert(&self, key: ReplayKey, ttl: Duration) -> ReplayFuture {
        // The wall clock, the one a proof's `iat` is judged by: were the system clock
        // stepped back, the entry would live on until the proof is stale by that same
        // clock, never expiring while the proof is still acceptable.
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let result = self.insert_at(key, ttl, now);
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> ReplayKey {
        ReplayKey::new(&i.to_string(), &format!("client {}", i % 1000))
    }

    const SEC: u64 = 1_000;

    #[test]
    fn keys_depend_on_jti_and_key() {
        assert_eq!(ReplayKey::new("a", "k"), ReplayKey::new("a", "k"));
        assert_ne!(ReplayKey::new("a", "k"), ReplayKey::new("a", "l"));
        assert_ne!(ReplayKey::new("a", "k"), ReplayKey::new("b", "k"));
        // The separator: "ab"+"c" is not "a"+"bc".
        assert_ne!(ReplayKey::new("ab", "c"), ReplayKey::new("a", "bc"));
        assert_eq!(key(1).to_hex().len(), 32);
        // The client is the key's alone.
        assert_eq!(
            ReplayKey::new("a", "k").client(),
            ReplayKey::new("b", "k").client()
        );
        assert_ne!(
            ReplayKey::new("a", "k").client(),
            ReplayKey::new("a", "l").client()
        );
    }

    #[test]
    fn a_key_is_fresh_once_until_it_expires() {
        let store = MemoryReplayStore::with_capacity(64);
        let ttl = Duration::from_secs(120);
        let t0 = 1_700_000_000 * SEC;
        assert!(store.insert_at(key(1), ttl, t0).unwrap());
        assert!(!store.insert_at(key(1), ttl, t0).unwrap());
        assert!(!store.insert_at(key(1), ttl, t0 + 119 * SEC).unwrap());
        // Never a millisecond early: a TTL of 120.0004 s lives 120.001 s.
        assert!(
            store
                .insert_at(key(2), Duration::from_micros(120_000_400), t0)
                .unwrap()
        );
        assert!(!store.insert_at(key(2), ttl, t0 + 120 * SEC).unwrap());
        assert!(store.insert_at(key(1), ttl, t0 + 121 * SEC).unwrap());
        // A TTL no clock can reach is no panic.
        assert!(
            store
                .insert_at(key(3), Duration::MAX, u64::MAX - 1)
                .unwrap()
        );
    }

    /// The expiry runs on the wall clock, the one `iat` is judged by: a system clock
    /// stepped back keeps the entry live for as long as the proof is acceptable, where a
    /// monotonic expiry would have dropped it after its TTL of real time.
    #[test]
    fn a_clock_stepped_back_keeps_entries_as_long_as_their_proofs_are_good() {
        let store = MemoryReplayStore::with_capacity(64);
        let t0 = 1_700_000_000 * SEC;
        assert!(
            store
                .insert_at(key(1), Duration::from_secs(61), t0)
                .unwrap()
        );
        // 70 s of real time later, with the clock stepped back 30 s: 40 s by the wall
        // clock, the proof is still within its window, and so is its entry.
        assert!(
            !store
                .insert_at(key(1), Duration::from_secs(61), t0 + 40 * SEC)
                .unwrap()
        );
    }

    #[test]
    fn a_flood_cannot_grow_it_and_never_opens_it() {
        let store = MemoryReplayStore::with_capacity(160);
        let ttl = Duration::from_secs(60);
        let t0 = 1_700_000_000 * SEC;
        let mut fresh = 0;
        let mut full = 0;
        for i in 0..10_000 {
            match store.insert_at(key(i), ttl, t0) {
                Ok(true) => fresh += 1,
                Ok(false) => panic!("a new key reported as a replay"),
                Err(_) => full += 1,
            }
        }
        assert!(store.len() <= store.capacity(), "{}", store.len());
        assert_eq!(fresh + full, 10_000);
        assert_eq!(fresh, 160, "each of the 16 shards fills to its share");
        // Every key it took is still refused as a replay while live.
        let mut refused = 0;
        for i in 0..10_000 {
            if matches!(store.insert_at(key(i), ttl, t0 + SEC), Ok(false)) {
                refused += 1;
            }
        }
        assert_eq!(refused, fresh);
        // Once the window has passed, expired entries make room first.
        assert!(store.insert_at(key(20_000), ttl, t0 + 61 * SEC).unwrap());
        assert!(store.len() <= store.capacity());
    }

    /// One client key (however many `jti`s it grinds) holds at most a sixteenth of the
    /// store, and cannot aim at a shard: the shard hash is keyed per store.
    #[test]
    fn one_client_cannot_fill_the_store_for_the_others() {
        let store = MemoryReplayStore::with_capacity(16_000);
        let ttl = Duration::from_secs(60);
        let t0 = 1_700_000_000 * SEC;
        let attacker = |i: u32| ReplayKey::new(&format!("grind {i}"), "attacker");
        let mut taken = 0;
        for i in 0..20_000 {
            if matches!(store.insert_at(attacker(i), ttl, t0), Ok(true)) {
                taken += 1;
            }
        }
        assert_eq!(store.per_client_capacity(), 1_008);
        assert!((900..=1_008).contains(&taken), "{taken}");
        // Everyone else still gets in.
        for i in 0..1_000 {
            assert!(matches!(store.insert_at(key(i), ttl, t0), Ok(true)), "{i}");
        }
        // Once its entries expire, the attacker gets its share again (and no more).
        let again = (20_000..40_000)
            .filter(|i| matches!(store.insert_at(attacker(*i), ttl, t0 + 61 * SEC), Ok(true)))
            .count();
        assert!((900..=1_008).contains(&again), "{again}");

        // Proofs ground into what used to be shard 3 (`key[0] % 16`) spread over all.
        let store = MemoryReplayStore::with_capacity(1_600);
        let aimed = (0..u32::MAX)
            .map(|i| ReplayKey::new(&i.to_string(), &format!("client {i}")))
            .filter(|k| k.as_bytes()[0] % 16 == 3)
            .take(2_000);
        let taken = aimed
            .filter(|k| matches!(store.insert_at(*k, ttl, t0), Ok(true)))
            .count();
        assert!(
            taken > 1_000,
            "{taken} of 2000 aimed at one shard were taken"
        );
    }
}
