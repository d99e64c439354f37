//! Malformed input: errors name the file and the byte offset or line; `--skip-bad`
//! counts and skips instead. No input makes a reader panic.

mod common;

use std::io::Write;

use augur_simulators::trace::augur_log::{AccessLogRecord, AccessLogWriter, AccessResult};
use augur_simulators::trace::oracle::OracleWriter;
use augur_simulators::trace::{open_trace, CsvColumns, CsvOptions, ReadOptions, TraceFormat};
use augur_simulators::{Op, Request, TraceError};
use common::read_all;

fn skip() -> ReadOptions {
    ReadOptions { skip_bad: true, ..ReadOptions::default() }
}

fn oracle_file(dir: &std::path::Path, keys: &[u64]) -> std::path::PathBuf {
    let path = dir.join("t.oracleGeneral.bin");
    let mut w = OracleWriter::new(std::fs::File::create(&path).expect("create"));
    for &k in keys {
        w.write(&Request { key: k, size: 100, ..Request::default() }).expect("write");
    }
    w.finish().expect("flush");
    path
}

#[test]
fn truncated_binary_record_names_file_and_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = oracle_file(dir.path(), &[1, 2, 3]);
    std::fs::OpenOptions::new().append(true).open(&path).expect("open").write_all(&[0u8; 5]).expect("append");
    let err = read_all(&path, TraceFormat::OracleGeneral, &ReadOptions::default()).expect_err("must fail");
    let msg = err.to_string();
    assert!(msg.contains("t.oracleGeneral.bin") && msg.contains("byte offset 72"), "{msg}");
    assert!(matches!(err, TraceError::Malformed { .. }));
    // Skipping: the three whole records survive, the tail is counted.
    let mut r = open_trace(&path, Some(TraceFormat::OracleGeneral), &skip()).expect("open");
    let mut n = 0;
    while r.next_request().expect("skip mode does not fail").is_some() {
        n += 1;
    }
    assert_eq!((n, r.skip_log().count()), (3, 1));
    assert!(r.skip_log().first().is_some_and(|m| m.contains("byte offset 72")));
}

#[test]
fn bad_next_access_is_reported_at_its_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = oracle_file(dir.path(), &[1, 2, 3, 4]);
    let mut bytes = std::fs::read(&path).expect("read");
    // Record 2 (offset 24) claims its next access is record 1: backwards.
    bytes[24 + 16..24 + 24].copy_from_slice(&1i64.to_le_bytes());
    std::fs::write(&path, &bytes).expect("write");
    let msg = read_all(&path, TraceFormat::OracleGeneral, &ReadOptions::default()).expect_err("must fail").to_string();
    assert!(msg.contains("byte offset 24") && msg.contains("next_access_vtime 1"), "{msg}");
    let ok = read_all(&path, TraceFormat::OracleGeneral, &skip()).expect("skip");
    assert_eq!(ok.iter().map(|r| r.key).collect::<Vec<_>>(), vec![1, 3, 4]);
}

#[test]
fn csv_errors_name_the_line_and_skip_bad_counts_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.csv");
    std::fs::write(&path, "time,key,size,op\n1,10,100,r\n2,11,lots,r\n\n3,12,100,w\n4\n5,user:9,7,get\n")
        .expect("write");
    let msg = read_all(&path, TraceFormat::Csv, &ReadOptions::default()).expect_err("must fail").to_string();
    assert!(msg.contains("t.csv") && msg.contains("line 3") && msg.contains("\"lots\""), "{msg}");
    let mut r = open_trace(&path, Some(TraceFormat::Csv), &skip()).expect("open");
    let mut got = Vec::new();
    while let Some(req) = r.next_request().expect("skip mode") {
        got.push(req);
    }
    assert_eq!(r.skip_log().count(), 2, "line 3 (size) and line 6 (too few fields)");
    assert_eq!(got.len(), 3);
    assert_eq!(got[1], Request { time_us: 3_000_000, key: 12, size: 100, op: Op::Write, next_access: 0 });
    assert_eq!(got[2].key, augur_simulators::keyhash::fnv1a64(b"user:9"), "non-numeric keys are hashed");
}

#[test]
fn csv_with_explicit_columns_delimiter_and_no_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.csv");
    std::fs::write(&path, "a;5;0.5;w\nb;6;1.25;r\n").expect("write");
    let options = ReadOptions {
        skip_bad: false,
        csv: CsvOptions {
            columns: Some(CsvColumns::parse("key=2,time=3,op=4").expect("spec")),
            delimiter: b';',
            ..CsvOptions::default()
        },
    };
    let got = read_all(&path, TraceFormat::Csv, &options).expect("read");
    assert_eq!(got.len(), 2, "no header: both lines are records");
    assert_eq!((got[0].key, got[0].time_us, got[0].op, got[0].size), (5, 500_000, Op::Write, 1));
    assert_eq!(got[1].time_us, 1_250_000);
}

#[test]
fn twitter_lines_parse_and_bad_ones_report_their_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("cluster52.twitter.csv");
    std::fs::write(&path, "0,abc,10,90,1,get,0\n1,ab,c,3,7,2,set,3600\n2,abc,10,x,1,get,0\n").expect("write");
    let msg = read_all(&path, TraceFormat::Twitter, &ReadOptions::default()).expect_err("must fail").to_string();
    assert!(msg.contains("line 3") && msg.contains("value size"), "{msg}");
    let got = read_all(&path, TraceFormat::Twitter, &skip()).expect("skip");
    assert_eq!(got.len(), 2);
    assert_eq!((got[0].size, got[0].op, got[0].time_us), (100, Op::Read, 0));
    assert_eq!(got[0].key, augur_simulators::keyhash::fnv1a64(b"abc"));
    // A comma inside the anonymised key stays part of the key.
    assert_eq!((got[1].key, got[1].size, got[1].op), (augur_simulators::keyhash::fnv1a64(b"ab,c"), 10, Op::Write));
}

#[test]
fn vscsi_record_with_a_wrong_version_is_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("t.vscsi");
    let rec = |lbn: u64, ver: u16| {
        let mut b = [0u8; 32];
        b[4..8].copy_from_slice(&4096u32.to_le_bytes());
        b[12..14].copy_from_slice(&0x28u16.to_le_bytes());
        b[14..16].copy_from_slice(&ver.to_le_bytes());
        b[16..24].copy_from_slice(&lbn.to_le_bytes());
        b
    };
    let mut bytes = Vec::new();
    for (lbn, ver) in [(7u64, 0x100u16), (8, 0x100), (9, 0x700), (10, 0x100)] {
        bytes.extend_from_slice(&rec(lbn, ver));
    }
    std::fs::write(&path, &bytes).expect("write");
    let msg = read_all(&path, TraceFormat::Vscsi, &ReadOptions::default()).expect_err("must fail").to_string();
    assert!(msg.contains("byte offset 64"), "{msg}");
    let got = read_all(&path, TraceFormat::Vscsi, &skip()).expect("skip");
    assert_eq!(got.iter().map(|r| r.key).collect::<Vec<_>>(), vec![7, 8, 10]);
    std::fs::write(&path, [0xffu8; 64]).expect("write garbage");
    assert!(open_trace(&path, Some(TraceFormat::Vscsi), &ReadOptions::default()).is_err());
}

#[test]
fn garbage_never_panics_any_reader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("garbage");
    let mut x = 0x1234_5678_9abc_def0u64;
    let bytes: Vec<u8> = (0..10_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    std::fs::write(&path, &bytes).expect("write");
    for format in [
        TraceFormat::OracleGeneral,
        TraceFormat::Vscsi,
        TraceFormat::Csv,
        TraceFormat::Txt,
        TraceFormat::Twitter,
        TraceFormat::Augur,
    ] {
        for options in [ReadOptions::default(), skip()] {
            // Errors are fine; panics are not. Skip mode must terminate.
            let _ = read_all(&path, format, &options);
        }
    }
    // Corrupt zstd: an error naming the file, not a panic.
    let zst = dir.path().join("bad.oracleGeneral.bin.zst");
    let mut data = zstd::stream::encode_all(&bytes[..], 3).expect("compress");
    let n = data.len();
    data[n / 2..].iter_mut().for_each(|b| *b ^= 0x5a);
    std::fs::write(&zst, &data).expect("write");
    let err = read_all(&zst, TraceFormat::OracleGeneral, &ReadOptions::default()).expect_err("corrupt zstd");
    assert!(err.to_string().contains("bad.oracleGeneral.bin.zst"), "{err}");
}

#[test]
fn augur_log_round_trips_and_rejects_foreign_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("access.log");
    let records: Vec<AccessLogRecord> = (0..1000u32)
        .map(|i| AccessLogRecord {
            time_us: 1_700_000_000_000_000 + u64::from(i) * 137,
            key_hash: augur_simulators::keyhash::fnv1a64(format!("user:{}", i % 97).as_bytes()),
            op: [Op::Read, Op::Write, Op::Delete, Op::Other][i as usize % 4],
            result: [AccessResult::Miss, AccessResult::Hit, AccessResult::PrefetchHit, AccessResult::NotApplicable]
                [i as usize % 4],
            value_size: i * 3,
            connection: i % 7,
        })
        .collect();
    let mut w = AccessLogWriter::new(std::fs::File::create(&path).expect("create")).expect("header");
    for r in &records {
        w.write(r).expect("write");
    }
    w.finish().expect("flush");
    assert_eq!(std::fs::metadata(&path).expect("stat").len(), 16 + 26 * 1000);
    // Detected by its magic, whatever the name; compressed too.
    assert_eq!(TraceFormat::detect(&path).expect("detect"), TraceFormat::Augur);
    let zst = dir.path().join("access.log.zst");
    common::write_zstd(&zst, &std::fs::read(&path).expect("read"));
    for p in [&path, &zst] {
        let mut r = augur_simulators::trace::augur_log::AccessLogReader::new(
            augur_simulators::trace::input::Input::open(p).expect("open"),
            augur_simulators::trace::SkipLog::new(false),
        )
        .expect("reader");
        let mut back = Vec::new();
        while let Some(rec) = r.next_record().expect("record") {
            back.push(rec);
        }
        assert_eq!(back, records);
    }
    let reqs = read_all(&path, TraceFormat::Augur, &ReadOptions::default()).expect("as requests");
    assert_eq!(reqs[5], records[5].to_request());
    // A record with an invalid result byte is reported at its offset.
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[16 + 26 * 2 + 17] = 9;
    std::fs::write(&path, &bytes).expect("write");
    let msg = read_all(&path, TraceFormat::Augur, &ReadOptions::default()).expect_err("bad result").to_string();
    assert!(msg.contains(&format!("byte offset {}", 16 + 26 * 2)), "{msg}");
    bytes[0] = b'X';
    std::fs::write(&path, &bytes).expect("write");
    assert!(read_all(&path, TraceFormat::Augur, &ReadOptions::default()).is_err());
}
