//! Cross-checks that need an outside tool (a PyPI package) skip *visibly* when it is missing: a `SKIPPED`
//! line on stderr (shown with `--nocapture`, and counted in `target/test-skips.txt` so a plain `cargo test`
//! leaves a trace), and under `CI=true` a missing tool fails the test instead, because CI installs every tool
//! and a skip there would hide a broken setup.

use std::io::Write;

/// Reports that `check` cannot run because `tool` is missing (`install` says how to get it). Panics under
/// `CI=true`; otherwise records the skip and returns, so the caller returns early.
pub fn skip(check: &str, tool: &str, install: &str) {
    let line = format!("SKIPPED {check}: {tool} is not available ({install})");
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{line}; CI=true requires every cross-check to run");
    }
    eprintln!("{line}");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-skips.txt");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = writeln!(file, "{} {line}", chrono::Utc::now().to_rfc3339());
    }
}
