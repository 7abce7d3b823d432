//! Opaque tokens through introspection next to JWTs, through an axum `Router`, in one
//! run, against the `TestIssuer`'s real endpoint on loopback:
//!
//! - a cached JWT (the baseline for the cached path) and a cached introspected opaque
//!   token (the same layer);
//! - an uncached introspected token (cache off: one call per request) and, as its unit,
//!   one bare loopback round trip to the same endpoint with the same client (`reqwest`).
//!
//! ```text
//! cargo bench --bench introspection
//! ```

mod support;

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use criterion::Criterion;
use jwks_auth::testing::{INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET, TestIssuer};
use jwks_auth::{Claims, JwksAuth, Refresh};
use support::median_ns;
use tower::ServiceExt;

fn router(auth: JwksAuth) -> Router {
    Router::new()
        .route(
            "/me",
            get(|Claims(c): Claims| async move { c.sub.unwrap_or_default() }),
        )
        .layer(auth)
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let issuer = rt.block_on(TestIssuer::start());
    // A budget that a benchmark's rate never meets: the bench measures the call.
    let cached = router(issuer.layer().introspection(issuer.introspection()));
    let uncached = router(
        issuer.layer().refresh(Refresh::default()).introspection(
            issuer
                .introspection()
                .cache_for(std::time::Duration::ZERO)
                .budget(u32::MAX, 1e9),
        ),
    );
    let jwt = issuer.token().subject("bench").sign();
    let opaque = issuer.opaque(issuer.token().subject("bench"));
    let request = |token: &str| {
        Request::get("/me")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::empty())
            .expect("request")
    };
    for (app, token) in [(&cached, &jwt), (&cached, &opaque), (&uncached, &opaque)] {
        let response = rt
            .block_on(app.clone().oneshot(request(token)))
            .expect("response");
        assert_eq!(response.status(), 200);
    }
    let client = reqwest::Client::new();
    let url = issuer.introspection_url();
    let round_trip = || async {
        let response = client
            .post(&url)
            .basic_auth(INTROSPECTION_CLIENT_ID, Some(INTROSPECTION_CLIENT_SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("token={opaque}"))
            .send()
            .await
            .expect("send");
        response.bytes().await.expect("body").len()
    };
    let mut group = c.benchmark_group("introspection");
    group.bench_function("jwt_cached", |b| {
        b.iter(|| {
            rt.block_on(cached.clone().oneshot(request(&jwt)))
                .expect("response")
        })
    });
    group.bench_function("opaque_cached", |b| {
        b.iter(|| {
            rt.block_on(cached.clone().oneshot(request(&opaque)))
                .expect("response")
        })
    });
    group.bench_function("a_bare_round_trip", |b| {
        b.iter(|| rt.block_on(round_trip()))
    });
    group.bench_function("opaque_uncached", |b| {
        b.iter(|| {
            rt.block_on(uncached.clone().oneshot(request(&opaque)))
                .expect("response")
        })
    });
    group.finish();
}

fn report() {
    let us = |ns: f64| format!("{:.1} µs", ns / 1000.0);
    let m = |f: &str| median_ns("introspection", f);
    if let (Some(jwt), Some(opaque)) = (m("jwt_cached"), m("opaque_cached")) {
        println!(
            "\nmedians (one core): cached JWT {}, cached opaque token {} ({:.2}x)",
            us(jwt),
            us(opaque),
            opaque / jwt
        );
    }
    if let (Some(trip), Some(uncached)) = (m("a_bare_round_trip"), m("opaque_uncached")) {
        println!(
            "uncached opaque token {} = one bare loopback round trip {} + {} (the layer: \
             judging, claims, the rest of the request)",
            us(uncached),
            us(trip),
            us(uncached - trip)
        );
    }
}

fn main() {
    let mut c = support::criterion(40);
    bench(&mut c);
    c.final_summary();
    report();
}
