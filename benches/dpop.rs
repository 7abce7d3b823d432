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

use aws_lc_rs::signature::{self as sig, KeyPair, ParsedPublicKey};
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

/// The default in-memory replay store under a flood of distinct proofs from 100,000
/// client keys: twice its capacity offered, memory measured as the process's resident
/// set (Linux). Then one client key alone, at any rate: it gets its share, no more.
fn report_replay_memory() {
    use jwks_auth::dpop::{MemoryReplayStore, ReplayKey, ReplayStore};
    let rss = || {
        std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|pages| pages * 4096)
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let ttl = std::time::Duration::from_secs(120);
    let store = MemoryReplayStore::new();
    let offered = 2 * store.capacity();
    let keys: Vec<ReplayKey> = (0..offered)
        .map(|i| ReplayKey::new(&i.to_string(), &format!("client {}", i % 100_000)))
        .collect();
    let before = rss();
    let (mut fresh, mut refused) = (0, 0);
    for key in &keys {
        match rt.block_on(store.insert(*key, ttl)) {
            Ok(true) => fresh += 1,
            Ok(false) => panic!("a new proof reported as a replay"),
            Err(_) => refused += 1,
        }
    }
    let growth = rss().zip(before).map(|(a, b)| a.saturating_sub(b));
    println!(
        "replay store after {offered} distinct live proofs of 100000 client keys: {fresh} \
         recorded, {refused} refused (503), {} entries, resident memory +{} MB",
        store.len(),
        growth.map_or("?".into(), |g| (g / 1_000_000).to_string())
    );
    drop(keys);
    drop(store);

    let store = MemoryReplayStore::new();
    let taken = (0..store.capacity())
        .filter(|i| {
            let key = ReplayKey::new(&i.to_string(), "one client");
            matches!(rt.block_on(store.insert(key, ttl)), Ok(true))
        })
        .count();
    let others = (0..10_000)
        .filter(|i| {
            let key = ReplayKey::new(&i.to_string(), &format!("other {i}"));
            matches!(rt.block_on(store.insert(key, ttl)), Ok(true))
        })
        .count();
    println!(
        "one client key offering {} live proofs: {taken} recorded (its share: at most {}); \
         then 10000 proofs of other clients: {others} recorded",
        store.capacity(),
        store.per_client_capacity()
    );
}

/// A JWS signed with an RSA key of `bits` bits (PS256), and that key's public JWK: the
/// testing keys are RSA-2048, a client may bring up to 4096.
fn rsa_proof_key(bits: aws_lc_rs::rsa::KeySize) -> (sig::RsaKeyPair, serde_json::Value) {
    let key = sig::RsaKeyPair::generate(bits).expect("RSA key generation");
    let c = sig::RsaPublicKeyComponents::<Vec<u8>>::from(key.public_key());
    let jwk = serde_json::json!({
        "kty": "RSA",
        "n": URL_SAFE_NO_PAD.encode(&c.n),
        "e": URL_SAFE_NO_PAD.encode(&c.e),
    });
    (key, jwk)
}

/// The RFC 7638 thumbprint of an RSA JWK.
fn rsa_thumbprint(jwk: &serde_json::Value) -> String {
    use sha2::Digest;
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        jwk["e"].as_str().expect("e"),
        jwk["n"].as_str().expect("n")
    );
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(canonical.as_bytes()))
}

/// A proof for `token` on [`URL`] signed PS256 with `key`.
fn rsa_proof(key: &sig::RsaKeyPair, jwk: &serde_json::Value, token: &str) -> String {
    use sha2::Digest;
    let header = serde_json::json!({"typ": "dpop+jwt", "alg": "PS256", "jwk": jwk});
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = serde_json::json!({
        "jti": format!("rsa-{now}"),
        "htm": "GET",
        "htu": URL,
        "iat": now,
        "ath": URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(token.as_bytes())),
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let mut signature = vec![0; key.public_modulus_len()];
    key.sign(
        &sig::RSA_PSS_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        input.as_bytes(),
        &mut signature,
    )
    .expect("sign");
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// `token` with its signature changed: every key-free check passes, the signature fails.
fn forged(token: &str) -> String {
    let (input, signature) = token.rsplit_once('.').expect("three segments");
    let mut signature = URL_SAFE_NO_PAD.decode(signature).expect("base64url");
    signature[0] ^= 1;
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// What a request costs someone without a valid token: a forged token (right issuer,
/// audience, `kid` and times; wrong signature) bound to the attacker's own key, sent
/// with a valid proof by that key (a proof sent with a bad token is never recorded, so
/// one proof serves its whole window). Each proof key type the layer accepts, the
/// largest RSA key it accepts (4096 bits), and the bearer path as the baseline.
fn bench_unauthenticated(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = rt.block_on(TestIssuer::start());
    let app = router(issuer.layer().dpop(Dpop::required().base_url(BASE)));
    let bearer_app = router(issuer.layer());
    rt.block_on(issuer.layer().ready()).expect("keys");
    let request = |scheme: &str, token: &str, proof: Option<&str>| {
        let mut request = Request::get("/me").header("authorization", format!("{scheme} {token}"));
        if let Some(proof) = proof {
            request = request.header("dpop", proof);
        }
        request.body(Body::empty()).expect("request")
    };
    let mut cases: Vec<(String, Router, String, String, Option<String>)> = Vec::new();
    let bearer = forged(&issuer.token().sign());
    cases.push((
        "bearer_forged".into(),
        bearer_app,
        "Bearer".into(),
        bearer,
        None,
    ));
    for alg in [
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::ES512,
        Algorithm::EdDSA,
    ] {
        let client = DpopKey::generate(alg);
        let token = forged(&issuer.token().bound_to(&client).sign());
        let proof = client.proof("GET", URL, &token);
        let name = format!("dpop_forged_{alg:?}_proof");
        cases.push((name, app.clone(), "DPoP".into(), token, Some(proof)));
    }
    let (key, jwk) = rsa_proof_key(aws_lc_rs::rsa::KeySize::Rsa4096);
    let token = forged(
        &issuer
            .token()
            .claim("cnf", serde_json::json!({"jkt": rsa_thumbprint(&jwk)}))
            .sign(),
    );
    let proof = rsa_proof(&key, &jwk, &token);
    cases.push((
        "dpop_forged_RSA4096_proof".into(),
        app.clone(),
        "DPoP".into(),
        token,
        Some(proof),
    ));
    let mut group = c.benchmark_group("dpop_unauthenticated");
    for (name, app, scheme, token, proof) in &cases {
        let response = rt
            .block_on(
                app.clone()
                    .oneshot(request(scheme, token, proof.as_deref())),
            )
            .expect("response");
        assert_eq!(response.status(), 401, "{name}");
        group.bench_function(name.as_str(), |b| {
            b.iter(|| {
                let response = rt
                    .block_on(
                        app.clone()
                            .oneshot(request(scheme, token, proof.as_deref())),
                    )
                    .expect("response");
                assert_eq!(response.status(), 401);
            })
        });
    }
    group.finish();
    println!("\nmedians, a forged token (the issuer's kid, a wrong signature) with a valid proof:");
    for (name, ..) in &cases {
        if let Some(v) = median_ns("dpop_unauthenticated", name) {
            println!("{name:<30} {:>10.1} µs", v / 1000.0);
        }
    }
}

fn main() {
    let mut c = support::criterion(40);
    bench(&mut c);
    bench_unauthenticated(&mut c);
    c.final_summary();
    report();
    report_replay_memory();
}
