//! Helpers of the edge-hardening tests: a sandbox whose secrets the test knows.

use creditlink::sandbox::{Sandbox, SandboxOptions};
use creditlink::sim::SimOptions;
use tempfile::TempDir;

/// The listener secret of [`sandbox_with_known_secret`].
pub const LISTENER_SECRET: &str = "c0ffee5ecret0utb0undmessag3s7a1l0r3d";

/// A sandbox (no bureau automation) whose Outbound Message listener secret is [`LISTENER_SECRET`].
pub async fn sandbox_with_known_secret(extra: &[(&str, &str)]) -> (Sandbox, TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut opts = SandboxOptions::new(
        dir.path().join("data"),
        "127.0.0.1:0".parse().expect("literal"),
    );
    opts.sim = SimOptions::default();
    opts.automate = false;
    opts.overrides = crate::e2e_support::fast_retries();
    opts.overrides.push((
        "CREDITLINK_SANDBOX_LISTENER_SECRET".into(),
        LISTENER_SECRET.into(),
    ));
    opts.overrides.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let sb = Sandbox::start(opts).await.expect("sandbox starts");
    (sb, dir)
}
