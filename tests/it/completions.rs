//! Shell completions and manual pages come from the command-line definitions: every
//! subcommand `sts-audit --help` lists is in each of them.

use crate::util::*;

/// The subcommands `sts-audit --help` lists (but `help`).
fn subcommands() -> Vec<String> {
    let (code, stdout, stderr) = run(&["--help"]);
    assert_eq!(code, 0, "{stderr}");
    let listed: Vec<String> = stdout
        .lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| line.starts_with("  "))
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .filter(|name| name != "help")
        .collect();
    for expected in ["ingest", "report", "sql", "completions", "man"] {
        assert!(listed.iter().any(|name| name == expected), "{listed:?}");
    }
    listed
}

#[test]
fn completions_name_every_subcommand() {
    let subcommands = subcommands();
    for shell in ["bash", "zsh", "fish"] {
        let (code, script, stderr) = run(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {stderr}");
        for name in &subcommands {
            assert!(script.contains(name.as_str()), "{shell} lacks {name}");
        }
        assert!(script.contains("--lake"), "{shell} lacks the options");
    }
    let (code, _, _) = run(&["completions", "tcsh"]);
    assert_eq!(code, 64, "an unknown shell is a usage error");
}

#[test]
fn man_pages_describe_every_subcommand() {
    let subcommands = subcommands();
    let (code, page, stderr) = run(&["man"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        page.starts_with(".ie") || page.contains(".TH sts-audit 1"),
        "{page}"
    );
    for name in &subcommands {
        assert!(page.contains(name.as_str()), "the page lacks {name}");
    }
    let dir = tempfile::tempdir().unwrap();
    let (code, _, stderr) = run(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    assert!(dir.path().join("sts-audit.1").is_file());
    for name in &subcommands {
        let path = dir.path().join(format!("sts-audit-{name}.1"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert!(text.contains(".TH"), "{path:?} is no manual page");
    }
    let ingest = std::fs::read_to_string(dir.path().join("sts-audit-ingest.1")).unwrap();
    assert!(
        ingest.contains("follow\\-symlinks"),
        "the ingest page lists its options"
    );
}
