//! The layers of `src/`, enforced: a top-level module may use only modules below it, so no two
//! modules can reach each other. The graph is read from the code (`crate::` paths, `use
//! crate::{…}` groups, and `super::` from a top-level file), outside comments and `#[cfg(test)]`
//! modules. `cargo test --test architecture -- --nocapture` prints it; docs/architecture.md
//! explains it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first. A module may use a module of a lower layer; modules in one layer may not use
/// each other.
const LAYERS: &[&[&str]] = &[
    &["model", "fsutil", "owner_only"],
    &["source"],
    &["control"],
    &["record"],
    &["app"],
    &["report", "config"],
    &["ui"],
    &["cli"],
    &["runtime"],
    &["lib", "testing"],
    &["main"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("src")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The file's code lines with their numbers: comments and `#[cfg(test)] mod … { … }` left out.
fn code_lines(text: &str) -> Vec<(usize, &str)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let next = lines.get(i + 1).map(|l| l.trim_start()).unwrap_or("");
        if line.trim() == "#[cfg(test)]"
            && (next.starts_with("mod ") || next.starts_with("pub mod "))
            && next.ends_with('{')
        {
            let indent = &lines[i + 1][..lines[i + 1].len() - next.len()];
            let close = format!("{indent}}}");
            i += 2;
            while i < lines.len() && lines[i] != close {
                i += 1;
            }
            i += 1;
            continue;
        }
        if !line.trim_start().starts_with("//") {
            out.push((i + 1, line));
        }
        i += 1;
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules a file's code names.
fn uses(text: &str, top_level_file: bool) -> BTreeMap<String, usize> {
    let mut found = BTreeMap::new();
    let lines = code_lines(text);
    let code: String = lines.iter().map(|(_, l)| format!("{l}\n")).collect();
    let line_of = |offset: usize| {
        let n = code[..offset].matches('\n').count();
        lines.get(n).map(|(no, _)| *no).unwrap_or(0)
    };
    let mut prefixes = vec!["crate::"];
    if top_level_file {
        // From src/x.rs or src/x/mod.rs, `super::` is the crate root.
        prefixes.push("super::");
    }
    for prefix in prefixes {
        for (at, _) in code.match_indices(prefix) {
            let before = code[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let rest = &code[at + prefix.len()..];
            if let Some(group) = rest.strip_prefix('{') {
                // `use crate::{a::b, c}`: the first name of each item at depth one.
                let mut depth = 1;
                let mut item_start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        ',' if depth == 1 => item_start = true,
                        c if item_start && depth == 1 && c.is_ascii_alphabetic() => {
                            item_start = false;
                            found
                                .entry(ident_at(&group[i..]).to_string())
                                .or_insert_with(|| line_of(at));
                        }
                        _ => {}
                    }
                }
            } else {
                let name = ident_at(rest);
                if !name.is_empty() {
                    found.entry(name.to_string()).or_insert_with(|| line_of(at));
                }
            }
        }
    }
    found.remove("self");
    found
}

/// `(from, to) → first place seen`.
fn graph() -> BTreeMap<(String, String), String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).expect("under src");
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect();
        let module = parts[0].trim_end_matches(".rs").to_string();
        let top_level_file = parts.len() == 1 || (parts.len() == 2 && parts[1] == "mod.rs");
        let text = std::fs::read_to_string(&file).expect("read");
        for (to, line) in uses(&text, top_level_file) {
            if to != module && layer(&to).is_some() {
                edges
                    .entry((module.clone(), to))
                    .or_insert_with(|| format!("src/{}:{line}", rel.display()));
            }
        }
    }
    edges
}

#[test]
fn every_module_uses_only_the_layers_below_it() {
    let edges = graph();
    let mut by_module: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (from, to) in edges.keys() {
        by_module.entry(from).or_default().insert(to);
    }
    println!("module graph (what each top-level module of src/ uses):");
    for (from, tos) in &by_module {
        let tos: Vec<&str> = tos.iter().copied().collect();
        println!("  {from:8} → {}", tos.join(", "));
    }
    let mut wrong = Vec::new();
    for ((from, to), place) in &edges {
        match (layer(from), layer(to)) {
            (None, _) => wrong.push(format!("{from}: not in LAYERS (tests/architecture.rs)")),
            (Some(f), Some(t)) if t >= f => {
                wrong.push(format!("{from} uses {to}, which is not below it ({place})"))
            }
            _ => {}
        }
    }
    wrong.dedup();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_reader_sees_groups_super_and_skips_comments_and_test_modules() {
    let text = "use crate::{app::State, model::{a, b}, ui};\n// crate::runtime\n\
                fn f() { crate::record::x(); super::cli::y(); }\n\
                #[cfg(test)]\nmod tests {\n    use crate::main;\n}\n";
    let found: Vec<String> = uses(text, true).into_keys().collect();
    assert_eq!(found, ["app", "cli", "model", "record", "ui"]);
    let nested: Vec<String> = uses(text, false).into_keys().collect();
    assert_eq!(nested, ["app", "model", "record", "ui"]);
}
