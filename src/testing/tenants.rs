//! [`TenantIssuer`]: many tenants' issuers under one loopback listener, for testing
//! layers with [`IssuerRule`](crate::IssuerRule)s.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use super::{AUDIENCE, TestKey, TokenBuilder, lock};
use crate::alg::Algorithm;
use crate::{IssuerRule, JwksAuth, TrustedIssuer};

/// Every tenant's issuer under one listener on `127.0.0.1`: tenant `t`'s issuer is
/// `http://127.0.0.1:PORT/t`, its discovery document
/// `/t/.well-known/openid-configuration`, its key set `/t/jwks.json` (one ES256 key per
/// tenant, made when first needed: any tenant name exists). Requests are counted, so a
/// test can assert that a token made nothing be fetched.
///
/// Entra's shape too: `/common/keys` is one key set for every tenant, each key naming
/// the issuer it signs for (`issuer`): a common key for all (`{base}/{tenantid}`), and
/// each tenant's own key for that tenant (`{base}/acme`). See
/// [`IssuerRule::shared_keys`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use jwks_auth::testing::TenantIssuer;
///
/// let tenants = TenantIssuer::start().await;
/// let auth = tenants.layer(); // multi_issuer([rule "{base}/{tenant}"]), aud AUDIENCE
/// let token = tenants.token("acme").subject("alice").sign();
/// # let _ = (auth, token);
/// # }
/// ```
pub struct TenantIssuer {
    state: Arc<TenantState>,
    addr: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

struct TenantState {
    base: String,
    /// The shared key set's key for every tenant.
    common: Arc<TestKey>,
    keys: Mutex<HashMap<String, Arc<TestKey>>>,
    /// A discovery `issuer` to answer instead of the tenant's own.
    lies: Mutex<HashMap<String, String>>,
    requests: AtomicU64,
    discoveries: AtomicU64,
}

impl TenantState {
    fn key(&self, tenant: &str) -> Arc<TestKey> {
        lock(&self.keys)
            .entry(tenant.to_owned())
            .or_insert_with(|| {
                Arc::new(TestKey::generate(Algorithm::ES256, format!("{tenant}-key")))
            })
            .clone()
    }
}

impl std::fmt::Debug for TenantIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantIssuer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for TenantIssuer {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TenantIssuer {
    /// Starts serving on `127.0.0.1` (a free port). Must be called inside a Tokio
    /// runtime.
    ///
    /// # Panics
    ///
    /// If the listener cannot be bound.
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let common =
            tokio::task::spawn_blocking(|| TestKey::generate(Algorithm::ES256, "common-key"))
                .await
                .expect("key generation");
        let state = Arc::new(TenantState {
            base: format!("http://{addr}"),
            common: Arc::new(common),
            keys: Mutex::default(),
            lies: Mutex::default(),
            requests: AtomicU64::new(0),
            discoveries: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .route("/{tenant}/.well-known/openid-configuration", get(discovery))
            .route("/{tenant}/jwks.json", get(jwks))
            .route("/common/keys", get(shared_jwks))
            .fallback(|State(state): State<Arc<TenantState>>| async move {
                state.requests.fetch_add(1, Ordering::SeqCst);
                StatusCode::NOT_FOUND
            })
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

    /// The issuer template: `http://127.0.0.1:PORT/{tenant}`.
    pub fn template(&self) -> String {
        format!("{}/{{tenant}}", self.state.base)
    }

    /// Tenant `tenant`'s issuer identifier.
    pub fn issuer(&self, tenant: &str) -> String {
        format!("{}/{tenant}", self.state.base)
    }

    /// A layer trusting every tenant by discovery ([`IssuerRule::discovered`] named
    /// `tenants`), with [`AUDIENCE`] enforced.
    pub fn layer(&self) -> JwksAuth {
        JwksAuth::multi_issuer([TrustedIssuer::rule(IssuerRule::discovered(
            "tenants",
            self.template(),
        ))])
        .audience(AUDIENCE)
    }

    /// Tenant `tenant`'s key (made now if it has none yet).
    pub fn key(&self, tenant: &str) -> Arc<TestKey> {
        self.state.key(tenant)
    }

    /// A token of tenant `tenant` (its `iss`, signed ES256 by its key), with the same
    /// defaults as [`TestIssuer::token`](super::TestIssuer::token).
    pub fn token(&self, tenant: &str) -> TokenBuilder<'static> {
        TokenBuilder::with_key(
            &self.issuer(tenant),
            Some(self.key(tenant)),
            Algorithm::ES256,
        )
    }

    /// The key set shared by every tenant (Entra's shape): `{base}/common/keys`.
    pub fn shared_jwks_url(&self) -> String {
        format!("{}/common/keys", self.state.base)
    }

    /// The shared key set's key for every tenant (its `issuer` is `{base}/{tenantid}`).
    pub fn common_key(&self) -> Arc<TestKey> {
        self.state.common.clone()
    }

    /// Make tenant `tenant`'s discovery document name `issuer` instead of its own.
    pub fn set_discovery_issuer(&self, tenant: &str, issuer: &str) {
        lock(&self.state.lies).insert(tenant.to_owned(), issuer.to_owned());
    }

    /// Every request the listener received so far.
    pub fn request_count(&self) -> u64 {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Discovery documents served so far.
    pub fn discovery_count(&self) -> u64 {
        self.state.discoveries.load(Ordering::SeqCst)
    }

    /// Tenants with a key so far.
    pub fn tenant_count(&self) -> usize {
        lock(&self.state.keys).len()
    }
}

async fn discovery(State(state): State<Arc<TenantState>>, Path(tenant): Path<String>) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    state.discoveries.fetch_add(1, Ordering::SeqCst);
    let own = format!("{}/{tenant}", state.base);
    let issuer = lock(&state.lies)
        .get(&tenant)
        .cloned()
        .unwrap_or_else(|| own.clone());
    let doc = json!({"issuer": issuer, "jwks_uri": format!("{own}/jwks.json")});
    (
        [(header::CONTENT_TYPE, "application/json")],
        doc.to_string(),
    )
        .into_response()
}

async fn jwks(State(state): State<Arc<TenantState>>, Path(tenant): Path<String>) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let key = state.key(&tenant);
    let body = json!({"keys": [key.jwk()]}).to_string();
    ([(header::CONTENT_TYPE, "application/jwk-set+json")], body).into_response()
}

async fn shared_jwks(State(state): State<Arc<TenantState>>) -> Response {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let with_issuer = |key: &TestKey, issuer: String| {
        let mut jwk = key.jwk();
        jwk["issuer"] = json!(issuer);
        jwk
    };
    let mut keys = vec![with_issuer(
        &state.common,
        format!("{}/{{tenantid}}", state.base),
    )];
    for (tenant, key) in lock(&state.keys).iter() {
        keys.push(with_issuer(key, format!("{}/{tenant}", state.base)));
    }
    let body = json!({ "keys": keys }).to_string();
    ([(header::CONTENT_TYPE, "application/jwk-set+json")], body).into_response()
}
