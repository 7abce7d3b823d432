//! The background refresh task of a [`KeyStore`]: its schedule, its backoff, and its life
//! cycle.
//!
//! One Tokio task per remote store fetches the key set: at start, then every
//! `refresh_interval` (±10 % jitter) or at the response's `Cache-Control: max-age`
//! (clamped to [1 min, 24 h], and never later than an interval the user set), and
//! whenever a request asks for a forced refresh. After a failure it retries with
//! exponential backoff and jitter, from 1 s up to the refresh interval, and keeps the last
//! good set.
//!
//! # Life cycle, all here
//!
//! [`Task`] is the one handle, owned next to the store by the layer's key stores. The
//! task owns its own state (the discovered URL, the validators, the failure count) and
//! holds one [`Weak`] to the store plus a shutdown receiver whose sender the handle owns
//! (the pattern of hyper-util's pool and bb8's reaper): when the last clone of the layer
//! is dropped, the task ends at once, even in the middle of a fetch or a sleep. However
//! the task ends, including with the runtime that ran it, its drop marks it gone and
//! wakes the store's waiters; the next use ([`Task::ensure_running`], on every request
//! and in every wait) spawns a new one in the current runtime.
//!
//! [`Weak`]: std::sync::Weak

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use reqwest::Url;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::error::{ReadyError, RefreshError, RefreshErrorKind};
use crate::fetch::{self, CachePolicy, Fetched, Target, Transport, Validators};
use crate::keys::KeySet;
use crate::limits::{BACKOFF_BASE, MAX_MAX_AGE, MIN_MAX_AGE};
use crate::metrics;
use crate::store::{KeyStore, Timing};

/// The refresh schedule, free of I/O so that it can be tested on its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schedule {
    pub(crate) timing: Timing,
}

impl Schedule {
    /// Delay before the next periodic refresh after a good response. `unit` is a random
    /// number in [0, 1) used for the ±10 % jitter.
    pub(crate) fn after_success(&self, cache: CachePolicy, unit: f64) -> Duration {
        let interval = self.timing.refresh_interval;
        let base = match cache.max_age {
            Some(age) if !cache.use_interval => {
                let age = age.clamp(MIN_MAX_AGE, MAX_MAX_AGE);
                // An interval the user chose is an upper bound: a key withdrawn at the
                // identity provider stops verifying within it.
                if self.timing.interval_explicit {
                    age.min(interval)
                } else {
                    age
                }
            }
            _ => interval,
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

/// The one handle to a key store's refresh task, owned next to the store by the layer's
/// key stores. It spawns the task when none runs (the only place a task is spawned),
/// wakes it for a forced refresh, and ends it when dropped (the task sees its shutdown
/// channel close, even in the middle of a fetch or a sleep).
#[derive(Debug)]
pub(crate) struct Task {
    shared: Arc<Shared>,
    /// Dropped with the handle: the task ends at once.
    shutdown: watch::Sender<()>,
}

/// What the handle and the running task share.
#[derive(Debug, Default)]
struct Shared {
    /// Set while a task runs; cleared when it ends, however it ends.
    alive: AtomicBool,
    /// Wakes the task for a forced refresh.
    wake: Notify,
}

impl Task {
    pub(crate) fn new() -> Self {
        Self {
            shared: Arc::default(),
            shutdown: watch::Sender::new(()),
        }
    }

    /// Starts the store's task if none runs and a Tokio runtime is available; cheap when
    /// it runs (one atomic load). A task whose runtime was dropped is started again in
    /// the current one.
    pub(crate) fn ensure_running(&self, store: &Arc<KeyStore>) {
        if self.shared.alive.load(Ordering::Acquire) {
            return;
        }
        let Some(remote) = store.remote() else {
            return;
        };
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.shared.alive.swap(true, Ordering::AcqRel) {
            return;
        }
        let task = RefreshTask {
            store: Arc::downgrade(store),
            shared: self.shared.clone(),
            shutdown: self.shutdown.subscribe(),
            target: remote.target.clone(),
            transport: remote.transport.clone(),
            jwks_url: None,
            schedule: Schedule {
                timing: *store.timing(),
            },
            validators: Validators::default(),
            failures: 0,
        };
        // If the runtime is shutting down, the future is dropped unpolled: its drop then
        // marks the task as gone, and a later use spawns it again.
        drop(handle.spawn(task.run()));
    }

    /// Waits for the first key set or a forced refresh, as the store's gate allows.
    pub(crate) async fn wait_for_keys(&self, store: &Arc<KeyStore>) {
        self.ensure_running(store);
        store.wait_for_keys(&self.shared.wake).await;
    }

    /// Waits until a key set is available, a key set is known to be impossible, or
    /// `limit` passes. A task that ends meanwhile (its runtime dropped) wakes the wait,
    /// which starts another in the current runtime.
    pub(crate) async fn ready(
        &self,
        store: &Arc<KeyStore>,
        limit: Option<Duration>,
    ) -> Result<(), ReadyError> {
        store.ready(limit, || self.ensure_running(store)).await
    }

    /// Forces a refresh now (ignoring the cooldown, joining one in flight) and waits for
    /// it, bounded by the fetch timeout.
    pub(crate) async fn refresh_now(&self, store: &Arc<KeyStore>) -> Result<(), RefreshError> {
        self.ensure_running(store);
        store.refresh_now(&self.shared.wake).await
    }
}

/// The background task and its own state. It holds the store weakly: the layer owns it.
struct RefreshTask {
    store: Weak<KeyStore>,
    shared: Arc<Shared>,
    shutdown: watch::Receiver<()>,
    target: Target,
    transport: Transport,
    /// The JWKS URL: the configured one, or the one last discovered.
    jwks_url: Option<Url>,
    schedule: Schedule,
    validators: Validators,
    failures: u32,
}

impl RefreshTask {
    /// One attempt: discovery first when the JWKS URL is not known yet.
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
                let jwks = fetch::discover(
                    &self.transport,
                    (issuer, url),
                    "jwks_uri",
                    *allow_http,
                    timeout,
                )
                .await?;
                tracing::info!(jwks_uri = %jwks, "jwks-auth: discovered the key set URL");
                self.jwks_url = Some(jwks.clone());
                jwks
            }
        };
        let result = fetch::fetch(&self.transport, &url, &self.validators, timeout).await;
        if result.is_err() && matches!(self.target, Target::Discovery { .. }) {
            // The provider may have moved its keys: discover again on the next attempt.
            self.jwks_url = None;
        }
        result
    }

    /// The key set URL being fetched: the configured one, or the one discovered.
    fn key_set_url(&self) -> Option<&Url> {
        match (&self.jwks_url, &self.target) {
            (Some(url), _) | (None, Target::Jwks(url)) => Some(url),
            (None, Target::Discovery { .. }) => None,
        }
    }

    /// Applies one attempt's result to the store; returns the delay before the next.
    fn apply(
        &mut self,
        store: &KeyStore,
        result: Result<Fetched, RefreshError>,
        serving: u64,
        started: Instant,
    ) -> Duration {
        let not_modified = matches!(result, Ok(Fetched::NotModified(_)));
        let outcome = match result {
            Ok(Fetched::NotModified(_)) if self.validators.is_empty() => {
                // A 304 to an unconditional request confirms nothing.
                Err(RefreshError::new(RefreshErrorKind::UnexpectedNotModified))
            }
            Ok(Fetched::NotModified(cache)) => {
                if store.confirm() {
                    tracing::debug!("jwks-auth: key set not modified");
                    Ok(cache)
                } else {
                    Err(RefreshError::new(RefreshErrorKind::UnexpectedNotModified))
                }
            }
            Ok(Fetched::Body {
                body,
                validators,
                cache,
            }) => KeySet::from_json(&body)
                .map_err(|e| match self.key_set_url() {
                    Some(url) => e.at(url.as_str()),
                    None => e,
                })
                .map(|keys| {
                    tracing::info!(
                        keys = keys.len(),
                        skipped = keys.skipped().len(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "jwks-auth: key set refreshed"
                    );
                    self.validators = validators;
                    store.publish(keys);
                    cache
                }),
            Err(e) => Err(e),
        };
        let fetched = match &outcome {
            Ok(_) => Ok(not_modified),
            Err(e) => Err(e),
        };
        metrics::fetch(store.label(), fetched, started.elapsed());
        let (outcome, delay) = match outcome {
            Ok(cache) => {
                self.failures = 0;
                (Ok(()), self.schedule.after_success(cache, random_unit()))
            }
            Err(e) => {
                self.failures = self.failures.saturating_add(1);
                if store.has_keys() {
                    tracing::warn!(error = %e, failures = self.failures, "jwks-auth: key set refresh failed; keeping the last good set");
                } else {
                    tracing::warn!(error = %e, failures = self.failures, "jwks-auth: key set fetch failed; no key set yet, requests get 503");
                }
                (
                    Err(e),
                    self.schedule.after_failure(self.failures, random_unit()),
                )
            }
        };
        store.end_attempt(outcome, self.failures, delay, serving);
        let (keys, age) = store.key_set_gauges();
        metrics::key_set(store.label(), keys, age);
        delay
    }

    async fn run(mut self) {
        loop {
            let Some(serving) = self.store.upgrade().map(|s| s.begin_attempt()) else {
                return;
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
            let delay = self.apply(&store, result, serving, started);
            drop(store);
            let next = tokio::time::sleep(delay);
            tokio::pin!(next);
            loop {
                // With feature `metrics`, a tick keeps the key set age gauge current
                // between refreshes; without it, the tick never fires.
                let tick = async {
                    match metrics::TICK {
                        Some(every) => tokio::time::sleep(every).await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = &mut next => break,
                    _ = self.shared.wake.notified() => break,
                    _ = self.shutdown.changed() => return,
                    _ = tick => {
                        let Some(store) = self.store.upgrade() else { return };
                        let (keys, age) = store.key_set_gauges();
                        metrics::key_set(store.label(), keys, age);
                    }
                }
            }
        }
    }
}

/// However the task ends (the layer dropped, its runtime dropped, never polled), it marks
/// itself gone and wakes everything waiting on the store, so they can see it.
impl Drop for RefreshTask {
    fn drop(&mut self) {
        self.shared.alive.store(false, Ordering::Release);
        if let Some(store) = self.store.upgrade() {
            store.task_ended();
        }
    }
}

impl std::fmt::Debug for RefreshTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefreshTask")
            .field("target", &self.target)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
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
            use_interval: false,
        };
        assert_eq!(s.after_success(age(900), 0.5), Duration::from_secs(900));
        assert_eq!(s.after_success(age(1), 0.5), Duration::from_secs(60));
        assert_eq!(
            s.after_success(age(10_000_000), 0.5),
            Duration::from_secs(86_400)
        );
        let no_store = CachePolicy {
            max_age: Some(Duration::from_secs(900)),
            use_interval: true,
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

    #[test]
    fn an_explicit_interval_caps_max_age_and_no_cache_uses_it() {
        let age = |secs| CachePolicy {
            max_age: Some(Duration::from_secs(secs)),
            use_interval: false,
        };
        let explicit = Schedule {
            timing: Timing {
                refresh_interval: Duration::from_secs(3),
                interval_explicit: true,
                ..Timing::default()
            },
        };
        assert_eq!(
            explicit.after_success(age(2_592_000), 0.5),
            Duration::from_secs(3)
        );
        let explicit_long = Schedule {
            timing: Timing {
                refresh_interval: Duration::from_secs(3600),
                interval_explicit: true,
                ..Timing::default()
            },
        };
        assert_eq!(
            explicit_long.after_success(age(600), 0.5),
            Duration::from_secs(600),
            "max-age may make refreshes more frequent"
        );
        assert_eq!(
            explicit_long.after_success(age(10), 0.5),
            Duration::from_secs(60),
            "never below a minute"
        );
        let no_cache = CachePolicy {
            max_age: Some(Duration::from_secs(86_400)),
            use_interval: true,
        };
        assert_eq!(
            schedule().after_success(no_cache, 0.5),
            Duration::from_secs(300)
        );
    }
}
