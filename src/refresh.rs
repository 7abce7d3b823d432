//! The key store and its background refresh task.
//!
//! # The store
//!
//! [`KeyStore`] holds the current [`KeySet`] snapshot in an [`ArcSwapOption`]. The request
//! path does one `load()` and never locks. Everything else (status, the forced-refresh gate)
//! is behind small mutexes touched only on refreshes and on the unknown-`kid` path.
//!
//! # The task
//!
//! One Tokio task per store fetches the key set: at start, then every `refresh_interval`
//! (±10 % jitter) or at the response's `Cache-Control: max-age` (clamped to [1 min, 24 h]),
//! and whenever a request asks for a forced refresh. After a failure it retries with
//! exponential backoff and jitter, from 1 s up to the refresh interval, and keeps the last
//! good set. The task holds only a [`Weak`] to the store and a shutdown receiver whose
//! sender the store owns: when the last clone of the layer is dropped, the task ends at
//! once, even in the middle of a fetch or a sleep.
//!
//! # Forced refreshes
//!
//! A token whose `kid` is not in the snapshot (after its cheap checks passed) asks for a
//! forced refresh through the [`Gate`]:
//!
//! - if a forced refresh is already pending, the request joins it (single flight);
//! - else, if the last forced refresh started less than `cooldown` ago, it is denied and
//!   the token is rejected at once: a flood of random kids costs the identity provider at
//!   most one fetch per cooldown;
//! - else a new forced refresh is requested, and the request waits for it.
//!
//! Each forced request gets a ticket; a fetch serves the tickets issued before it
//! *started*, so a waiter always sees a fetch that began after it asked. Waiting is
//! bounded by the fetch timeout (plus one second).
//!
//! [`Weak`]: std::sync::Weak

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwapOption;
use reqwest::Url;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::error::{
    AuthError, AuthErrorKind, ConfigError, ReadyError, RefreshError, RefreshErrorKind,
};
use crate::fetch::{self, CachePolicy, Fetched, Validators};
use crate::keys::{KeySet, SkippedKey};

/// Timing of the refresh life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    pub(crate) refresh_interval: Duration,
    pub(crate) cooldown: Duration,
    pub(crate) max_stale: Duration,
    pub(crate) fetch_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            refresh_interval: Duration::from_secs(5 * 60),
            cooldown: Duration::from_secs(30),
            max_stale: Duration::from_secs(24 * 60 * 60),
            fetch_timeout: fetch::FETCH_TIMEOUT,
        }
    }
}

/// Shortest and longest delay taken from `Cache-Control: max-age`.
pub(crate) const MAX_AGE_CLAMP: (Duration, Duration) =
    (Duration::from_secs(60), Duration::from_secs(24 * 60 * 60));

/// First retry delay after a failure.
pub(crate) const BACKOFF_BASE: Duration = Duration::from_secs(1);

/// The refresh schedule, free of I/O so that it can be tested on its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub(crate) timing: Timing,
}

impl Schedule {
    /// Delay before the next periodic refresh after a good response. `unit` is a random
    /// number in [0, 1) used for the ±10 % jitter.
    pub(crate) fn after_success(&self, cache: CachePolicy, unit: f64) -> Duration {
        let base = match cache.max_age {
            Some(age) if !cache.no_store => age.clamp(MAX_AGE_CLAMP.0, MAX_AGE_CLAMP.1),
            _ => self.timing.refresh_interval,
        };
        let factor = 0.9 + 0.2 * unit.clamp(0.0, 1.0);
        // `mul_f64` panics past `Duration::MAX`; a huge configured interval stays as is.
        Duration::try_from_secs_f64(base.as_secs_f64() * factor).unwrap_or(base)
    }

    /// Delay before the next attempt after `failures` consecutive failures (1 for the
    /// first): exponential from 1 s, capped at the refresh interval, full jitter above
    /// the 1 s floor.
    pub(crate) fn after_failure(&self, failures: u32, unit: f64) -> Duration {
        let cap = self.timing.refresh_interval.max(BACKOFF_BASE);
        let exp = BACKOFF_BASE
            .checked_mul(1u32 << failures.saturating_sub(1).min(20))
            .unwrap_or(cap)
            .min(cap);
        BACKOFF_BASE + (exp - BACKOFF_BASE).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// A random number in [0, 1), good enough for jitter; no extra dependency.
pub(crate) fn random_unit() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x9e37_79b9_7f4a_7c15);
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// What the gate decided for a forced refresh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GateDecision {
    /// Wait until the fetch serving this ticket completed.
    Wait { ticket: u64, new: bool },
    /// A forced refresh ran less than a cooldown ago: do not fetch.
    Denied,
}

/// Single flight and cooldown for forced refreshes. Pure: the clock is passed in.
#[derive(Debug, Default)]
pub(crate) struct Gate {
    requested: u64,
    served: u64,
    last_forced: Option<Instant>,
}

impl Gate {
    pub(crate) fn request(
        &mut self,
        now: Instant,
        cooldown: Duration,
        force: bool,
    ) -> GateDecision {
        if self.requested > self.served {
            return GateDecision::Wait {
                ticket: self.requested,
                new: false,
            };
        }
        if !force
            && self
                .last_forced
                .is_some_and(|last| now.saturating_duration_since(last) < cooldown)
        {
            return GateDecision::Denied;
        }
        self.requested += 1;
        self.last_forced = Some(now);
        GateDecision::Wait {
            ticket: self.requested,
            new: true,
        }
    }

    /// The ticket a fetch starting now will serve.
    pub(crate) fn serving(&self) -> u64 {
        self.requested
    }

    pub(crate) fn served(&mut self, ticket: u64) {
        self.served = self.served.max(ticket);
    }
}

/// Progress of the task, published to waiters.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Progress {
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

/// Where keys come from.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A fixed set given by the user: no task, never stale.
    Static,
    /// Fetched over HTTP (the target already checked against the transport policy).
    Remote {
        target: Result<Target, ConfigError>,
        client: Option<reqwest::Client>,
    },
}

/// What a remote source fetches.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A JWKS URL.
    Jwks(Url),
    /// An issuer whose discovery document names the JWKS URL.
    Discovery {
        issuer: String,
        url: Url,
        allow_http: bool,
    },
}

/// A snapshot of the key store's health, for health checks and dashboards.
///
/// Returned by [`JwksAuth::status`](crate::JwksAuth::status).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Status {
    /// Key ids in the current key set, sorted.
    pub kids: Vec<String>,
    /// Number of usable keys (keys without `kid` included).
    pub key_count: usize,
    /// Keys of the last fetched document that were skipped, with the reason.
    pub skipped: Vec<SkippedKey>,
    /// Wall-clock time of the last good refresh (a `304` counts).
    pub last_success: Option<SystemTime>,
    /// The error of the last failed attempt, cleared by the next good one.
    pub last_error: Option<RefreshError>,
    /// Failed attempts since the last good one.
    pub consecutive_failures: u32,
    /// HTTP fetches made so far (each attempt, whatever its outcome).
    pub fetches: u64,
    /// `true` when there is no key set, or the last good refresh is older than `max_stale`.
    /// Requests are then answered with 503.
    pub stale: bool,
    /// Time until the next scheduled refresh, if the task is running.
    pub next_refresh: Option<Duration>,
}

impl Status {
    /// `true` when requests can be verified: a key set is loaded and not stale.
    pub fn is_ready(&self) -> bool {
        self.key_count > 0 && !self.stale
    }

    pub(crate) fn empty() -> Self {
        Self {
            kids: Vec::new(),
            key_count: 0,
            skipped: Vec::new(),
            last_success: None,
            last_error: None,
            consecutive_failures: 0,
            fetches: 0,
            stale: true,
            next_refresh: None,
        }
    }

    /// Two issuers' statuses as one (for multi-issuer layers).
    pub(crate) fn combine(mut self, other: Status) -> Status {
        self.kids.extend(other.kids);
        self.kids.sort();
        self.key_count += other.key_count;
        self.skipped.extend(other.skipped);
        self.last_success = match (self.last_success, other.last_success) {
            (Some(a), Some(b)) => Some(a.min(b)),
            _ => None,
        };
        self.last_error = self.last_error.or(other.last_error);
        self.consecutive_failures = self.consecutive_failures.max(other.consecutive_failures);
        self.fetches += other.fetches;
        self.stale |= other.stale;
        self.next_refresh = match (self.next_refresh, other.next_refresh) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self
    }
}

#[derive(Debug, Default)]
struct StatusInner {
    last_success: Option<SystemTime>,
    last_error: Option<RefreshError>,
    consecutive_failures: u32,
    next_refresh_at: Option<Instant>,
}

/// What the request path concluded without waiting.
pub(crate) enum Verdict<T> {
    Accept(T),
    Reject(AuthError),
    /// The token passed its cheap checks but needs a key set or a refresh: wait, then
    /// call [`KeyStore::verify`] again without `may_wait`.
    Wait,
}

impl<T> From<Result<T, AuthError>> for Verdict<T> {
    fn from(result: Result<T, AuthError>) -> Self {
        match result {
            Ok(v) => Verdict::Accept(v),
            Err(e) => Verdict::Reject(e),
        }
    }
}

/// Shared state of one layer (and all its clones).
pub(crate) struct KeyStore {
    source: Source,
    timing: Timing,
    snapshot: ArcSwapOption<Snapshot>,
    gate: Mutex<Gate>,
    progress: watch::Sender<Progress>,
    wake: Arc<Notify>,
    shutdown: watch::Sender<()>,
    status: Mutex<StatusInner>,
    fetches: AtomicU64,
    started: AtomicBool,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("source", &self.source)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // No code holding these locks can panic; recover the data rather than propagate.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl KeyStore {
    pub(crate) fn new(source: Source, timing: Timing, initial: Option<KeySet>) -> Self {
        let snapshot = initial.map(|keys| {
            Arc::new(Snapshot {
                keys: Arc::new(keys),
                confirmed_at: Instant::now(),
            })
        });
        Self {
            source,
            timing,
            snapshot: ArcSwapOption::new(snapshot),
            gate: Mutex::new(Gate::default()),
            progress: watch::Sender::new(Progress::default()),
            wake: Arc::new(Notify::new()),
            shutdown: watch::Sender::new(()),
            status: Mutex::new(StatusInner::default()),
            fetches: AtomicU64::new(0),
            started: AtomicBool::new(false),
        }
    }

    fn is_remote(&self) -> bool {
        matches!(self.source, Source::Remote { .. })
    }

    pub(crate) fn config_error(&self) -> Option<&ConfigError> {
        match &self.source {
            Source::Remote { target: Err(e), .. } => Some(e),
            _ => None,
        }
    }

    /// Starts the refresh task if it is not running and a Tokio runtime is available.
    pub(crate) fn ensure_started(self: &Arc<Self>) {
        if self.started.load(Ordering::Acquire) {
            return;
        }
        let Source::Remote { target, client } = &self.source else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.started.swap(true, Ordering::AcqRel) {
            return;
        }
        let target = match target {
            Ok(target) => target.clone(),
            Err(e) => {
                tracing::error!(error = %e, "jwks-auth: key set source is misconfigured; every request will get 503");
                return;
            }
        };
        let client = match client.clone().map_or_else(fetch::default_client, Ok) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "jwks-auth: cannot build the HTTP client");
                lock(&self.status).last_error = Some(e);
                return;
            }
        };
        let task = RefreshTask {
            store: Arc::downgrade(self),
            wake: self.wake.clone(),
            shutdown: self.shutdown.subscribe(),
            target,
            jwks_url: None,
            client,
            schedule: Schedule {
                timing: self.timing,
            },
            validators: Validators::default(),
            failures: 0,
        };
        handle.spawn(task.run());
    }

    fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.load_full()
    }

    fn is_stale(&self, snap: &Snapshot, now: Instant) -> bool {
        self.is_remote() && now.saturating_duration_since(snap.confirmed_at) > self.timing.max_stale
    }

    fn unavailable(&self) -> AuthError {
        let now = Instant::now();
        let retry = lock(&self.status)
            .next_refresh_at
            .map(|at| at.saturating_duration_since(now))
            .unwrap_or(Duration::from_secs(5))
            .clamp(Duration::from_secs(1), Duration::from_secs(60));
        AuthError::unavailable(retry)
    }

    /// Verifies against the current snapshot: no lock, no await. `finish` runs the
    /// signature and claims steps. With `may_wait`, a missing key set or an unknown `kid`
    /// is `Wait` (the caller waits as the gate allows, then calls again without it);
    /// without, they are final rejections.
    pub(crate) fn verify<C, T>(
        &self,
        checked: C,
        finish: impl FnOnce(C, &KeySet) -> Result<T, crate::verify::KeyStep>,
        may_wait: bool,
    ) -> Verdict<T> {
        let may_wait = may_wait && self.is_remote() && self.config_error().is_none();
        let guard = self.snapshot.load();
        let Some(snap) = guard.as_ref() else {
            return if may_wait {
                Verdict::Wait
            } else {
                Verdict::Reject(self.unavailable())
            };
        };
        if self.is_stale(snap, Instant::now()) {
            return Verdict::Reject(self.unavailable());
        }
        match finish(checked, &snap.keys) {
            Ok(v) => Verdict::Accept(v),
            Err(crate::verify::KeyStep::Reject(kind)) => Verdict::Reject(kind.into()),
            Err(crate::verify::KeyStep::UnknownKid) if may_wait => Verdict::Wait,
            Err(crate::verify::KeyStep::UnknownKid) => {
                Verdict::Reject(AuthErrorKind::UnknownKey.into())
            }
        }
    }

    /// Runs `f` on the current key set if there is one and it is not stale.
    pub(crate) fn with_fresh_keys<R>(&self, f: impl FnOnce(&KeySet) -> Option<R>) -> Option<R> {
        let guard = self.snapshot.load();
        let snap = guard.as_ref()?;
        if self.is_stale(snap, Instant::now()) {
            return None;
        }
        f(&snap.keys)
    }

    /// Waits for the first key set or a forced refresh, as the gate allows.
    pub(crate) async fn wait_for_keys(self: &Arc<Self>) {
        self.ensure_started();
        let bound = self.wait_bound();
        let mut rx = self.progress.subscribe();
        if rx.borrow().attempts == 0 {
            // The first fetch is in flight (or about to start): wait for it.
            let _ = tokio::time::timeout(bound, rx.wait_for(|p| p.attempts > 0)).await;
            return;
        }
        if let Some(ticket) = self.request_forced(false) {
            let _ = tokio::time::timeout(bound, rx.wait_for(|p| p.served >= ticket)).await;
        }
    }

    /// How long a request waits for a refresh: one attempt (two fetches with discovery)
    /// plus a second of slack.
    fn wait_bound(&self) -> Duration {
        let fetches = match &self.source {
            Source::Remote {
                target: Ok(Target::Discovery { .. }),
                ..
            } => 2,
            _ => 1,
        };
        self.timing
            .fetch_timeout
            .saturating_mul(fetches)
            .saturating_add(Duration::from_secs(1))
    }

    /// Asks for a forced refresh. Returns the ticket to wait for, or `None` if denied.
    fn request_forced(&self, force: bool) -> Option<u64> {
        let decision = lock(&self.gate).request(Instant::now(), self.timing.cooldown, force);
        match decision {
            GateDecision::Wait { ticket, new } => {
                if new {
                    tracing::debug!("jwks-auth: forced key set refresh requested");
                    self.wake.notify_one();
                }
                Some(ticket)
            }
            GateDecision::Denied => None,
        }
    }

    /// Forces a refresh now (ignoring the cooldown, joining one in flight) and waits for it.
    pub(crate) async fn refresh_now(self: &Arc<Self>) -> Result<(), RefreshError> {
        if let Some(e) = self.config_error() {
            return Err(e.clone().into());
        }
        if !self.is_remote() {
            return Ok(());
        }
        self.ensure_started();
        let mut rx = self.progress.subscribe();
        if let Some(ticket) = self.request_forced(true) {
            let bound = self.wait_bound();
            if tokio::time::timeout(bound, rx.wait_for(|p| p.served >= ticket))
                .await
                .is_err()
            {
                return Err(RefreshError::new(RefreshErrorKind::Timeout));
            }
        }
        match &lock(&self.status) {
            s if s.consecutive_failures > 0 => Err(s
                .last_error
                .clone()
                .unwrap_or_else(|| RefreshError::new(RefreshErrorKind::Connect))),
            _ => Ok(()),
        }
    }

    /// Waits until a key set is available, a configuration error is known, or `limit` passes.
    pub(crate) async fn ready(self: &Arc<Self>, limit: Option<Duration>) -> Result<(), ReadyError> {
        self.ensure_started();
        let wait = async {
            let mut rx = self.progress.subscribe();
            loop {
                if self.current().is_some() {
                    return Ok(());
                }
                if let Some(e) = self.config_error() {
                    return Err(ReadyError::new(Some(e.clone()), None));
                }
                if rx.changed().await.is_err() {
                    return Err(ReadyError::new(None, lock(&self.status).last_error.clone()));
                }
            }
        };
        match limit {
            None => wait.await,
            Some(limit) => match tokio::time::timeout(limit, wait).await {
                Ok(r) => r,
                Err(_) => Err(ReadyError::new(None, lock(&self.status).last_error.clone())),
            },
        }
    }

    pub(crate) fn status(&self) -> Status {
        let snap = self.current();
        let now = Instant::now();
        let inner = lock(&self.status);
        let last_error = match (&inner.last_error, self.config_error()) {
            (Some(e), _) => Some(e.clone()),
            (None, Some(c)) => Some(c.clone().into()),
            (None, None) => None,
        };
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
        }
    }

    /// Records the outcome of one attempt and returns the delay before the next.
    fn apply(
        &self,
        result: Result<Fetched, RefreshError>,
        serving: u64,
        task: &mut RefreshTask,
        started: Instant,
    ) -> Duration {
        let outcome = match result {
            Ok(Fetched::NotModified(cache)) => match self.current() {
                Some(old) => {
                    self.snapshot.store(Some(Arc::new(Snapshot {
                        keys: old.keys.clone(),
                        confirmed_at: Instant::now(),
                    })));
                    tracing::debug!(keys = old.keys.len(), "jwks-auth: key set not modified");
                    Ok(cache)
                }
                None => Err(RefreshError::new(RefreshErrorKind::Status(304))),
            },
            Ok(Fetched::Body {
                body,
                validators,
                cache,
            }) => match KeySet::from_json(&body) {
                Ok(keys) => {
                    tracing::info!(
                        keys = keys.len(),
                        skipped = keys.skipped().len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "jwks-auth: key set refreshed"
                    );
                    task.validators = validators;
                    self.snapshot.store(Some(Arc::new(Snapshot {
                        keys: Arc::new(keys),
                        confirmed_at: Instant::now(),
                    })));
                    Ok(cache)
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        let delay = {
            let mut status = lock(&self.status);
            let delay = match outcome {
                Ok(cache) => {
                    task.failures = 0;
                    status.last_success = Some(SystemTime::now());
                    status.last_error = None;
                    status.consecutive_failures = 0;
                    task.schedule.after_success(cache, random_unit())
                }
                Err(e) => {
                    task.failures = task.failures.saturating_add(1);
                    tracing::warn!(error = %e, failures = task.failures, "jwks-auth: key set refresh failed; keeping the last good set");
                    status.last_error = Some(e);
                    status.consecutive_failures = task.failures;
                    task.schedule.after_failure(task.failures, random_unit())
                }
            };
            status.next_refresh_at = Instant::now().checked_add(delay);
            delay
        };
        lock(&self.gate).served(serving);
        self.progress.send_modify(|p| {
            p.attempts += 1;
            p.served = p.served.max(serving);
        });
        delay
    }
}

/// The background task's own state.
struct RefreshTask {
    store: Weak<KeyStore>,
    wake: Arc<Notify>,
    shutdown: watch::Receiver<()>,
    target: Target,
    /// The JWKS URL: the configured one, or the one last discovered.
    jwks_url: Option<Url>,
    client: reqwest::Client,
    schedule: Schedule,
    validators: Validators,
    failures: u32,
}

impl RefreshTask {
    /// One fetch: discovery first when the JWKS URL is not known yet.
    async fn attempt(&mut self) -> Result<Fetched, RefreshError> {
        let timeout = self.schedule.timing.fetch_timeout;
        let url = match (&self.jwks_url, &self.target) {
            (Some(url), _) => url.clone(),
            (None, Target::Jwks(url)) => url.clone(),
            (
                None,
                Target::Discovery {
                    issuer,
                    url,
                    allow_http,
                },
            ) => {
                let jwks = fetch::discover(&self.client, issuer, url, *allow_http, timeout).await?;
                tracing::info!(jwks_uri = %jwks, "jwks-auth: discovered the key set URL");
                self.jwks_url = Some(jwks.clone());
                jwks
            }
        };
        let result = fetch::fetch(&self.client, &url, &self.validators, timeout).await;
        if result.is_err() && matches!(self.target, Target::Discovery { .. }) {
            // The provider may have moved its keys: discover again on the next attempt.
            self.jwks_url = None;
        }
        result
    }

    async fn run(mut self) {
        loop {
            let serving = match self.store.upgrade() {
                Some(store) => {
                    store.fetches.fetch_add(1, Ordering::Relaxed);
                    lock(&store.gate).serving()
                }
                None => return,
            };
            let started = Instant::now();
            let mut shutdown = self.shutdown.clone();
            let result = tokio::select! {
                r = self.attempt() => r,
                _ = shutdown.changed() => return,
            };
            let Some(store) = self.store.upgrade() else {
                return;
            };
            let delay = store.apply(result, serving, &mut self, started);
            drop(store);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.wake.notified() => {}
                _ = self.shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> Schedule {
        Schedule {
            timing: Timing::default(),
        }
    }

    #[test]
    fn a_huge_interval_does_not_overflow_the_jitter() {
        let schedule = Schedule {
            timing: Timing {
                refresh_interval: Duration::MAX,
                ..Timing::default()
            },
        };
        assert_eq!(
            schedule.after_success(CachePolicy::default(), 0.99),
            Duration::MAX
        );
        assert!(schedule.after_failure(u32::MAX, 0.99) >= BACKOFF_BASE);
    }

    #[test]
    fn success_delay_uses_interval_or_clamped_max_age() {
        let s = schedule();
        let none = CachePolicy::default();
        assert_eq!(s.after_success(none, 0.5), Duration::from_secs(300));
        assert_eq!(s.after_success(none, 0.0), Duration::from_secs(270));
        assert_eq!(s.after_success(none, 1.0), Duration::from_secs(330));
        let age = |secs| CachePolicy {
            max_age: Some(Duration::from_secs(secs)),
            no_store: false,
        };
        assert_eq!(s.after_success(age(900), 0.5), Duration::from_secs(900));
        assert_eq!(s.after_success(age(1), 0.5), Duration::from_secs(60));
        assert_eq!(
            s.after_success(age(10_000_000), 0.5),
            Duration::from_secs(86_400)
        );
        let no_store = CachePolicy {
            max_age: Some(Duration::from_secs(900)),
            no_store: true,
        };
        assert_eq!(s.after_success(no_store, 0.5), Duration::from_secs(300));
    }

    #[test]
    fn backoff_grows_to_the_interval() {
        let s = schedule();
        assert_eq!(s.after_failure(1, 1.0), Duration::from_secs(1));
        assert_eq!(s.after_failure(2, 1.0), Duration::from_secs(2));
        assert_eq!(s.after_failure(5, 1.0), Duration::from_secs(16));
        assert_eq!(s.after_failure(9, 1.0), Duration::from_secs(256));
        assert_eq!(s.after_failure(10, 1.0), Duration::from_secs(300));
        assert_eq!(s.after_failure(u32::MAX, 1.0), Duration::from_secs(300));
        for f in 1..40 {
            let d = s.after_failure(f, 0.0);
            assert_eq!(d, Duration::from_secs(1), "floor at {f}");
        }
        let mid = s.after_failure(6, 0.5);
        assert!(mid > Duration::from_secs(1) && mid < Duration::from_secs(32));
    }

    #[test]
    fn random_unit_is_in_range_and_varies() {
        let xs: Vec<f64> = (0..64).map(|_| random_unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(xs.iter().any(|x| (x - xs[0]).abs() > 1e-9));
    }

    #[tokio::test(start_paused = true)]
    async fn gate_single_flight_and_cooldown() {
        let cooldown = Duration::from_secs(30);
        let mut g = Gate::default();
        let t0 = Instant::now();
        assert_eq!(
            g.request(t0, cooldown, false),
            GateDecision::Wait {
                ticket: 1,
                new: true
            }
        );
        // A second unknown kid while the first is pending joins it.
        assert_eq!(
            g.request(t0, cooldown, false),
            GateDecision::Wait {
                ticket: 1,
                new: false
            }
        );
        // A fetch that started before the request serves nothing; the next one serves it.
        g.served(0);
        assert_eq!(
            g.request(t0, cooldown, false),
            GateDecision::Wait {
                ticket: 1,
                new: false
            }
        );
        g.served(g.serving());
        // Within the cooldown: denied.
        tokio::time::advance(Duration::from_secs(29)).await;
        assert_eq!(
            g.request(Instant::now(), cooldown, false),
            GateDecision::Denied
        );
        // `refresh_now` bypasses the cooldown.
        assert_eq!(
            g.request(Instant::now(), cooldown, true),
            GateDecision::Wait {
                ticket: 2,
                new: true
            }
        );
        g.served(2);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(
            g.request(Instant::now(), cooldown, false),
            GateDecision::Wait {
                ticket: 3,
                new: true
            }
        );
    }
}
