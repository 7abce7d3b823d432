//! The key set's life cycle against a real loopback identity provider that misbehaves on
//! command: first fetch, rotation, unknown-kid floods, outages, limits, staleness, and
//! the refresh task's end.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use common::*;
use jwks_auth::testing::{JwksBehavior, TestIssuer, TestKey};
use jwks_auth::{Algorithm, AuthErrorKind as K, JwksAuth, RefreshErrorKind};

#[tokio::test]
async fn requests_that_arrive_before_the_first_fetch_wait_for_it() {
    let issuer = TestIssuer::start().await;
    let (app, hits) = app(issuer.layer());
    let token = issuer.token().sign();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (app, token) = (app.clone(), token.clone());
        tasks.push(tokio::spawn(async move { send(&app, &token).await.status }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(hits.get(), 8);
    assert_eq!(issuer.fetch_count(), 1, "one fetch for all of them");
}

#[tokio::test]
async fn a_rotated_key_is_accepted_on_its_first_request_with_one_fetch() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer();
    let (app, _) = app(auth.clone());
    let old = issuer.token().sign();
    assert_eq!(send(&app, &old).await.status, StatusCode::OK);
    assert_eq!(issuer.fetch_count(), 1);

    issuer.rotate().await;
    let new = issuer.token().sign();
    // Many concurrent first requests with the new kid share one forced refresh.
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (app, new) = (app.clone(), new.clone());
        tasks.push(tokio::spawn(async move { send(&app, &new).await.status }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(issuer.fetch_count(), 2);
    assert_eq!(
        auth.status().kids,
        ["ed25519-2", "p256-2", "p384-2", "rsa-2"]
    );

    // The retired key's tokens are now unknown, and rejected without another fetch.
    assert_invalid_token(&send(&app, &old).await, K::UnknownKey.description());
    assert_eq!(issuer.fetch_count(), 2);
}

#[tokio::test]
async fn a_flood_of_unknown_kids_costs_at_most_one_fetch_per_cooldown() {
    let issuer = TestIssuer::start().await;
    let (app, hits) = app(issuer.layer());
    assert_eq!(
        send(&app, &issuer.token().sign()).await.status,
        StatusCode::OK
    );
    let stranger = Arc::new(TestKey::generate(Algorithm::ES256, "x"));
    let mut tasks = Vec::new();
    for i in 0..200 {
        let app = app.clone();
        let token = issuer
            .token()
            .alg(Algorithm::ES256)
            .key(stranger.clone())
            .kid(&format!("random-{i}"))
            .sign();
        tasks.push(tokio::spawn(async move { send(&app, &token).await }));
    }
    for t in tasks {
        assert_invalid_token(&t.await.unwrap(), K::UnknownKey.description());
    }
    assert_eq!(
        issuer.fetch_count(),
        2,
        "initial fetch + one forced refresh"
    );
    assert_eq!(hits.get(), 1);

    // Junk that fails cheap checks never triggers a refresh, even after the cooldown.
    let expired = issuer
        .token()
        .key(stranger.clone())
        .alg(Algorithm::ES256)
        .kid("new")
        .expires_in(-3600)
        .sign();
    assert_invalid_token(&send(&app, &expired).await, K::Expired.description());
    assert_eq!(issuer.fetch_count(), 2);
}

#[tokio::test]
async fn outages_keep_the_last_good_key_set() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer();
    let (app, _) = app(auth.clone());
    let token = issuer.token().sign();
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);

    let failures: Vec<(JwksBehavior, RefreshErrorKind)> = vec![
        (JwksBehavior::Status(500), RefreshErrorKind::Status(500)),
        (JwksBehavior::Status(404), RefreshErrorKind::Status(404)),
        (
            JwksBehavior::Body("not json".into()),
            RefreshErrorKind::InvalidJwks,
        ),
        (
            JwksBehavior::Body(r#"{"keys":[]}"#.into()),
            RefreshErrorKind::NoUsableKeys,
        ),
        (
            JwksBehavior::Body(r#"{"keys":[{"kty":"oct","k":"AAAA"}]}"#.into()),
            RefreshErrorKind::NoUsableKeys,
        ),
        (
            JwksBehavior::Body(r#"{"keys":"nope"}"#.into()),
            RefreshErrorKind::InvalidJwks,
        ),
        (
            JwksBehavior::Body("x".repeat(600 * 1024)),
            RefreshErrorKind::BodyTooLarge,
        ),
        (
            JwksBehavior::Redirect(issuer.jwks_url()),
            RefreshErrorKind::Status(302),
        ),
    ];
    for (i, (behavior, kind)) in failures.into_iter().enumerate() {
        issuer.set_behavior(behavior.clone());
        let fetches = issuer.fetch_count();
        let err = auth.refresh_now().await.expect_err("refresh fails");
        assert_eq!(
            issuer.fetch_count(),
            fetches + 1,
            "exactly one fetch: {behavior:?}"
        );
        assert_eq!(err.kind(), &kind, "{behavior:?}");
        let status = auth.status();
        assert_eq!(status.consecutive_failures as usize, i + 1);
        assert_eq!(
            status.last_error.as_ref().map(|e| e.kind().clone()),
            Some(kind)
        );
        assert!(status.is_ready(), "still serving the last good set");
        assert_eq!(
            send(&app, &token).await.status,
            StatusCode::OK,
            "{behavior:?}"
        );
    }
    issuer.set_behavior(JwksBehavior::Normal);
    auth.refresh_now().await.expect("recovered");
    let status = auth.status();
    assert_eq!(status.consecutive_failures, 0);
    assert!(status.last_error.is_none());
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);
}

#[tokio::test]
async fn an_unchanged_key_set_is_answered_304_and_kept() {
    let issuer = TestIssuer::start().await;
    let auth = issuer.layer();
    auth.ready().await.unwrap();
    let first = auth.status().last_success.unwrap();
    auth.refresh_now().await.unwrap();
    auth.refresh_now().await.unwrap();
    assert_eq!(issuer.fetch_count(), 3);
    assert_eq!(
        issuer.not_modified_count(),
        2,
        "conditional requests were sent"
    );
    let status = auth.status();
    assert!(status.last_success.unwrap() >= first);
    assert_eq!(status.key_count, 4);
    assert!(status.is_ready());
}

fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}/jwks.json")
}

#[tokio::test]
async fn an_unreachable_identity_provider_gives_503_never_401() {
    let issuer = TestIssuer::start().await;
    let auth = JwksAuth::new(closed_port_url())
        .issuer(issuer.issuer())
        .audience(jwks_auth::testing::AUDIENCE);
    let (app, hits) = app(auth.clone());
    let reply = send(&app, &issuer.token().sign()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
    assert!(reply.challenge().is_none());
    let retry: u64 = reply.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(reply.json()["error"], "temporarily_unavailable");
    assert_eq!(hits.get(), 0);

    let err = auth
        .ready_within(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(err.is_timeout());
    assert_eq!(
        err.last_error().map(|e| e.kind().clone()),
        Some(RefreshErrorKind::Connect)
    );
    assert!(!auth.status().is_ready());
}

#[tokio::test]
async fn a_bad_url_is_a_configuration_error_found_before_any_request() {
    for (url, kind) in [
        (
            "http://idp.example/jwks.json",
            jwks_auth::ConfigErrorKind::InsecureUrl,
        ),
        ("not a url", jwks_auth::ConfigErrorKind::InvalidUrl),
        (
            "file:///etc/passwd",
            jwks_auth::ConfigErrorKind::UnsupportedScheme,
        ),
    ] {
        let auth = JwksAuth::new(url);
        let err = auth.ready().await.unwrap_err();
        assert_eq!(
            err.config_error().map(|e| e.kind().clone()),
            Some(kind.clone())
        );
        assert_eq!(auth.validate().map_err(|e| e.kind().clone()), Err(kind));
        // Applying the layer stops the service at start-up (no request is ever answered
        // by a layer that cannot work); the status says why.
        let message = panic_of_applying(auth.clone());
        assert!(message.contains("key set url"), "{message}");
        assert!(matches!(
            auth.status().last_error.map(|e| e.kind().clone()),
            Some(RefreshErrorKind::Config(_))
        ));
    }
}

#[tokio::test]
async fn a_hung_identity_provider_is_bounded_by_the_fetch_timeout() {
    let issuer = TestIssuer::start().await;
    issuer.set_behavior(JwksBehavior::Hang);
    let (app, _) = app(issuer
        .layer()
        .refresh(jwks_auth::Refresh::default().timeout(Duration::from_millis(300))));
    let started = Instant::now();
    let reply = send(&app, &issuer.token().sign()).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    // Bounded: fetch timeout (+1 s allowance for the waiter), far from hanging.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_slow_or_hung_refresh_does_not_slow_requests_with_known_kids() {
    for behavior in [
        JwksBehavior::Drip(Duration::from_millis(50)),
        JwksBehavior::Hang,
    ] {
        let issuer = TestIssuer::start().await;
        let auth = issuer
            .layer()
            .refresh(jwks_auth::Refresh::default().timeout(Duration::from_secs(2)));
        let (app, _) = app(auth.clone());
        let token = issuer.token().sign();
        assert_eq!(send(&app, &token).await.status, StatusCode::OK);
        issuer.set_behavior(behavior.clone());
        let refresh = tokio::spawn({
            let auth = auth.clone();
            async move { auth.refresh_now().await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Known kid while the refresh is stuck: answered from the snapshot, at once.
        let reply = tokio::time::timeout(Duration::from_secs(1), send(&app, &token))
            .await
            .expect("not blocked by the refresh");
        assert_eq!(reply.status, StatusCode::OK);
        let started = Instant::now();
        let err = refresh.await.unwrap().unwrap_err();
        assert_eq!(err.kind(), &RefreshErrorKind::Timeout, "{behavior:?}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "bounded by the fetch timeout"
        );
        assert_eq!(
            send(&app, &token).await.status,
            StatusCode::OK,
            "last good set kept"
        );
        assert_eq!(issuer.fetch_count(), 2);
    }
}

#[tokio::test]
async fn a_key_set_stale_past_max_stale_gives_503() {
    let issuer = TestIssuer::start().await;
    let auth = issuer
        .layer()
        .refresh(jwks_auth::Refresh::default().max_stale(Duration::from_millis(300)));
    let (app, _) = app(auth.clone());
    let token = issuer.token().sign();
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);
    issuer.set_behavior(JwksBehavior::Status(503));
    tokio::time::sleep(Duration::from_millis(400)).await;
    let reply = send(&app, &token).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(reply.headers.contains_key("retry-after"));
    assert!(auth.status().stale);
    issuer.set_behavior(JwksBehavior::Normal);
    auth.refresh_now().await.unwrap();
    assert_eq!(send(&app, &token).await.status, StatusCode::OK);
}

/// Paused clock, no sockets: an `https_only` client refuses the loopback `http` URL before
/// any I/O, so the task's backoff loop runs on virtual time alone.
#[tokio::test(start_paused = true)]
async fn the_refresh_task_retries_with_backoff_and_ends_with_the_layer() {
    let client = reqwest::Client::builder().https_only(true).build().unwrap();
    let auth = JwksAuth::new("http://127.0.0.1:9/jwks.json")
        .issuer("https://idp.example/")
        .audience("api")
        .refresh(jwks_auth::Refresh::default().client(client));
    let metrics = tokio::runtime::Handle::current().metrics();
    assert_eq!(metrics.num_alive_tasks(), 0, "JwksAuth::new starts nothing");

    let (app, _) = app(auth.clone());
    let clone = auth.clone();
    assert_eq!(metrics.num_alive_tasks(), 1, "the layer started one task");

    tokio::time::sleep(Duration::from_secs(120)).await;
    let status = auth.status();
    // Backoff from 1 s doubling towards 5 min: at least 1+2+4+8+16+32 s fits six
    // attempts in 120 s at the most, one per second at the least.
    assert!((3..=121).contains(&status.fetches), "{}", status.fetches);
    assert_eq!(status.consecutive_failures as u64, status.fetches);
    assert!(status.next_refresh.is_some());

    drop(app);
    drop(auth);
    tokio::task::yield_now().await;
    assert_eq!(
        metrics.num_alive_tasks(),
        1,
        "a clone still holds the store"
    );
    drop(clone);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        metrics.num_alive_tasks(),
        0,
        "the task ended with the last clone"
    );
}

#[tokio::test]
async fn the_refresh_task_ends_during_a_hung_fetch() {
    let issuer = TestIssuer::start().await;
    issuer.set_behavior(JwksBehavior::Hang);
    let auth = issuer
        .layer()
        .refresh(jwks_auth::Refresh::default().timeout(Duration::from_secs(30)));
    let metrics = tokio::runtime::Handle::current().metrics();
    let before = metrics.num_alive_tasks();
    let (app, _) = app(auth.clone());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(issuer.fetch_count(), 1, "the fetch is hanging");
    drop(app);
    drop(auth);
    // The task, and the connection it held, go away without waiting for the 30 s timeout.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metrics.num_alive_tasks() > before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        metrics.num_alive_tasks() <= before,
        "{} > {before}",
        metrics.num_alive_tasks()
    );
}

#[tokio::test]
async fn extreme_durations_in_the_configuration_do_not_panic() {
    let issuer = TestIssuer::start().await;
    let auth = issuer
        .layer()
        .refresh(
            jwks_auth::Refresh::default()
                .interval(Duration::MAX)
                .cooldown(Duration::MAX)
                .max_stale(Duration::MAX)
                .timeout(Duration::MAX),
        )
        .leeway(Duration::MAX)
        .cache(10);
    auth.ready_within(Duration::MAX).await.unwrap();
    let (app, hits) = app(auth.clone());
    let token = issuer.token().sign();
    for _ in 0..2 {
        assert_eq!(send(&app, &token).await.status, StatusCode::OK);
    }
    let stranger = Arc::new(TestKey::generate(Algorithm::ES256, "stranger"));
    let unknown = issuer.token().alg(Algorithm::ES256).key(stranger).sign();
    let reply = send(&app, &unknown).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(hits.get(), 2);
    assert!(auth.status().is_ready());
    auth.refresh_now().await.unwrap();
}

/// A layer kept across runtimes (in a static, or shared by `#[tokio::test]`s): when the
/// runtime that ran its refresh task is dropped, the next use spawns a new task.
#[test]
fn a_task_whose_runtime_was_dropped_is_respawned_in_the_next_one() {
    let server = tokio::runtime::Runtime::new().unwrap();
    let issuer = server.block_on(TestIssuer::start());
    let auth = issuer.layer();
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    first.block_on(auth.ready()).unwrap();
    assert_eq!(issuer.fetch_count(), 1);
    drop(first);

    let second = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    second.block_on(async {
        tokio::time::timeout(Duration::from_secs(5), auth.refresh_now())
            .await
            .expect("refresh_now must not hang")
            .expect("a new task fetched");
        let (app, _) = app(auth.clone());
        assert_eq!(
            send(&app, &issuer.token().sign()).await.status,
            StatusCode::OK
        );
    });
    // The new task fetches when it starts, and once more for `refresh_now` unless its
    // first fetch began after the request.
    assert!(
        (2..=3).contains(&issuer.fetch_count()),
        "{}",
        issuer.fetch_count()
    );
    assert!(
        auth.status().next_refresh.is_some(),
        "the new task is scheduled"
    );
}

/// `ready()` waiting while the task dies (its runtime dropped mid-fetch) wakes, sees it,
/// and starts another in its own runtime: it never waits on a task that is gone.
#[test]
fn a_ready_waiting_when_the_task_dies_starts_another() {
    let server = tokio::runtime::Runtime::new().unwrap();
    let issuer = server.block_on(TestIssuer::start());
    issuer.set_behavior(JwksBehavior::Hang);
    let auth = issuer
        .layer()
        .refresh(jwks_auth::Refresh::default().timeout(Duration::from_secs(30)));
    // The first task runs on a runtime of its own, its fetch hanging.
    let first = tokio::runtime::Runtime::new().unwrap();
    first.block_on(async {
        let waited = tokio::time::timeout(Duration::from_millis(300), auth.ready()).await;
        assert!(waited.is_err(), "the fetch hangs");
    });
    let waiter = {
        let auth = auth.clone();
        std::thread::spawn(move || {
            let second = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            second.block_on(auth.ready_within(Duration::from_secs(20)))
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    issuer.set_behavior(JwksBehavior::Normal);
    let started = Instant::now();
    drop(first);
    waiter
        .join()
        .unwrap()
        .expect("ready() started a task of its own");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "woken by the task's end, not by its limit: {:?}",
        started.elapsed()
    );
    assert!(auth.status().is_ready());
}

#[tokio::test]
async fn a_zero_cooldown_still_bounds_unknown_kid_refreshes() {
    let issuer = TestIssuer::start().await;
    let auth = issuer
        .layer()
        .refresh(jwks_auth::Refresh::default().cooldown(Duration::ZERO));
    auth.ready().await.unwrap();
    let (app, _) = app(auth);
    let stranger = Arc::new(TestKey::generate(Algorithm::ES256, "stranger"));
    for i in 0..20 {
        let token = issuer
            .token()
            .alg(Algorithm::ES256)
            .key(stranger.clone())
            .kid(&format!("unknown-{i}"))
            .sign();
        assert_invalid_token(&send(&app, &token).await, K::UnknownKey.description());
    }
    assert_eq!(
        issuer.fetch_count(),
        2,
        "one forced refresh within the 1 s cooldown floor, not one per kid"
    );
}

#[tokio::test]
async fn a_304_to_a_request_without_validators_is_a_failure() {
    let issuer = TestIssuer::start().await;
    // The first answer has no ETag or Last-Modified, so the next request is
    // unconditional; a 304 to it confirms nothing.
    issuer.set_behavior(JwksBehavior::Body(issuer.jwks_document()));
    let auth = issuer.layer();
    auth.ready().await.unwrap();
    let before = auth.status().last_success;
    issuer.set_behavior(JwksBehavior::Status(304));
    let err = auth.refresh_now().await.unwrap_err();
    assert_eq!(err.kind(), &RefreshErrorKind::UnexpectedNotModified);
    let status = auth.status();
    assert_eq!(status.consecutive_failures, 1);
    assert_eq!(status.last_success, before, "staleness was not reset");
}

#[tokio::test]
async fn an_interval_the_user_set_caps_the_providers_max_age() {
    let issuer = TestIssuer::start().await;
    issuer.set_cache_control(Some("public, max-age=2592000"));
    let capped = issuer
        .layer()
        .refresh(jwks_auth::Refresh::default().interval(Duration::from_secs(3)));
    capped.ready().await.unwrap();
    let next = capped.status().next_refresh.unwrap();
    assert!(next <= Duration::from_millis(3300), "{next:?}");

    // With the default interval, max-age is followed (clamped to 24 h).
    let default = issuer.layer();
    default.ready().await.unwrap();
    let next = default.status().next_refresh.unwrap();
    assert!(next > Duration::from_secs(20 * 3600), "{next:?}");
}

#[tokio::test]
async fn no_cache_means_the_configured_interval() {
    let issuer = TestIssuer::start().await;
    issuer.set_cache_control(Some("no-cache, max-age=86400"));
    let auth = issuer.layer();
    auth.ready().await.unwrap();
    let next = auth.status().next_refresh.unwrap();
    assert!(
        next <= Duration::from_secs(330) && next >= Duration::from_secs(260),
        "the 5 min interval (±10 %), not a day: {next:?}"
    );
}

#[tokio::test]
async fn refresh_errors_name_the_url_and_keep_the_cause() {
    use std::error::Error as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/jwks.json", listener.local_addr().unwrap());
    drop(listener);
    let auth = JwksAuth::new(dead.clone())
        .refresh(jwks_auth::Refresh::default().timeout(Duration::from_secs(2)));
    let err = auth.refresh_now().await.unwrap_err();
    assert_eq!(err.kind(), &RefreshErrorKind::Connect);
    assert_eq!(err.url(), Some(dead.as_str()));
    assert!(err.to_string().contains(&dead), "{err}");
    assert!(
        err.source().is_some(),
        "the transport error is kept as the cause"
    );

    let issuer = TestIssuer::start().await;
    issuer.set_behavior(JwksBehavior::Body("{\"keys\": 7}".into()));
    let err = issuer.layer().refresh_now().await.unwrap_err();
    assert_eq!(err.kind(), &RefreshErrorKind::InvalidJwks);
    assert_eq!(err.url(), Some(issuer.jwks_url().as_str()));
    issuer.set_behavior(JwksBehavior::Status(500));
    let err = issuer.layer().refresh_now().await.unwrap_err();
    assert_eq!(err.kind(), &RefreshErrorKind::Status(500));
    assert_eq!(
        err.to_string(),
        format!("key set server answered 500 ({})", issuer.jwks_url())
    );
}
