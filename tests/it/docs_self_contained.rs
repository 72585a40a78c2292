//! The repo explains its own contracts: a clone has no design notes or style guide beside it, so no file in
//! it may send a reader to one (a sibling `shared` folder, the design document by name or section, the style guide, the
//! reference notes), and every relative link in the Markdown docs must lead to a file of the repo.

use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Places outside the repo that earlier notes pointed to. Spelled in pieces so this file does not match.
fn outside_pointers() -> Vec<String> {
    [
        ["../", "shared"],
        ["DESIGN", ".md"],
        ["DESIGN", " §"],
        ["STYLE", ".md"],
        ["reference", "/salesforce-wire"],
        ["reference", "/delivery"],
        ["reference", "/domain"],
    ]
    .iter()
    .map(|parts| parts.concat())
    .collect()
}

/// Every text file the repo ships (sources, docs, configs, mappings, scripts), not build output.
fn repo_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') && name != ".ci" || name == "target" || name == "node_modules" {
            continue;
        }
        if path.is_dir() {
            repo_files(&path, out);
        } else if [
            "rs", "md", "toml", "sh", "py", "js", "json", "yml", "yaml", "service",
        ]
        .iter()
        .any(|ext| path.extension().is_some_and(|e| e == *ext))
            || name == "run"
            || name == "Dockerfile"
        {
            out.push(path);
        }
    }
}

#[test]
fn no_file_points_outside_the_repo() {
    let mut files = Vec::new();
    repo_files(Path::new(ROOT), &mut files);
    assert!(files.len() > 100, "walked only {} files", files.len());
    let pointers = outside_pointers();
    let mut found = Vec::new();
    for file in &files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            if let Some(p) = pointers.iter().find(|p| line.contains(p.as_str())) {
                let rel = file.strip_prefix(ROOT).unwrap_or(file);
                found.push(format!(
                    "{}:{}: `{p}`: {}",
                    rel.display(),
                    n + 1,
                    line.trim()
                ));
            }
        }
    }
    assert!(
        found.is_empty(),
        "these lines send a reader outside the repo:\n{}",
        found.join("\n")
    );
}

#[test]
fn relative_links_in_the_docs_lead_to_files() {
    let mut docs = vec![
        PathBuf::from(ROOT).join("README.md"),
        PathBuf::from(ROOT).join("ARCHITECTURE.md"),
        PathBuf::from(ROOT).join("BENCHMARKS.md"),
    ];
    repo_files(&Path::new(ROOT).join("docs"), &mut docs);
    let link = regex::Regex::new(r"\]\(([^)\s]+)\)").expect("regex");
    let mut broken = Vec::new();
    for doc in docs
        .iter()
        .filter(|d| d.extension().is_some_and(|e| e == "md"))
    {
        let text = std::fs::read_to_string(doc).expect("doc");
        for target in link.captures_iter(&text).map(|c| c[1].to_owned()) {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let path = target.split('#').next().unwrap_or_default();
            let resolved = doc.parent().expect("dir").join(path);
            if !resolved.exists() {
                broken.push(format!("{}: ({target})", doc.display()));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn every_config_section_is_in_the_config_page() {
    let config =
        std::fs::read_to_string(Path::new(ROOT).join("config/creditlink.toml")).expect("config");
    let page =
        std::fs::read_to_string(Path::new(ROOT).join("docs/config.md")).expect("docs/config.md");
    let header = regex::Regex::new(r"(?m)^#?\s*(\[\[?[a-z_.]+\]\]?)\s*$").expect("regex");
    let sections: Vec<String> = header
        .captures_iter(&config)
        .map(|c| c[1].to_owned())
        .collect();
    assert!(sections.len() >= 10, "{sections:?}");
    let missing: Vec<&String> = sections
        .iter()
        .filter(|s| !page.contains(&format!("`{s}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/config.md does not describe {missing:?}"
    );
}
