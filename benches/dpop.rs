//! The cost of DPoP next to the bearer path, through an axum `Router`, in one run:
//!
//! - bearer: an ES256 access token, with the verified-token cache and without;
//! - DPoP: the same token bound to an ES256 client key, with a fresh ES256 proof per
//!   request (signed in the untimed setup): the proof check (parse, thumbprint,
//!   signature, `htu`/`ath`/`iat`) and the replay insert, in memory and, with feature
//!   `redis`, in a real `redis-server` on loopback (started here; skipped with a note
//!   when it cannot be);
//! - the bare ES256 signature check (aws-lc, prebuilt key) as the unit.
//!
//! ```text
//! cargo bench --all-features --bench dpop
//! ```

mod support;

use std::hint::black_box;

use aws_lc_rs::signature::{self as sig, ParsedPublicKey};
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{BatchSize, Criterion};
use jwks_auth::testing::{DpopKey, TestIssuer};
use jwks_auth::{Algorithm, Claims, Dpop, JwksAuth};
use support::median_ns;
use tower::ServiceExt;

const BASE: &str = "https://api.example.com";
const URL: &str = "https://api.example.com/me";

fn router(auth: JwksAuth) -> Router {
    Router::new()
        .route(
            "/me",
            get(|Claims(c): Claims| async move { c.sub.unwrap_or_default() }),
        )
        .layer(auth)
}

fn bare_key(token: &str, jwk: &serde_json::Value) -> (ParsedPublicKey, Vec<u8>, Vec<u8>) {
    let d = |s: &str| URL_SAFE_NO_PAD.decode(s).expect("base64url");
    let mut point = vec![4];
    point.extend(d(jwk["x"].as_str().expect("x")));
    point.extend(d(jwk["y"].as_str().expect("y")));
    let key = ParsedPublicKey::new(&sig::ECDSA_P256_SHA256_FIXED, point).expect("key");
    let (input, signature) = token.rsplit_once('.').expect("three segments");
    (key, input.as_bytes().to_vec(), d(signature))
}

#[cfg(feature = "redis")]
fn redis_store() -> Option<(std::process::Child, jwks_auth::dpop::RedisReplayStore)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = std::process::Command::new("redis-server")
        .args([
            "--bind",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--save",
            "",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .ok()?;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            let url = format!("redis://127.0.0.1:{port}/");
            return Some((child, jwks_auth::dpop::RedisReplayStore::new(&url).ok()?));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = rt.block_on(TestIssuer::start());
    let client = DpopKey::generate(Algorithm::ES256);
    let bearer = issuer.token().alg(Algorithm::ES256).sign();
    let bound = issuer
        .token()
        .alg(Algorithm::ES256)
        .bound_to(&client)
        .sign();
    let issuer_key = issuer.key(Algorithm::ES256).jwk();
    let (key, input, signature) = bare_key(&bearer, &issuer_key);

    let layer = || issuer.layer();
    let dpop = || Dpop::required().base_url(BASE);
    #[cfg_attr(not(feature = "redis"), allow(unused_mut))]
    let mut apps: Vec<(&str, Router, bool)> = vec![
        ("bearer_cached", router(layer()), false),
        ("bearer_uncached", router(layer().cache(0)), false),
        ("dpop_memory_cached", router(layer().dpop(dpop())), true),
        (
            "dpop_memory_uncached",
            router(layer().cache(0).dpop(dpop())),
            true,
        ),
    ];
    #[cfg(feature = "redis")]
    let _redis = match redis_store() {
        Some((child, store)) => {
            let store = std::sync::Arc::new(store);
            apps.push((
                "dpop_redis_cached",
                router(layer().dpop(dpop().replay_store(store))),
                true,
            ));
            Some(KillOnDrop(child))
        }
        None => {
            println!("redis-server could not be started: no Redis figures");
            None
        }
    };
    rt.block_on(issuer.layer().ready()).expect("keys");

    let bearer_request = |token: &str| {
        Request::get("/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request")
    };
    let dpop_request = || {
        let proof = client.proof("GET", URL, &bound);
        Request::get("/me")
            .header("authorization", format!("DPoP {bound}"))
            .header("dpop", proof)
            .body(Body::empty())
            .expect("request")
    };
    for (name, app, is_dpop) in &apps {
        let request = if *is_dpop {
            dpop_request()
        } else {
            bearer_request(&bearer)
        };
        let status = rt
            .block_on(app.clone().oneshot(request))
            .expect("response")
            .status();
        assert_eq!(status, 200, "{name}");
    }

    let mut group = c.benchmark_group("dpop_ES256");
    group.bench_function("a_bare_signature", |b| {
        b.iter(|| {
            key.verify_sig(black_box(&input), black_box(&signature))
                .is_ok()
        })
    });
    for (name, app, is_dpop) in &apps {
        group.bench_function(*name, |b| {
            if *is_dpop {
                b.iter_batched(
                    dpop_request,
                    |request| {
                        let response = rt.block_on(app.clone().oneshot(request)).expect("response");
                        assert_eq!(response.status(), 200);
                    },
                    BatchSize::SmallInput,
                )
            } else {
                b.iter(|| {
                    let response = rt
                        .block_on(app.clone().oneshot(bearer_request(&bearer)))
                        .expect("response");
                    assert_eq!(response.status(), 200);
                })
            }
        });
    }
    group.finish();
}

#[cfg(feature = "redis")]
struct KillOnDrop(std::process::Child);

#[cfg(feature = "redis")]
impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn report() {
    let us = |ns: f64| format!("{:.1} µs", ns / 1000.0);
    let m = |f: &str| median_ns("dpop_ES256", f);
    let Some(a) = m("a_bare_signature") else {
        return;
    };
    println!(
        "\nmedians (one core), ES256 token and proof; unit: one bare ES256 check ({})",
        us(a)
    );
    for name in [
        "bearer_cached",
        "bearer_uncached",
        "dpop_memory_cached",
        "dpop_memory_uncached",
        "dpop_redis_cached",
    ] {
        if let Some(v) = m(name) {
            println!("{name:<22} {:>10}  {:>6.2} bare checks", us(v), v / a);
        }
    }
    if let (Some(b), Some(d)) = (m("bearer_cached"), m("dpop_memory_cached")) {
        println!(
            "the proof check + in-memory replay insert: {} ({:.2} bare checks)",
            us(d - b),
            (d - b) / a
        );
    }
    if let (Some(d), Some(r)) = (m("dpop_memory_cached"), m("dpop_redis_cached")) {
        println!(
            "Redis instead of memory: +{} per request (one SET NX PX round trip on loopback)",
            us(r - d)
        );
    }
}

/// The default in-memory replay store under a flood of distinct proofs: twice its
/// capacity offered, memory measured as the process's resident set (Linux).
fn report_replay_memory() {
    use jwks_auth::dpop::{MemoryReplayStore, ReplayKey, ReplayStore};
    let rss = || {
        std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|pages| pages * 4096)
    };
    let store = MemoryReplayStore::new();
    let offered = 2 * store.capacity();
    let keys: Vec<ReplayKey> = (0..offered)
        .map(|i| ReplayKey::new(&i.to_string(), "thumbprint"))
        .collect();
    let before = rss();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let (mut fresh, mut refused) = (0, 0);
    for key in &keys {
        match rt.block_on(store.insert(*key, std::time::Duration::from_secs(120))) {
            Ok(true) => fresh += 1,
            Ok(false) => panic!("a new proof reported as a replay"),
            Err(_) => refused += 1,
        }
    }
    let growth = rss().zip(before).map(|(a, b)| a.saturating_sub(b));
    println!(
        "replay store after {offered} distinct live proofs: {fresh} recorded, {refused} \
         refused (503), {} entries, resident memory +{} MB",
        store.len(),
        growth.map_or("?".into(), |g| (g / 1_000_000).to_string())
    );
}

fn main() {
    let mut c = support::criterion(40);
    bench(&mut c);
    c.final_summary();
    report();
    report_replay_memory();
}
