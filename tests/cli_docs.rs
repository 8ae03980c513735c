//! What the command line documents about itself: the README's Options block names every option
//! `--help` has (and no other), and the completion scripts and the manual page are generated from
//! the same definition.

use std::collections::BTreeSet;
use std::process::Command;

fn lbtop(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_lbtop"))
        .args(args)
        .output()
        .expect("run lbtop");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf8")
}

/// `--long` and `-x` option names in `text`.
fn options(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for word in text.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']') {
        let name: String = word
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
            .collect();
        let long = name.starts_with("--") && name.len() > 3;
        let short = name.len() == 2 && name.starts_with('-') && name != "--";
        if long || short {
            found.insert(name);
        }
    }
    found
}

#[test]
fn the_readme_options_block_matches_help() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).expect("README");
    let section = readme
        .split("\n## Options\n")
        .nth(1)
        .expect("an Options section");
    let block = section
        .split("```")
        .nth(1)
        .expect("a code block in Options");
    // The live view's options (the block's first part, before the commands).
    let live = block.split("\nlbtop record").next().expect("options");
    let help = lbtop(&["--help"]);
    let help_options: String = help
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .map(|l| l.split("  ").find(|p| !p.trim().is_empty()).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    // The option column of each line, not its description.
    let readme_options: String = live
        .lines()
        .map(|l| l.trim_start().split("  ").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let (in_help, in_readme) = (options(&help_options), options(&readme_options));
    let missing: Vec<_> = in_help.difference(&in_readme).collect();
    let extra: Vec<_> = in_readme.difference(&in_help).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "README Options block: missing {missing:?}, not in --help {extra:?}"
    );
    // Every command --help lists is in the block too.
    let commands = help
        .split("Commands:")
        .nth(1)
        .and_then(|c| c.split("Options:").next())
        .expect("commands");
    for line in commands.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        if name != "help" {
            assert!(block.contains(name), "README Options block lacks `{name}`");
        }
    }
}

#[test]
fn completions_and_the_manual_page_are_generated() {
    for (shell, mark) in [
        ("bash", "complete -F _lbtop"),
        ("zsh", "#compdef lbtop"),
        ("fish", "complete -c lbtop"),
    ] {
        let script = lbtop(&["completions", shell]);
        assert!(script.contains(mark), "{shell}: {script:.200}");
        for option in ["router", "nodes", "proc-root", "replay", "drain"] {
            assert!(script.contains(option), "{shell} completion lacks {option}");
        }
    }
    // bash itself reads the bash script without a syntax error.
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("lbtop.bash");
    std::fs::write(&file, lbtop(&["completions", "bash"])).expect("write");
    let status = Command::new("bash")
        .arg("-n")
        .arg(&file)
        .status()
        .expect("bash");
    assert!(status.success());
    let man = lbtop(&["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH lbtop 1"),
        "{man:.200}"
    );
    for part in [
        ".TH lbtop 1",
        ".SH NAME",
        ".SH OPTIONS",
        "\\-\\-router",
        "\\-\\-proc\\-root",
    ] {
        assert!(man.contains(part), "the manual page lacks {part}");
    }
}

#[test]
fn once_alone_prints_json() {
    let out = lbtop(&[
        "--once",
        "--interval",
        "0s",
        "--router",
        "none",
        "--nodes",
        "local",
    ]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).expect("JSON");
    assert_eq!(v["schema"], 1);
}
