//! This test binary's own `#[global_allocator]` is a `GlobalArena`: the test harness, its threads,
//! and every collection below allocate from it. Workloads run inside scopes, concurrently (the
//! standard threaded harness), with canaries that must survive every reset.

use flare_arena::GlobalArena;
use std::collections::{BTreeMap, HashMap};
use std::sync::{OnceLock, RwLock, RwLockReadGuard};

#[global_allocator]
static ARENA: GlobalArena = GlobalArena::with_max_bytes(1 << 30);

/// Filled lazily by whichever test gets there first, inside a scope: the scope's reset must skip
/// it, since it is still live.
static CACHE: OnceLock<Vec<String>> = OnceLock::new();

/// The workload tests run concurrently (shared); the reuse test runs alone (exclusive), so that
/// what it measures is its own.
static ALONE: RwLock<()> = RwLock::new(());

fn concurrently() -> RwLockReadGuard<'static, ()> {
    ALONE.read().unwrap_or_else(|e| e.into_inner())
}

fn cache() -> &'static Vec<String> {
    CACHE.get_or_init(|| (0..100).map(|i| format!("cached entry {i:04}")).collect())
}

fn check_cache() {
    let cache = cache();
    assert_eq!(cache.len(), 100);
    for (i, entry) in cache.iter().enumerate() {
        assert_eq!(
            entry,
            &format!("cached entry {i:04}"),
            "the lazily filled cache was corrupted"
        );
    }
}

#[test]
fn vec_and_string_workloads_in_scopes() {
    let _shared = concurrently();
    let canary: Vec<u64> = (0..1000).map(|i| i * 3).collect();
    for round in 0..200 {
        ARENA.scope(|| {
            check_cache();
            let mut v = Vec::new();
            for i in 0..500u64 {
                v.push(i ^ round);
            }
            let mut s = String::new();
            for i in 0..200 {
                s.push_str(&i.to_string());
            }
            assert_eq!(v.iter().sum::<u64>(), (0..500u64).map(|i| i ^ round).sum());
            assert!(s.starts_with("0123456789101112"));
        });
        assert!(canary.iter().enumerate().all(|(i, &x)| x == i as u64 * 3));
    }
}

#[test]
fn hashmap_workloads_in_scopes() {
    let _shared = concurrently();
    let canary: HashMap<String, usize> = (0..200).map(|i| (format!("key{i}"), i)).collect();
    for round in 0..100 {
        ARENA.scope(|| {
            check_cache();
            let mut m = HashMap::new();
            for i in 0..300 {
                m.insert(format!("k{i}-{round}"), vec![i; 4]);
            }
            for i in 0..300 {
                assert_eq!(m[&format!("k{i}-{round}")], vec![i; 4]);
            }
        });
        for i in 0..200 {
            assert_eq!(canary[&format!("key{i}")], i);
        }
    }
}

#[test]
fn btreemap_workloads_in_nested_scopes() {
    let _shared = concurrently();
    let mut survivors = BTreeMap::new();
    for round in 0..50 {
        ARENA.scope(|| {
            check_cache();
            let mut tree = BTreeMap::new();
            for i in 0..400u32 {
                tree.insert(i.wrapping_mul(2_654_435_761), i);
            }
            ARENA.scope(|| {
                let inner: BTreeMap<u32, String> =
                    (0..50).map(|i| (i, "x".repeat(i as usize))).collect();
                assert_eq!(inner[&49].len(), 49);
            });
            assert_eq!(tree.len(), 400);
            // Something allocated inside the scope escapes it: the reset must skip it.
            survivors.insert(round, format!("survivor {round}"));
        });
    }
    for (round, text) in &survivors {
        assert_eq!(text, &format!("survivor {round}"));
    }
}

#[test]
fn a_box_leaked_in_a_scope_is_never_handed_out_again() {
    let _shared = concurrently();
    let leaked: &'static mut [u8; 64] = ARENA.scope(|| Box::leak(Box::new([0xA5; 64])));
    for _ in 0..100 {
        ARENA.scope(|| {
            let fresh = Box::new([0u8; 64]); // on the heap, i.e. from the arena
            assert_ne!(fresh.as_ptr(), leaked.as_ptr());
        });
    }
    assert!(leaked.iter().all(|&b| b == 0xA5));
    assert!(ARENA.stats().live_blocks >= 1);
}

#[test]
fn scopes_that_free_everything_reuse_their_memory() {
    // Alone, but the harness's own thread may still hold a block now and then, so this asserts
    // reuse in bulk: 2,000 scopes of 64 KiB each would need 128 MiB without it.
    let _alone = ALONE.write().unwrap_or_else(|e| e.into_inner());
    let before = ARENA.stats();
    for _ in 0..2000 {
        ARENA.scope(|| drop(vec![1u8; 64 << 10]));
    }
    let after = ARENA.stats();
    println!("before: {before}\nafter:  {after}");
    assert!(
        after.peak - before.peak.min(after.peak) < 64 << 20,
        "{after}"
    );
    assert!(after.resets >= before.resets + 2000);
}
