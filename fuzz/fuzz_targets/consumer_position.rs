//! A named consumer's position file holding arbitrary bytes (any length):
//! opening the consumer and listing consumers give a position within the
//! log or a typed error naming the file, never a panic; a consumer that
//! opened resumes, after a commit, exactly where it committed.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use varvelog::{Log, Options};

const RECORDS: u64 = 20;

/// A log of `RECORDS` records, open for the whole fuzzing process.
fn log() -> &'static (tempfile::TempDir, Log) {
    static LOG: OnceLock<(tempfile::TempDir, Log)> = OnceLock::new();
    LOG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path(), Options::new().segment_bytes(64 * 1024).prefault(false).spare_segments(0)).unwrap();
        let mut w = log.writer().unwrap();
        for i in 0..RECORDS {
            w.append(&i.to_le_bytes()).unwrap();
        }
        (dir, log)
    })
}

fn position_file(dir: &Path) -> std::path::PathBuf {
    dir.join("consumers").join("fuzzed.pos")
}

fuzz_target!(|data: &[u8]| {
    let (dir, log) = log();
    let path = position_file(dir.path());
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, data).unwrap();
    match log.consumers() {
        Ok(list) => {
            let c = list.iter().find(|c| c.name == "fuzzed").expect("listed");
            assert!(c.lag <= RECORDS);
        }
        Err(e) => assert_eq!(e.corruption_location().map(|(p, _)| p.to_path_buf()), Some(path.clone()), "{e}"),
    }
    match log.consumer("fuzzed") {
        Ok(mut c) => {
            assert!(c.position() <= RECORDS, "position {} past the end", c.position());
            let at = c.position();
            if at < RECORDS {
                let r = c.try_next().unwrap().expect("a record at the position");
                assert_eq!(r.seq(), at);
            }
            c.commit().unwrap();
            let committed = c.position();
            drop(c);
            assert_eq!(log.consumer("fuzzed").unwrap().position(), committed);
        }
        Err(e) => assert_eq!(e.corruption_location().map(|(p, _)| p.to_path_buf()), Some(path.clone()), "{e}"),
    }
    std::fs::remove_file(&path).unwrap();
});
