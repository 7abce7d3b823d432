//! Optional authentication: `Option<Claims<T>>` behind an `.optional()` layer. No token
//! is `None`; a token that is present but bad is still rejected.
//!
//! ```text
//! cargo run --example optional_auth
//! ```

mod common;

use axum::Router;
use axum::routing::get;
use jwks_auth::Claims;
use jwks_auth::testing::TestIssuer;

async fn greet(claims: Option<Claims>) -> String {
    match claims {
        Some(Claims(c)) => format!("hello, {}", c.sub.unwrap_or_default()),
        None => "hello, anonymous".to_owned(),
    }
}

#[tokio::main]
async fn main() {
    let issuer = TestIssuer::start().await;
    let app = Router::new()
        .route("/greet", get(greet))
        .layer(issuer.layer().optional());
    let bearer = |t: String| vec![("authorization", format!("Bearer {t}"))];
    let results = vec![
        common::expect(
            &app,
            "no token: anonymous",
            common::request("/greet", &[]),
            200,
        )
        .await,
        common::expect(
            &app,
            "valid token: named",
            common::request("/greet", &bearer(issuer.token().subject("erin").sign())),
            200,
        )
        .await,
        common::expect(
            &app,
            "expired token: still rejected",
            common::request(
                "/greet",
                &bearer(issuer.token().expires_in(-60 * 60).sign()),
            ),
            401,
        )
        .await,
        common::expect(
            &app,
            "malformed header: still rejected",
            common::request("/greet", &[("authorization", "Bearer".into())]),
            400,
        )
        .await,
    ];
    common::finish(&results);
}
