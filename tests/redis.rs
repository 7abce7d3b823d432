//! The Redis DPoP replay store against a real `redis-server` on loopback (feature
//! `redis`). Each test starts its own server on a free port; a missing `redis-server`
//! (set `REDIS_SERVER` to its path if it is not on `PATH`) is a failure, never a skip.
//! `.ci/run` installs it.
#![cfg(feature = "redis")]

mod common;

use common::redis::RedisServer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use jwks_auth::dpop::{RedisReplayStore, ReplayKey, ReplayStore};
use jwks_auth::testing::{DpopKey, TestIssuer};
use jwks_auth::{Algorithm, AuthErrorKind as K, Dpop};

const BASE: &str = "https://api.example.com";
const URL: &str = "https://api.example.com/me";

fn dpop_request(token: &str, proof: &str) -> Request<Body> {
    Request::get("/me")
        .header("authorization", format!("DPoP {token}"))
        .header("dpop", proof)
        .body(Body::empty())
        .unwrap()
}

fn layer(issuer: &TestIssuer, redis: &RedisServer) -> jwks_auth::JwksAuth {
    // A store per layer, each with its own connection: two replicas.
    let store = RedisReplayStore::new(&redis.url()).unwrap();
    issuer.layer().dpop(
        Dpop::required()
            .base_url(BASE)
            .replay_store(Arc::new(store)),
    )
}

#[tokio::test]
async fn a_proof_replayed_to_another_replica_is_refused() {
    let redis = RedisServer::start();
    let issuer = TestIssuer::start().await;
    let (a, a_hits) = app(layer(&issuer, &redis));
    let (b, b_hits) = app(layer(&issuer, &redis));
    let client = DpopKey::generate(Algorithm::ES256);
    let token = issuer.token().bound_to(&client).subject("alice").sign();
    let proof = client.proof("GET", URL, &token);

    let reply = send_request(&a, dpop_request(&token, &proof)).await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    // The same proof to the other replica: refused there too.
    let reply = send_request(&b, dpop_request(&token, &proof)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{reply:?}");
    assert_eq!(reply.json()["error"], "invalid_dpop_proof");
    assert_eq!(
        reply.json()["error_description"],
        K::DpopReplay.description()
    );
    assert_eq!((a_hits.get(), b_hits.get()), (1, 0));
    // And back to the first.
    let reply = send_request(&a, dpop_request(&token, &proof)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    // A fresh proof is fine on either.
    let fresh = client.proof("GET", URL, &token);
    let reply = send_request(&b, dpop_request(&token, &fresh)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!((a_hits.get(), b_hits.get()), (1, 1));
    // Two proofs accepted: two keys, each expiring with the window (60 s either way of
    // iat: at most 121 s).
    let keys: Vec<String> = redis.command(&["KEYS", "jwks-auth:dpop:*"]).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    for key in keys {
        let ttl: i64 = redis.command(&["PTTL", &key]).await;
        assert!(ttl > 0 && ttl <= 121_000, "{key}: {ttl} ms");
    }
}

#[tokio::test]
async fn entries_expire() {
    let redis = RedisServer::start();
    let store = RedisReplayStore::new(&redis.url()).unwrap().prefix("test:");
    let issuer = TestIssuer::start().await;
    let client = DpopKey::generate(Algorithm::ES256);
    let token = issuer.token().bound_to(&client).sign();
    let auth = issuer.layer().dpop(
        Dpop::required()
            .base_url(BASE)
            .window(Duration::from_secs(1))
            .replay_store(Arc::new(store)),
    );
    let (app, hits) = app(auth);
    let proof = client.proof("GET", URL, &token);
    assert_eq!(
        send_request(&app, dpop_request(&token, &proof))
            .await
            .status,
        StatusCode::OK
    );
    let keys: Vec<String> = redis.command(&["KEYS", "test:*"]).await;
    assert_eq!(keys.len(), 1);
    let ttl: i64 = redis.command(&["PTTL", &keys[0]]).await;
    assert!(
        ttl > 0 && ttl <= 3_000,
        "{ttl} ms: at most the window either way of iat"
    );
    assert_eq!(hits.get(), 1);

    // The store itself: fresh once, a replay until the expiry, fresh again after it.
    let store = RedisReplayStore::new(&redis.url()).unwrap().prefix("unit:");
    let key = ReplayKey::new("jti-1", &client.thumbprint());
    let ttl = Duration::from_millis(300);
    assert!(store.insert(key, ttl).await.unwrap());
    assert!(!store.insert(key, ttl).await.unwrap());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(store.insert(key, ttl).await.unwrap());
}

#[tokio::test]
async fn redis_stopped_mid_run_is_503_then_recovery() {
    let mut redis = RedisServer::start();
    let issuer = TestIssuer::start().await;
    let (app, hits) = app(layer(&issuer, &redis));
    let client = DpopKey::generate(Algorithm::ES256);
    let token = issuer.token().bound_to(&client).subject("alice").sign();
    let send = || {
        let proof = client.proof("GET", URL, &token);
        send_request(&app, dpop_request(&token, &proof))
    };
    assert_eq!(send().await.status, StatusCode::OK);

    redis.stop();
    for _ in 0..3 {
        let started = Instant::now();
        let reply = send().await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
        assert!(reply.headers.contains_key("retry-after"), "{reply:?}");
        assert_eq!(reply.challenge(), None);
        assert_eq!(reply.json()["error"], "temporarily_unavailable");
        // Bounded: the store's 1 s timeout, never a hang.
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
    assert_eq!(hits.get(), 1, "nothing accepted while the store was away");

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = send().await;
        if reply.status == StatusCode::OK {
            break;
        }
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
        assert!(
            Instant::now() < deadline,
            "no recovery after redis came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(hits.get(), 2);
}

/// A server that may evict keys (`maxmemory` with an evicting policy, as several
/// managed offerings default to) would let a proof be replayed once its key is evicted:
/// DPoP requests get 503 with one ERROR naming the setting, and are accepted once the
/// server is set to `noeviction`.
#[tokio::test]
async fn an_evicting_server_is_refused_until_it_is_fixed() {
    let logs = Logs::default();
    let _guard = logs.capture();
    let redis =
        RedisServer::start_with(&["--maxmemory", "4mb", "--maxmemory-policy", "volatile-lru"]);
    let issuer = TestIssuer::start().await;
    let (app, hits) = app(layer(&issuer, &redis));
    let client = DpopKey::generate(Algorithm::ES256);
    let token = issuer.token().bound_to(&client).sign();
    let send = || {
        send_request(
            &app,
            dpop_request(&token, &client.proof("GET", URL, &token)),
        )
    };
    for _ in 0..3 {
        let reply = send().await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{reply:?}");
        assert!(reply.headers.contains_key("retry-after"));
    }
    assert_eq!(hits.get(), 0);
    assert_eq!(
        logs.count(tracing::Level::ERROR, "maxmemory-policy noeviction"),
        1
    );
    assert_eq!(
        logs.count(
            tracing::Level::ERROR,
            "maxmemory 4194304, maxmemory-policy volatile-lru"
        ),
        1,
        "the ERROR names the settings"
    );
    let keys: Vec<String> = redis.command(&["KEYS", "jwks-auth:dpop:*"]).await;
    assert!(keys.is_empty(), "nothing recorded: {keys:?}");

    // Fixed on the server: accepted again within the re-check interval (2 s).
    let _: String = redis
        .command(&["CONFIG", "SET", "maxmemory-policy", "noeviction"])
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while send().await.status != StatusCode::OK {
        assert!(Instant::now() < deadline, "not accepted after the fix");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(hits.get(), 1);
    assert_eq!(
        logs.count(tracing::Level::ERROR, "maxmemory-policy noeviction"),
        1
    );
}

/// The settings that keep every key until its TTL are used silently; an evicting one
/// only with the explicit opt-in (and a WARN); a server that will not say (CONFIG
/// renamed away, as managed services do) with a WARN saying what to set.
#[tokio::test]
async fn eviction_settings_each_way() {
    let issuer = TestIssuer::start().await;
    let client = DpopKey::generate(Algorithm::ES256);
    let token = issuer.token().bound_to(&client).sign();
    let cases: [(&[&str], bool, tracing::Level, &str); 4] = [
        (
            &["--maxmemory", "4mb", "--maxmemory-policy", "noeviction"],
            false,
            tracing::Level::INFO,
            "does not evict",
        ),
        (
            &["--maxmemory", "0", "--maxmemory-policy", "allkeys-lru"],
            false,
            tracing::Level::INFO,
            "does not evict",
        ),
        (
            &["--maxmemory", "4mb", "--maxmemory-policy", "allkeys-lru"],
            true,
            tracing::Level::WARN,
            "allowed by allow_replays_after_eviction",
        ),
        (
            &["--rename-command", "CONFIG", ""],
            false,
            tracing::Level::WARN,
            "CONFIG GET refused",
        ),
    ];
    for (args, allow, level, said) in cases {
        let logs = Logs::default();
        let _guard = logs.capture();
        let redis = RedisServer::start_with(args);
        let mut store = RedisReplayStore::new(&redis.url()).unwrap();
        if allow {
            store = store.allow_replays_after_eviction();
        }
        let (app, hits) = app(issuer.layer().dpop(
            Dpop::required()
                .base_url(BASE)
                .replay_store(Arc::new(store)),
        ));
        let proof = client.proof("GET", URL, &token);
        for expected in [StatusCode::OK, StatusCode::UNAUTHORIZED] {
            let reply = send_request(&app, dpop_request(&token, &proof)).await;
            assert_eq!(reply.status, expected, "{args:?}: {reply:?}");
        }
        assert_eq!(hits.get(), 1, "{args:?}");
        assert_eq!(logs.count(level, said), 1, "{args:?}");
        assert_eq!(logs.count(tracing::Level::ERROR, ""), 0, "{args:?}");
    }
}
