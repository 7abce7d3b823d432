//! A real identity provider for tests and demos (feature `test-util`).
//!
//! [`TestIssuer`] generates real keys (RSA-2048, P-256, P-384, Ed25519, with aws-lc-rs),
//! serves its JWKS and an OpenID discovery document over real HTTP on `127.0.0.1`, mints
//! tokens for any supported algorithm, rotates keys, counts fetches, and can misbehave on
//! command (error statuses, bad bodies, hung connections) to test outages.
//!
//! # Example
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use axum::{body::Body, http::Request, routing::get, Router};
//! use jwks_auth::{testing::TestIssuer, Algorithm, Claims};
//! use tower::ServiceExt;
//!
//! let issuer = TestIssuer::start().await;
//! let app = Router::new()
//!     .route("/me", get(|Claims(c): Claims| async move { c.sub.unwrap_or_default() }))
//!     .layer(issuer.layer());
//!
//! let token = issuer.token().alg(Algorithm::ES256).subject("alice").sign();
//! let response = app
//!     .oneshot(Request::get("/me").header("authorization", format!("Bearer {token}")).body(Body::empty()).unwrap())
//!     .await
//!     .unwrap();
//! assert_eq!(response.status(), 200);
//! assert_eq!(issuer.fetch_count(), 1);
//! # }
//! ```
//!
//! Everything here panics on failure (it is for tests): binding the loopback listener,
//! generating keys, signing.

#![allow(
    clippy::unwrap_used,
    reason = "test support: a failure here is a broken test"
)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::JwksAuth;
use crate::alg::Algorithm;

mod dpop;
mod introspection;
mod key;
mod tenants;
mod token;

pub use crate::crypto::CRYPTO_BACKEND;
pub use dpop::{DpopKey, ProofBuilder};
pub use introspection::{INTROSPECTION_CLIENT_ID, INTROSPECTION_CLIENT_SECRET};
pub use key::{JwkExport, TestKey};
pub use tenants::TenantIssuer;
pub use token::TokenBuilder;

/// The audience [`TestIssuer`] tokens carry by default, and [`TestIssuer::layer`] requires.
pub const AUDIENCE: &str = "test-api";

/// How the issuer answers JWKS requests.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum JwksBehavior {
    /// Serve the published keys (with `ETag`, answering `If-None-Match` with 304).
    Normal,
    /// Answer with this status and an empty body.
    Status(u16),
    /// Answer 200 with this body (no `ETag`, no `Cache-Control`).
    Body(String),
    /// Accept the request and never answer.
    Hang,
    /// Send the published keys one byte every `interval`.
    Drip(Duration),
    /// Redirect (302) to this location.
    Redirect(String),
}

struct IssuerState {
    base: String,
    keys: Mutex<Vec<Arc<TestKey>>>,
    generation: AtomicU64,
    fetches: AtomicU64,
    not_modified: AtomicU64,
    behavior: Mutex<JwksBehavior>,
    cache_control: Mutex<Option<String>>,
    discovery: Mutex<Discovery>,
    discovery_fetches: AtomicU64,
    /// Opaque tokens issued, with their claims (introspection).
    opaque: Mutex<std::collections::HashMap<String, Value>>,
    introspections: AtomicU64,
    introspect_behavior: Mutex<JwksBehavior>,
}

#[derive(Default, Clone)]
struct Discovery {
    oidc_disabled: bool,
    document: Option<Value>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A loopback identity provider. The server stops when the `TestIssuer` is dropped.
pub struct TestIssuer {
    state: Arc<IssuerState>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The algorithms whose keys a new [`TestIssuer`] publishes (one RSA key serves all of
/// RS*/PS*).
const FAMILIES: [Algorithm; 4] = [
    Algorithm::RS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// The algorithms a [`TestIssuer`]'s own keys sign: every one this crate supports but
/// ES512 (add a P-521 key with `TestKey::generate(Algorithm::ES512, ..)` and
/// [`TestIssuer::add_key`]; it needs the `aws_lc_rs` backend to verify).
pub const ISSUER_ALGORITHMS: [Algorithm; 10] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
    Algorithm::Ed25519,
];

fn family_prefix(alg: Algorithm) -> &'static str {
    use Algorithm::*;
    match alg {
        ES256 => "p256",
        ES384 => "p384",
        ES512 => "p521",
        EdDSA | Ed25519 => "ed25519",
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => "rsa",
    }
}

impl TestIssuer {
    /// Generates keys and starts serving on `127.0.0.1` (a free port). Must be called
    /// inside a Tokio runtime.
    ///
    /// Routes: `/.well-known/jwks.json`, `/.well-known/openid-configuration`,
    /// `/.well-known/oauth-authorization-server` (RFC 8414) and `POST /introspect`
    /// (RFC 7662, for [`opaque`](Self::opaque) tokens).
    ///
    /// # Panics
    ///
    /// If the listener cannot be bound or keys cannot be generated.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(IssuerState {
            base: format!("http://{addr}"),
            keys: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            fetches: AtomicU64::new(0),
            not_modified: AtomicU64::new(0),
            behavior: Mutex::new(JwksBehavior::Normal),
            cache_control: Mutex::new(None),
            discovery: Mutex::new(Discovery::default()),
            discovery_fetches: AtomicU64::new(0),
            opaque: Mutex::default(),
            introspections: AtomicU64::new(0),
            introspect_behavior: Mutex::new(JwksBehavior::Normal),
        });
        let issuer_keys = tokio::task::spawn_blocking(|| generate_family_keys(1))
            .await
            .expect("key generation");
        *lock(&state.keys) = issuer_keys;
        state.generation.store(1, Ordering::SeqCst);
        let app = axum::Router::new()
            .route("/.well-known/jwks.json", get(serve_jwks))
            .route(
                "/.well-known/openid-configuration",
                get(serve_oidc_discovery),
            )
            .route(
                "/.well-known/oauth-authorization-server",
                get(serve_oauth_discovery),
            )
            .route(
                "/introspect",
                axum::routing::post(introspection::serve_introspection),
            )
            .with_state(state.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            state,
            addr,
            server,
        }
    }

    /// The issuer identifier (`iss` of its tokens): `http://127.0.0.1:PORT`.
    pub fn issuer(&self) -> &str {
        &self.state.base
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The JWKS URL.
    pub fn jwks_url(&self) -> String {
        format!("{}/.well-known/jwks.json", self.state.base)
    }

    /// A layer for this issuer: its JWKS URL, `iss` and [`AUDIENCE`] enforced.
    pub fn layer(&self) -> JwksAuth {
        JwksAuth::new(self.jwks_url())
            .issuer(self.issuer())
            .audience(AUDIENCE)
    }

    /// How many times the JWKS was requested.
    pub fn fetch_count(&self) -> u64 {
        self.state.fetches.load(Ordering::SeqCst)
    }

    /// How many JWKS requests were answered `304 Not Modified`.
    pub fn not_modified_count(&self) -> u64 {
        self.state.not_modified.load(Ordering::SeqCst)
    }

    /// The currently published key for `alg`'s family.
    ///
    /// # Panics
    ///
    /// If no such key is published (e.g. after [`publish`](Self::publish) replaced them,
    /// or for ES512, whose P-521 key is not published by default: see
    /// [`ISSUER_ALGORITHMS`]).
    pub fn key(&self, alg: Algorithm) -> Arc<TestKey> {
        let keys = lock(&self.state.keys);
        keys.iter()
            .rev()
            .find(|k| k.kid().starts_with(family_prefix(alg)))
            .cloned()
            .expect("no published key for this algorithm")
    }

    /// A token with default claims (`iss`, `sub: "user-1"`, `aud:` [`AUDIENCE`], `iat`,
    /// `exp` in 10 minutes), RS256, signed with the current key.
    pub fn token(&self) -> TokenBuilder<'_> {
        TokenBuilder::new(self)
    }

    /// Replaces every published key with a fresh one (new `kid`s). Tokens minted after
    /// this use the new keys; the old keys are no longer in the JWKS.
    pub async fn rotate(&self) {
        let generation = self.state.generation.fetch_add(1, Ordering::SeqCst) + 1;
        let keys = tokio::task::spawn_blocking(move || generate_family_keys(generation))
            .await
            .expect("key generation");
        *lock(&self.state.keys) = keys;
    }

    /// Publishes exactly these keys.
    pub fn publish(&self, keys: Vec<Arc<TestKey>>) {
        *lock(&self.state.keys) = keys;
    }

    /// Adds a key to the published set.
    pub fn add_key(&self, key: Arc<TestKey>) {
        lock(&self.state.keys).push(key);
    }

    /// The JWKS document the issuer serves now (for [`JwksBehavior::Body`]).
    pub fn jwks_document(&self) -> String {
        jwks_body(&self.state)
    }

    /// Changes how JWKS requests are answered.
    pub fn set_behavior(&self, behavior: JwksBehavior) {
        *lock(&self.state.behavior) = behavior;
    }

    /// How many discovery documents (either path) were requested.
    pub fn discovery_count(&self) -> u64 {
        self.state.discovery_fetches.load(Ordering::SeqCst)
    }

    /// Answers `/.well-known/openid-configuration` with 404 (only RFC 8414's path serves).
    pub fn disable_oidc_discovery(&self, disabled: bool) {
        lock(&self.state.discovery).oidc_disabled = disabled;
    }

    /// Serves this discovery document instead of the correct one (`None` restores it).
    pub fn set_discovery_document(&self, document: Option<Value>) {
        lock(&self.state.discovery).document = document;
    }

    /// Sets the `Cache-Control` header of JWKS responses (`None` for none).
    pub fn set_cache_control(&self, value: Option<&str>) {
        *lock(&self.state.cache_control) = value.map(str::to_owned);
    }
}

fn generate_family_keys(generation: u64) -> Vec<Arc<TestKey>> {
    FAMILIES
        .iter()
        .map(|alg| {
            Arc::new(TestKey::generate(
                *alg,
                format!("{}-{generation}", family_prefix(*alg)),
            ))
        })
        .collect()
}

fn jwks_body(state: &IssuerState) -> String {
    let keys: Vec<Value> = lock(&state.keys).iter().map(|k| k.jwk()).collect();
    json!({ "keys": keys }).to_string()
}

async fn serve_jwks(State(state): State<Arc<IssuerState>>, headers: HeaderMap) -> Response {
    state.fetches.fetch_add(1, Ordering::SeqCst);
    let behavior = lock(&state.behavior).clone();
    match behavior {
        JwksBehavior::Normal => {}
        JwksBehavior::Status(code) => {
            return StatusCode::from_u16(code)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                .into_response();
        }
        JwksBehavior::Body(body) => return body.into_response(),
        JwksBehavior::Hang => std::future::pending::<()>().await,
        JwksBehavior::Redirect(to) => {
            return (StatusCode::FOUND, [(header::LOCATION, to)]).into_response();
        }
        JwksBehavior::Drip(interval) => {
            let body = jwks_body(&state).into_bytes();
            let stream = async_stream(body, interval);
            return Response::new(axum::body::Body::from_stream(stream));
        }
    }
    let body = jwks_body(&state);
    let etag = format!("\"{:016x}\"", fnv1a(body.as_bytes()));
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        state.not_modified.fetch_add(1, Ordering::SeqCst);
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/jwk-set+json")], body).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, v);
    }
    if let Some(cc) = lock(&state.cache_control).as_deref()
        && let Ok(v) = HeaderValue::from_str(cc)
    {
        response.headers_mut().insert(header::CACHE_CONTROL, v);
    }
    response
}

fn async_stream(
    body: Vec<u8>,
    interval: Duration,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        for b in body {
            tokio::time::sleep(interval).await;
            if tx.send(Ok(vec![b])).await.is_err() {
                return;
            }
        }
    });
    ReceiverStream(rx)
}

struct ReceiverStream<T>(tokio::sync::mpsc::Receiver<T>);

impl<T> futures_core::Stream for ReceiverStream<T> {
    type Item = T;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

async fn serve_oidc_discovery(State(state): State<Arc<IssuerState>>) -> Response {
    if lock(&state.discovery).oidc_disabled {
        state.discovery_fetches.fetch_add(1, Ordering::SeqCst);
        return StatusCode::NOT_FOUND.into_response();
    }
    serve_discovery(&state)
}

async fn serve_oauth_discovery(State(state): State<Arc<IssuerState>>) -> Response {
    serve_discovery(&state)
}

fn serve_discovery(state: &IssuerState) -> Response {
    state.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    let doc = lock(&state.discovery).document.clone().unwrap_or_else(|| {
        json!({
            "issuer": state.base,
            "jwks_uri": format!("{}/.well-known/jwks.json", state.base),
            "introspection_endpoint": format!("{}/introspect", state.base),
            "id_token_signing_alg_values_supported": ["RS256", "ES256", "ES384", "EdDSA"],
        })
    });
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.to_string(),
    )
        .into_response()
}
