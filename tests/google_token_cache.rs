//! TokenCache under concurrency: one refresh for a crowd, the still-valid token served
//! during an early refresh, failures shared with the threads that waited, and recovery
//! when a refresher panics. Threads synchronise on channels and on the cache's own
//! waiter count (polled against a deadline) — never on sleeps.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use cc_relay::auth::google::token_cache::REFRESH_MARGIN_SECS;
use cc_relay::auth::google::{Secret, Token, TokenCache};
use crossbeam_channel::{bounded, unbounded};

fn token(name: &str, expires_at_unix: u64) -> Token {
    Token {
        access_token: Secret::new(name),
        token_type: "Bearer".into(),
        expires_at_unix,
    }
}

fn wait_for_waiters(cache: &TokenCache<String>, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while cache.waiting_threads() < count {
        assert!(
            Instant::now() < deadline,
            "only {} threads waiting",
            cache.waiting_threads()
        );
        thread::yield_now();
    }
}

#[test]
fn fresh_token_is_served_without_refreshing_and_margin_is_3m45s() {
    assert_eq!(REFRESH_MARGIN_SECS, 225);
    let cache = TokenCache::<String>::new();
    let first = cache.get(1000, || Ok(token("a", 5000))).expect("refresh");
    assert_eq!(first.access_token.expose(), "a");
    let cached = cache
        .get(5000 - 226, || Err("must not refresh".to_string()))
        .expect("cached");
    assert_eq!(cached.access_token.expose(), "a");
    let refreshed = cache.get(5000 - 225, || Ok(token("b", 9000))).expect("due");
    assert_eq!(refreshed.access_token.expose(), "b");
}

#[test]
fn sixteen_threads_on_an_empty_cache_cause_one_refresh() {
    let cache = Arc::new(TokenCache::<String>::new());
    let refreshes = Arc::new(AtomicUsize::new(0));
    let (release, released) = bounded::<()>(1);
    let threads: Vec<_> = (0..16)
        .map(|_| {
            let (cache, refreshes, released) = (cache.clone(), refreshes.clone(), released.clone());
            thread::spawn(move || {
                cache.get(1000, || {
                    refreshes.fetch_add(1, Ordering::SeqCst);
                    released.recv().map_err(|e| e.to_string())?;
                    Ok(token("shared", 4600))
                })
            })
        })
        .collect();
    // Everyone but the refresher must be parked on the cache before it finishes.
    wait_for_waiters(&cache, 15);
    release.send(()).expect("release");
    for handle in threads {
        let got = handle.join().expect("no panic").expect("token");
        assert_eq!(got, token("shared", 4600));
    }
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    assert_eq!(cache.waiting_threads(), 0);
}

#[test]
fn during_an_early_refresh_others_keep_the_still_valid_token() {
    let cache = Arc::new(TokenCache::<String>::new());
    cache.get(0, || Ok(token("old", 1000))).expect("seed");
    let now = 1000 - 100; // inside the margin, still valid
    let (started, on_started) = bounded::<()>(1);
    let (release, released) = bounded::<()>(1);
    let refresher = {
        let cache = cache.clone();
        thread::spawn(move || {
            cache.get(now, || {
                started.send(()).map_err(|e| e.to_string())?;
                released.recv().map_err(|e| e.to_string())?;
                Ok(token("new", now + 3600))
            })
        })
    };
    on_started.recv().expect("refresh started");
    for _ in 0..10 {
        let got = cache
            .get(now, || {
                Err("second refresh while one is running".to_string())
            })
            .expect("old token");
        assert_eq!(got.access_token.expose(), "old");
    }
    release.send(()).expect("release");
    assert_eq!(
        refresher
            .join()
            .expect("no panic")
            .expect("new")
            .access_token
            .expose(),
        "new"
    );
    assert_eq!(
        cache
            .get(now, || Err("no refresh".into()))
            .expect("new")
            .access_token
            .expose(),
        "new"
    );
}

#[test]
fn a_failed_refresh_is_shared_with_its_waiters_and_the_next_caller_retries() {
    let cache = Arc::new(TokenCache::<String>::new());
    let refreshes = Arc::new(AtomicUsize::new(0));
    let (release, released) = bounded::<()>(1);
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, refreshes, released) = (cache.clone(), refreshes.clone(), released.clone());
            thread::spawn(move || {
                cache.get(1000, || {
                    refreshes.fetch_add(1, Ordering::SeqCst);
                    released.recv().map_err(|e| e.to_string())?;
                    Err("token endpoint said 503".to_string())
                })
            })
        })
        .collect();
    wait_for_waiters(&cache, 7);
    release.send(()).expect("release");
    for handle in threads {
        assert_eq!(
            handle.join().expect("no panic"),
            Err("token endpoint said 503".to_string())
        );
    }
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
    let retried = cache
        .get(1001, || Ok(token("recovered", 5000)))
        .expect("retry succeeds");
    assert_eq!(retried.access_token.expose(), "recovered");
}

#[test]
fn a_failed_early_refresh_falls_back_to_the_still_valid_token() {
    let cache = TokenCache::<String>::new();
    cache.get(0, || Ok(token("old", 1000))).expect("seed");
    let got = cache
        .get(900, || Err("endpoint down".to_string()))
        .expect("old still valid");
    assert_eq!(got.access_token.expose(), "old");
    assert_eq!(
        cache.get(1000, || Err("endpoint down".to_string())),
        Err("endpoint down".to_string())
    );
}

#[test]
fn when_the_refresher_panics_a_waiter_takes_over() {
    let cache = Arc::new(TokenCache::<String>::new());
    let (started, on_started) = bounded::<()>(1);
    let (release, released) = bounded::<()>(1);
    let panicking = {
        let cache = cache.clone();
        thread::spawn(move || {
            cache.get(1000, || -> Result<Token, String> {
                started.send(()).expect("signal");
                released.recv().expect("release");
                panic!("refresh closure bug");
            })
        })
    };
    on_started.recv().expect("refresh started");
    let refreshes = Arc::new(AtomicUsize::new(0));
    let (done, results) = unbounded();
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let (cache, refreshes, done) = (cache.clone(), refreshes.clone(), done.clone());
            thread::spawn(move || {
                let got = cache.get(1000, || {
                    refreshes.fetch_add(1, Ordering::SeqCst);
                    Ok(token("taken-over", 5000))
                });
                done.send(got).expect("report");
            })
        })
        .collect();
    wait_for_waiters(&cache, 4);
    release.send(()).expect("release");
    assert!(panicking.join().is_err(), "refresher panicked");
    for waiter in waiters {
        waiter.join().expect("waiter did not panic");
    }
    drop(done);
    let answers: Vec<_> = results.iter().collect();
    assert_eq!(answers, vec![Ok(token("taken-over", 5000)); 4]);
    assert_eq!(refreshes.load(Ordering::SeqCst), 1);
}

#[test]
fn invalidate_forces_the_next_get_to_refresh() {
    let cache = TokenCache::<String>::new();
    cache.get(0, || Ok(token("a", 10_000))).expect("seed");
    cache.invalidate();
    assert_eq!(
        cache
            .get(1, || Ok(token("b", 10_000)))
            .expect("refreshed")
            .access_token
            .expose(),
        "b"
    );
    assert_eq!(
        format!("{cache:?}"),
        "TokenCache { expires_at_unix: Some(10000), refreshing: false, margin_secs: 225 }"
    );
}
