//! A fixed amount of verification work, for counting instructions with callgrind (the
//! figure that does not depend on a noisy machine).
//!
//! ```text
//! cargo build --release --example instructions
//! for mode in setup crate bare cached; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
//!     target/release/examples/instructions $mode 2000 2>&1 | grep Collected
//! done
//! ```
//!
//! Per token, the crate's own work is `(crate - setup) / n - (bare - setup) / n`: header,
//! claims, key lookup and the claims into `StandardClaims`, everything but the signature
//! (EdDSA key, a 7-claim access token, the verified-token cache off). `cached` is the
//! cost of a cache hit. `public`, `router_cached` and `router_cold` send a request
//! through an axum `Router` (`oneshot`, no network) without the layer, with the layer and
//! a repeated token, and with the layer and the cache off: the layer's cost on the
//! service path, handler extraction included.

use jwks_auth::testing::TestKey;
use jwks_auth::{Algorithm, JwksAuth};
use serde_json::json;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("setup");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(1000);

    let key = TestKey::generate(Algorithm::EdDSA, "k1");
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600;
    let claims = format!(
        r#"{{"iss":"https://idp.example/","sub":"user-1","aud":"orders-api","exp":{exp},"iat":{},"jti":"3f6c2a","scope":"orders:read orders:write"}}"#,
        exp - 3600
    );
    let token = key.sign_compact(Algorithm::EdDSA, r#"{"alg":"EdDSA","kid":"k1"}"#, &claims);
    let jwk = key.jwk();
    let auth = JwksAuth::from_jwks(json!({ "keys": [jwk.clone()] }))
        .issuer("https://idp.example/")
        .audience("orders-api")
        .cache(0);
    let cached = auth.clone().cache(16);
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    assert!(rt.block_on(auth.verify(&token)).is_ok());
    assert!(rt.block_on(cached.verify(&token)).is_ok());

    let (message, signature) = token.rsplit_once('.').expect("token");
    let signature = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .expect("signature")
    };
    let x = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(jwk["x"].as_str().expect("x"))
            .expect("x")
    };
    let bare =
        aws_lc_rs::signature::ParsedPublicKey::new(&aws_lc_rs::signature::ED25519, x).expect("key");

    use axum::routing::get;
    use jwks_auth::Claims;
    use tower::ServiceExt;
    let whoami = |c: Claims| async move { c.0.sub.unwrap_or_default() };
    // `with_state(())` turns the endpoints into services once, as `axum::serve` does;
    // without it, `oneshot` on a `Router` would apply the layers on every call.
    let public: axum::Router = axum::Router::new()
        .route("/", get(|| async { "public" }))
        .with_state(());
    let router_cached: axum::Router = axum::Router::new()
        .route("/", get(whoami))
        .layer(cached.clone())
        .with_state(());
    let router_cold: axum::Router = axum::Router::new()
        .route("/", get(whoami))
        .layer(auth.clone())
        .with_state(());
    let bearer = format!("Bearer {token}");
    let request = || {
        axum::http::Request::get("/")
            .header("authorization", bearer.as_str())
            .body(axum::body::Body::empty())
            .expect("request")
    };
    let send = |app: &axum::Router| {
        let status = rt
            .block_on(app.clone().oneshot(request()))
            .expect("infallible")
            .status();
        (status == 200) as usize
    };
    for app in [&public, &router_cached, &router_cold] {
        assert_eq!(send(app), 1);
    }

    let mut ok = 0usize;
    match mode {
        "public" => (0..n).for_each(|_| ok += send(&public)),
        "router_cached" => (0..n).for_each(|_| ok += send(&router_cached)),
        "router_cold" => (0..n).for_each(|_| ok += send(&router_cold)),
        "crate" => {
            for _ in 0..n {
                ok += rt
                    .block_on(auth.verify(std::hint::black_box(&token)))
                    .is_ok() as usize;
            }
        }
        "cached" => {
            for _ in 0..n {
                ok += rt
                    .block_on(cached.verify(std::hint::black_box(&token)))
                    .is_ok() as usize;
            }
        }
        "bare" => {
            for _ in 0..n {
                ok += bare
                    .verify_sig(std::hint::black_box(message.as_bytes()), &signature)
                    .is_ok() as usize;
            }
        }
        _ => {}
    }
    println!("{mode}: {ok} of {n} verified");
}
