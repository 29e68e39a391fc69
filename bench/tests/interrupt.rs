//! Ctrl-C during a cell: the run stops promptly, leaves no server running, and
//! keeps the cells already finished.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

mod common;

use bench::{matrix_run, results, signals};

#[test]
fn interrupt_stops_cleanly_and_keeps_finished_cells() {
    let dir = common::tmp("interrupt");
    let ctx = common::ctx(common::fake(&dir, 1.5), &dir);
    let mut first = common::cell("ok");
    first.id = "test/first/c100/rep1".into();
    let cells = vec![first, common::cell("forky"), common::cell("ok")];
    let stopper = std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_millis(2_500));
        signals::request_stop();
    });
    let start = std::time::Instant::now();
    let stats = matrix_run::run(&ctx, &cells, &dir, false).expect("run");
    let _ = stopper.join();
    assert!(stats.interrupted);
    assert_eq!(stats.done, 1, "only the first cell finished");
    assert!(start.elapsed().as_secs() < 10);
    assert_eq!(results::read_cells(&dir).expect("kept").len(), 1);
    // No process of the fake is left: their command lines name the temp folder.
    let marker = dir.display().to_string();
    let survivors: Vec<i32> = std::fs::read_dir("/proc")
        .expect("proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| common::alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| String::from_utf8_lossy(&c).contains(&marker))
        })
        .collect();
    assert!(survivors.is_empty(), "left running: {survivors:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
