//! A self-contained tour: starts a test identity provider and a protected API on
//! loopback, sends a series of real HTTP requests, and prints what each one got.
//!
//! ```text
//! cargo run --example demo            # the tour, then exit (non-zero if anything surprised)
//! cargo run --example demo -- --serve # keep both running and print curl commands
//! ```

mod common;

use std::time::Duration;

use jwks_auth::testing::{DpopKey, TestIssuer};
use jwks_auth::{Algorithm, Dpop};

struct Step {
    label: &'static str,
    path: &'static str,
    authorization: Option<String>,
    expected: u16,
    /// A `DPoP` proof header.
    dpop: Option<String>,
}

fn bearer(token: &str) -> Option<String> {
    Some(format!("Bearer {token}"))
}

fn tamper(token: &str) -> String {
    // Replace the payload with one that claims another subject; keep the signature.
    use base64::Engine;
    let parts: Vec<&str> = token.split('.').collect();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(parts[1])
        .unwrap_or_default();
    let forged = String::from_utf8_lossy(&payload).replace("user-1", "admin");
    let forged = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(forged);
    format!("{}.{forged}.{}", parts[0], parts[2])
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

async fn run(client: &reqwest::Client, base: &str, steps: &[Step]) -> usize {
    let mut surprises = 0;
    for step in steps {
        let mut request = client.get(format!("{base}{}", step.path));
        if let Some(value) = &step.authorization {
            request = request.header("authorization", value);
        }
        if let Some(proof) = &step.dpop {
            request = request.header("dpop", proof);
        }
        let (status, challenge) = match request.send().await {
            Ok(response) => (
                response.status().as_u16(),
                response
                    .headers()
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_owned(),
            ),
            Err(e) => (0, format!("request failed: {e}")),
        };
        let mark = if status == step.expected {
            "ok"
        } else {
            "UNEXPECTED"
        };
        if status != step.expected {
            surprises += 1;
        }
        println!(
            "{:<36} {:<7} {:>3}  {:<10} {}",
            step.label,
            step.path,
            status,
            mark,
            shorten(&challenge, 120)
        );
    }
    surprises
}

#[tokio::main]
async fn main() {
    let serve = std::env::args().any(|a| a == "--serve");
    let issuer = TestIssuer::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local address");
    let base = format!("http://{addr}");
    // Bearer tokens, and DPoP-bound tokens with their proofs (RFC 9449).
    let auth = issuer.layer().dpop(Dpop::allowed().base_url(&base));
    tokio::spawn(async move {
        let _ = axum::serve(listener, common::routes(auth)).await;
    });

    println!(
        "identity provider: {} (JWKS {})",
        issuer.issuer(),
        issuer.jwks_url()
    );
    println!("protected API:     {base}  (/public, /me, /admin, /health)\n");
    println!(
        "{:<36} {:<7} {:>3}  {:<10} WWW-Authenticate",
        "request", "path", "got", "check"
    );
    println!("{}", "-".repeat(110));

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP client");
    let valid = issuer.token().sign();
    let first = vec![
        Step {
            label: "no token, public route",
            path: "/public",
            authorization: None,
            expected: 200,
            dpop: None,
        },
        Step {
            label: "valid RS256 token",
            path: "/me",
            authorization: bearer(&valid),
            expected: 200,
            dpop: None,
        },
        Step {
            label: "valid ES256 token",
            path: "/me",
            authorization: bearer(&issuer.token().alg(Algorithm::ES256).sign()),
            expected: 200,
            dpop: None,
        },
        Step {
            label: "valid EdDSA token",
            path: "/me",
            authorization: bearer(&issuer.token().alg(Algorithm::EdDSA).sign()),
            expected: 200,
            dpop: None,
        },
        Step {
            label: "no token",
            path: "/me",
            authorization: None,
            expected: 401,
            dpop: None,
        },
        Step {
            label: "Basic credentials",
            path: "/me",
            authorization: Some("Basic dXNlcjpwYXNz".into()),
            expected: 401,
            dpop: None,
        },
        Step {
            label: "'Bearer' without a token",
            path: "/me",
            authorization: Some("Bearer".into()),
            expected: 400,
            dpop: None,
        },
        Step {
            label: "expired token",
            path: "/me",
            authorization: bearer(&issuer.token().expires_in(-3600).sign()),
            expected: 401,
            dpop: None,
        },
        Step {
            label: "wrong audience",
            path: "/me",
            authorization: bearer(&issuer.token().audience("billing-api").sign()),
            expected: 401,
            dpop: None,
        },
        Step {
            label: "tampered payload",
            path: "/me",
            authorization: bearer(&tamper(&valid)),
            expected: 401,
            dpop: None,
        },
        Step {
            label: "alg: none",
            path: "/me",
            authorization: bearer(&format!(
                "{}.{}.",
                "eyJhbGciOiJub25lIn0",
                valid.split('.').nth(1).unwrap_or("")
            )),
            expected: 401,
            dpop: None,
        },
        Step {
            label: "missing scope 'admin'",
            path: "/admin",
            authorization: bearer(&valid),
            expected: 403,
            dpop: None,
        },
        Step {
            label: "with scope 'admin'",
            path: "/admin",
            authorization: bearer(&issuer.token().scope("read admin").sign()),
            expected: 200,
            dpop: None,
        },
    ];
    let mut surprises = run(&client, &base, &first).await;

    // DPoP: a token bound to the client's key is good only with a fresh proof signed by
    // that key, for this method and URL, once.
    let client_key = DpopKey::generate(Algorithm::ES256);
    let bound = issuer.token().bound_to(&client_key).sign();
    let me = format!("{base}/me");
    let proof = client_key.proof("GET", &me, &bound);
    let dpop = |token: &str| Some(format!("DPoP {token}"));
    let dpop_steps = vec![
        Step {
            label: "DPoP: bound token with its proof",
            path: "/me",
            authorization: dpop(&bound),
            expected: 200,
            dpop: Some(proof.clone()),
        },
        Step {
            label: "DPoP: the same proof replayed",
            path: "/me",
            authorization: dpop(&bound),
            expected: 401,
            dpop: Some(proof),
        },
        Step {
            label: "DPoP: stolen token used as bearer",
            path: "/me",
            authorization: bearer(&bound),
            expected: 401,
            dpop: None,
        },
        Step {
            label: "DPoP: proof made for another URL",
            path: "/me",
            authorization: dpop(&bound),
            expected: 401,
            dpop: Some(client_key.proof("GET", &format!("{base}/admin"), &bound)),
        },
        Step {
            label: "DPoP: proof by another key",
            path: "/me",
            authorization: dpop(&bound),
            expected: 401,
            dpop: Some(DpopKey::generate(Algorithm::ES256).proof("GET", &me, &bound)),
        },
    ];
    surprises += run(&client, &base, &dpop_steps).await;

    issuer.rotate().await;
    let fetches = issuer.fetch_count();
    let rotated = vec![
        Step {
            label: "key rotated: new key, first request",
            path: "/me",
            authorization: bearer(&issuer.token().sign()),
            expected: 200,
            dpop: None,
        },
        Step {
            label: "key rotated: retired key",
            path: "/me",
            authorization: bearer(&valid),
            expected: 401,
            dpop: None,
        },
        Step {
            label: "health",
            path: "/health",
            authorization: None,
            expected: 200,
            dpop: None,
        },
    ];
    surprises += run(&client, &base, &rotated).await;
    println!(
        "\nThe rotation cost the identity provider {} fetch(es); {} in all.",
        issuer.fetch_count() - fetches,
        issuer.fetch_count()
    );

    if serve {
        let token = issuer.token().expires_in(3600).sign();
        let admin = issuer.token().expires_in(3600).scope("admin").sign();
        println!("\nServing until Ctrl-C. Try (tokens valid for one hour):\n");
        println!("curl -i {base}/public");
        println!("curl -i {base}/me");
        println!("curl -i -H 'Authorization: Bearer {token}' {base}/me");
        println!("curl -i -H 'Authorization: Bearer {token}' {base}/admin");
        println!("curl -i -H 'Authorization: Bearer {admin}' {base}/admin");
        println!("curl -i {base}/health");
        let _ = tokio::signal::ctrl_c().await;
        return;
    }
    if surprises > 0 {
        eprintln!("\n{surprises} request(s) did not get the expected status");
        std::process::exit(1);
    }
    println!("All requests got the expected answer.");
}
