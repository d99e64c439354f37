//! The conformance suite every adapter must pass.
//!
//! It is public so that a third-party adapter can run exactly the checks the
//! built-in ones run. Implement [`Target`] for your store (how to make a fresh,
//! isolated location and how to open a store on it, again and again), then expand
//! [`conformance_tests!`](crate::conformance_tests) in a test module:
//!
//! ```text
//! mod my_store_conformance {
//!     augur_adapters::conformance_tests!(my_crate::MyTarget::new());
//! }
//! ```
//!
//! Each case becomes its own `#[tokio::test]`, so a failure names the property the
//! store broke. Cases panic with a message on failure, like any test.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::StoreResult;
use crate::store::Store;

/// Something that can make isolated, empty places for a store to live in.
#[async_trait]
pub trait Target: Send + Sync {
    /// A new location (a directory, a table) that no other location shares.
    async fn new_location(&self) -> Box<dyn Location>;
}

/// One place a store's data lives, which can be opened repeatedly.
#[async_trait]
pub trait Location: Send + Sync {
    /// Opens a store on this location. Opening again after every handle from the
    /// previous open was dropped must see the same data.
    async fn open(&self) -> StoreResult<Arc<dyn Store>>;

    /// Removes the location's data (best effort; called when a case passed).
    async fn destroy(self: Box<Self>) {}
}

/// Expands to one `#[tokio::test]` per conformance case, each calling the case of
/// the same name in [`conformance`](crate::conformance) with `$target`.
#[macro_export]
macro_rules! conformance_tests {
    ($target:expr) => {
        $crate::conformance_tests!(@cases $target;
            absent_key_reads_as_none,
            empty_value_is_present,
            binary_keys_and_values,
            four_mib_values,
            overwrite_and_repeated_keys,
            delete_of_absent_keys,
            get_many_keeps_order_with_duplicates_and_missing,
            ten_thousand_entry_batches,
            write_batch_mixes_puts_and_deletes,
            concurrent_writers_last_acknowledged_wins,
            durable_after_reopen,
            health_check_answers
        );
    };
    (@cases $target:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let target = $target;
                $crate::conformance::$case(&target).await;
            }
        )*
    };
}

fn b(s: &[u8]) -> Bytes {
    Bytes::copy_from_slice(s)
}

async fn open(location: &dyn Location) -> Arc<dyn Store> {
    match location.open().await {
        Ok(store) => store,
        Err(e) => panic!("cannot open store: {e}"),
    }
}

async fn with_store<F, Fut>(target: &dyn Target, case: F)
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let location = target.new_location().await;
    let store = open(location.as_ref()).await;
    case(store).await;
    location.destroy().await;
}

macro_rules! ok {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(err) => panic!("{} failed: {}", stringify!($e), err),
        }
    };
}

/// `get` and `get_many` of keys never written return `None`.
pub async fn absent_key_reads_as_none(target: &dyn Target) {
    with_store(target, |s| async move {
        assert_eq!(ok!(s.get(&b(b"never-written")).await), None);
        assert_eq!(ok!(s.get_many(&[b(b"a"), b(b"b")]).await), vec![None, None]);
        assert_eq!(ok!(s.get_many(&[]).await), Vec::<Option<Bytes>>::new());
    })
    .await
}

/// An empty value is stored and read back as present-and-empty, not absent; the
/// empty key is a valid key.
pub async fn empty_value_is_present(target: &dyn Target) {
    with_store(target, |s| async move {
        ok!(s.put_many(&[(b(b"empty"), Bytes::new()), (Bytes::new(), b(b"empty-key"))]).await);
        assert_eq!(ok!(s.get(&b(b"empty")).await), Some(Bytes::new()));
        assert_eq!(ok!(s.get(&Bytes::new()).await), Some(b(b"empty-key")));
    })
    .await
}

/// Zero bytes and bytes that are not UTF-8 survive in keys and values.
pub async fn binary_keys_and_values(target: &dyn Target) {
    with_store(target, |s| async move {
        let entries = vec![
            (b(b"\0"), b(b"\0\0\0")),
            (b(b"k\0ey"), b(b"v\0al\0")),
            (b(&[0xff, 0xfe, 0x80, 0x00]), b(&[0xc3, 0x28, 0xa0, 0xa1])),
            (b("ключ".as_bytes()), b(&(0..=255u8).collect::<Vec<_>>())),
        ];
        ok!(s.put_many(&entries).await);
        let keys: Vec<Bytes> = entries.iter().map(|(k, _)| k.clone()).collect();
        let expected: Vec<Option<Bytes>> = entries.iter().map(|(_, v)| Some(v.clone())).collect();
        assert_eq!(ok!(s.get_many(&keys).await), expected);
        // A key that differs only after a zero byte is a different key.
        assert_eq!(ok!(s.get(&b(b"k")).await), None);
    })
    .await
}

/// 4 MiB values round-trip byte for byte, alone and in a batch.
pub async fn four_mib_values(target: &dyn Target) {
    with_store(target, |s| async move {
        let big = |seed: u8| -> Bytes {
            Bytes::from((0..4usize << 20).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect::<Vec<_>>())
        };
        let entries: Vec<(Bytes, Bytes)> = (0..3u8).map(|i| (b(&[b'b', i]), big(i))).collect();
        ok!(s.put_many(&entries).await);
        let keys: Vec<Bytes> = entries.iter().map(|(k, _)| k.clone()).collect();
        let got = ok!(s.get_many(&keys).await);
        for ((_, want), got) in entries.iter().zip(got) {
            let got = got.expect("4 MiB value missing");
            assert_eq!(got.len(), want.len());
            assert!(got == *want, "4 MiB value corrupted");
        }
    })
    .await
}

/// A later write replaces an earlier one; within one call the last occurrence of a
/// repeated key wins.
pub async fn overwrite_and_repeated_keys(target: &dyn Target) {
    with_store(target, |s| async move {
        ok!(s.put_many(&[(b(b"k"), b(b"v1"))]).await);
        ok!(s.put_many(&[(b(b"k"), b(b"v2"))]).await);
        assert_eq!(ok!(s.get(&b(b"k")).await), Some(b(b"v2")));
        ok!(s.put_many(&[(b(b"r"), b(b"first")), (b(b"x"), b(b"x")), (b(b"r"), b(b"last"))]).await);
        assert_eq!(ok!(s.get(&b(b"r")).await), Some(b(b"last")));
        assert_eq!(ok!(s.get(&b(b"x")).await), Some(b(b"x")));
    })
    .await
}

/// Deleting absent keys succeeds; deleting present keys removes only them.
pub async fn delete_of_absent_keys(target: &dyn Target) {
    with_store(target, |s| async move {
        ok!(s.delete_many(&[b(b"nope"), b(b"nada")]).await);
        ok!(s.delete_many(&[]).await);
        ok!(s.put_many(&[(b(b"a"), b(b"1")), (b(b"b"), b(b"2"))]).await);
        ok!(s.delete_many(&[b(b"a"), b(b"absent"), b(b"a")]).await);
        assert_eq!(ok!(s.get_many(&[b(b"a"), b(b"b")]).await), vec![None, Some(b(b"2"))]);
    })
    .await
}

/// `get_many` (and `get_many_blocking`, where offered) answers one slot per
/// requested key, in request order, duplicates and missing keys included.
pub async fn get_many_keeps_order_with_duplicates_and_missing(target: &dyn Target) {
    with_store(target, |s| async move {
        ok!(s.put_many(&[(b(b"a"), b(b"A")), (b(b"c"), b(b"C"))]).await);
        let keys = [b(b"c"), b(b"missing"), b(b"a"), b(b"c"), b(b"a"), b(b"z")];
        let want = vec![Some(b(b"C")), None, Some(b(b"A")), Some(b(b"C")), Some(b(b"A")), None];
        assert_eq!(ok!(s.get_many(&keys).await), want);
        // A store that also reads on the caller's thread answers the same there.
        if let Some(blocking) = s.get_many_blocking(&keys) {
            assert_eq!(ok!(blocking), want);
        }
    })
    .await
}

/// 10,000 entries in one put, get and delete.
pub async fn ten_thousand_entry_batches(target: &dyn Target) {
    with_store(target, |s| async move {
        let n = 10_000usize;
        let entries: Vec<(Bytes, Bytes)> = (0..n)
            .map(|i| (Bytes::from(format!("key-{i:05}")), Bytes::from(format!("value-{i}-").repeat(8))))
            .collect();
        ok!(s.put_many(&entries).await);
        // Read back in reverse, with every tenth key replaced by one never written.
        let keys: Vec<Bytes> = (0..n)
            .rev()
            .map(|i| if i % 10 == 0 { Bytes::from(format!("none-{i}")) } else { entries[i].0.clone() })
            .collect();
        let got = ok!(s.get_many(&keys).await);
        assert_eq!(got.len(), n);
        for (slot, i) in got.iter().zip((0..n).rev()) {
            let want = if i % 10 == 0 { None } else { Some(&entries[i].1) };
            assert_eq!(slot.as_ref(), want, "slot for key {i}");
        }
        let all: Vec<Bytes> = entries.iter().map(|(k, _)| k.clone()).collect();
        ok!(s.delete_many(&all).await);
        assert!(ok!(s.get_many(&all).await).iter().all(Option::is_none));
    })
    .await
}

/// `write_batch` applies upserts and deletes of different keys together.
pub async fn write_batch_mixes_puts_and_deletes(target: &dyn Target) {
    with_store(target, |s| async move {
        ok!(s.put_many(&[(b(b"old"), b(b"1")), (b(b"keep"), b(b"2"))]).await);
        ok!(s.write_batch(&[(b(b"new"), b(b"3")), (b(b"keep"), b(b"4"))], &[b(b"old")]).await);
        let got = ok!(s.get_many(&[b(b"old"), b(b"keep"), b(b"new")]).await);
        assert_eq!(got, vec![None, Some(b(b"4")), Some(b(b"3"))]);
    })
    .await
}

/// Writers racing on the same keys: every key ends at some writer's final value
/// (never an older one, never a mix of bytes), and a write made after all of them
/// were acknowledged wins.
pub async fn concurrent_writers_last_acknowledged_wins(target: &dyn Target) {
    with_store(target, |s| async move {
        let keys: Vec<Bytes> = (0..50).map(|i| Bytes::from(format!("shared-{i}"))).collect();
        let writers = 4;
        let rounds = 20;
        let mut tasks = Vec::new();
        for w in 0..writers {
            let s = Arc::clone(&s);
            let keys = keys.clone();
            tasks.push(tokio::spawn(async move {
                for r in 0..rounds {
                    let value = Bytes::from(format!("w{w}-r{r}"));
                    let entries: Vec<(Bytes, Bytes)> = keys.iter().map(|k| (k.clone(), value.clone())).collect();
                    if let Err(e) = s.put_many(&entries).await {
                        panic!("writer {w} round {r}: {e}");
                    }
                }
            }));
        }
        for t in tasks {
            t.await.expect("writer task panicked");
        }
        let finals: Vec<Bytes> = (0..writers).map(|w| Bytes::from(format!("w{w}-r{}", rounds - 1))).collect();
        for (key, value) in keys.iter().zip(ok!(s.get_many(&keys).await)) {
            let value = value.unwrap_or_else(|| panic!("{key:?} lost"));
            assert!(finals.contains(&value), "{key:?} holds {value:?}, not a final write");
        }
        let last = Bytes::from_static(b"after-all");
        let entries: Vec<(Bytes, Bytes)> = keys.iter().map(|k| (k.clone(), last.clone())).collect();
        ok!(s.put_many(&entries).await);
        assert!(ok!(s.get_many(&keys).await).iter().all(|v| v.as_ref() == Some(&last)));
    })
    .await
}

/// Acknowledged writes and deletes are there after the store is closed and reopened.
pub async fn durable_after_reopen(target: &dyn Target) {
    let location = target.new_location().await;
    let entries: Vec<(Bytes, Bytes)> =
        (0..100).map(|i| (Bytes::from(format!("d{i}")), Bytes::from(format!("v{i}")))).collect();
    {
        let s = open(location.as_ref()).await;
        ok!(s.put_many(&entries).await);
        ok!(s.delete_many(&[entries[0].0.clone()]).await);
        ok!(s.put_many(&[(entries[1].0.clone(), b(b"newer"))]).await);
        drop(s);
    }
    let s = open(location.as_ref()).await;
    let keys: Vec<Bytes> = entries.iter().map(|(k, _)| k.clone()).collect();
    let got: HashMap<Bytes, Option<Bytes>> = keys.iter().cloned().zip(ok!(s.get_many(&keys).await)).collect();
    assert_eq!(got[&entries[0].0], None, "delete lost on reopen");
    assert_eq!(got[&entries[1].0], Some(b(b"newer")), "overwrite lost on reopen");
    for (k, v) in &entries[2..] {
        assert_eq!(got[k].as_ref(), Some(v), "{k:?} lost on reopen");
    }
    drop(s);
    location.destroy().await;
}

/// The health check answers on a working store.
pub async fn health_check_answers(target: &dyn Target) {
    with_store(target, |s| async move {
        ok!(s.health().await);
    })
    .await
}
