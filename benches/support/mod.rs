//! Shared by the benches: one criterion configuration, and reading criterion's own
//! estimates to print ratios.

/// The median, in nanoseconds, criterion recorded for `group/function` in this run.
pub(crate) fn median_ns(group: &str, function: &str) -> Option<f64> {
    let dir = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let path = format!("{dir}/criterion/{group}/{function}/new/estimates.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v["median"]["point_estimate"].as_f64()
}

/// The benches' criterion settings (short runs; a shared machine is noisy either way,
/// which is why every figure is reported next to a baseline from the same run).
pub(crate) fn criterion(sample_size: usize) -> criterion::Criterion {
    criterion::Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(sample_size)
        .configure_from_args()
}

/// jsonwebtoken's name for one of the crate's algorithms (for the baselines).
#[allow(dead_code, reason = "not every bench has a jsonwebtoken baseline")]
pub(crate) fn jwt_alg(alg: jwks_auth::Algorithm) -> jsonwebtoken::Algorithm {
    alg.as_str()
        .parse()
        .expect("every jwks-auth algorithm is a jsonwebtoken one")
}
