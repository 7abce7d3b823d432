//! [`Shards`]: a fixed number of mutex-guarded parts of one bounded structure, the one
//! sharded map of the crate (the verified-token cache and the in-memory DPoP replay
//! store), and [`lock`], the crate's one locking policy.
//!
//! Each shard is locked for one map lookup or insert, so concurrent requests rarely
//! wait for each other, and each shard enforces its share of the bounds on its own.

use std::sync::{Mutex, MutexGuard};

/// Locks `m`. No code of this crate panics while holding one of its locks, so a poisoned
/// lock can only come from a panic elsewhere in the same critical section of a caller's
/// code: the data is still consistent, and is recovered rather than propagating the
/// panic to every later request.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `count` shards of `S`, chosen by a hash.
pub(crate) struct Shards<S> {
    shards: Box<[Mutex<S>]>,
}

impl<S: Default> Shards<S> {
    /// `count` empty shards (at least one).
    pub(crate) fn new(count: usize) -> Self {
        Self {
            shards: (0..count.max(1)).map(|_| Mutex::default()).collect(),
        }
    }
}

impl<S> Shards<S> {
    /// How many shards there are.
    pub(crate) fn count(&self) -> usize {
        self.shards.len()
    }

    /// The shard of `hash` (its top bits), locked.
    pub(crate) fn lock(&self, hash: u64) -> MutexGuard<'_, S> {
        lock(&self.shards[(hash >> 56) as usize % self.shards.len()])
    }

    /// `f` summed over every shard, each locked in turn (for sizes and reports).
    pub(crate) fn sum(&self, f: impl Fn(&S) -> (usize, usize)) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(a, b), shard| {
            let (x, y) = f(&lock(shard));
            (a + x, b + y)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_always_finds_the_same_shard_and_sums_see_every_shard() {
        let shards: Shards<Vec<u64>> = Shards::new(16);
        for hash in (0..64u64).map(|i| i << 56 | i) {
            shards.lock(hash).push(hash);
        }
        for hash in (0..64u64).map(|i| i << 56 | i) {
            assert!(shards.lock(hash).contains(&hash));
        }
        assert_eq!(shards.sum(|s| (s.len(), 0)), (64, 0));
        assert_eq!(Shards::<()>::new(0).count(), 1);
    }
}
