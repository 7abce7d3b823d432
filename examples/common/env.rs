//! The environment interface shared by the `protected_api` and `grpc_api` servers.

use std::net::SocketAddr;
use std::time::Duration;

use jwks_auth::{Dpop, JwksAuth};

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

/// DPoP from the environment: `JWT_DPOP`, `PUBLIC_BASE_URL`, `DPOP_REPLAY_REDIS_URL`.
/// The base URL defaults to `http://` and the address actually bound, so it is applied
/// after binding ([`apply`](DpopEnv::apply)).
pub(crate) struct DpopEnv {
    dpop: Option<Dpop>,
    base_url: Option<String>,
}

impl DpopEnv {
    fn from_env() -> Result<Self, String> {
        let dpop = match env("JWT_DPOP").as_deref().map(str::trim) {
            None | Some("off") => None,
            Some("allowed") => Some(Dpop::allowed()),
            Some("required") => Some(Dpop::required()),
            Some(other) => {
                return Err(format!(
                    "JWT_DPOP must be off, allowed or required, got {other:?}"
                ));
            }
        };
        let dpop = match (dpop, env("DPOP_REPLAY_REDIS_URL")) {
            (Some(dpop), Some(url)) => Some(redis_store(dpop, url.trim())?),
            (dpop, _) => dpop,
        };
        Ok(Self {
            dpop,
            base_url: env("PUBLIC_BASE_URL").map(|u| u.trim().to_owned()),
        })
    }

    /// The layer with DPoP, if it is on, for a server listening on `addr`.
    pub(crate) fn apply(self, auth: JwksAuth, addr: SocketAddr) -> JwksAuth {
        match self.dpop {
            Some(dpop) => {
                let base = self.base_url.unwrap_or_else(|| format!("http://{addr}"));
                auth.dpop(dpop.base_url(base))
            }
            None => auth,
        }
    }
}

#[cfg(feature = "redis")]
fn redis_store(dpop: Dpop, url: &str) -> Result<Dpop, String> {
    let store = jwks_auth::dpop::RedisReplayStore::new(url)
        .map_err(|e| format!("DPOP_REPLAY_REDIS_URL: {e}"))?;
    Ok(dpop.replay_store(std::sync::Arc::new(store)))
}

#[cfg(not(feature = "redis"))]
fn redis_store(_: Dpop, _: &str) -> Result<Dpop, String> {
    Err("DPOP_REPLAY_REDIS_URL needs the example built with --features redis".into())
}

/// Introspection of opaque tokens, from `JWT_INTROSPECTION_*` (see `protected_api`).
fn introspection_from_env() -> Result<Option<jwks_auth::Introspection>, String> {
    let (url, id) = (
        env("JWT_INTROSPECTION_URL"),
        env("JWT_INTROSPECTION_CLIENT_ID"),
    );
    let Some(id) = id else {
        return match url {
            Some(_) => {
                Err("JWT_INTROSPECTION_CLIENT_ID is required with JWT_INTROSPECTION_URL".into())
            }
            None => Ok(None),
        };
    };
    let secret = env("JWT_INTROSPECTION_CLIENT_SECRET")
        .ok_or("JWT_INTROSPECTION_CLIENT_SECRET is required with JWT_INTROSPECTION_CLIENT_ID")?;
    let mut introspection = match url {
        Some(url) => jwks_auth::Introspection::new(url.trim(), id.trim(), secret),
        None => jwks_auth::Introspection::discovered(id.trim(), secret),
    };
    if let Some(d) = secs("JWT_INTROSPECTION_CACHE_SECS")? {
        introspection = introspection.cache_for(d);
    }
    if env("JWT_INTROSPECTION_SIGNED").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")) {
        introspection = introspection.signed_answers();
    }
    Ok(Some(introspection))
}

/// The layer, the listen address and the DPoP settings from the environment (see
/// `protected_api`).
pub(crate) fn config() -> Result<(JwksAuth, SocketAddr, DpopEnv), String> {
    let on = |name: &str| env(name).is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true"));
    let jwks_url = env("JWKS_URL").is_some();
    let template = env("JWT_ISSUER_TEMPLATE");
    let mut auth = match (env("JWKS_URL"), env("OIDC_ISSUER"), &template) {
        (None, None, Some(template)) if env("JWT_ISSUER").is_none() => {
            // Tenants by rule: each concrete issuer's keys found by discovery.
            JwksAuth::multi_issuer([jwks_auth::TrustedIssuer::rule(
                jwks_auth::IssuerRule::discovered("tenants", template.trim()),
            )])
        }
        (_, _, Some(_)) => {
            return Err(
                "JWT_ISSUER_TEMPLATE replaces JWKS_URL, OIDC_ISSUER and JWT_ISSUER: \
                        set it alone"
                    .into(),
            );
        }
        (Some(url), None, None) => JwksAuth::new(url.trim()),
        (None, Some(issuer), None) => JwksAuth::from_issuer(issuer.trim()),
        (Some(_), Some(_), None) => {
            return Err("set JWKS_URL or OIDC_ISSUER, not both".into());
        }
        (None, None, None) => {
            return Err("JWKS_URL is required (the identity provider's JWKS URL), \
                        or OIDC_ISSUER to discover it, or JWT_ISSUER_TEMPLATE for tenants"
                .into());
        }
    };
    // Audience and issuer are required, or given up by name (the crate's own rule).
    auth = match (env("JWT_ISSUER"), on("JWT_ACCEPT_ANY_ISSUER")) {
        (Some(issuer), _) => auth.issuer(issuer),
        (None, true) => auth.accept_any_issuer(),
        (None, false) if jwks_url => {
            return Err(
                "JWT_ISSUER is required with JWKS_URL: the iss your tokens carry \
                        (or JWT_ACCEPT_ANY_ISSUER=1 to give the issuer check up; \
                        OIDC_ISSUER binds its own)"
                    .into(),
            );
        }
        (None, false) => auth,
    };
    // RFC 9728: the resource's metadata, and the resource as the default audience.
    let resource = env("RESOURCE_URL");
    if let Some(resource) = &resource {
        let servers: Vec<String> = env("AUTHORIZATION_SERVERS")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if servers.is_empty() {
            return Err(
                "AUTHORIZATION_SERVERS is required with RESOURCE_URL: the issuers of \
                        tokens for this resource, comma-separated"
                    .into(),
            );
        }
        auth = auth.protected_resource(
            jwks_auth::ResourceMetadata::new(resource.trim()).authorization_servers(servers),
        );
    } else if env("AUTHORIZATION_SERVERS").is_some() {
        return Err("AUTHORIZATION_SERVERS needs RESOURCE_URL".into());
    }
    auth = match (env("JWT_AUDIENCE"), on("JWT_ACCEPT_ANY_AUDIENCE")) {
        (Some(audience), _) => auth.audience(audience),
        (None, true) => auth.accept_any_audience(),
        (None, false) if resource.is_some() => auth,
        (None, false) => {
            return Err("JWT_AUDIENCE is required: the aud your tokens carry \
                        (or JWT_ACCEPT_ANY_AUDIENCE=1 to give the audience check up)"
                .into());
        }
    };
    let mut refresh = jwks_auth::Refresh::default();
    if let Some(d) = secs("JWKS_REFRESH_SECS")? {
        refresh = refresh.interval(d);
    }
    if let Some(d) = secs("JWKS_COOLDOWN_SECS")? {
        refresh = refresh.cooldown(d);
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
    if on("JWKS_ALLOW_HTTP") {
        refresh = refresh.allow_http(true);
    }
    if let Some(stores) = env("JWT_TENANT_STORES") {
        let stores = stores
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                format!("JWT_TENANT_STORES must be a whole number above 0, got {stores:?}")
            })?;
        refresh = refresh.tenant_stores(stores);
    }
    auth = auth.refresh(refresh);
    if let Some(introspection) = introspection_from_env()? {
        auth = auth.introspection(introspection);
    }
    // A URL the layer can never use is a configuration error: say so now.
    if let Err(err) = auth.validate() {
        if matches!(err.kind(), jwks_auth::ConfigErrorKind::ResourceMetadata) {
            return Err(format!("RESOURCE_URL/AUTHORIZATION_SERVERS: {err}"));
        }
        if matches!(
            err.kind(),
            jwks_auth::ConfigErrorKind::IntrospectionEndpoint
        ) {
            return Err(format!(
                "JWT_INTROSPECTION_CLIENT_ID without JWT_INTROSPECTION_URL needs OIDC_ISSUER \
                 (the endpoint comes from its discovery document): {err}"
            ));
        }
        let what = if template.is_some() {
            "JWT_ISSUER_TEMPLATE"
        } else {
            "JWKS_URL/OIDC_ISSUER"
        };
        return Err(format!("{what}: {err}"));
    }
    let dpop = DpopEnv::from_env()?;
    let addr = env("LISTEN_ADDR").unwrap_or_else(|| "127.0.0.1:3000".into());
    let addr = addr
        .parse()
        .map_err(|_| format!("LISTEN_ADDR must be an address like 127.0.0.1:3000, got {addr:?}"))?;
    Ok((auth, addr, dpop))
}

/// Logs to stderr, `RUST_LOG` or `info`; coloured only on a terminal (piped into a file
/// or a log collector, plain text).
pub(crate) fn init_logging() {
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,jwks_auth=info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// The configuration, then the log, then the listener: exits 2 on bad configuration (the
/// message is the first line on stderr) and 1 if the address cannot be bound.
pub(crate) async fn configure_and_bind() -> (JwksAuth, tokio::net::TcpListener) {
    let (auth, addr, dpop) = match config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("configuration error: {e}");
            std::process::exit(2);
        }
    };
    init_logging();
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        }
    };
    let bound = listener.local_addr().unwrap_or(addr);
    let auth = dpop.apply(auth, bound);
    // A base URL the layer cannot use is a configuration error: say so now.
    if let Err(config) = auth.validate() {
        eprintln!("configuration error: PUBLIC_BASE_URL: {config}");
        std::process::exit(2);
    }
    (auth, listener)
}

/// Prints `listening on ADDR`, then serves `app` (HTTP/1 and HTTP/2 cleartext) until
/// Ctrl-C; exits 1 on a server error.
pub(crate) async fn serve(listener: tokio::net::TcpListener, app: axum::Router) {
    match listener.local_addr() {
        Ok(addr) => println!("listening on {addr}"),
        Err(e) => {
            eprintln!("no local address: {e}");
            std::process::exit(1);
        }
    }
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
