//! `c10k compare` and `c10k compress` as a user runs them, on copies of the bench
//! crate's fixture folder.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/tests/fixtures/results")
}

/// A copy of the fixture without the cells whose name starts with `drop` (when given),
/// with env.json's plan set to the cells kept.
fn copy(name: &str, drop: Option<&str>) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("c10k-compare-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("cells")).expect("cells dir");
    let mut kept = 0;
    for e in std::fs::read_dir(fixture().join("cells")).expect("fixture cells") {
        let p = e.expect("entry").path();
        let file = p.file_name().expect("name").to_string_lossy().into_owned();
        if drop.is_some_and(|d| file.starts_with(d)) {
            continue;
        }
        std::fs::copy(&p, dir.join("cells").join(&file)).expect("copy cell");
        kept += 1;
    }
    let text = std::fs::read_to_string(fixture().join("env.json")).expect("env.json");
    let mut env: serde_json::Value = serde_json::from_str(&text).expect("env parses");
    env["planned_cells"] = serde_json::json!(kept);
    std::fs::write(dir.join("env.json"), env.to_string()).expect("write env");
    dir
}

fn c10k(args: &[&Path]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_c10k"));
    for a in args {
        cmd.arg(a);
    }
    cmd.output().expect("run c10k")
}

#[test]
fn compare_exits_non_zero_only_when_asked_and_a_verdict_changed() {
    let a = copy("a", None);
    let b = copy("b", Some("block__"));
    let flag = Path::new("--fail-on-verdict-change");
    let cmp = Path::new("compare");

    let same = c10k(&[cmp, &a, &a, flag]);
    let text = String::from_utf8_lossy(&same.stdout);
    assert!(same.status.success(), "{text}{}", String::from_utf8_lossy(&same.stderr));
    assert!(text.contains(&format!("Verdicts: 0 of {} changed", bench::claims::CLAIMS.len())), "{text}");

    let changed = c10k(&[cmp, &a, &b]);
    let text = String::from_utf8_lossy(&changed.stdout);
    assert!(changed.status.success(), "without the flag a change is reported, not failed:\n{text}");
    assert!(text.contains("CHANGED") && text.lines().any(|l| l.contains("C3") && l.contains("CHANGED")), "{text}");

    let failed = c10k(&[cmp, &a, &b, flag]);
    assert_eq!(failed.status.code(), Some(1), "{}", String::from_utf8_lossy(&failed.stderr));

    let json = c10k(&[cmp, &a, &b, Path::new("--json"), Path::new("-")]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).expect("--json - prints JSON");
    assert!(v["verdicts"].as_array().is_some_and(|vs| vs.iter().any(|x| x["id"] == "C3" && x["changed"] == true)));

    // A folder still being written (fewer cells than planned) is refused with the reason.
    let text = std::fs::read_to_string(b.join("env.json")).expect("env");
    let mut env: serde_json::Value = serde_json::from_str(&text).expect("env parses");
    env["planned_cells"] = serde_json::json!(1000);
    std::fs::write(b.join("env.json"), env.to_string()).expect("write env");
    let partial = c10k(&[cmp, &a, &b]);
    let err = String::from_utf8_lossy(&partial.stderr);
    assert_eq!(partial.status.code(), Some(2), "{err}");
    assert!(err.contains("partial results folder") && err.contains("of 1000 planned cells"), "{err}");

    // Compressing a folder leaves what compare reads unchanged.
    let before = String::from_utf8_lossy(&c10k(&[cmp, &a, &a, Path::new("--all")]).stdout).into_owned();
    let out = c10k(&[Path::new("compress"), &a]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let after = String::from_utf8_lossy(&c10k(&[cmp, &a, &a, Path::new("--all")]).stdout).into_owned();
    assert_eq!(before, after);
    for d in [a, b] {
        let _ = std::fs::remove_dir_all(d);
    }
}
