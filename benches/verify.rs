//! The request path against its baselines, in one run:
//!
//! - (a) the bare signature check with the same prebuilt key (aws-lc `ParsedPublicKey`);
//! - (b) `jsonwebtoken::decode` with a prebuilt `DecodingKey` and `Validation`;
//! - (c) the crate's verification path (`JwksAuth::verify`: header, key lookup,
//!   signature, claims into the user type), and the same with the verified-token cache;
//! - the full layer through an axum `Router` (`oneshot`) against the same router without
//!   the layer;
//! - (c) while another thread keeps swapping the key set snapshot (304 refreshes).
//!
//! ```text
//! cargo bench --all-features --bench verify
//! ```
//!
//! Prints the medians and the ratios c/a, c/b, cached/cold and layered/unlayered.

mod support;

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::{self as sig, ParsedPublicKey, RsaPublicKeyComponents};
use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::Criterion;
use jsonwebtoken::{DecodingKey, Validation};
use jwks_auth::Algorithm;
use jwks_auth::testing::{TestIssuer, TestKey};
use jwks_auth::{Claims, JwksAuth, StandardClaims};
use serde_json::json;
use support::jwt_alg;
use support::median_ns;
use tower::ServiceExt;

const ALGS: [Algorithm; 5] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Polls a future that is expected to complete at once (the crate's fast path).
fn now<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("the fast path waited"),
    }
}

fn b64d(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

fn parsed_key(alg: Algorithm, jwk: &serde_json::Value) -> ParsedPublicKey {
    let s = |n: &str| b64d(jwk[n].as_str().expect("member"));
    let params: &'static dyn sig::VerificationAlgorithm = match alg {
        Algorithm::RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
        Algorithm::PS256 => &sig::RSA_PSS_2048_8192_SHA256,
        Algorithm::ES256 => &sig::ECDSA_P256_SHA256_FIXED,
        Algorithm::ES384 => &sig::ECDSA_P384_SHA384_FIXED,
        _ => &sig::ED25519,
    };
    let bytes = match jwk["kty"].as_str() {
        Some("RSA") => RsaPublicKeyComponents {
            n: s("n"),
            e: s("e"),
        }
        .as_der()
        .expect("der")
        .as_ref()
        .to_vec(),
        Some("EC") => [vec![4], s("x"), s("y")].concat(),
        _ => s("x"),
    };
    ParsedPublicKey::new(params, bytes).expect("parsed key")
}

fn claims_json(issuer: &str) -> String {
    let exp = jwks_auth_now() + 3600;
    json!({
        "iss": issuer, "sub": "user-1", "aud": "orders-api", "iat": exp - 3600, "exp": exp,
        "scope": "orders:read orders:write", "email": "user@example.com"
    })
    .to_string()
}

fn jwks_auth_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn bench_paths(c: &mut Criterion) {
    let _ = jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER.install_default();
    for alg in ALGS {
        let key = TestKey::generate(alg, "k1").with_jwk_alg(Some(alg));
        let jwk = key.jwk();
        let token = key.sign_compact(
            alg,
            &format!(r#"{{"alg":"{}","kid":"k1","typ":"JWT"}}"#, alg.as_str()),
            &claims_json("https://idp.example/"),
        );
        let (message, signature) = token.rsplit_once('.').expect("token");
        let signature = b64d(signature);

        let bare = parsed_key(alg, &jwk);
        let jwt_key = DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).expect("jwk"))
            .expect("decoding key");
        let mut validation = Validation::new(jwt_alg(alg));
        validation.set_issuer(&["https://idp.example/"]);
        validation.set_audience(&["orders-api"]);
        let auth = JwksAuth::from_jwks(json!({ "keys": [jwk] }))
            .issuer("https://idp.example/")
            .audience("orders-api")
            .cache(0);
        let cached = auth.clone().cache(1024);
        assert!(now(auth.verify(&token)).is_ok());
        assert!(now(cached.verify(&token)).is_ok());

        let mut group = c.benchmark_group(format!("{alg:?}"));
        group.bench_function("a_bare_signature", |b| {
            b.iter(|| {
                bare.verify_sig(black_box(message.as_bytes()), black_box(&signature))
                    .is_ok()
            })
        });
        group.bench_function("b_jsonwebtoken_decode", |b| {
            b.iter(|| {
                jsonwebtoken::decode::<StandardClaims>(black_box(&token), &jwt_key, &validation)
                    .is_ok()
            })
        });
        group.bench_function("c_crate_verify", |b| {
            b.iter(|| now(auth.verify(black_box(&token))).is_ok())
        });
        group.bench_function("c_crate_verify_cached", |b| {
            b.iter(|| now(cached.verify(black_box(&token))).is_ok())
        });
        group.finish();
    }
}

fn bench_layer(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let key = TestKey::generate(Algorithm::RS256, "k1");
    let token = key.sign_compact(
        Algorithm::RS256,
        r#"{"alg":"RS256","kid":"k1"}"#,
        &claims_json("https://idp.example/"),
    );
    let bearer = format!("Bearer {token}");
    let auth = JwksAuth::from_jwks(json!({ "keys": [key.jwk()] }))
        .issuer("https://idp.example/")
        .audience("orders-api")
        .cache(0);
    let unlayered: Router = Router::new().route("/me", get(|| async { "ok" }));
    let layered: Router = Router::new()
        .route(
            "/me",
            get(|Claims(c): Claims| async move { c.sub.unwrap_or_default() }),
        )
        .layer(auth.clone());
    let cached: Router = Router::new()
        .route(
            "/me",
            get(|Claims(c): Claims| async move { c.sub.unwrap_or_default() }),
        )
        .layer(auth.cache(1024));
    let request = || {
        Request::get("/me")
            .header("authorization", bearer.as_str())
            .body(Body::empty())
            .expect("request")
    };
    for app in [&layered, &cached] {
        let status = rt
            .block_on(app.clone().oneshot(request()))
            .expect("response")
            .status();
        assert_eq!(status, 200);
    }
    let mut group = c.benchmark_group("router_RS256");
    for (name, app) in [
        ("unlayered", &unlayered),
        ("layered", &layered),
        ("layered_cached", &cached),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(app.clone().oneshot(request()))
                    .expect("response")
                    .status()
            })
        });
    }
    group.finish();
}

fn bench_swaps(c: &mut Criterion) {
    // A real loopback issuer on its own thread; a refresher keeps replacing the snapshot.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = rt.block_on(TestIssuer::start());
    let auth = issuer.layer().cache(0);
    rt.block_on(auth.ready()).expect("keys");
    let token = issuer.token().sign();
    assert!(now(auth.verify(&token)).is_ok());
    let stop = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicU64::new(0));
    let refresher = {
        let (auth, stop, swaps) = (auth.clone(), stop.clone(), swaps.clone());
        rt.spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if auth.refresh_now().await.is_ok() {
                    swaps.fetch_add(1, Ordering::Relaxed);
                }
            }
        })
    };
    let mut group = c.benchmark_group("swaps_RS256");
    group.bench_function("c_crate_verify_during_swaps", |b| {
        b.iter(|| now(auth.verify(black_box(&token))).is_ok())
    });
    group.finish();
    stop.store(true, Ordering::Relaxed);
    let _ = rt.block_on(refresher);
    println!(
        "snapshot swaps during the run: {}",
        swaps.load(Ordering::Relaxed)
    );
}

fn report() {
    let us = |ns: f64| format!("{:.2} µs", ns / 1000.0);
    println!("\nmedians (one core), and ratios:");
    println!(
        "{:<7} {:>10} {:>10} {:>10} {:>10} {:>8} {:>9} {:>8} {:>9}",
        "alg", "(a) bare", "(b) jwt", "(c) crate", "cached", "c-a", "c/a", "c/b", "cold/hit"
    );
    for alg in ALGS {
        let g = format!("{alg:?}");
        let (Some(a), Some(b), Some(c), Some(h)) = (
            median_ns(&g, "a_bare_signature"),
            median_ns(&g, "b_jsonwebtoken_decode"),
            median_ns(&g, "c_crate_verify"),
            median_ns(&g, "c_crate_verify_cached"),
        ) else {
            continue;
        };
        println!(
            "{:<7} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8.3}x {:>7.3}x {:>8.1}x",
            g,
            us(a),
            us(b),
            us(c),
            us(h),
            us(c - a),
            c / a,
            c / b,
            c / h
        );
    }
    if let (Some(u), Some(l), Some(h)) = (
        median_ns("router_RS256", "unlayered"),
        median_ns("router_RS256", "layered"),
        median_ns("router_RS256", "layered_cached"),
    ) {
        println!(
            "router RS256: unlayered {}, layered {} ({:.2}x, +{}), layered+cache {} ({:.2}x)",
            us(u),
            us(l),
            l / u,
            us(l - u),
            us(h),
            h / u
        );
    }
    if let (Some(c), Some(s)) = (
        median_ns("RS256", "c_crate_verify"),
        median_ns("swaps_RS256", "c_crate_verify_during_swaps"),
    ) {
        println!(
            "RS256 verify while the snapshot is swapped: {} ({:.2}x of quiet)",
            us(s),
            s / c
        );
    }
}

/// The verified-token cache's memory under a flood of distinct valid tokens: the default
/// bound (10,000 entries, 16 MiB) holds whatever is sent.
fn report_cache_memory() {
    let key = TestKey::generate(Algorithm::EdDSA, "k1");
    let auth = JwksAuth::from_jwks(json!({ "keys": [key.jwk()] }))
        .issuer("https://idp.example/")
        .audience("orders-api");
    let flood = 25_000;
    for i in 0..flood {
        let claims = claims_json("https://idp.example/").replace("user-1", &format!("user-{i}"));
        let token = key.sign_compact(
            Algorithm::EdDSA,
            r#"{"alg":"EdDSA","kid":"k1","typ":"JWT"}"#,
            &claims,
        );
        assert!(now(auth.verify(&token)).is_ok());
    }
    let status = auth.status();
    let (entries, bytes) = (status.cache_entries, status.cache_bytes);
    println!(
        "cache after {flood} distinct valid tokens (default bound): {entries} entries, \
         {bytes} bytes of tokens and overhead ({} per entry), claims on top",
        bytes / entries.max(1)
    );
}

fn main() {
    let mut c = support::criterion(40);
    bench_paths(&mut c);
    bench_layer(&mut c);
    bench_swaps(&mut c);
    c.final_summary();
    report();
    report_cache_memory();
}
