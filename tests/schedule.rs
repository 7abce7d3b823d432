//! The refresh schedule on Tokio's paused clock, against a real loopback identity provider.
//!
//! A paused clock normally auto-advances whenever the runtime is idle, which would fire
//! fetch timeouts while a real socket is waiting. [`ManualClock`] holds a blocking task
//! open, which makes Tokio suspend auto-advance: virtual time then moves only through
//! `tokio::time::advance`, and real loopback I/O runs at its own pace.

use std::time::Duration;

use jwks_auth::JwksAuth;
use jwks_auth::testing::{JwksBehavior, TestIssuer};
use tokio::time::advance;

struct ManualClock(#[allow(dead_code)] std::sync::mpsc::Sender<()>);

impl ManualClock {
    fn hold() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        tokio::task::spawn_blocking(move || {
            let _ = rx.recv();
        });
        Self(tx)
    }
}

/// Lets the runtime run (tasks and real I/O, never the clock) until `cond` holds.
async fn until(what: &str, cond: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::task::yield_now().await;
    }
}

/// Lets the task notice a timer that `advance` fired (or not).
async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

fn next_refresh(auth: &JwksAuth) -> Duration {
    auth.status().next_refresh.expect("scheduled")
}

#[track_caller]
fn assert_between(d: Duration, lo: u64, hi: u64) {
    assert!(
        d >= Duration::from_secs(lo) && d <= Duration::from_secs(hi),
        "{d:?} not in [{lo}s, {hi}s]"
    );
}

#[tokio::test(start_paused = true)]
async fn max_age_sets_the_next_refresh_and_it_is_conditional() {
    let _clock = ManualClock::hold();
    let issuer = TestIssuer::start().await;
    issuer.set_cache_control(Some("public, max-age=1200"));
    let auth = issuer.layer();
    auth.ready().await.unwrap();
    assert_eq!(issuer.fetch_count(), 1);
    assert_between(next_refresh(&auth), 1080, 1320);

    // Past the 5 min default interval: max-age wins, nothing happens.
    advance(Duration::from_secs(1079)).await;
    settle().await;
    assert_eq!(auth.status().fetches, 1);

    // Past max-age + jitter: one conditional refresh, answered 304, snapshot kept.
    let before = auth.status().last_success.unwrap();
    advance(Duration::from_secs(242)).await;
    until("the refresh", || issuer.not_modified_count() == 1).await;
    until("its outcome", || {
        auth.status().last_success.unwrap() > before
    })
    .await;
    assert_eq!(issuer.fetch_count(), 2);
    assert_eq!(auth.status().key_count, 4);
}

#[tokio::test(start_paused = true)]
async fn max_age_is_clamped_and_no_store_falls_back_to_the_interval() {
    let _clock = ManualClock::hold();
    let issuer = TestIssuer::start().await;
    for (cache_control, lo, hi) in [
        (Some("max-age=5"), 54, 66),
        (Some("max-age=100000000"), 77_760, 95_040),
        (Some("no-store, max-age=1200"), 270, 330),
        (None, 270, 330),
    ] {
        issuer.set_cache_control(cache_control);
        let auth = issuer.layer();
        auth.ready().await.unwrap();
        assert_between(next_refresh(&auth), lo, hi);
    }
}

#[tokio::test(start_paused = true)]
async fn periodic_refresh_picks_up_rotated_keys_without_a_request() {
    let _clock = ManualClock::hold();
    let issuer = TestIssuer::start().await;
    let auth = issuer
        .layer()
        .refresh(jwks_auth::Refresh::default().interval(Duration::from_secs(600)));
    auth.ready().await.unwrap();
    assert_eq!(auth.status().kids[0], "ed25519-1");
    issuer.rotate().await;
    advance(Duration::from_secs(661)).await;
    until("the periodic refresh", || {
        auth.status().kids.first().map(String::as_str) == Some("ed25519-2")
    })
    .await;
    assert_eq!(issuer.fetch_count(), 2);
    assert_eq!(
        issuer.not_modified_count(),
        0,
        "the set changed, so a full 200"
    );
}

#[tokio::test(start_paused = true)]
async fn failures_back_off_exponentially_then_recover() {
    let _clock = ManualClock::hold();
    let issuer = TestIssuer::start().await;
    issuer.set_behavior(JwksBehavior::Status(500));
    let auth = issuer
        .layer()
        .refresh(jwks_auth::Refresh::default().interval(Duration::from_secs(60)));
    let _ = auth.ready_within(Duration::ZERO).await; // starts the task
    until("the first attempt", || {
        auth.status().consecutive_failures == 1
    })
    .await;
    assert_between(next_refresh(&auth), 1, 1);

    // Each failure at most doubles the delay; it never exceeds the interval.
    let mut ceiling = 1;
    for failures in 2..=9u32 {
        advance(next_refresh(&auth) + Duration::from_millis(1)).await;
        until("the retry", || {
            auth.status().consecutive_failures == failures
        })
        .await;
        ceiling = (ceiling * 2).min(60);
        assert_between(next_refresh(&auth), 1, ceiling);
    }
    assert_eq!(issuer.fetch_count(), 9);

    issuer.set_behavior(JwksBehavior::Normal);
    advance(next_refresh(&auth) + Duration::from_millis(1)).await;
    until("recovery", || auth.status().is_ready()).await;
    assert_eq!(auth.status().consecutive_failures, 0);
    assert_between(next_refresh(&auth), 54, 66);
}
