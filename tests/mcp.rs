//! Drives the `mcp_server` example (rmcp's streamable HTTP transport behind the layer)
//! through its interface: environment variables, the `listening on ADDR` line, JSON-RPC
//! over HTTP, against a real loopback identity provider. CI also drives it with the MCP
//! TypeScript SDK (`interop/mcp_check.mjs`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use jwks_auth::testing::TestIssuer;
use serde_json::{Value, json};

const RESOURCE: &str = "https://mcp.example.com/mcp";
const META: &str = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";

mod common;

use common::example::Server;

fn example_binary() -> PathBuf {
    common::example::binary("mcp_server")
}

fn start(envs: &[(&str, &str)]) -> (Server, String) {
    common::example::start("mcp_server", envs, Stdio::null())
}

/// A JSON-RPC POST to the MCP endpoint: status, challenge, session id, and the message
/// (from a JSON body or the first SSE `data:` line).
async fn rpc(
    base: &str,
    token: Option<&str>,
    session: Option<&str>,
    body: Value,
) -> (u16, Option<String>, Option<String>, Value) {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("{base}/mcp"))
        .timeout(Duration::from_secs(10))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let (challenge, session) = (header("www-authenticate"), header("mcp-session-id"));
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str(&text).unwrap_or_else(|_| {
        // SSE: the first `data:` line that is a JSON-RPC message (a priming event may
        // come first with empty data).
        text.lines()
            .filter_map(|l| l.strip_prefix("data:"))
            .find_map(|d| {
                serde_json::from_str::<Value>(d.trim())
                    .ok()
                    .filter(Value::is_object)
            })
            .unwrap_or_else(|| Value::String(text.clone()))
    });
    (status, challenge, session, message)
}

fn initialize() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "jwks-auth-test", "version": "1"}}})
}

#[tokio::test]
async fn an_mcp_server_behind_the_layer() {
    let issuer = TestIssuer::start().await;
    let (_server, base) = start(&[
        ("MCP_RESOURCE_URL", RESOURCE),
        ("MCP_AUTHORIZATION_SERVERS", issuer.issuer()),
        ("JWKS_URL", &issuer.jwks_url()),
        ("JWT_ISSUER", issuer.issuer()),
        ("MCP_SCOPES", "mcp:tools"),
    ]);
    // The metadata, unauthenticated, at the path-inserted URL.
    let doc: Value = reqwest::get(format!("{base}/.well-known/oauth-protected-resource/mcp"))
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap())
        .unwrap();
    assert_eq!(doc["resource"], RESOURCE);
    assert_eq!(doc["authorization_servers"], json!([issuer.issuer()]));
    assert_eq!(doc["scopes_supported"], json!(["mcp:tools"]));
    // No token: 401 naming the metadata and the scope, no error.
    let (status, challenge, _, _) = rpc(&base, None, None, initialize()).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge.unwrap(),
        format!(r#"Bearer scope="mcp:tools", resource_metadata="{META}""#)
    );
    // A token for another audience: 401 invalid_token, naming the metadata.
    let other = issuer.token().scope("mcp:tools").sign();
    let (status, challenge, _, _) = rpc(&base, Some(&other), None, initialize()).await;
    assert_eq!(status, 401);
    let challenge = challenge.unwrap();
    assert!(
        challenge.contains(r#"error="invalid_token""#) && challenge.contains(META),
        "{challenge}"
    );
    // Too narrow a scope: 403 naming every needed scope and the metadata.
    let narrow = issuer.token().audience(RESOURCE).scope("other").sign();
    let (status, challenge, _, _) = rpc(&base, Some(&narrow), None, initialize()).await;
    assert_eq!(status, 403);
    let challenge = challenge.unwrap();
    assert!(
        challenge.contains(r#"scope="mcp:tools""#) && challenge.contains(META),
        "{challenge}"
    );
    // The full flow: initialize, tools/list, tools/call whoami.
    let token = issuer
        .token()
        .audience(RESOURCE)
        .scope("mcp:tools")
        .subject("alice")
        .sign();
    let (status, _, session, message) = rpc(&base, Some(&token), None, initialize()).await;
    assert_eq!(status, 200, "{message}");
    assert!(
        message["result"]["capabilities"]["tools"].is_object(),
        "{message}"
    );
    let session = session.expect("a session id");
    let notified = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    let (status, ..) = rpc(&base, Some(&token), Some(&session), notified).await;
    assert!(status == 202 || status == 200, "{status}");
    let list = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
    let (_, _, _, message) = rpc(&base, Some(&token), Some(&session), list).await;
    assert_eq!(message["result"]["tools"][0]["name"], "whoami", "{message}");
    let call = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}}});
    let (status, _, _, message) = rpc(&base, Some(&token), Some(&session), call).await;
    assert_eq!(status, 200);
    assert_eq!(
        message["result"]["content"][0]["text"], "you are alice",
        "{message}"
    );
}

/// It starts while the authorization server is down: a request without a token is a
/// 401, not a 503.
#[tokio::test]
async fn it_starts_while_the_authorization_server_is_down() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let jwks = format!("http://127.0.0.1:{port}/jwks.json");
    let (_server, base) = start(&[
        ("MCP_RESOURCE_URL", RESOURCE),
        ("MCP_AUTHORIZATION_SERVERS", "https://auth.example.com/"),
        ("JWKS_URL", &jwks),
        ("JWT_ISSUER", "https://auth.example.com/"),
    ]);
    let (status, challenge, _, _) = rpc(&base, None, None, initialize()).await;
    assert_eq!(status, 401);
    assert_eq!(
        challenge.unwrap(),
        format!(r#"Bearer resource_metadata="{META}""#)
    );
}

#[test]
fn bad_configuration_exits_2_before_listening() {
    for envs in [
        vec![
            ("MCP_AUTHORIZATION_SERVERS", "https://a/"),
            ("OIDC_ISSUER", "https://a/"),
        ],
        vec![
            ("MCP_RESOURCE_URL", RESOURCE),
            ("OIDC_ISSUER", "https://a/"),
        ],
        vec![
            ("MCP_RESOURCE_URL", "http://mcp.example.com/mcp"),
            ("MCP_AUTHORIZATION_SERVERS", "https://a/"),
            ("OIDC_ISSUER", "https://a/"),
        ],
    ] {
        let output = Command::new(example_binary())
            .env_clear()
            .envs(envs.iter().copied())
            .output()
            .expect("run mcp_server");
        assert_eq!(output.status.code(), Some(2), "{envs:?}");
        assert!(output.stdout.is_empty());
    }
}

/// The authorization server comes up after the MCP server: the first token triggers a
/// fetch, not held back by the failed fetches at start-up.
#[tokio::test]
async fn the_first_token_after_an_outage_at_start_up_is_served() {
    let issuer = TestIssuer::start().await;
    let reserved = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = reserved.local_addr().unwrap().port();
    drop(reserved);
    let jwks = format!("http://127.0.0.1:{port}/jwks.json");
    let (_server, base) = start(&[
        ("MCP_RESOURCE_URL", RESOURCE),
        ("MCP_AUTHORIZATION_SERVERS", issuer.issuer()),
        ("JWKS_URL", &jwks),
        ("JWT_ISSUER", issuer.issuer()),
    ]);
    // A request while the key set is unreachable: the start-up fetches fail meanwhile.
    let (status, ..) = rpc(&base, None, None, initialize()).await;
    assert_eq!(status, 401);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // The key set comes up on that port.
    let document = issuer.jwks_document();
    let app = axum::Router::new().route(
        "/jwks.json",
        axum::routing::get(move || {
            let document = document.clone();
            async move { ([("content-type", "application/json")], document) }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let token = issuer.token().audience(RESOURCE).subject("late").sign();
    let started = std::time::Instant::now();
    let (status, _, _, message) = rpc(&base, Some(&token), None, initialize()).await;
    assert_eq!(status, 200, "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}
