//! The registry says which claims read a joined folder (`Claim::joined`), and `c10k
//! compare` prints that list; here the committed folders check it: with the newest C1M
//! and beyond folders joined to the newest standard run, exactly the declared claims
//! read differently.

// Test code: helpers outside #[test] functions may unwrap too (clippy.toml allows it inside them).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use bench::aggregate::Results;
use bench::c1m::C1mResults;
use bench::claims::{self, Joined, CLAIMS};

/// The newest committed folder under results/ whose name starts with `prefix`.
fn newest(prefix: &str) -> Option<PathBuf> {
    let results = Path::new(env!("CARGO_MANIFEST_DIR")).join("../results");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(results)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir() && p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        .collect();
    dirs.sort();
    dirs.pop()
}

#[test]
fn exactly_the_declared_claims_read_the_joined_folders() {
    let (Some(standard), Some(c1m), Some(beyond)) = (newest("20"), newest("c1m-"), newest("beyond-")) else {
        eprintln!("skipped: no committed standard, c1m- and beyond- folders under results/");
        return;
    };
    let standard = Results::load(&standard).unwrap();
    let alone = claims::verdicts(&standard);
    let mut joined = standard.clone();
    joined.c1m = Some(C1mResults::load(&c1m).unwrap());
    joined.beyond = Some((Box::new(Results::load(&beyond).unwrap()), "beyond".into()));
    let with = claims::verdicts(&joined);
    for ((claim, a), w) in CLAIMS.iter().zip(&alone).zip(&with) {
        let differs = a.status != w.status || a.why != w.why || a.evidence != w.evidence;
        match claim.joined {
            None => assert!(!differs, "{} reads a joined folder but its registry entry says none", claim.id),
            Some(kind) => {
                assert!(differs, "{} is declared to read {} but reads the same without it", claim.id, kind.folder())
            }
        }
    }
    assert!(
        CLAIMS.iter().any(|c| c.joined == Some(Joined::C1m)) && CLAIMS.iter().any(|c| c.joined == Some(Joined::Beyond))
    );
}
