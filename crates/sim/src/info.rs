//! The info file: how scripts and tests find the simulator and get tokens without reading code (its shape
//! is documented for users in docs/sandbox.md and docs/simulator.md).

use std::path::Path;

use anyhow::Context;
use serde_json::{Value, json};

use super::seed::Seed;

/// `salesforce_url`, `integration.token_request` (creditlink's app, client credentials) and one entry per
/// demo bank app (`bank_account_id` set) with its client-credentials token request.
pub fn info_json(base_url: &str, seed: &Seed) -> Value {
    let token_url = format!("{base_url}/services/oauth2/token");
    let request = |app: &super::seed::ConnectedAppSpec| {
        json!({"url": token_url, "form": {
            "grant_type": "client_credentials",
            "client_id": app.consumer_key,
            "client_secret": app.consumer_secret,
        }})
    };
    let integration = seed
        .connected_apps
        .iter()
        .find(|a| a.bank_account_id.is_none() && a.run_as.is_some())
        .map(|a| json!({"token_request": request(a)}));
    let banks: Vec<Value> = seed
        .connected_apps
        .iter()
        .filter_map(|a| {
            let account = a.bank_account_id.as_ref()?;
            Some(json!({"name": a.name, "account_id": account, "token_request": request(a)}))
        })
        .collect();
    json!({"salesforce_url": base_url, "integration": integration, "banks": banks})
}

/// Write via a temporary file and rename, so a reader never sees half a file.
pub fn write_atomically(path: &Path, value: &Value) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile_in(dir, path)?;
    let text = serde_json::to_vec_pretty(value)?;
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

fn tempfile_in(dir: &Path, target: &Path) -> anyhow::Result<std::path::PathBuf> {
    let name = target
        .file_name()
        .context("info file path has no file name")?;
    Ok(dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    )))
}
