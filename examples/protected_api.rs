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
//! | `JWT_ISSUER` | accepted `iss` | not checked |
//! | `JWT_AUDIENCE` | accepted `aud` | not checked |
//! | `LISTEN_ADDR` | address to listen on | `127.0.0.1:3000` |
//! | `JWKS_REFRESH_SECS` | periodic refresh interval | 300 |
//! | `JWKS_COOLDOWN_SECS` | minimum time between forced refreshes | 30 |
//! | `JWT_LEEWAY_SECS` | clock skew allowed on `exp`/`nbf` | 60 |
//! | `JWKS_ALLOW_HTTP` | `1` to allow plain http to a non-loopback host | off |
//! | `JWT_CACHE_ENTRIES` | size of the verified-token cache (0: off) | 10000 (the crate default) |
//! | `JWT_REALM` | the `realm` of every challenge (401, 400 and the 403 of `/admin`) | none |
//!
//! Routes: `GET /public` (no auth), `GET /me` (the verified claims as JSON), `GET /whoami`
//! (the `sub` as text), `GET /admin` (needs scope `admin`), `GET /health` (200 once keys
//! are loaded, else 503). Prints
//! `listening on ADDR` once it accepts connections. Bad configuration exits with status 2.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use jwks_auth::JwksAuth;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn secs(name: &str) -> Result<Option<Duration>, String> {
    env(name)
        .map(|v| {
            v.trim()
                .parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| format!("{name} must be a whole number of seconds, got {v:?}"))
        })
        .transpose()
}

fn config() -> Result<(JwksAuth, SocketAddr), String> {
    let mut auth = match (env("JWKS_URL"), env("OIDC_ISSUER")) {
        (Some(url), None) => JwksAuth::new(url.trim()),
        (None, Some(issuer)) => JwksAuth::from_issuer(issuer.trim()),
        (Some(_), Some(_)) => return Err("set JWKS_URL or OIDC_ISSUER, not both".into()),
        (None, None) => {
            return Err("JWKS_URL is required (the identity provider's JWKS URL), \
                        or OIDC_ISSUER to discover it"
                .into());
        }
    };
    if let Some(issuer) = env("JWT_ISSUER") {
        auth = auth.issuer(issuer);
    }
    if let Some(audience) = env("JWT_AUDIENCE") {
        auth = auth.audience(audience);
    }
    if let Some(d) = secs("JWKS_REFRESH_SECS")? {
        auth = auth.refresh_interval(d);
    }
    if let Some(d) = secs("JWKS_COOLDOWN_SECS")? {
        auth = auth.cooldown(d);
    }
    if let Some(d) = secs("JWT_LEEWAY_SECS")? {
        auth = auth.leeway(d);
    }
    if let Some(entries) = env("JWT_CACHE_ENTRIES") {
        let entries = entries
            .trim()
            .parse::<usize>()
            .map_err(|_| format!("JWT_CACHE_ENTRIES must be a whole number, got {entries:?}"))?;
        auth = auth.cache(entries);
    }
    if let Some(realm) = env("JWT_REALM") {
        auth = auth.realm(realm);
    }
    if env("JWKS_ALLOW_HTTP").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        auth = auth.allow_http(true);
    }
    // A URL the layer can never use is a configuration error: say so now.
    if let Some(err) = auth.status().last_error {
        return Err(format!("JWKS_URL/OIDC_ISSUER: {err}"));
    }
    let addr = env("LISTEN_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
    let addr = addr
        .parse()
        .map_err(|_| format!("LISTEN_ADDR must be an address like 127.0.0.1:3000, got {addr:?}"))?;
    Ok((auth, addr))
}

#[tokio::main]
async fn main() {
    // Configuration first: its errors are the first line on stderr.
    let (auth, addr) = match config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            std::process::exit(2);
        }
    };
    // Colour only on a terminal: piped into a file or a log collector, plain text.
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,jwks_auth=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let local = listener.local_addr().unwrap_or(addr);
    let app = common::routes(auth);
    println!("listening on {local}");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
    if let Err(e) = served {
        eprintln!("server error: {e}");
        std::process::exit(1);
    }
}
