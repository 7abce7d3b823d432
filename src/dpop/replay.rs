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
use std::pin::Pin;
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::time::Instant;

use crate::limits::{REPLAY_ENTRIES, SHARDS};
use crate::shards::Shards;

/// A proof's identity in a replay store: 128 bits of SHA-256 over its `jti` and its key's
/// thumbprint. Nothing of the request can be recovered from it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ReplayKey([u8; 16]);

impl ReplayKey {
    /// The key of a proof with this `jti` signed by the key with this thumbprint (what
    /// the layer computes; public for tests of your own stores).
    pub fn new(jti: &str, jkt: &str) -> Self {
        let digest = Sha256::new()
            .chain_update(jti.as_bytes())
            .chain_update([0])
            .chain_update(jkt.as_bytes())
            .finalize();
        let mut key = [0; 16];
        key.copy_from_slice(&digest[..16]);
        Self(key)
    }

    /// The digest's bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The digest in lower-case hex (32 characters), e.g. for a key name.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
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
/// At most `capacity` entries (default [`REPLAY_ENTRIES`], 52-59 MB when full, measured) in 16
/// mutex-guarded shards. A full shard drops its expired entries first; if every entry
/// is still live (more fresh proofs within one window than the capacity), the insert
/// fails and the request gets 503: a replay is never let through to make room. It is
/// not swept again until its earliest entry expires, so a flood costs no more than a
/// lookup per request.
///
/// Behind several replicas, a proof replayed to another replica is not seen here: use
/// the Redis store (feature `redis`) or your own [`ReplayStore`].
pub struct MemoryReplayStore {
    shards: Shards<Shard>,
    per_shard: usize,
    epoch: Instant,
}

#[derive(Default)]
struct Shard {
    /// Expiry, in milliseconds since the store's epoch.
    entries: HashMap<[u8; 16], u64>,
    /// No entry expires before this: a full shard is not swept until then.
    earliest: u64,
}

impl MemoryReplayStore {
    /// A store of [`REPLAY_ENTRIES`] entries at most.
    pub fn new() -> Self {
        Self::with_capacity(REPLAY_ENTRIES)
    }

    /// A store of `capacity` entries at most (at least 16: one per shard).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            shards: Shards::new(SHARDS),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            epoch: Instant::now(),
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

    fn insert_now(&self, key: ReplayKey, ttl: Duration) -> Result<bool, ReplayStoreError> {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let now = millis(self.epoch.elapsed());
        let expires = now.saturating_add(millis(ttl));
        let mut shard = self.shards.lock(u64::from(key.0[0]) << 56);
        if let Some(existing) = shard.entries.get_mut(&key.0) {
            if *existing > now {
                return Ok(false);
            }
            *existing = expires;
            return Ok(true);
        }
        if shard.entries.len() >= self.per_shard {
            if now < shard.earliest {
                return Err(ReplayStoreError::new("the in-memory replay store is full"));
            }
            let mut earliest = u64::MAX;
            shard.entries.retain(|_, exp| {
                let live = *exp > now;
                if live {
                    earliest = earliest.min(*exp);
                }
                live
            });
            shard.earliest = earliest;
            if shard.entries.len() >= self.per_shard {
                return Err(ReplayStoreError::new("the in-memory replay store is full"));
            }
        }
        shard.entries.insert(key.0, expires);
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
            .finish()
    }
}

impl ReplayStore for MemoryReplayStore {
    fn insert(&self, key: ReplayKey, ttl: Duration) -> ReplayFuture {
        let result = self.insert_now(key, ttl);
        Box::pin(std::future::ready(result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> ReplayKey {
        ReplayKey::new(&i.to_string(), "thumbprint")
    }

    #[test]
    fn keys_depend_on_jti_and_key() {
        assert_eq!(ReplayKey::new("a", "k"), ReplayKey::new("a", "k"));
        assert_ne!(ReplayKey::new("a", "k"), ReplayKey::new("a", "l"));
        assert_ne!(ReplayKey::new("a", "k"), ReplayKey::new("b", "k"));
        // The separator: "ab"+"c" is not "a"+"bc".
        assert_ne!(ReplayKey::new("ab", "c"), ReplayKey::new("a", "bc"));
        assert_eq!(key(1).to_hex().len(), 32);
    }

    #[tokio::test(start_paused = true)]
    async fn a_key_is_fresh_once_until_it_expires() {
        let store = MemoryReplayStore::with_capacity(64);
        let ttl = Duration::from_secs(120);
        assert!(store.insert(key(1), ttl).await.unwrap());
        assert!(!store.insert(key(1), ttl).await.unwrap());
        tokio::time::advance(Duration::from_secs(119)).await;
        assert!(!store.insert(key(1), ttl).await.unwrap());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(store.insert(key(1), ttl).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_cannot_grow_it_and_never_opens_it() {
        let store = MemoryReplayStore::with_capacity(160);
        let ttl = Duration::from_secs(60);
        let mut fresh = 0;
        let mut full = 0;
        for i in 0..10_000 {
            match store.insert(key(i), ttl).await {
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
            if matches!(store.insert(key(i), ttl).await, Ok(false)) {
                refused += 1;
            }
        }
        assert_eq!(refused, fresh);
        // Once the window has passed, expired entries make room first.
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(store.insert(key(20_000), ttl).await.unwrap());
        assert!(store.len() <= store.capacity());
    }
}
