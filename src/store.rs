//! The key store: the current [`KeySet`] snapshot of one key source, its status, and the
//! gate that makes forced refreshes single-flight and rate-limited.
//!
//! The store is passive: the background task ([`refresh`](crate::refresh)) fetches and
//! reports each attempt to it; requests read the snapshot with one `load()` and never
//! lock. Everything else (status, the gate) is behind small mutexes touched only on
//! refreshes and on the unknown-`kid` path.
//!
//! A token whose `kid` is not in the snapshot (after its cheap checks passed) asks for a
//! forced refresh through the [`Gate`] (single flight, one per cooldown, at least
//! [`MIN_COOLDOWN`]); waiting is bounded by the fetch timeout (per fetch of an attempt)
//! plus one second.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::error::{AuthError, AuthErrorKind, ReadyError, RefreshError, RefreshErrorKind};
use crate::fetch::{Target, Transport};
use crate::gate::{Gate, GateDecision};
use crate::keys::KeySet;
use crate::limits::{
    COOLDOWN, FETCH_TIMEOUT, MAX_RETRY_AFTER, MAX_STALE, MIN_COOLDOWN, MIN_RETRY_AFTER,
    REFRESH_INTERVAL,
};
use crate::shards::lock;
use crate::status::Status;

/// Timing of the refresh life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) refresh_interval: Duration,
    /// Whether the user set the interval: it then caps `Cache-Control: max-age`.
    pub(crate) interval_explicit: bool,
    pub(crate) cooldown: Duration,
    pub(crate) max_stale: Duration,
    pub(crate) fetch_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            refresh_interval: REFRESH_INTERVAL,
            interval_explicit: false,
            cooldown: COOLDOWN,
            max_stale: MAX_STALE,
            fetch_timeout: FETCH_TIMEOUT,
        }
    }
}

/// Where a store's keys come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// A fixed set given by the user: no task, never stale.
    Static,
    /// Fetched over HTTP; `Err` when that can never work (bad URL, no HTTP client).
    Remote(Result<Remote, RefreshError>),
}

/// A remote key source: what to fetch, and with which clients.
#[derive(Debug)]
pub(crate) struct Remote {
    pub(crate) target: Target,
    pub(crate) transport: Transport,
}

/// Progress of the task, published to waiters.
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    /// Completed fetch attempts, good or bad.
    attempts: u64,
    /// Highest forced-refresh ticket served by a completed attempt.
    served: u64,
}

/// An immutable key set and when it was last confirmed by the identity provider.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub(crate) keys: Arc<KeySet>,
    pub(crate) confirmed_at: Instant,
}

#[derive(Debug, Default)]
struct StatusInner {
    last_success: Option<SystemTime>,
    last_error: Option<RefreshError>,
    consecutive_failures: u32,
    next_refresh_at: Option<Instant>,
}

/// Why the store has no key set to verify with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoKeys {
    /// None yet, but the task can fetch one: waiting may help.
    NotYet,
    /// None usable (stale, or impossible): 503.
    Unavailable,
}

/// The state of one key source, shared by the layer, its services and (weakly) the task.
pub(crate) struct KeyStore {
    /// The trusted issuer of a multi-issuer layer, empty otherwise (a metrics label).
    label: Arc<str>,
    source: Source,
    timing: Timing,
    snapshot: ArcSwapOption<Snapshot>,
    gate: Mutex<Gate>,
    progress: watch::Sender<Progress>,
    status: Mutex<StatusInner>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("source", &self.source)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl KeyStore {
    /// A store whose metrics carry `label` (a trusted issuer of a multi-issuer layer, or
    /// empty).
    pub(crate) fn new(
        label: &str,
        source: Source,
        timing: Timing,
        initial: Option<KeySet>,
    ) -> Self {
        let snapshot = initial.map(|keys| {
            Arc::new(Snapshot {
                keys: Arc::new(keys),
                confirmed_at: Instant::now(),
            })
        });
        Self {
            label: Arc::from(label),
            source,
            timing,
            snapshot: ArcSwapOption::new(snapshot),
            gate: Mutex::new(Gate::default()),
            progress: watch::Sender::new(Progress::default()),
            status: Mutex::new(StatusInner::default()),
            fetches: AtomicU64::new(0),
        }
    }

    pub(crate) fn timing(&self) -> &Timing {
        &self.timing
    }

    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// The current set's size and age (for the gauges).
    pub(crate) fn key_set_gauges(&self) -> (usize, Option<Duration>) {
        let guard = self.snapshot.load();
        match guard.as_ref() {
            Some(snap) => (snap.keys.len(), Some(snap.confirmed_at.elapsed())),
            None => (0, None),
        }
    }

    /// The remote source, if it is usable.
    pub(crate) fn remote(&self) -> Option<&Remote> {
        match &self.source {
            Source::Remote(Ok(remote)) => Some(remote),
            _ => None,
        }
    }

    /// The error that makes a key set impossible (bad configuration, no HTTP client).
    pub(crate) fn terminal_error(&self) -> Option<&RefreshError> {
        match &self.source {
            Source::Remote(Err(e)) => Some(e),
            _ => None,
        }
    }

    /// The task is gone (ended, or its runtime dropped): nothing is scheduled, and
    /// every waiter wakes to see it (and starts another, see `refresh`).
    pub(crate) fn task_ended(&self) {
        lock(&self.status).next_refresh_at = None;
        self.progress.send_modify(|_| {});
    }

    // --- the request path ---

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.load_full()
    }

    fn is_stale(&self, snap: &Snapshot, now: Instant) -> bool {
        matches!(self.source, Source::Remote(_))
            && now.saturating_duration_since(snap.confirmed_at) > self.timing.max_stale
    }

    /// The 503 for this store, with `Retry-After` set to the next scheduled attempt.
    pub(crate) fn unavailable(&self) -> AuthError {
        let now = Instant::now();
        let retry = lock(&self.status)
            .next_refresh_at
            .map(|at| at.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(5))
            .clamp(MIN_RETRY_AFTER, MAX_RETRY_AFTER);
        AuthError::unavailable(AuthErrorKind::KeysUnavailable, retry)
    }

    /// Runs `f` on the current key set: one `load()`, no lock, no await.
    pub(crate) fn with_keys<R>(&self, f: impl FnOnce(&KeySet) -> R) -> Result<R, NoKeys> {
        let guard = self.snapshot.load();
        let Some(snap) = guard.as_ref() else {
            return Err(if self.remote().is_some() {
                NoKeys::NotYet
            } else {
                NoKeys::Unavailable
            });
        };
        if self.is_stale(snap, Instant::now()) {
            return Err(NoKeys::Unavailable);
        }
        Ok(f(&snap.keys))
    }

    /// Waits for the first key set or a forced refresh, as the gate allows; `wake` wakes
    /// the task. The task must have been started by the caller.
    pub(crate) async fn wait_for_keys(&self, wake: &Notify) {
        let bound = self.wait_bound();
        let mut rx = self.progress.subscribe();
        if rx.borrow().attempts == 0 {
            // The first fetch is in flight (or about to start): wait for it.
            let _ = tokio::time::timeout(bound, rx.wait_for(|p| p.attempts > 0)).await;
            return;
        }
        if let Some(ticket) = self.request_forced(false, wake) {
            let _ = tokio::time::timeout(bound, rx.wait_for(|p| p.served >= ticket)).await;
        }
    }

    /// How long a request waits for a refresh: one attempt (two fetches with discovery)
    /// plus a second of slack.
    fn wait_bound(&self) -> Duration {
        let fetches = self.remote().map_or(1, |r| r.target.fetches());
        self.timing
            .fetch_timeout
            .saturating_mul(fetches)
            .saturating_add(Duration::from_secs(1))
    }

    /// Asks for a forced refresh (waking the task with `wake` for a new one). Returns the
    /// ticket to wait for, or `None` if denied.
    fn request_forced(&self, force: bool, wake: &Notify) -> Option<u64> {
        let cooldown = self.timing.cooldown.max(MIN_COOLDOWN);
        let decision = lock(&self.gate).request(Instant::now(), cooldown, force);
        match decision {
            GateDecision::Wait { ticket, new } => {
                if new {
                    tracing::debug!("jwks-auth: forced key set refresh requested");
                    wake.notify_one();
                }
                Some(ticket)
            }
            GateDecision::Denied => None,
        }
    }

    /// Forces a refresh now (ignoring the cooldown, joining one in flight) and waits for
    /// it. The task must have been started by the caller; `wake` wakes it.
    pub(crate) async fn refresh_now(&self, wake: &Notify) -> Result<(), RefreshError> {
        if let Some(e) = self.terminal_error() {
            return Err(e.clone());
        }
        if self.remote().is_none() {
            return Ok(());
        }
        let mut rx = self.progress.subscribe();
        if let Some(ticket) = self.request_forced(true, wake) {
            let bound = self.wait_bound();
            if tokio::time::timeout(bound, rx.wait_for(|p| p.served >= ticket))
                .await
                .is_err()
            {
                return Err(RefreshError::new(RefreshErrorKind::Timeout));
            }
        }
        match &*lock(&self.status) {
            s if s.consecutive_failures > 0 => Err(s
                .last_error
                .clone()
                .unwrap_or_else(|| RefreshError::new(RefreshErrorKind::Connect))),
            _ => Ok(()),
        }
    }

    /// Waits until a key set is available, a key set is known to be impossible, or
    /// `limit` passes. `keep_running` (re)starts the task: at first, and after every
    /// change, a task that ended among them.
    pub(crate) async fn ready(
        &self,
        limit: Option<Duration>,
        keep_running: impl Fn(),
    ) -> Result<(), ReadyError> {
        let wait = async {
            let mut rx = self.progress.subscribe();
            loop {
                keep_running();
                if self.current().is_some() {
                    return Ok(());
                }
                if let Some(e) = self.terminal_error() {
                    return Err(ReadyError::terminal(e.clone()));
                }
                if let Some(e) = self.fatal_error() {
                    return Err(ReadyError::terminal(e));
                }
                // The sender lives as long as the store: this only waits.
                let _ = rx.changed().await;
            }
        };
        match limit {
            None => wait.await,
            Some(limit) => match tokio::time::timeout(limit, wait).await {
                Ok(r) => r,
                Err(_) => Err(ReadyError::Timeout(lock(&self.status).last_error.clone())),
            },
        }
    }

    /// A refresh error that no retry can fix (a discovery document naming another issuer).
    fn fatal_error(&self) -> Option<RefreshError> {
        lock(&self.status)
            .last_error
            .clone()
            .filter(RefreshError::is_fatal)
    }

    pub(crate) fn status(&self) -> Status {
        let snap = self.current();
        let now = Instant::now();
        let inner = lock(&self.status);
        let last_error = inner
            .last_error
            .clone()
            .or_else(|| self.terminal_error().cloned());
        Status {
            kids: snap.as_ref().map(|s| s.keys.kids()).unwrap_or_default(),
            key_count: snap.as_ref().map_or(0, |s| s.keys.len()),
            skipped: snap
                .as_ref()
                .map(|s| s.keys.skipped().to_vec())
                .unwrap_or_default(),
            last_success: inner.last_success,
            last_error,
            consecutive_failures: inner.consecutive_failures,
            fetches: self.fetches.load(Ordering::Relaxed),
            stale: snap.as_ref().is_none_or(|s| self.is_stale(s, now)),
            next_refresh: inner
                .next_refresh_at
                .map(|at| at.saturating_duration_since(now)),
            ..Status::empty()
        }
    }

    // --- what the task reports ---

    /// A fetch attempt starts: counts it, and returns the forced-refresh ticket it serves.
    pub(crate) fn begin_attempt(&self) -> u64 {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        lock(&self.gate).serving()
    }

    /// Whether there is a key set (good or stale) to keep.
    pub(crate) fn has_keys(&self) -> bool {
        self.snapshot.load().is_some()
    }

    /// A new key set replaces the snapshot.
    pub(crate) fn publish(&self, keys: KeySet) {
        self.snapshot.store(Some(Arc::new(Snapshot {
            keys: Arc::new(keys),
            confirmed_at: Instant::now(),
        })));
    }

    /// The identity provider confirmed the current key set (a conditional 304). Returns
    /// `false` when there is no key set to confirm.
    pub(crate) fn confirm(&self) -> bool {
        let Some(old) = self.current() else {
            return false;
        };
        self.snapshot.store(Some(Arc::new(Snapshot {
            keys: old.keys.clone(),
            confirmed_at: Instant::now(),
        })));
        true
    }

    /// An attempt ended: records its outcome and the next scheduled attempt, and wakes
    /// the requests waiting for it.
    pub(crate) fn end_attempt(
        &self,
        outcome: Result<(), RefreshError>,
        failures: u32,
        next: Duration,
        serving: u64,
    ) {
        {
            let mut status = lock(&self.status);
            match outcome {
                Ok(()) => {
                    status.last_success = Some(SystemTime::now());
                    status.last_error = None;
                }
                Err(e) => status.last_error = Some(e),
            }
            status.consecutive_failures = failures;
            status.next_refresh_at = Instant::now().checked_add(next);
        }
        lock(&self.gate).served(serving);
        self.progress.send_modify(|p| {
            p.attempts += 1;
            p.served = p.served.max(serving);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_zero_cooldown_is_raised_to_the_floor() {
        let timing = Timing {
            cooldown: Duration::ZERO,
            ..Timing::default()
        };
        let store = KeyStore::new("", Source::Static, timing, None);
        let wake = Notify::new();
        let first = store.request_forced(false, &wake).unwrap();
        store.end_attempt(Ok(()), 0, Duration::from_secs(300), first);
        assert_eq!(
            store.request_forced(false, &wake),
            None,
            "denied within the floor"
        );
        tokio::time::advance(MIN_COOLDOWN).await;
        assert!(
            store.request_forced(false, &wake).is_some(),
            "allowed after it"
        );
    }

    #[tokio::test]
    async fn ready_returns_a_terminal_error_at_once() {
        let error = RefreshError::new(RefreshErrorKind::Client);
        let store = KeyStore::new("", Source::Remote(Err(error)), Timing::default(), None);
        let started = std::time::Instant::now();
        let err = store.ready(None, || {}).await.unwrap_err();
        assert!(!err.is_timeout());
        assert_eq!(err.last_error().unwrap().kind(), &RefreshErrorKind::Client);
        assert!(started.elapsed() < Duration::from_secs(1));
    }
}
