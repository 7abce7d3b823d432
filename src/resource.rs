//! OAuth 2.0 Protected Resource Metadata (RFC 9728), as the MCP authorization spec asks
//! of every HTTP MCP server, and useful to any API: [`ResourceMetadata`].
//!
//! With [`JwksAuth::protected_resource`](crate::JwksAuth::protected_resource):
//!
//! - [`JwksAuth::resource_metadata_router`](crate::JwksAuth::resource_metadata_router)
//!   serves the metadata document, unauthenticated, as `application/json`, at
//!   `/.well-known/oauth-protected-resource` and at the path-inserted form for a resource
//!   with a path (RFC 9728 §3.1: `/.well-known/oauth-protected-resource/mcp` for
//!   `https://host/mcp`). Its `resource` is the configured identifier exactly (§3.3);
//!   `authorization_servers`, `scopes_supported`, `bearer_methods_supported` (from the
//!   layer's token sources), and with DPoP `dpop_signing_alg_values_supported` and
//!   `dpop_bound_access_tokens_required`; `resource_name` and `resource_documentation`
//!   when given. Signed metadata is not offered.
//! - every challenge the layer, its route layers and handlers' [`AuthError`]s produce (401
//!   and 403, `Bearer` and `DPoP`) carries `resource_metadata="<the document's URL>"`; a
//!   401 without credentials carries `scope` (the scopes supported) and no `error`
//!   (RFC 6750 §3.1); a 403 lists the scopes the operation needs.
//! - the resource identifier is the required audience, compared exactly (no
//!   normalisation, no trailing-slash tolerance), unless
//!   [`audience`](crate::JwksAuth::audience) gives an explicit list.
//!
//! [`AuthError`]: crate::AuthError

use std::sync::Arc;

use axum::Router;
use axum::response::IntoResponse;
use axum::routing::get;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use serde_json::{Value, json};

use crate::error::{ConfigError, ConfigErrorKind};

/// What this API says about itself (RFC 9728): its resource identifier, the
/// authorization servers that issue tokens for it, the scopes it knows. Plain data;
/// checked when the layer is first used.
///
/// ```
/// use jwks_auth::{JwksAuth, ResourceMetadata};
///
/// let auth = JwksAuth::from_issuer("https://auth.example.com/").protected_resource(
///     ResourceMetadata::new("https://api.example.com/mcp")
///         .authorization_servers(["https://auth.example.com/"])
///         .scopes_supported(["mcp:tools"]),
/// );
/// let metadata = auth.resource_metadata_router();
/// ```
#[derive(Debug, Clone)]
pub struct ResourceMetadata {
    pub(crate) resource: String,
    authorization_servers: Vec<String>,
    pub(crate) scopes: Vec<String>,
    name: Option<String>,
    documentation: Option<String>,
}

impl ResourceMetadata {
    /// The resource identifier: the absolute `https` URL clients call (its path is the
    /// API's, e.g. `/mcp`), `http` only for loopback hosts; no query, no fragment.
    pub fn new(resource: impl Into<String>) -> Self {
        Self {
            resource: resource.into(),
            authorization_servers: Vec::new(),
            scopes: Vec::new(),
            name: None,
            documentation: None,
        }
    }

    /// The issuers of tokens for this resource, listed verbatim, in order (at least one).
    pub fn authorization_servers(
        mut self,
        issuers: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.authorization_servers = issuers.into_iter().map(Into::into).collect();
        self
    }

    /// The scopes this resource knows: `scopes_supported`, and the `scope` of the 401
    /// sent to a request without credentials.
    pub fn scopes_supported(mut self, scopes: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// A human-readable name (`resource_name`).
    pub fn resource_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A URL of human-readable documentation (`resource_documentation`).
    pub fn resource_documentation(mut self, url: impl Into<String>) -> Self {
        self.documentation = Some(url.into());
        self
    }

    /// The metadata document's URL (RFC 9728 §3.1): the well-known path inserted
    /// between the host and the resource's path.
    pub fn metadata_url(&self) -> String {
        let (origin, path) = split(&self.resource);
        format!("{origin}/.well-known/oauth-protected-resource{path}")
    }

    /// Checks what can be wrong, with no I/O.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let bad = || ConfigError::new(ConfigErrorKind::ResourceMetadata);
        let url = reqwest::Url::parse(&self.resource).map_err(|_| bad())?;
        let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
        let printable = |s: &str| s.chars().all(|c| c.is_ascii_graphic());
        if !scheme_ok
            || self.resource.contains(['?', '#'])
            || !printable(&self.resource)
            || self.authorization_servers.is_empty()
            || !self.authorization_servers.iter().all(|s| printable(s))
            || !self
                .scopes
                .iter()
                .all(|s| printable(s) && !s.contains('"') && !s.contains('\\'))
        {
            return Err(bad());
        }
        Ok(())
    }

    /// The document, given what the layer knows (its bearer methods and DPoP).
    pub(crate) fn document(&self, bearer_methods: &[&str], dpop: Option<(&[&str], bool)>) -> Value {
        let mut doc = json!({
            "resource": self.resource,
            "authorization_servers": self.authorization_servers,
            "bearer_methods_supported": bearer_methods,
        });
        if !self.scopes.is_empty() {
            doc["scopes_supported"] = json!(self.scopes);
        }
        if let Some(name) = &self.name {
            doc["resource_name"] = json!(name);
        }
        if let Some(url) = &self.documentation {
            doc["resource_documentation"] = json!(url);
        }
        if let Some((algs, required)) = dpop {
            doc["dpop_signing_alg_values_supported"] = json!(algs);
            doc["dpop_bound_access_tokens_required"] = json!(required);
        }
        doc
    }
}

/// A URL's origin (`scheme://authority`) and path (empty for `/`).
fn split(url: &str) -> (&str, &str) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => {
            let (origin, path) = url.split_at(after_scheme + i);
            (origin, path.trim_end_matches('/'))
        }
        None => (url, ""),
    }
}

/// The router serving `document` at the well-known path and its path-inserted form.
pub(crate) fn router(resource: &str, document: Value) -> Router {
    let body: Arc<str> = Arc::from(document.to_string());
    let serve = move || {
        let body = body.clone();
        async move {
            (
                [
                    (CONTENT_TYPE, "application/json"),
                    (CACHE_CONTROL, "max-age=300"),
                ],
                body.to_string(),
            )
                .into_response()
        }
    };
    let (_, path) = split(resource);
    let mut router =
        Router::new().route("/.well-known/oauth-protected-resource", get(serve.clone()));
    if !path.is_empty() {
        router = router.route(
            &format!("/.well-known/oauth-protected-resource{path}"),
            get(serve),
        );
    }
    router
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metadata_url_inserts_the_well_known_path() {
        let url = |r: &str| ResourceMetadata::new(r).metadata_url();
        assert_eq!(
            url("https://api.example.com/mcp"),
            "https://api.example.com/.well-known/oauth-protected-resource/mcp"
        );
        assert_eq!(
            url("https://api.example.com/"),
            "https://api.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            url("https://api.example.com"),
            "https://api.example.com/.well-known/oauth-protected-resource"
        );
        assert_eq!(
            url("http://127.0.0.1:8080/a/b"),
            "http://127.0.0.1:8080/.well-known/oauth-protected-resource/a/b"
        );
    }

    #[test]
    fn what_is_refused() {
        let ok = |r: &str| ResourceMetadata::new(r).authorization_servers(["https://as.example"]);
        assert!(ok("https://api.example.com/mcp").validate().is_ok());
        assert!(ok("http://127.0.0.1:3000/mcp").validate().is_ok());
        for bad in [
            "http://api.example.com/mcp",
            "https://api.example.com/mcp?x",
            "https://api.example.com/#f",
            "/mcp",
            "https://api.example.com/a b",
        ] {
            assert!(ok(bad).validate().is_err(), "{bad}");
        }
        assert!(
            ResourceMetadata::new("https://api.example.com/")
                .validate()
                .is_err(),
            "no authorization server"
        );
        assert!(
            ok("https://api.example.com/")
                .scopes_supported(["a\"b"])
                .validate()
                .is_err()
        );
    }
}
