//! The trace readers on the four encodings of libCacheSim's CloudPhysics sample
//! (shared/traces): same 113,872 requests, same keys, in every format; zstd input
//! read transparently.

mod common;

use augur_simulators::trace::{open_trace, ReadOptions, TraceFormat};
use augur_simulators::{Op, NEXT_ACCESS_NEVER};
use common::{read_all, shared_trace, write_zstd};

const REQUESTS: usize = 113_872;

#[test]
fn all_four_encodings_hold_the_same_requests() {
    let opts = ReadOptions::default();
    let oracle = read_all(&shared_trace("cloudPhysicsIO.oracleGeneral.bin"), TraceFormat::OracleGeneral, &opts)
        .expect("oracleGeneral");
    let vscsi = read_all(&shared_trace("cloudPhysicsIO.vscsi"), TraceFormat::Vscsi, &opts).expect("vscsi");
    // No --csv-columns: the header (version,time,op,size,lbn) is mapped by name.
    let csv = read_all(&shared_trace("cloudPhysicsIO.csv"), TraceFormat::Csv, &opts).expect("csv");
    let txt = read_all(&shared_trace("cloudPhysicsIO.txt"), TraceFormat::Txt, &opts).expect("txt");
    for (name, t) in [("oracleGeneral", &oracle), ("vscsi", &vscsi), ("csv", &csv), ("txt", &txt)] {
        assert_eq!(t.len(), REQUESTS, "{name} record count");
    }
    for i in 0..REQUESTS {
        let key = oracle[i].key;
        assert_eq!((vscsi[i].key, csv[i].key, txt[i].key), (key, key, key), "keys differ at request {i}");
        // The CSV is the vSCSI trace with seconds for microseconds.
        assert_eq!(csv[i].size, vscsi[i].size, "size at {i}");
        assert_eq!(csv[i].op, vscsi[i].op, "op at {i}");
        assert_eq!(csv[i].time_us, vscsi[i].time_us / 1_000_000 * 1_000_000, "time at {i}");
        assert_eq!(oracle[i].time_us, csv[i].time_us, "oracle time at {i}");
        assert_eq!(txt[i].size, 1, "txt traces have no sizes");
    }
    // Facts from the README.
    let distinct: std::collections::HashSet<u64> = oracle.iter().map(|r| r.key).collect();
    assert_eq!(distinct.len(), 48_974);
    assert_eq!(vscsi.iter().filter(|r| r.op == Op::Write).count(), 66_898);
    assert_eq!(vscsi.iter().filter(|r| r.op == Op::Read).count(), 46_974);
    assert_eq!(oracle.iter().filter(|r| r.next_access == NEXT_ACCESS_NEVER).count(), 48_974);
    assert_eq!(vscsi[0].time_us, 5_633_898_368_802);
}

#[test]
fn oracle_next_access_positions_point_at_the_same_key() {
    let path = shared_trace("cloudPhysicsIO.oracleGeneral.bin");
    let reqs = read_all(&path, TraceFormat::OracleGeneral, &ReadOptions::default()).expect("read");
    for (i, r) in reqs.iter().enumerate().step_by(97) {
        if r.next_access != NEXT_ACCESS_NEVER {
            let next = r.next_access as usize - 1;
            assert_eq!(reqs[next].key, r.key, "request {} points at {}", i + 1, r.next_access);
            assert!(reqs[i + 1..next].iter().all(|x| x.key != r.key), "not the first later request");
        }
    }
}

#[test]
fn zstd_input_is_read_transparently_in_every_format() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = ReadOptions::default();
    for (name, format) in [
        ("cloudPhysicsIO.oracleGeneral.bin", TraceFormat::OracleGeneral),
        ("cloudPhysicsIO.vscsi", TraceFormat::Vscsi),
        ("cloudPhysicsIO.csv", TraceFormat::Csv),
    ] {
        let src = shared_trace(name);
        let zst = dir.path().join(format!("{name}.zst"));
        write_zstd(&zst, &std::fs::read(&src).expect("read original"));
        let plain = read_all(&src, format, &opts).expect("plain");
        let compressed = read_all(&zst, format, &opts).expect("compressed");
        assert_eq!(plain, compressed, "{name}");
        // Detection ignores the .zst suffix.
        assert_eq!(TraceFormat::detect(&zst).expect("detect"), format, "{name}");
    }
}

#[test]
fn format_is_detected_from_the_file_name() {
    assert_eq!(
        TraceFormat::detect(&shared_trace("cloudPhysicsIO.oracleGeneral.bin")).expect("detect"),
        TraceFormat::OracleGeneral
    );
    assert_eq!(TraceFormat::detect(&shared_trace("cloudPhysicsIO.vscsi")).expect("detect"), TraceFormat::Vscsi);
    assert_eq!(TraceFormat::detect(&shared_trace("cloudPhysicsIO.txt")).expect("detect"), TraceFormat::Txt);
    let reader = open_trace(&shared_trace("cloudPhysicsIO.csv"), None, &ReadOptions::default()).expect("open");
    assert!(!reader.provides_next_access());
}

#[test]
fn vscsi_version_2_records_are_read() {
    // 40-byte layout: u16 cmd, u16 ver, u32 sn, u32 len, u32 nSG, u64 lbn, u64 ts, u64 rt.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v2.vscsi");
    let mut bytes = Vec::new();
    for (i, (cmd, lbn)) in [(0x28u16, 100u64), (0x2a, 101), (0x88, 7)].iter().enumerate() {
        let mut b = [0u8; 40];
        b[0..2].copy_from_slice(&cmd.to_le_bytes());
        b[2..4].copy_from_slice(&0x0200u16.to_le_bytes());
        b[4..8].copy_from_slice(&(i as u32).to_le_bytes());
        b[8..12].copy_from_slice(&(512 * (i as u32 + 1)).to_le_bytes());
        b[16..24].copy_from_slice(&lbn.to_le_bytes());
        b[24..32].copy_from_slice(&(1_000_000 * (i as u64 + 1)).to_le_bytes());
        bytes.extend_from_slice(&b);
    }
    std::fs::write(&path, &bytes).expect("write");
    let got = read_all(&path, TraceFormat::Vscsi, &ReadOptions::default()).expect("read v2");
    let summary: Vec<(u64, u32, Op, u64)> = got.iter().map(|r| (r.key, r.size, r.op, r.time_us)).collect();
    assert_eq!(
        summary,
        vec![(100, 512, Op::Read, 1_000_000), (101, 1024, Op::Write, 2_000_000), (7, 1536, Op::Read, 3_000_000)]
    );
}
