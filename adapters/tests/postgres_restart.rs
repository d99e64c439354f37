//! The PostgreSQL adapter survives a server restart: while the server is down calls
//! fail with the retryable error, and once it is back the pool reconnects and the
//! data written before the crash (synchronous commit) is there.
//!
//! Uses a private cluster (initdb + pg_ctl) that the test can stop and start; it
//! also checks that the harness that the other PostgreSQL tests fall back on works.

use std::time::Duration;

use augur_adapters::testing::PgCluster;
use augur_adapters::{ErrorKind, PostgresStore, Store};
use bytes::Bytes;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn survives_server_restart() {
    let cluster = tokio::task::spawn_blocking(PgCluster::start)
        .await
        .expect("join")
        .unwrap_or_else(|e| panic!("cannot start a private PostgreSQL cluster: {e}"));
    let store =
        PostgresStore::builder(cluster.url()).connect_timeout(Duration::from_secs(2)).open().await.expect("open");
    let key = Bytes::from_static(b"survivor");
    store.put_many(&[(key.clone(), Bytes::from_static(b"before crash"))]).await.expect("put");

    cluster.stop().expect("stop server");
    // The pooled connection is dead and new connections are refused: retryable.
    for _ in 0..2 {
        let err = store.get(&key).await.expect_err("server is down");
        assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
        assert!(err.is_retryable());
    }
    let err = store.put_many(&[(key.clone(), Bytes::from_static(b"x"))]).await.expect_err("down");
    assert!(err.is_retryable(), "{err}");

    cluster.start_server().expect("restart server");
    let mut value = None;
    for _ in 0..50 {
        match store.get(&key).await {
            Ok(v) => {
                value = v;
                break;
            }
            Err(e) => {
                assert!(e.is_retryable(), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert_eq!(value, Some(Bytes::from_static(b"before crash")), "synchronously committed write lost");
    store.put_many(&[(key.clone(), Bytes::from_static(b"after"))]).await.expect("writes work again");
    assert_eq!(store.get(&key).await.expect("get"), Some(Bytes::from_static(b"after")));
}

#[tokio::test]
async fn invalid_table_names_are_rejected_before_any_sql() {
    for name in ["x; DROP TABLE augur_kv", "a\"b", "", "1abc"] {
        let err = PostgresStore::builder("postgres://nobody@127.0.0.1:1/none")
            .table(name)
            .open()
            .await
            .expect_err("invalid name");
        assert_eq!(err.kind(), ErrorKind::BadRequest, "{name:?}: {err}");
    }
}
