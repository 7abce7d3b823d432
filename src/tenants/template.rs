//! Issuer templates: compiled once, matched against a token's `iss` with strict values,
//! expanded, and their origin checked (see the [module docs](super)).

use crate::error::{ConfigError, ConfigErrorKind};

/// The longest value a path-segment placeholder matches (a Cognito pool id or an Entra
/// tenant GUID fits).
const MAX_SEGMENT_VALUE: usize = 64;

/// The longest value a host-label placeholder matches (a DNS label).
const MAX_LABEL_VALUE: usize = 63;

/// One piece of a compiled template.
#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    /// A whole path segment: the placeholder with this index.
    Segment(usize),
    /// A whole host label.
    Label(usize),
}

/// A template compiled: its pieces, its placeholders' names, and the origin everything
/// expanded from it must keep.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    parts: Vec<Part>,
    pub(super) names: Vec<String>,
    scheme: String,
    /// The host with each placeholder label as `*` (e.g. `*.auth0.example.com`).
    host: String,
    port: Option<u16>,
}

impl Template {
    /// Compiles `template`; its placeholders must be among `known` when given (a JWKS
    /// URL template uses the issuer's).
    pub(crate) fn parse(template: &str, known: Option<&[String]>) -> Result<Self, ConfigError> {
        let bad = || ConfigError::new(ConfigErrorKind::IssuerTemplate);
        let (scheme, rest) = template.split_once("://").ok_or_else(bad)?;
        if scheme != "https" && scheme != "http" {
            return Err(bad());
        }
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port.parse::<u16>().map_err(|_| bad())?)),
            None => (authority, None),
        };
        let mut names: Vec<String> = Vec::new();
        let mut placeholder = |piece: &str| -> Result<Option<usize>, ConfigError> {
            let Some(name) = piece.strip_prefix('{').and_then(|p| p.strip_suffix('}')) else {
                return if piece.contains(['{', '}']) {
                    Err(bad())
                } else {
                    Ok(None)
                };
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(bad());
            }
            match known {
                Some(known) => known
                    .iter()
                    .position(|n| n == name)
                    .map(Some)
                    .ok_or_else(bad),
                None if names.iter().any(|n| n == name) => Err(bad()),
                None => {
                    names.push(name.to_owned());
                    Ok(Some(names.len() - 1))
                }
            }
        };
        let mut parts = vec![Part::Text(format!("{scheme}://"))];
        let mut host_pattern = Vec::new();
        let labels: Vec<&str> = host.split('.').collect();
        for (i, label) in labels.iter().enumerate() {
            if i > 0 {
                parts.push(Part::Text(".".into()));
            }
            match placeholder(label)? {
                // A whole label, under a fixed suffix of at least two labels.
                Some(index) if i + 2 < labels.len() => {
                    parts.push(Part::Label(index));
                    host_pattern.push("*".to_owned());
                }
                Some(_) => return Err(bad()),
                None if label.is_empty() => return Err(bad()),
                None => {
                    parts.push(Part::Text((*label).to_owned()));
                    host_pattern.push(label.to_ascii_lowercase());
                }
            }
        }
        if let Some(port) = port {
            parts.push(Part::Text(format!(":{port}")));
        }
        for segment in path.split('/').skip(1) {
            parts.push(Part::Text("/".into()));
            match placeholder(segment)? {
                Some(index) => parts.push(Part::Segment(index)),
                None => parts.push(Part::Text(segment.to_owned())),
            }
        }
        if template.contains(['?', '#', '@', '%']) || template.chars().any(char::is_whitespace) {
            return Err(bad());
        }
        let names = match known {
            Some(known) => known.to_vec(),
            None if names.is_empty() => return Err(bad()),
            None => names,
        };
        // Adjacent texts merged: matching walks fewer pieces.
        let mut merged: Vec<Part> = Vec::new();
        for part in parts {
            match (merged.last_mut(), part) {
                (Some(Part::Text(a)), Part::Text(b)) => a.push_str(&b),
                (_, part) => merged.push(part),
            }
        }
        Ok(Self {
            parts: merged,
            names,
            scheme: scheme.to_owned(),
            host: host_pattern.join("."),
            port,
        })
    }

    /// The template with `x` for every placeholder (to check its URL once, at validation).
    pub(crate) fn sample(&self) -> String {
        self.expand(&vec!["x"; self.names.len()])
    }

    /// The placeholders' values if `text` is exactly this template's expansion with
    /// allowed values.
    pub(super) fn matches<'t>(&self, text: &'t str) -> Option<Vec<&'t str>> {
        let mut values = vec![""; self.names.len()];
        let mut rest = text;
        for part in &self.parts {
            match part {
                Part::Text(t) => rest = rest.strip_prefix(t.as_str())?,
                Part::Segment(i) => {
                    let len = rest
                        .bytes()
                        .take_while(|b| {
                            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
                        })
                        .count();
                    let value = &rest[..len];
                    if len == 0 || len > MAX_SEGMENT_VALUE || value == "." || value == ".." {
                        return None;
                    }
                    values[*i] = value;
                    rest = &rest[len..];
                }
                Part::Label(i) => {
                    let len = rest
                        .bytes()
                        .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                        .count();
                    let value = &rest[..len];
                    if len == 0
                        || len > MAX_LABEL_VALUE
                        || value.starts_with('-')
                        || value.ends_with('-')
                    {
                        return None;
                    }
                    values[*i] = value;
                    rest = &rest[len..];
                }
            }
        }
        rest.is_empty().then_some(values)
    }

    /// The template with these values.
    pub(super) fn expand(&self, values: &[&str]) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Segment(i) | Part::Label(i) => out.push_str(values[*i]),
            }
        }
        out
    }

    /// Whether `url` parses to this template's origin (scheme, host under the pattern,
    /// port): what an expansion must keep.
    pub(super) fn keeps_origin(&self, url: &str) -> bool {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return false;
        };
        let host = parsed.host_str().unwrap_or_default();
        let pattern: Vec<&str> = self.host.split('.').collect();
        let labels: Vec<&str> = host.split('.').collect();
        let default = if self.scheme == "https" { 443 } else { 80 };
        parsed.scheme() == self.scheme
            && parsed.username().is_empty()
            && parsed.password().is_none()
            && parsed.port_or_known_default() == Some(self.port.unwrap_or(default))
            && labels.len() == pattern.len()
            && labels
                .iter()
                .zip(&pattern)
                .all(|(l, p)| *p == "*" || l == p)
    }
}
