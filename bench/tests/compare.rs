//! `c10k compare` on two fixture folders whose differences are known, and the
//! compressed cell files it and the report read.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod common;
mod fixture;

use std::path::{Path, PathBuf};

use bench::aggregate::Results;
use bench::compare::{self, Change};
use bench::results;

/// Write the fixture's cells, each passed through `edit` (`None` drops it), as a results folder.
fn folder(name: &str, edit: impl Fn(&mut fixture::S) -> bool) -> PathBuf {
    let dir = common::tmp(name);
    let mut n = 0;
    for mut s in fixture::cells() {
        if edit(&mut s) {
            let rec = s.record();
            results::write_json(&results::cell_file(&dir, &rec.cell.id), &rec, "cell").expect("write cell");
            n += 1;
        }
    }
    let env = bench::env::EnvInfo { planned_cells: n, ..fixture::env() };
    results::write_json(&dir.join("env.json"), &env, "env").expect("write env");
    dir
}

fn find<'a>(c: &'a compare::Comparison, group: &str, figure: &str) -> &'a compare::CellChange {
    c.cells
        .iter()
        .find(|x| x.group == group && x.figure == figure)
        .unwrap_or_else(|| panic!("no {figure} of {group} in the comparison"))
}

fn load(dir: &Path) -> Results {
    compare::load_complete(dir).expect("complete folder")
}

#[test]
fn improved_regressed_and_no_change() {
    let old = folder("cmp-old", |_| true);
    let new = folder("cmp-new", |s| {
        if s.w == "http-keepalive" && s.c == 100 {
            match s.s {
                "reactor" => s.rps *= 1.2,
                "thread" => {
                    s.rps *= 0.8;
                    s.p99 *= 2.0;
                }
                // Inside the 2% spread of the three repetitions: not a change.
                "pool" => s.rps *= 1.01,
                _ => {}
            }
        }
        true
    });
    let c = compare::compare(&load(&old), &load(&new), "old", "new");
    assert_eq!(find(&c, "http-keepalive/reactor/c100", "req/s").change, Change::Improved);
    assert_eq!(find(&c, "http-keepalive/thread/c100", "req/s").change, Change::Regressed);
    assert_eq!(find(&c, "http-keepalive/thread/c100", "p99").change, Change::Regressed);
    assert_eq!(find(&c, "http-keepalive/pool/c100", "req/s").change, Change::NoChange);
    assert_eq!(find(&c, "http-keepalive/tokio/c100", "req/s").change, Change::NoChange);
    // One repetition: no interval, no claim of change.
    assert_eq!(find(&c, "http-keepalive/reactor/c1000", "req/s").change, Change::NotComparable);
    let ratio = find(&c, "http-keepalive/reactor/c100", "req/s").ratio.expect("ratio");
    assert!((ratio - 1.2).abs() < 1e-9, "ratio {ratio}");
    let text = compare::render(&c, false);
    assert!(text.contains("http-keepalive/reactor/c100") && text.contains("improved"), "{text}");
    assert!(!text.contains("http-keepalive/pool/c100"), "unchanged cells are listed only with --all:\n{text}");
    assert_eq!(c.count("req/s", Change::Improved), 1, "{text}");
    assert_eq!(c.count("req/s", Change::Regressed), 1, "{text}");
    for d in [old, new] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn the_same_folder_changes_nothing_and_a_dropped_experiment_changes_its_verdict() {
    let old = folder("cmp-same", |_| true);
    let same = compare::compare(&load(&old), &load(&old), "a", "a");
    assert_eq!(same.verdicts_changed(), 0);
    assert!(same.cells.iter().all(|x| matches!(x.change, Change::NoChange | Change::NotComparable)));
    // Without the blocking workload C3 cannot be measured: a verdict change, and the groups are listed.
    let dropped = folder("cmp-dropped", |s| s.w != "block");
    let c = compare::compare(&load(&old), &load(&dropped), "old", "new");
    let c3 = c.verdicts.iter().find(|v| v.id == "C3").expect("C3");
    assert!(c3.changed, "{c3:?}");
    assert!(c.verdicts_changed() >= 1);
    assert!(c.only_old.iter().any(|g| g.starts_with("block/")), "{:?}", c.only_old);
    for d in [old, dropped] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn a_partial_folder_is_a_clear_error() {
    let dir = folder("cmp-partial", |_| true);
    let env = bench::env::EnvInfo { planned_cells: 10_000, ..fixture::env() };
    results::write_json(&dir.join("env.json"), &env, "env").expect("write env");
    let err = compare::load_complete(&dir).expect_err("partial").to_string();
    assert!(err.contains("partial") && err.contains("of 10000 planned cells"), "{err}");
    let env = bench::env::EnvInfo { interrupted: true, ..fixture::env() };
    results::write_json(&dir.join("env.json"), &env, "env").expect("write env");
    let err = compare::load_complete(&dir).expect_err("interrupted").to_string();
    assert!(err.contains("interrupted"), "{err}");
    let err = compare::load_complete(&dir.join("nowhere")).expect_err("missing").to_string();
    assert!(err.contains("not a results folder"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn compressed_cells_read_back_equal_and_old_folders_compress_losslessly() {
    // The committed fixture stores plain JSON: compress a copy and compare record by record.
    let dir = common::tmp("cmp-compress");
    std::fs::create_dir_all(dir.join("cells")).expect("cells dir");
    let src = common::fixtures().join("results");
    std::fs::copy(src.join("env.json"), dir.join("env.json")).expect("copy env");
    for e in std::fs::read_dir(src.join("cells")).expect("fixture cells") {
        let p = e.expect("entry").path();
        std::fs::copy(&p, dir.join("cells").join(p.file_name().expect("name"))).expect("copy cell");
    }
    let before = results::read_cells(&dir).expect("plain cells");
    let done = results::compress_cells(&dir).expect("compress");
    assert_eq!(done.files, before.len());
    assert!(done.bytes_after * 3 < done.bytes_before, "{done:?}");
    let names: Vec<String> = std::fs::read_dir(dir.join("cells"))
        .expect("cells")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| n.ends_with(".json.gz")), "{names:?}");
    assert_eq!(results::read_cells(&dir).expect("compressed cells"), before);
    // A second pass has nothing to do; a cell stored both ways is refused.
    assert_eq!(results::compress_cells(&dir).expect("again").files, 0);
    let one = &before[0];
    results::write_json(&results::cell_file(&dir, &one.cell.id).with_extension(""), one, "cell").expect("plain");
    let err = results::read_cells(&dir).expect_err("twice").to_string();
    assert!(err.contains("stored twice"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}
