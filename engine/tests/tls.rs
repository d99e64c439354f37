//! TLS on the RESP port: `augur serve --tls-cert --tls-key` serves TLS only, and a
//! stock Redis client talks to it with `--tls`.

mod common;

use std::process::Command;

use common::process::{redis_tool, Augur};

#[test]
fn redis_cli_over_tls_and_plaintext_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generated =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).expect("self-signed cert");
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    std::fs::write(&cert, generated.cert.pem()).expect("write cert");
    std::fs::write(&key, generated.key_pair.serialize_pem()).expect("write key");
    let augur = Augur::start(
        dir.path(),
        &["--tls-cert", cert.to_str().expect("utf8"), "--tls-key", key.to_str().expect("utf8")],
    );
    let cli = redis_tool("redis-cli");
    let run = |tls: bool, args: &[&str]| {
        let mut cmd = Command::new(&cli);
        cmd.args(["-h", "127.0.0.1", "-p", &augur.port.to_string()]);
        if tls {
            cmd.arg("--tls").arg("--cacert").arg(&cert);
        }
        cmd.args(args).output().expect("redis-cli")
    };
    let mut pong = String::new();
    for _ in 0..50 {
        let out = run(true, &["PING"]);
        pong = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if pong == "PONG" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(pong, "PONG", "TLS PING failed:\n{}", augur.log());
    let out = run(true, &["SET", "secret", "over tls"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "OK");
    let out = run(true, &["GET", "secret"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "over tls");
    // A plaintext client gets nothing it can use.
    let out = run(false, &["GET", "secret"]);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("over tls"), "plaintext must not be served");
}

#[test]
fn mismatched_tls_flags_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_augur"))
        .args(["serve", "--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent.pem"])
        .arg("--wal-dir")
        .arg(dir.path().join("wal"))
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert and --tls-key go together"));
}
