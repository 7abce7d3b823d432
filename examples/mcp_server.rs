//! An MCP server (rmcp's streamable HTTP transport) behind `JwksAuth`: the resource
//! server the MCP authorization spec asks for. One tool, `whoami`, answers with the
//! verified token's `sub`.
//!
//! ```text
//! MCP_RESOURCE_URL=https://mcp.example.com/mcp \
//! MCP_AUTHORIZATION_SERVERS=https://auth.example.com/ \
//! OIDC_ISSUER=https://auth.example.com/ MCP_SCOPES="mcp:tools" \
//!     cargo run --example mcp_server
//! ```
//!
//! | variable | meaning |
//! |---|---|
//! | `LISTEN_ADDR` | address to bind (default `127.0.0.1:3000`); prints `listening on ADDR` |
//! | `MCP_RESOURCE_URL` | required: the canonical resource URL; the MCP endpoint is served at its path; the required audience (exact); the metadata's `resource` |
//! | `MCP_AUTHORIZATION_SERVERS` | required: comma-separated issuer URLs, verbatim, in order |
//! | `JWKS_URL` or `OIDC_ISSUER`, `JWT_ISSUER`, `JWKS_ALLOW_HTTP` | as `protected_api` |
//! | `MCP_SCOPES` | space- or comma-separated scopes every MCP request needs; `scopes_supported`, and `scope` in the 401 and 403 challenges |
//! | `JWT_DPOP`, `PUBLIC_BASE_URL` | as `protected_api` |
//!
//! The key set is fetched lazily: the server starts while the authorization server is
//! down, a request without a token gets 401 (never 503), and the first token triggers a
//! fetch. Bad configuration exits 2 before `listening on`; SIGTERM stops it.

use std::net::SocketAddr;

use axum::Router;
use http::request::Parts;
use jwks_auth::{Dpop, JwksAuth, Refresh, ResourceMetadata, SharedClaims};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::tool::Extension;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ServerHandler, tool, tool_handler, tool_router};

/// The MCP server: one tool.
#[derive(Debug, Clone)]
struct WhoAmI {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl WhoAmI {
    fn new() -> Self {
        Self {
            tool_router: Self::tool_router(),
        }
    }

    /// The verified identity, read from the HTTP request the layer admitted: rmcp puts
    /// its `Parts` (extensions included) in the tool's context; no token is copied.
    #[tool(description = "Who is calling: the verified token's subject")]
    fn whoami(&self, Extension(parts): Extension<Parts>) -> String {
        match SharedClaims::<jwks_auth::StandardClaims>::from_extensions(&parts.extensions) {
            Some(claims) => format!("you are {}", claims.sub.as_deref().unwrap_or("(no sub)")),
            // Unreachable behind the layer; said plainly rather than guessed.
            None => "not authenticated".to_owned(),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for WhoAmI {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn list(value: &str) -> Vec<String> {
    value
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The layer, the endpoint's path and the address, from the environment.
fn config() -> Result<(JwksAuth, String, SocketAddr), String> {
    let resource = env("MCP_RESOURCE_URL").ok_or("MCP_RESOURCE_URL is required")?;
    let servers = env("MCP_AUTHORIZATION_SERVERS")
        .map(|s| list(&s))
        .filter(|s| !s.is_empty())
        .ok_or("MCP_AUTHORIZATION_SERVERS is required (comma-separated issuer URLs)")?;
    let scopes = env("MCP_SCOPES").map(|s| list(&s)).unwrap_or_default();
    let mut auth = match (env("JWKS_URL"), env("OIDC_ISSUER")) {
        (Some(url), None) => {
            let issuer = env("JWT_ISSUER").ok_or("JWT_ISSUER is required with JWKS_URL")?;
            JwksAuth::new(url.trim()).issuer(issuer.trim())
        }
        (None, Some(issuer)) => JwksAuth::from_issuer(issuer.trim()),
        _ => return Err("set JWKS_URL (with JWT_ISSUER) or OIDC_ISSUER".into()),
    };
    let allow_http = env("JWKS_ALLOW_HTTP").is_some_and(|v| v == "1" || v == "true");
    auth = auth
        .refresh(Refresh::default().allow_http(allow_http))
        .protected_resource(
            ResourceMetadata::new(resource.trim())
                .authorization_servers(servers)
                .scopes_supported(scopes),
        );
    let addr: SocketAddr = env("LISTEN_ADDR")
        .unwrap_or_else(|| "127.0.0.1:3000".into())
        .parse()
        .map_err(|_| "LISTEN_ADDR must be an address like 127.0.0.1:3000")?;
    auth = match env("JWT_DPOP").as_deref() {
        None | Some("off") => auth,
        Some(mode @ ("allowed" | "required")) => {
            let base = env("PUBLIC_BASE_URL").unwrap_or_else(|| format!("http://{addr}"));
            let dpop = if mode == "required" {
                Dpop::required()
            } else {
                Dpop::allowed()
            };
            auth.dpop(dpop.base_url(base))
        }
        Some(other) => {
            return Err(format!(
                "JWT_DPOP must be off, allowed or required, got {other:?}"
            ));
        }
    };
    auth.validate()
        .map_err(|e| format!("MCP_RESOURCE_URL/JWKS: {e}"))?;
    let path = reqwest::Url::parse(resource.trim())
        .map_err(|e| format!("MCP_RESOURCE_URL: {e}"))?
        .path()
        .trim_end_matches('/')
        .to_owned();
    let path = if path.is_empty() {
        "/".to_owned()
    } else {
        path
    };
    Ok((auth, path, addr))
}

#[tokio::main]
async fn main() {
    let (auth, path, addr) = config().unwrap_or_else(|e| {
        eprintln!("configuration error: {e}");
        std::process::exit(2);
    });
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mcp: StreamableHttpService<WhoAmI, LocalSessionManager> = StreamableHttpService::new(
        || Ok(WhoAmI::new()),
        Default::default(),
        StreamableHttpServerConfig::default()
            .with_sse_keep_alive(None)
            // The bearer token guards every request; the Host check would need every
            // public name of the service listed.
            .disable_allowed_hosts()
            .with_cancellation_token(shutdown.child_token()),
    );
    // Every scope the resource declares is needed for every MCP request.
    let scopes: Vec<String> = list(&env("MCP_SCOPES").unwrap_or_default());
    let mut endpoint = Router::new().route_service(&path, mcp);
    if !scopes.is_empty() {
        endpoint = endpoint.route_layer(auth.require_scopes(scopes));
    }
    let app = endpoint
        .route_layer(auth.clone())
        .merge(auth.resource_metadata_router());
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {addr}: {e}");
            std::process::exit(1);
        });
    println!("listening on {}", listener.local_addr().unwrap_or(addr));
    let stop = shutdown.clone();
    let served = axum::serve(listener, app).with_graceful_shutdown(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        stop.cancel();
    });
    if let Err(e) = served.await {
        eprintln!("server error: {e}");
        std::process::exit(1);
    }
}
