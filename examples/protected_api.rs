//! A protected API for a real identity provider, configured by environment variables.
//!
//! ```text
//! JWKS_URL=https://idp.example.com/.well-known/jwks.json \
//! JWT_ISSUER=https://idp.example.com/ JWT_AUDIENCE=orders-api \
//!     cargo run --example protected_api
//! ```
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `JWKS_URL` | the key set URL (this or `OIDC_ISSUER` is required) | |
//! | `OIDC_ISSUER` | discover the key set from this issuer's metadata instead (`JwksAuth::from_issuer`); also enforces `iss` | |
//! | `JWT_ISSUER` | accepted `iss` (required with `JWKS_URL`) | |
//! | `JWT_AUDIENCE` | accepted `aud` (required, unless `RESOURCE_URL` gives it) | |
//! | `JWT_ISSUER_TEMPLATE` | tenants by rule: an issuer template with a `{tenant}` placeholder (`https://kc.example.com/realms/{tenant}`); each tenant's keys found by discovery at its issuer on first use; replaces `JWKS_URL`, `OIDC_ISSUER` and `JWT_ISSUER` (set it alone); `JWKS_ALLOW_HTTP` applies | |
//! | `JWT_TENANT_STORES` | with `JWT_ISSUER_TEMPLATE`, the most tenants' key stores kept (least recently used out) | 1000 |
//! | `JWT_INTROSPECTION_CLIENT_ID`, `JWT_INTROSPECTION_CLIENT_SECRET` | opaque tokens (RFC 7662): this service's client at the introspection endpoint (`client_secret_basic`); opaque tokens go to introspection, JWTs keep the key set path | off |
//! | `JWT_INTROSPECTION_URL` | the introspection endpoint (default with `OIDC_ISSUER`: its discovery document's `introspection_endpoint`); `JWKS_ALLOW_HTTP` applies | |
//! | `JWT_INTROSPECTION_CACHE_SECS` | the longest an active answer is reused (0: off) | 60 |
//! | `JWT_INTROSPECTION_SIGNED` | `1` to ask for, and accept only, answers signed by the provider (RFC 9701), verified with the key set | off |
//! | `RESOURCE_URL` | RFC 9728: this API's resource identifier (the URL clients call); turns on the metadata document at `/.well-known/oauth-protected-resource` (and its path-inserted form) and `resource_metadata` in every challenge; the default audience (exact) when `JWT_AUDIENCE` is unset | |
//! | `AUTHORIZATION_SERVERS` | with `RESOURCE_URL` (required): comma-separated issuer URLs, listed verbatim as `authorization_servers` | |
//! | `JWT_ACCEPT_ANY_ISSUER` | `1` to give the `iss` check up instead of `JWT_ISSUER` | off |
//! | `JWT_ACCEPT_ANY_AUDIENCE` | `1` to give the `aud` check up instead of `JWT_AUDIENCE` | off |
//! | `LISTEN_ADDR` | address to listen on | `127.0.0.1:3000` |
//! | `JWKS_REFRESH_SECS` | periodic refresh interval | 300 |
//! | `JWKS_COOLDOWN_SECS` | minimum time between forced refreshes | 30 |
//! | `JWT_LEEWAY_SECS` | clock skew allowed on `exp`/`nbf` | 60 |
//! | `JWKS_ALLOW_HTTP` | `1` to allow plain http to a non-loopback host | off |
//! | `JWT_CACHE_ENTRIES` | size of the verified-token cache (0: off) | 10000 (the crate default) |
//! | `JWT_REALM` | the `realm` of every challenge (401, 400 and the 403 of `/admin`) | none |
//! | `JWT_DPOP` | DPoP (RFC 9449): `off`, `allowed` (bearer and DPoP-bound tokens) or `required` | `off` |
//! | `PUBLIC_BASE_URL` | with DPoP, the URL clients call this server at (a proof's `htu` is this plus the path) | `http://` + the address bound |
//! | `DPOP_REPLAY_REDIS_URL` | with DPoP, a Redis server for the replay store shared by replicas (built with `--features redis`) | in-memory store |
//!
//! Routes: `GET /public` (no auth), `GET /me` (the verified claims as JSON), `GET /whoami`
//! (the `sub` as text), `GET /admin` (needs scope `admin`), `GET /health` (200 once keys
//! are loaded, else 503), `GET /metrics` (Prometheus text format, no auth: the crate's
//! `jwks_auth_*` series, feature `metrics` being on by default). Prints
//! `listening on ADDR` once it accepts connections. Bad configuration exits with status 2.

mod common;

#[tokio::main]
async fn main() {
    // The recorder before anything can fetch, so the first scrape has the first fetch
    // and the keys gauge. GET /metrics serves it, unauthenticated like /health.
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .ok();
    // Configuration next: its errors are the first line on stderr.
    let (auth, listener) = common::env::configure_and_bind().await;
    if let Some(handle) = metrics.clone() {
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                handle.run_upkeep();
            }
        });
    }
    let app = common::routes(auth).route(
        "/metrics",
        axum::routing::get(move || {
            let text = metrics.as_ref().map(|h| h.render()).unwrap_or_default();
            async move { ([("content-type", "text/plain; version=0.0.4")], text) }
        }),
    );
    common::env::serve(listener, app).await;
}
