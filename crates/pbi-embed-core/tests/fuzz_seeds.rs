//! Replays the committed seed corpora of every fuzz target through the same entry points
//! the fuzzer calls, so CI exercises them even without a nightly toolchain.

use std::path::Path;

#[test]
fn every_fuzz_seed_replays_without_panicking() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds");
    for (target, run) in pbi_embed_core::__fuzz::TARGETS {
        let dir = seeds.join(target);
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            run(&std::fs::read(&path).unwrap());
            count += 1;
        }
        assert!(count > 0, "no seeds for {target}");
    }
}
