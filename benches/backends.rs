//! Signature verification with each jsonwebtoken crypto backend, same keys, same tokens.
//!
//! ```text
//! cargo bench --all-features --bench backends
//! ```
//!
//! Both backends are called directly through their `CryptoProvider`'s verifier factory,
//! exactly as the crate's request path does. Prints a table of medians and the
//! rust_crypto / aws_lc_rs ratio, read from criterion's own estimates.

mod support;

use std::hint::black_box;

use criterion::Criterion;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::crypto::{CryptoProvider, aws_lc, rust_crypto};
use jwks_auth::Algorithm;
use jwks_auth::testing::TestKey;
use support::jwt_alg;
use support::median_ns;

const ALGS: [Algorithm; 5] = [
    Algorithm::RS256,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

const BACKENDS: [(&str, &CryptoProvider); 2] = [
    ("aws_lc_rs", &aws_lc::DEFAULT_PROVIDER),
    ("rust_crypto", &rust_crypto::DEFAULT_PROVIDER),
];

fn decoding_key(jwk: &serde_json::Value) -> DecodingKey {
    let s = |name: &str| jwk[name].as_str().expect("member");
    match s("kty") {
        "RSA" => DecodingKey::from_rsa_components(s("n"), s("e")).expect("rsa"),
        "EC" => DecodingKey::from_ec_components(s("x"), s("y")).expect("ec"),
        _ => DecodingKey::from_ed_components(s("x")).expect("ed"),
    }
}

fn bench(c: &mut Criterion) {
    for alg in ALGS {
        let key = TestKey::generate(alg, "k");
        let decoding = decoding_key(&key.jwk());
        let message = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEiLCJleHAiOjE4MDAwMDAwMDB9".to_vec();
        let signature = key.sign(alg, &message);
        let mut group = c.benchmark_group(format!("verify_{alg:?}"));
        for (name, provider) in BACKENDS {
            let verifier = (provider.verifier_factory)(&jwt_alg(alg), &decoding).expect("verifier");
            assert!(
                verifier.verify(&message, &signature).is_ok(),
                "{name} {alg:?}"
            );
            group.bench_function(name, |b| {
                b.iter(|| {
                    let v =
                        (provider.verifier_factory)(&jwt_alg(alg), black_box(&decoding)).unwrap();
                    v.verify(black_box(&message), black_box(&signature)).is_ok()
                })
            });
        }
        group.finish();
    }
}

fn main() {
    let mut c = support::criterion(30);
    bench(&mut c);
    c.final_summary();

    println!("\nmedian signature check (one core), same key and token:");
    println!(
        "{:<8} {:>14} {:>14} {:>10}",
        "alg", "aws_lc_rs", "rust_crypto", "ratio"
    );
    for alg in ALGS {
        let group = format!("verify_{alg:?}");
        if let (Some(a), Some(r)) = (
            median_ns(&group, "aws_lc_rs"),
            median_ns(&group, "rust_crypto"),
        ) {
            println!(
                "{:<8} {:>11.1} µs {:>11.1} µs {:>9.1}x",
                format!("{alg:?}"),
                a / 1000.0,
                r / 1000.0,
                r / a
            );
        }
    }
}
