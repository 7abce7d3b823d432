//! Protected Resource Metadata (RFC 9728) and the challenges that point to it: what the
//! MCP authorization spec asks of a resource server, for any axum API.

mod common;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use common::*;
use jwks_auth::testing::TestIssuer;
use jwks_auth::{
    AuthError, AuthErrorKind as K, Claims, ConfigErrorKind, Dpop, JwksAuth, ResourceMetadata,
    Scopes,
};

const RESOURCE: &str = "https://api.example.com/mcp";
const META: &str = "https://api.example.com/.well-known/oauth-protected-resource/mcp";

fn metadata(issuer: &TestIssuer) -> ResourceMetadata {
    ResourceMetadata::new(RESOURCE)
        .authorization_servers([issuer.issuer(), "https://second.example/"])
        .scopes_supported(["mcp:tools", "mcp:admin"])
        .resource_name("Example MCP")
        .resource_documentation("https://api.example.com/docs")
}

/// The layer configured the MCP way: the resource is the audience (no `.audience`).
fn layer(issuer: &TestIssuer) -> JwksAuth {
    JwksAuth::new(issuer.jwks_url())
        .issuer(issuer.issuer())
        .protected_resource(metadata(issuer))
}

fn routes(auth: &JwksAuth) -> Router {
    Router::new()
        .route(
            "/mcp",
            get(|Claims(c): Claims| async move { c.sub.unwrap_or_default() }),
        )
        .route(
            "/handler",
            get(|Claims(c): Claims| async move {
                c.require_scopes(["mcp:delete"])?;
                Ok::<_, AuthError>("deleted")
            }),
        )
        .route(
            "/admin",
            get(|| async { "admin" }).route_layer(auth.require_scopes(["mcp:admin", "mcp:tools"])),
        )
        .layer(auth.clone())
        .merge(auth.resource_metadata_router())
}

async fn get_path(app: &Router, path: &str, token: Option<&str>) -> Reply {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    send_request(app, request.body(Body::empty()).unwrap()).await
}

#[tokio::test]
async fn the_metadata_document_at_both_urls() {
    let issuer = TestIssuer::start().await;
    let app = routes(&layer(&issuer));
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let reply = get_path(&app, path, None).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: unauthenticated");
        assert_eq!(reply.headers["content-type"], "application/json");
        let doc = reply.json();
        assert_eq!(
            doc["resource"], RESOURCE,
            "exactly the configured identifier"
        );
        assert_eq!(
            doc["authorization_servers"],
            serde_json::json!([issuer.issuer(), "https://second.example/"])
        );
        assert_eq!(
            doc["scopes_supported"],
            serde_json::json!(["mcp:tools", "mcp:admin"])
        );
        assert_eq!(
            doc["bearer_methods_supported"],
            serde_json::json!(["header"])
        );
        assert_eq!(doc["resource_name"], "Example MCP");
        assert_eq!(
            doc["resource_documentation"],
            "https://api.example.com/docs"
        );
        assert!(doc.get("dpop_bound_access_tokens_required").is_none());
    }
    // With DPoP required: its algorithms and the requirement.
    let dpop = layer(&issuer).dpop(Dpop::required().base_url("https://api.example.com"));
    let doc = get_path(
        &routes(&dpop),
        "/.well-known/oauth-protected-resource/mcp",
        None,
    )
    .await
    .json();
    assert_eq!(doc["dpop_bound_access_tokens_required"], true);
    assert!(
        doc["dpop_signing_alg_values_supported"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("ES256"))
    );
    assert_eq!(ResourceMetadata::new(RESOURCE).metadata_url(), META);
}

/// Every challenge names the metadata: the layer's 401s, a route layer's 403, a handler's
/// 403; the 401 without credentials names the scopes and no error.
#[tokio::test]
async fn every_challenge_points_to_the_metadata() {
    let issuer = TestIssuer::start().await;
    let app = routes(&layer(&issuer));
    let none = get_path(&app, "/mcp", None).await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.challenge(),
        Some(format!(r#"Bearer scope="mcp:tools mcp:admin", resource_metadata="{META}""#).as_str())
    );
    let other_audience = issuer.token().sign(); // aud test-api: not this resource
    let bad = get_path(&app, "/mcp", Some(&other_audience)).await;
    assert_eq!(
        bad.challenge(),
        Some(
            format!(
                r#"Bearer error="invalid_token", error_description="{}", resource_metadata="{META}""#,
                K::InvalidAudience.description()
            )
            .as_str()
        )
    );
    let token = issuer
        .token()
        .audience(RESOURCE)
        .subject("ann")
        .scope("mcp:tools")
        .sign();
    assert_eq!(get_path(&app, "/mcp", Some(&token)).await.body, "ann");
    let route = get_path(&app, "/admin", Some(&token)).await;
    assert_eq!(route.status, StatusCode::FORBIDDEN);
    assert_eq!(
        route.challenge(),
        Some(
            format!(
                r#"Bearer error="insufficient_scope", error_description="{}", scope="mcp:admin mcp:tools", resource_metadata="{META}""#,
                K::InsufficientScope.description()
            )
            .as_str()
        )
    );
    let handler = get_path(&app, "/handler", Some(&token)).await;
    assert_eq!(handler.status, StatusCode::FORBIDDEN);
    assert!(handler.challenge().unwrap().ends_with(&format!(
        r#"scope="mcp:delete", resource_metadata="{META}""#
    )));
    // Both schemes offered: Bearer first, each naming the metadata.
    let both = routes(&layer(&issuer).dpop(Dpop::allowed().base_url("https://api.example.com")));
    let reply = get_path(&both, "/mcp", None).await;
    let challenge = reply.challenge().unwrap();
    assert!(challenge.starts_with(&format!(
        r#"Bearer scope="mcp:tools mcp:admin", resource_metadata="{META}", DPoP resource_metadata="{META}", algs=""#
    )), "{challenge}");
}

/// The resource is the audience, compared exactly; an explicit audience replaces it.
#[tokio::test]
async fn the_resource_is_the_audience() {
    let issuer = TestIssuer::start().await;
    let app = routes(&layer(&issuer));
    for (aud, ok) in [
        (RESOURCE.to_owned(), true),
        (format!("{RESOURCE}/"), false),
        ("https://api.example.com/MCP".to_owned(), false),
        ("https://api.example.com".to_owned(), false),
    ] {
        let token = issuer.token().audience(aud.as_str()).sign();
        let status = get_path(&app, "/mcp", Some(&token)).await.status;
        assert_eq!(status == StatusCode::OK, ok, "{aud}");
    }
    let explicit = routes(&layer(&issuer).audience("orders"));
    let token = issuer.token().audience("orders").sign();
    assert_eq!(
        get_path(&explicit, "/mcp", Some(&token)).await.status,
        StatusCode::OK
    );
    let token = issuer.token().audience(RESOURCE).sign();
    assert_eq!(
        get_path(&explicit, "/mcp", Some(&token)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn metadata_mistakes_are_configuration_errors() {
    for metadata in [
        ResourceMetadata::new("https://api.example.com/mcp"),
        ResourceMetadata::new("http://api.example.com/mcp").authorization_servers(["https://as"]),
        ResourceMetadata::new("https://api.example.com/mcp#x")
            .authorization_servers(["https://as"]),
        ResourceMetadata::new("mcp").authorization_servers(["https://as"]),
    ] {
        let auth = JwksAuth::from_issuer("https://as.example/").protected_resource(metadata);
        assert_eq!(
            auth.validate().map_err(|e| e.kind().clone()),
            Err(ConfigErrorKind::ResourceMetadata)
        );
    }
}

/// Scope hierarchies (MCP 2026-07-28): a scope implied by a granted one counts, in route
/// layers (whatever the order of the builder calls) and in handlers; the 403 names the
/// scopes the operation needs.
#[tokio::test]
async fn scope_hierarchies_in_route_layers_and_handlers() {
    use jwks_auth::ScopeHierarchy;
    let issuer = TestIssuer::start().await;
    let levels = ScopeHierarchy::new()
        .implies("mcp:admin", ["mcp:write"])
        .implies("mcp:write", ["mcp:read"]);
    let auth = layer(&issuer);
    // The route layers are made before the hierarchy is set: it still applies.
    let read = auth.require_scopes(["mcp:read"]);
    let any = auth.require_any_scope(["mcp:write", "mcp:other"]);
    let auth = auth.scope_hierarchy(levels.clone());
    let handler_levels = levels.clone();
    let app = Router::new()
        .route("/read", get(|| async { "read" }).route_layer(read))
        .route("/write", get(|| async { "write" }).route_layer(any))
        .route(
            "/handler",
            get(move |Claims(c): Claims| {
                let levels = handler_levels.clone();
                async move {
                    c.require_scopes_in(&levels, ["mcp:read"])?;
                    Ok::<_, AuthError>("handled")
                }
            }),
        )
        .layer(auth);
    let token = |scope: &str| issuer.token().audience(RESOURCE).scope(scope).sign();
    let admin = token("mcp:admin");
    for path in ["/read", "/write", "/handler"] {
        assert_eq!(
            get_path(&app, path, Some(&admin)).await.status,
            StatusCode::OK,
            "{path}"
        );
    }
    let reader = token("mcp:read");
    assert_eq!(
        get_path(&app, "/read", Some(&reader)).await.status,
        StatusCode::OK
    );
    let refused = get_path(&app, "/write", Some(&reader)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(
        refused
            .challenge()
            .unwrap()
            .contains(r#"scope="mcp:write mcp:other""#)
    );
    let other = token("mcp:unrelated");
    let refused = get_path(&app, "/handler", Some(&other)).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.challenge().unwrap().contains(r#"scope="mcp:read""#));
    // Without the hierarchy, an implied scope is not granted.
    let claims: jwks_auth::StandardClaims =
        serde_json::from_value(serde_json::json!({"scope": "mcp:admin"})).unwrap();
    assert!(claims.require_scopes(["mcp:read"]).is_err());
    assert!(claims.require_scopes_in(&levels, ["mcp:read"]).is_ok());
    // Cycles are harmless.
    let cycle = ScopeHierarchy::new()
        .implies("a", ["b"])
        .implies("b", ["a"]);
    assert!(!cycle.grants(&claims, "a"));
}
