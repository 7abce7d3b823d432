//! The `htu` comparison (RFC 9449 §4.3, step 9): the proof's URI and the request's, both
//! without query and fragment, compared after RFC 3986 §6.2.2 and §6.2.3 normalisation.
//!
//! Normalised: scheme and host lower-cased, the default port (80 for `http`, 443 for
//! `https`) dropped, an empty path made `/`, percent-encodings of unreserved characters
//! decoded and the others' hex digits upper-cased, dot segments removed. Refused (no
//! match): anything but `http` and `https`, userinfo, an empty host, a port that is not
//! a number, bytes outside ASCII's printable range, broken percent-encodings.

/// `url` without its query and fragment, normalised; `None` if it is not an absolute
/// `http(s)` URI this comparison accepts.
pub(crate) fn normalize(url: &str) -> Option<String> {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    if url.bytes().any(|b| !(0x21..0x7f).contains(&b)) {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => "80",
        "https" => "443",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') || authority.is_empty() {
        return None;
    }
    // A bracketed IPv6 literal keeps its colons.
    let (host, port) = match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => (&authority[..i], Some(&authority[i + 1..])),
        _ => (authority, None),
    };
    if host.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(url.len());
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&percent_normalize(&host.to_ascii_lowercase())?);
    match port {
        Some(p) if !p.bytes().all(|b| b.is_ascii_digit()) => return None,
        Some("") => {}
        Some(p) => {
            let p = p.trim_start_matches('0');
            let p = if p.is_empty() { "0" } else { p };
            if p != default_port {
                out.push(':');
                out.push_str(p);
            }
        }
        None => {}
    }
    let path = percent_normalize(path)?;
    out.push_str(&remove_dot_segments(if path.is_empty() {
        "/"
    } else {
        &path
    }));
    Some(out)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Decodes percent-encoded unreserved characters, upper-cases the other encodings' hex.
fn percent_normalize(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return None;
            }
            let value = u8::from_str_radix(hex, 16).ok()?;
            if is_unreserved(value) {
                out.push(value as char);
            } else {
                out.push('%');
                out.push_str(&hex.to_ascii_uppercase());
            }
            i += 3;
        } else {
            out.push(bytes[i] as char);
            i += 1;
        }
    }
    Some(out)
}

/// RFC 3986 §5.2.4, on an absolute path.
fn remove_dot_segments(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    let mut parts = path.split('/').skip(1).peekable();
    let mut trailing = false;
    while let Some(seg) = parts.next() {
        let last = parts.peek().is_none();
        match seg {
            "." => trailing = last,
            ".." => {
                segments.pop();
                trailing = last;
            }
            s => {
                segments.push(s);
                trailing = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing || out.is_empty() {
        out.push('/');
    }
    out
}

/// Whether a request's path is one the proof can be compared with as routed: no dot
/// segment (raw, percent-encoded in any case, or half-encoded like `.%2E`) and no
/// percent-encoded unreserved character. The comparison normalises both away, but the
/// router routes the raw path: `/api/%2e%2e/admin` would compare as `/admin` and route
/// as a tenant called `..`; `/%6De` would compare as `/me` and route elsewhere.
pub(crate) fn routable(path: &str) -> bool {
    let bytes = path.as_bytes();
    let encoded_unreserved = bytes.windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(is_unreserved)
    });
    !encoded_unreserved && !path.split('/').any(|s| s == "." || s == "..")
}

/// The URL a request was sent to, as the client saw it: `base` (scheme, host, optional
/// port and path prefix, from the configuration) followed by the request's path.
pub(crate) fn request_url(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    let path = if path.starts_with('/') { path } else { "/" };
    let mut url = String::with_capacity(base.len() + path.len());
    url.push_str(base);
    url.push_str(path);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_forms_normalise_alike() {
        let n = |s| normalize(s).unwrap();
        assert_eq!(n("https://api.example.com/x"), "https://api.example.com/x");
        assert_eq!(
            n("HTTPS://API.Example.COM:443/x"),
            "https://api.example.com/x"
        );
        assert_eq!(n("http://h:80"), "http://h/");
        assert_eq!(n("http://h:8080/a/./b/../c"), "http://h:8080/a/c");
        assert_eq!(n("http://h/%7euser/%2f"), "http://h/~user/%2F");
        assert_eq!(n("http://h/x?q=1#frag"), "http://h/x");
        assert_eq!(n("http://[::1]:3000/x"), "http://[::1]:3000/x");
        assert_eq!(n("http://h/a/.."), "http://h/");
        // The path's case matters; the host's does not.
        assert_ne!(n("http://h/A"), n("http://h/a"));
    }

    #[test]
    fn what_is_refused() {
        for bad in [
            "ftp://h/x",
            "//h/x",
            "/x",
            "http://user@h/x",
            "http:///x",
            "http://h:8o/x",
            "http://h/%zz",
            "http://h/%4",
            "http://h/ x",
            "http://h/\u{e9}",
            "",
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_paths_routed_as_compared_are_routable() {
        for ok in [
            "/",
            "/me",
            "/files/a%20b",
            "/files/a%2Fb",
            "/a.b/c..d/.e",
            "/x/",
        ] {
            assert!(routable(ok), "{ok}");
        }
        for bad in [
            "/../admin",
            "/./me",
            "/%2e%2e/admin",
            "/%2E%2e/admin",
            "/.%2E/admin",
            "/%2e/me",
            "/%6De",
            "/a/..",
            "/~%7e",
        ] {
            assert!(!routable(bad), "{bad}");
        }
    }

    #[test]
    fn request_urls_join_a_base_and_a_path() {
        assert_eq!(
            request_url("https://a.example/", "/x"),
            "https://a.example/x"
        );
        assert_eq!(
            request_url("https://a.example/api", "/x"),
            "https://a.example/api/x"
        );
        assert_eq!(request_url("https://a.example", "*"), "https://a.example/");
    }
}
