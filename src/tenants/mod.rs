//! Issuer rules: tenants whose issuers follow a template, found on first use, kept in a
//! bounded set of key stores.
//!
//! An [`IssuerRule`] (given to [`multi_issuer`](crate::JwksAuth::multi_issuer) as
//! [`TrustedIssuer::rule`](crate::TrustedIssuer::rule), beside fixed issuers) is an
//! issuer template with named placeholders, e.g.
//! `https://kc.example.com/realms/{realm}` or `https://{tenant}.auth0.example.com/`, whose
//! key set is found by discovery at the concrete issuer or at a JWKS URL template.
//!
//! **No SSRF by construction.** A placeholder is a whole path segment or a whole DNS
//! label of the host under a fixed suffix of at least two labels (`{t}.example.com`, not
//! `{t}.com`). A value matches a strict character set: in a path segment, ASCII letters,
//! digits, `-`, `_`, `.`, 1 to 64 characters, never `.` or `..`; in a host label,
//! lower-case letters, digits and `-`, 1 to 63 characters, not starting or ending with
//! `-`. So a value can never hold `/`, `@`, `:`, `%`, `?`, `#`, whitespace or non-ASCII,
//! and the scheme, host (but for the placeholder label) and port are the template's.
//! The token's `iss` must be the template's expansion exactly (nothing is normalised);
//! the expansion, and the JWKS URL made from it, are parsed again and their origins
//! checked against the templates'. The discovery document's `issuer` must equal the
//! expanded issuer, as for [`from_issuer`](crate::JwksAuth::from_issuer).
//!
//! **Cheap checks first.** Rules are consulted only after the token's key-free checks,
//! and a token whose `iss` matches no fixed issuer and no rule, or whose tenant the
//! rule's [`allow`](IssuerRule::allow) predicate refuses, is a 401 `invalid_token` with
//! no I/O.
//!
//! **Lazy and bounded.** A rule-matched issuer's key store is made on first use, with
//! the same fetch, refresh and cooldown machinery as a fixed issuer's, and kept in a set
//! of at most [`Refresh::tenant_stores`](crate::Refresh::tenant_stores) stores (default
//! [`TENANT_STORES`](crate::limits::TENANT_STORES), 1,000), least recently used first
//! out: an evicted tenant's next token discovers again. Making a store is charged to a
//! budget shared by the layer's rules ([`Refresh::new_tenants`](crate::Refresh::new_tenants),
//! default a burst of 30, then 3 a second): past it, a token of a *new* tenant gets 503
//! with `Retry-After` at once (never a queue), while known tenants keep working, and the
//! budget refills as time passes. A flood of tokens naming random tenants so costs at
//! most the budget's fetches, and the set's bound in memory.

use std::fmt;
use std::sync::Arc;

use crate::error::{ConfigError, ConfigErrorKind};
use crate::verify::Unverified;

mod stores;
mod template;

pub(crate) use stores::{Fetching, Found, Report, RuleStores};
use template::Template;

/// The user's predicate on a concrete tenant.
type Allow = Arc<dyn Fn(&Tenant<'_>) -> bool + Send + Sync>;

/// Issuers that follow a template, trusted on first use within the layer's bounds (see
/// [Tenants by rule](crate#tenants-by-rule) in the crate docs).
///
/// ```
/// use jwks_auth::{IssuerRule, JwksAuth, TrustedIssuer};
///
/// let realms = IssuerRule::discovered("keycloak", "https://kc.example.com/realms/{realm}")
///     .allow(|tenant| tenant.get("realm").is_some_and(|r| r.starts_with("customer-")));
/// let auth = JwksAuth::multi_issuer([
///     TrustedIssuer::discovered("https://login.example.com/"),
///     TrustedIssuer::rule(realms),
/// ])
/// .audience("orders-api");
/// ```
#[derive(Clone)]
pub struct IssuerRule {
    pub(crate) name: Arc<str>,
    pub(crate) issuer: String,
    /// A JWKS URL template, or `None` for discovery at the concrete issuer.
    pub(crate) jwks: Option<String>,
    /// One key set for every tenant (Entra's shape): `jwks` is a fixed URL.
    pub(crate) shared: bool,
    pub(crate) allow: Option<Allow>,
}

impl fmt::Debug for IssuerRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerRule")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("jwks", &self.jwks)
            .field("shared", &self.shared)
            .field("allow", &self.allow.is_some())
            .finish()
    }
}

impl IssuerRule {
    /// Tokens whose `iss` is `issuer_template` with each placeholder replaced by an
    /// allowed value; the keys are found by discovery at that concrete issuer. `name` is
    /// a fixed label for metrics and status (never a tenant id).
    pub fn discovered(name: impl Into<String>, issuer_template: impl Into<String>) -> Self {
        Self {
            name: Arc::from(name.into()),
            issuer: issuer_template.into(),
            jwks: None,
            shared: false,
            allow: None,
        }
    }

    /// Like [`discovered`](Self::discovered), but the keys are at `jwks_url_template`,
    /// expanded with the same values (it may use any of the issuer's placeholders).
    pub fn jwks(
        name: impl Into<String>,
        issuer_template: impl Into<String>,
        jwks_url_template: impl Into<String>,
    ) -> Self {
        Self {
            jwks: Some(jwks_url_template.into()),
            ..Self::discovered(name, issuer_template)
        }
    }

    /// Issuers that follow `issuer_template` (exactly one placeholder: the tenant id),
    /// whose keys are all in one key set at `jwks_url`, shared by every tenant, each key
    /// naming the issuer it signs for: Microsoft Entra ID's multi-tenant shape
    /// (`https://login.microsoftonline.com/{tenantid}/v2.0` with
    /// `https://login.microsoftonline.com/common/discovery/v2.0/keys`). As Microsoft
    /// documents for multi-tenant validation, a token is accepted only when its `tid`
    /// claim equals the tenant in its `iss`, and the key that verified it has an `issuer`
    /// member equal to the token's `iss` once `{tenantid}` in it is replaced by that
    /// tenant: a key of tenant A (`issuer` naming A) never verifies tenant B's token, and
    /// a key without `issuer` verifies none. One key store serves the rule (one fetch
    /// for all tenants, charged to the budget once).
    pub fn shared_keys(
        name: impl Into<String>,
        issuer_template: impl Into<String>,
        jwks_url: impl Into<String>,
    ) -> Self {
        Self {
            jwks: Some(jwks_url.into()),
            shared: true,
            ..Self::discovered(name, issuer_template)
        }
    }

    /// Only tenants for which `predicate` returns `true` are trusted; it runs before
    /// anything is fetched, on every uncached token of the rule, so it must be cheap
    /// and must not block (an allow-list from your database belongs in your own cache).
    pub fn allow(
        mut self,
        predicate: impl Fn(&Tenant<'_>) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.allow = Some(Arc::new(predicate));
        self
    }
}

/// A concrete tenant of an [`IssuerRule`]: the placeholders' values in a token's `iss`.
#[derive(Debug, Clone, Copy)]
pub struct Tenant<'a> {
    issuer: &'a str,
    names: &'a [String],
    values: &'a [&'a str],
}

impl<'a> Tenant<'a> {
    /// The value of the placeholder `{name}`.
    pub fn get(&self, name: &str) -> Option<&'a str> {
        let i = self.names.iter().position(|n| n == name)?;
        self.values.get(i).copied()
    }

    /// The concrete issuer (the token's `iss`).
    pub fn issuer(&self) -> &'a str {
        self.issuer
    }
}

/// A rule compiled.
pub(crate) struct Compiled {
    pub(crate) name: Arc<str>,
    issuer: Template,
    jwks: Option<Template>,
    /// The one key set of a shared rule.
    shared: Option<String>,
    allow: Option<Allow>,
}

impl fmt::Debug for Compiled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Compiled")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Where a matched tenant's keys are.
pub(crate) struct Matched {
    /// The index of the rule.
    pub(crate) rule: usize,
    /// The JWKS URL, or `None` for discovery at the issuer.
    pub(crate) jwks: Option<String>,
    /// For a shared rule, the tenant (its keys must name it).
    pub(crate) tenant: Option<Arc<str>>,
}

impl Compiled {
    /// Compiles a rule; a template that breaks the rules above is a configuration error.
    pub(crate) fn new(rule: &IssuerRule) -> Result<Self, ConfigError> {
        let issuer = Template::parse(&rule.issuer, None)?;
        if rule.shared {
            let url = rule.jwks.clone().unwrap_or_default();
            if issuer.names.len() != 1 || url.contains(['{', '}']) {
                return Err(ConfigError::new(ConfigErrorKind::IssuerTemplate));
            }
            return Ok(Self {
                name: rule.name.clone(),
                issuer,
                jwks: None,
                shared: Some(url),
                allow: rule.allow.clone(),
            });
        }
        let jwks = rule
            .jwks
            .as_deref()
            .map(|t| Template::parse(t, Some(&issuer.names)))
            .transpose()?;
        Ok(Self {
            name: rule.name.clone(),
            issuer,
            jwks,
            shared: None,
            allow: rule.allow.clone(),
        })
    }

    /// The templates' sample URLs (issuer, and JWKS URL if any), for the transport check.
    pub(crate) fn samples(&self) -> (String, Option<String>) {
        let jwks = self
            .shared
            .clone()
            .or_else(|| self.jwks.as_ref().map(Template::sample));
        (self.issuer.sample(), jwks)
    }

    /// Whether `iss` is a tenant of this rule that its predicate allows: `Some` with the
    /// JWKS URL (if not discovered), after every origin check; for a shared rule, the
    /// shared URL and the tenant.
    fn matches(&self, iss: &str) -> Option<(Option<String>, Option<Arc<str>>)> {
        let values = self.issuer.matches(iss)?;
        if !self.issuer.keeps_origin(iss) {
            return None;
        }
        let tenant = Tenant {
            issuer: iss,
            names: &self.issuer.names,
            values: &values,
        };
        if self.allow.as_ref().is_some_and(|allow| !allow(&tenant)) {
            return None;
        }
        if let Some(url) = &self.shared {
            return Some((Some(url.clone()), Some(Arc::from(values[0]))));
        }
        match &self.jwks {
            None => Some((None, None)),
            Some(template) => {
                let url = template.expand(&values);
                template.keeps_origin(&url).then_some((Some(url), None))
            }
        }
    }
}

/// Whether a shared key set's `key` may verify a token of `tenant` (see
/// [`IssuerRule::shared_keys`]): the token's `tid` is the tenant in its `iss`, and the
/// key's `issuer`, `{tenantid}` replaced by that tenant, is the token's `iss`.
pub(crate) fn shared_key_fits(
    key_issuer: Option<&str>,
    iss: Option<&str>,
    tenant: &str,
    tid: Option<&str>,
) -> bool {
    tid == Some(tenant)
        && iss.is_some_and(|iss| key_issuer.is_some_and(|k| k.replace("{tenantid}", tenant) == iss))
}

/// For a token of a shared key set's rule (`tenant` given), whether the key that verified
/// it (its `issuer` member) may sign for that tenant ([`shared_key_fits`]); any other
/// token fits.
pub(crate) fn fits(
    unverified: &Unverified,
    key_issuer: Option<&str>,
    tenant: Option<&str>,
) -> bool {
    tenant.is_none_or(|tenant| {
        shared_key_fits(
            key_issuer,
            unverified.issuer(),
            tenant,
            unverified.claim_str("tid"),
        )
    })
}

/// Finds the rule a token's `iss` belongs to (the first that matches and allows it).
pub(crate) fn find(rules: &[Compiled], iss: &str) -> Option<Matched> {
    rules.iter().enumerate().find_map(|(rule, compiled)| {
        compiled
            .matches(iss)
            .map(|(jwks, tenant)| Matched { rule, jwks, tenant })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(template: &str) -> Compiled {
        Compiled::new(&IssuerRule::discovered("t", template)).unwrap()
    }

    #[test]
    fn templates_that_are_refused() {
        for bad in [
            "https://kc.example.com/realms/",
            "https://kc.example.com/realms/x{realm}",
            "https://kc.example.com/realms/{realm}x",
            "https://kc.example.com/realms/{}",
            "https://kc.example.com/realms/{a-b}",
            "https://kc.example.com/{a}/{a}",
            "https://{tenant}.com/",
            "https://{tenant}/",
            "https://example.{tenant}.com/",
            "https://kc.example.com:{port}/",
            "ftp://kc.example.com/{a}",
            "kc.example.com/{a}",
            "https://kc.example.com/{a}?x=1",
            "https://user@kc.example.com/{a}",
            "https://kc.example.com/%7Ba%7D/{a}",
            "https://kc.example.com/{a} /",
        ] {
            assert!(
                Compiled::new(&IssuerRule::discovered("t", bad)).is_err(),
                "{bad}"
            );
        }
        for bad_jwks in ["https://kc.example.com/{other}/certs", "https://{a}.com/"] {
            let r = IssuerRule::jwks("t", "https://kc.example.com/realms/{a}", bad_jwks);
            assert!(Compiled::new(&r).is_err(), "{bad_jwks}");
        }
    }

    #[test]
    fn a_token_iss_matches_exactly_with_strict_values() {
        let kc = rule("https://kc.example.com/realms/{realm}");
        assert!(kc.matches("https://kc.example.com/realms/acme").is_some());
        assert!(
            kc.matches("https://kc.example.com/realms/eu-west-1_AbC.9")
                .is_some()
        );
        let long = format!("https://kc.example.com/realms/{}", "a".repeat(64));
        assert!(kc.matches(&long).is_some());
        for bad in [
            "https://kc.example.com/realms/",
            "https://kc.example.com/realms/acme/",
            "https://kc.example.com/realms/a/b",
            "https://kc.example.com/realms/..",
            "https://kc.example.com/realms/.",
            "https://kc.example.com/realms/%2e%2e",
            "https://kc.example.com/realms/a%2fb",
            "https://kc.example.com/realms/a@evil.com",
            "https://kc.example.com/realms/a:1",
            "https://kc.example.com/realms/a b",
            "https://kc.example.com/realms/é",
            "https://kc.example.com/realms/acme?x",
            "https://kc.example.com/realms/acme#x",
            "http://kc.example.com/realms/acme",
            "https://KC.example.com/realms/acme",
            "https://kc.example.com./realms/acme",
            "https://kc.example.com:443/realms/acme",
            "https://user@kc.example.com/realms/acme",
            &format!("https://kc.example.com/realms/{}", "a".repeat(65)),
        ] {
            assert!(kc.matches(bad).is_none(), "{bad}");
        }
        let sub = rule("https://{tenant}.auth.example.com/");
        assert!(sub.matches("https://acme.auth.example.com/").is_some());
        for bad in [
            "https://evil.com/.auth.example.com/",
            "https://a.b.auth.example.com/",
            "https://-a.auth.example.com/",
            "https://a-.auth.example.com/",
            "https://ACME.auth.example.com/",
            "https://xn--e1a.auth.example.com./",
            "https://acme.auth.example.com.evil.com/",
            "https://acme.auth.example.com",
            &format!("https://{}.auth.example.com/", "a".repeat(64)),
        ] {
            assert!(sub.matches(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn the_jwks_template_is_expanded_with_the_same_values_and_the_predicate_runs_first() {
        let r = IssuerRule::jwks(
            "cognito",
            "https://cognito-idp.{region}.amazonaws.com/{pool}",
            "https://cognito-idp.{region}.amazonaws.com/{pool}/.well-known/jwks.json",
        )
        .allow(|t| {
            t.get("region") == Some("eu-west-1") && t.issuer().ends_with(t.get("pool").unwrap())
        });
        let c = Compiled::new(&r).unwrap();
        let iss = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123";
        assert_eq!(
            c.matches(iss),
            Some((Some(format!("{iss}/.well-known/jwks.json")), None))
        );
        assert_eq!(
            c.matches("https://cognito-idp.us-east-1.amazonaws.com/p"),
            None
        );
    }

    #[test]
    fn a_shared_key_fits_only_its_tenants() {
        let iss = "https://login.example.com/acme/v2.0";
        let common = Some("https://login.example.com/{tenantid}/v2.0");
        assert!(shared_key_fits(common, Some(iss), "acme", Some("acme")));
        assert!(!shared_key_fits(common, Some(iss), "acme", Some("globex")));
        assert!(!shared_key_fits(common, Some(iss), "acme", None));
        let own = Some("https://login.example.com/acme/v2.0");
        assert!(shared_key_fits(own, Some(iss), "acme", Some("acme")));
        let other = "https://login.example.com/globex/v2.0";
        assert!(!shared_key_fits(own, Some(other), "globex", Some("globex")));
        assert!(
            !shared_key_fits(None, Some(iss), "acme", Some("acme")),
            "no issuer member"
        );
        // A shared rule has exactly one placeholder and a fixed URL.
        for (template, url) in [
            (
                "https://l.example.com/{a}/{b}",
                "https://l.example.com/keys",
            ),
            (
                "https://l.example.com/{a}",
                "https://l.example.com/{a}/keys",
            ),
        ] {
            assert!(Compiled::new(&IssuerRule::shared_keys("e", template, url)).is_err());
        }
    }
}
