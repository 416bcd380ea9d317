use varvelog::{Log, Options};

#[test]
fn smoke_round_trip_rotation_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let opts = || Options::new().segment_bytes(64 * 1024);
    {
        let log = Log::open(dir.path(), opts()).unwrap();
        let mut w = log.writer().unwrap();
        for i in 0u64..5000 {
            assert_eq!(w.append(format!("record-{i}").as_bytes()).unwrap(), i);
        }
        w.sync().unwrap();
        let snap = log.snapshot();
        assert_eq!(snap.len(), 5000);
        for (i, r) in snap.iter().enumerate() {
            assert_eq!(r.unwrap().payload(), format!("record-{i}").as_bytes());
        }
        let rev: Vec<u64> = snap.iter_rev().map(|r| r.unwrap().seq()).collect();
        assert_eq!(rev, (0..5000).rev().collect::<Vec<_>>());
        assert_eq!(snap.get(4321).unwrap().unwrap().payload(), b"record-4321");
    }
    let log = Log::open(dir.path(), opts()).unwrap();
    eprintln!("{:?}", log.recovery_report());
    let snap = log.snapshot();
    assert_eq!(snap.len(), 5000);
    assert!(snap.segment_count() >= 4, "expected rotations, got {}", snap.segment_count());
    for (i, r) in snap.iter().enumerate() {
        assert_eq!(r.unwrap().payload(), format!("record-{i}").as_bytes());
    }
    let mut w = log.writer().unwrap();
    assert_eq!(w.append(b"more").unwrap(), 5000);
}
