//! HTTP fetch of a JSON Web Key Set, with limits.
//!
//! - connect timeout 2 s, whole request 5 s (configurable with
//!   [`fetch_timeout`](crate::JwksAuth::fetch_timeout));
//! - body capped at [`MAX_BODY`] bytes, checked against `Content-Length` and while reading;
//! - redirects are not followed (a 3xx is an error), so a key set cannot be moved to a
//!   host the operator did not name;
//! - `https` is required, except for loopback hosts (`localhost`, `127.0.0.0/8`, `::1`)
//!   or when [`allow_http`](crate::JwksAuth::allow_http) is set;
//! - conditional requests: `If-None-Match` / `If-Modified-Since` from the last good
//!   response; `304 Not Modified` keeps the snapshot;
//! - `Cache-Control: max-age`, `no-cache` and `no-store` are read for the refresh
//!   schedule (`no-cache` and `no-store` mean "use the configured interval");
//! - proxies: the default client honours `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and
//!   `NO_PROXY` as curl and Go do (corporate egress needs them), but a loopback URL is
//!   always fetched directly, never through a proxy.
//!
//! # OIDC discovery
//!
//! For [`JwksAuth::from_issuer`](crate::JwksAuth::from_issuer): `GET
//! {issuer}/.well-known/openid-configuration`; if that answers with an HTTP error, RFC
//! 8414's `/.well-known/oauth-authorization-server` (inserted before the issuer's path).
//! The document must be a JSON object whose `issuer` equals the configured issuer exactly
//! and whose `jwks_uri` passes the same transport policy as a configured URL. The same
//! timeout and body cap apply.
//!
//! A user-supplied [`reqwest::Client`] is used as it is (its redirect and proxy policy
//! are the user's), but the request is still bounded by the fetch timeout and the body cap.

use std::time::Duration;

use http::header::{CACHE_CONTROL, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use http::{HeaderValue, StatusCode};
use reqwest::Url;

use crate::error::{ConfigError, ConfigErrorKind, RefreshError, RefreshErrorKind};

use crate::limits::{CONNECT_TIMEOUT, MAX_BODY};

/// What a remote key source fetches.
#[derive(Debug, Clone)]
pub(crate) enum Target {
    /// A JWKS URL.
    Jwks(Url),
    /// An issuer whose discovery document names the JWKS URL.
    Discovery {
        issuer: String,
        url: Url,
        allow_http: bool,
    },
}

impl Target {
    /// A JWKS URL target, checked against the transport policy.
    pub(crate) fn jwks(url: &str, allow_http: bool) -> Result<Self, ConfigError> {
        check_url(url, allow_http).map(Self::Jwks)
    }

    /// A discovery target for `issuer`, checked against the transport policy.
    pub(crate) fn discovery(issuer: &str, allow_http: bool) -> Result<Self, ConfigError> {
        check_url(issuer, allow_http).map(|url| Self::Discovery {
            issuer: issuer.to_owned(),
            url,
            allow_http,
        })
    }

    /// How many fetches one attempt takes (discovery, then the key set).
    pub(crate) fn fetches(&self) -> u32 {
        match self {
            Self::Jwks(_) => 1,
            Self::Discovery { .. } => 2,
        }
    }
}

/// The HTTP clients of a remote key source.
#[derive(Debug, Clone)]
pub(crate) struct Transport {
    client: reqwest::Client,
    /// For loopback URLs when the client is the default one: no proxy, ever.
    direct: Option<reqwest::Client>,
}

impl Transport {
    /// The user's client as it is, or the default client and its proxy-free twin.
    pub(crate) fn new(user: Option<reqwest::Client>) -> Result<Self, RefreshError> {
        match user {
            Some(client) => Ok(Self {
                client,
                direct: None,
            }),
            None => Ok(Self {
                client: default_client(true)?,
                direct: Some(default_client(false)?),
            }),
        }
    }

    /// The client for `url` (the proxy-free one for loopback).
    pub(crate) fn client_for(&self, url: &Url) -> &reqwest::Client {
        match &self.direct {
            Some(direct) if is_loopback(url) => direct,
            _ => &self.client,
        }
    }
}

/// Validators of the last good response, for conditional requests.
#[derive(Debug, Clone, Default)]
pub(crate) struct Validators {
    etag: Option<HeaderValue>,
    last_modified: Option<HeaderValue>,
}

impl Validators {
    /// Whether a request with these validators is conditional (so a 304 means something).
    pub(crate) fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// Caching directives of a response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CachePolicy {
    pub(crate) max_age: Option<Duration>,
    /// `no-store` or `no-cache`: use the configured interval, never "refetch per request".
    pub(crate) use_interval: bool,
}

/// The result of one successful HTTP exchange.
#[derive(Debug)]
pub(crate) enum Fetched {
    NotModified(CachePolicy),
    Body {
        body: Vec<u8>,
        validators: Validators,
        cache: CachePolicy,
    },
}

/// Checks a key set URL against the transport policy.
pub(crate) fn check_url(url: &str, allow_http: bool) -> Result<Url, ConfigError> {
    let parsed = Url::parse(url).map_err(|_| ConfigError::new(ConfigErrorKind::InvalidUrl))?;
    match parsed.scheme() {
        "https" => {}
        "http" if allow_http || is_loopback(&parsed) => {}
        "http" => return Err(ConfigError::new(ConfigErrorKind::InsecureUrl)),
        _ => return Err(ConfigError::new(ConfigErrorKind::UnsupportedScheme)),
    }
    if parsed.host().is_none() {
        return Err(ConfigError::new(ConfigErrorKind::InvalidUrl));
    }
    Ok(parsed)
}

fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let ip = host.trim_start_matches('[').trim_end_matches(']');
    ip.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// The default client: rustls, connect 2 s, no redirects; proxies from the environment
/// when `proxies` is set.
fn default_client(proxies: bool) -> Result<reqwest::Client, RefreshError> {
    let builder = reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("jwks-auth/", env!("CARGO_PKG_VERSION")));
    let builder = if proxies { builder } else { builder.no_proxy() };
    builder
        .build()
        .map_err(|e| RefreshError::with_source(RefreshErrorKind::Client, e))
}

/// Fetches `url`, sending the validators of the last good response.
pub(crate) async fn fetch(
    transport: &Transport,
    url: &Url,
    validators: &Validators,
    timeout: Duration,
) -> Result<Fetched, RefreshError> {
    let client = transport.client_for(url);
    match tokio::time::timeout(timeout, fetch_inner(client, url, validators, timeout)).await {
        Ok(result) => result.map_err(|e| e.at(url.as_str())),
        Err(_) => Err(RefreshError::new(RefreshErrorKind::Timeout).at(url.as_str())),
    }
}

async fn fetch_inner(
    client: &reqwest::Client,
    url: &Url,
    validators: &Validators,
    timeout: Duration,
) -> Result<Fetched, RefreshError> {
    let mut request = client.get(url.clone()).timeout(timeout).header(
        http::header::ACCEPT,
        "application/jwk-set+json, application/json",
    );
    if let Some(etag) = &validators.etag {
        request = request.header(IF_NONE_MATCH, etag.clone());
    }
    if let Some(lm) = &validators.last_modified {
        request = request.header(IF_MODIFIED_SINCE, lm.clone());
    }
    let response = request.send().await.map_err(transport_error)?;
    let cache = cache_policy(response.headers());
    match response.status() {
        StatusCode::OK => {}
        StatusCode::NOT_MODIFIED => return Ok(Fetched::NotModified(cache)),
        other => return Err(RefreshError::new(RefreshErrorKind::Status(other.as_u16()))),
    }
    let new_validators = Validators {
        etag: response.headers().get(ETAG).cloned(),
        last_modified: response.headers().get(LAST_MODIFIED).cloned(),
    };
    Ok(Fetched::Body {
        body: read_capped(response).await?,
        validators: new_validators,
        cache,
    })
}

/// A response's body, at most [`MAX_BODY`] bytes (checked against `Content-Length` and
/// while reading).
pub(crate) async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, RefreshError> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY as u64)
    {
        return Err(RefreshError::new(RefreshErrorKind::BodyTooLarge));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(RefreshError::new(RefreshErrorKind::BodyTooLarge));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The two well-known discovery URLs of an issuer: OpenID Connect Discovery first, then
/// RFC 8414.
pub(crate) fn discovery_urls(issuer: &Url) -> [Url; 2] {
    let path = issuer.path().trim_end_matches('/');
    let mut oidc = issuer.clone();
    oidc.set_path(&format!("{path}/.well-known/openid-configuration"));
    let mut oauth = issuer.clone();
    oauth.set_path(&format!("/.well-known/oauth-authorization-server{path}"));
    for url in [&mut oidc, &mut oauth] {
        url.set_query(None);
        url.set_fragment(None);
    }
    [oidc, oauth]
}

/// Finds an endpoint of `issuer` (`member`: `jwks_uri`, `introspection_endpoint`)
/// through its discovery document, whose `issuer` must be `issuer` exactly.
pub(crate) async fn discover(
    transport: &Transport,
    (issuer, issuer_url): (&str, &Url),
    member: &str,
    allow_http: bool,
    timeout: Duration,
) -> Result<Url, RefreshError> {
    let mut last = RefreshError::new(RefreshErrorKind::InvalidDiscovery);
    for url in discovery_urls(issuer_url) {
        match fetch(transport, &url, &Validators::default(), timeout).await {
            Ok(Fetched::Body { body, .. }) => {
                return endpoint_of(&body, issuer, member, allow_http);
            }
            Ok(Fetched::NotModified(_)) => {
                return Err(RefreshError::new(RefreshErrorKind::Status(304)));
            }
            // An HTTP error: the provider may publish only the other document.
            Err(e) if matches!(e.kind(), RefreshErrorKind::Status(_)) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn endpoint_of(
    body: &[u8],
    issuer: &str,
    member: &str,
    allow_http: bool,
) -> Result<Url, RefreshError> {
    let invalid = || RefreshError::new(RefreshErrorKind::InvalidDiscovery);
    let doc: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| RefreshError::with_source(RefreshErrorKind::InvalidDiscovery, e))?;
    match doc.get("issuer").and_then(serde_json::Value::as_str) {
        Some(found) if found == issuer => {}
        Some(found) => {
            return Err(RefreshError::new(RefreshErrorKind::IssuerMismatch {
                configured: issuer.to_owned(),
                discovered: found
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(256)
                    .collect(),
            }));
        }
        None => return Err(invalid()),
    }
    let endpoint = doc
        .get(member)
        .and_then(serde_json::Value::as_str)
        .ok_or_else(invalid)?;
    check_url(endpoint, allow_http)
        .map_err(|e| RefreshError::with_source(RefreshErrorKind::InvalidDiscovery, e))
}

fn transport_error(e: reqwest::Error) -> RefreshError {
    let kind = if e.is_timeout() {
        RefreshErrorKind::Timeout
    } else {
        RefreshErrorKind::Connect
    };
    RefreshError::with_source(kind, e)
}

/// Reads `max-age`, `no-cache` and `no-store` from every `Cache-Control` field.
/// Unparseable directives are ignored; a repeated `max-age` keeps the smallest.
pub(crate) fn cache_policy(headers: &http::HeaderMap) -> CachePolicy {
    let mut policy = CachePolicy::default();
    for value in headers.get_all(CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            let (name, arg) = match directive.split_once('=') {
                Some((n, a)) => (n.trim(), Some(a.trim().trim_matches('"'))),
                None => (directive, None),
            };
            if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
                policy.use_interval = true;
            } else if name.eq_ignore_ascii_case("max-age")
                && let Some(secs) = arg.and_then(|a| a.parse::<u64>().ok())
            {
                let age = Duration::from_secs(secs);
                policy.max_age = Some(policy.max_age.map_or(age, |m| m.min(age)));
            }
        }
    }
    policy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_policy() {
        assert!(check_url("https://idp.example/jwks", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/jwks", false).is_ok());
        assert!(check_url("http://127.5.0.1/jwks", false).is_ok());
        assert!(check_url("http://localhost/jwks", false).is_ok());
        assert!(check_url("http://[::1]:9/jwks", false).is_ok());
        let insecure = check_url("http://idp.example/jwks", false).unwrap_err();
        assert_eq!(insecure.kind(), &ConfigErrorKind::InsecureUrl);
        assert!(check_url("http://idp.example/jwks", true).is_ok());
        assert_eq!(
            check_url("ftp://idp.example/jwks", true)
                .unwrap_err()
                .kind(),
            &ConfigErrorKind::UnsupportedScheme
        );
        assert_eq!(
            check_url("not a url", false).unwrap_err().kind(),
            &ConfigErrorKind::InvalidUrl
        );
        // A loopback-looking name that is not loopback.
        assert!(check_url("http://localhost.idp.example/jwks", false).is_err());
    }

    #[test]
    fn discovery_urls_follow_both_specs() {
        let urls =
            |issuer: &str| discovery_urls(&Url::parse(issuer).unwrap()).map(|u| u.to_string());
        assert_eq!(
            urls("https://idp.example"),
            [
                "https://idp.example/.well-known/openid-configuration",
                "https://idp.example/.well-known/oauth-authorization-server"
            ]
        );
        assert_eq!(
            urls("https://idp.example/realms/acme/"),
            [
                "https://idp.example/realms/acme/.well-known/openid-configuration",
                "https://idp.example/.well-known/oauth-authorization-server/realms/acme"
            ]
        );
    }

    #[test]
    fn discovery_documents_are_checked() {
        let ok = br#"{"issuer":"https://idp.example/","jwks_uri":"https://keys.example/jwks"}"#;
        assert_eq!(
            endpoint_of(ok, "https://idp.example/", "jwks_uri", false)
                .unwrap()
                .as_str(),
            "https://keys.example/jwks"
        );
        let err = endpoint_of(ok, "https://idp.example", "jwks_uri", false).unwrap_err();
        assert!(matches!(
            err.kind(),
            RefreshErrorKind::IssuerMismatch { .. }
        ));
        let text = err.to_string();
        assert!(
            text.contains("\"https://idp.example/\"")
                && text.contains("\"https://idp.example\"")
                && text.contains("trailing slash"),
            "{text}"
        );
        for (body, issuer) in [
            (
                &br#"{"issuer":"https://idp.example/"}"#[..],
                "https://idp.example/",
            ),
            (
                br#"{"issuer":"https://idp.example/","jwks_uri":"http://keys.example/jwks"}"#,
                "https://idp.example/",
            ),
            (
                br#"{"issuer":"https://idp.example/","jwks_uri":7}"#,
                "https://idp.example/",
            ),
            (b"[]", "https://idp.example/"),
        ] {
            let err = endpoint_of(body, issuer, "jwks_uri", false).unwrap_err();
            assert_eq!(err.kind(), &RefreshErrorKind::InvalidDiscovery);
        }
    }

    #[test]
    fn cache_control() {
        let mut h = http::HeaderMap::new();
        assert_eq!(cache_policy(&h), CachePolicy::default());
        h.append(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=600"),
        );
        assert_eq!(cache_policy(&h).max_age, Some(Duration::from_secs(600)));
        h.append(
            CACHE_CONTROL,
            HeaderValue::from_static("max-age=\"120\", no-store"),
        );
        let p = cache_policy(&h);
        assert_eq!(p.max_age, Some(Duration::from_secs(120)));
        assert!(p.use_interval);
        let mut no_cache = http::HeaderMap::new();
        no_cache.append(
            CACHE_CONTROL,
            HeaderValue::from_static("No-Cache, max-age=86400"),
        );
        let p = cache_policy(&no_cache);
        assert!(p.use_interval, "no-cache means: use the interval");
        assert_eq!(p.max_age, Some(Duration::from_secs(86_400)));
        let mut bad = http::HeaderMap::new();
        bad.append(
            CACHE_CONTROL,
            HeaderValue::from_static("max-age=-1, max-age=abc"),
        );
        assert_eq!(cache_policy(&bad).max_age, None);
    }
}
