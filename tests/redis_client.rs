//! The RESP2 client against a real redis-server: commands and reply types, pipelining,
//! AUTH (password, ACL user, wrong password, missing password), SELECT, EVALSHA with
//! re-load after SCRIPT FLUSH, deadlines against a stopped server, a killed and
//! restarted server, the pool under concurrency, and rediss:// with the test CA.

mod redis_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_relay::codec::resp2::Value;
use cc_relay::state::redis::{Cmd, RedisClient, RedisError, RedisOptions, Script};
use redis_support::RedisServer;

const GENEROUS: Duration = Duration::from_secs(5);

fn deadline() -> Instant {
    Instant::now() + GENEROUS
}

fn client(url: &str) -> RedisClient {
    RedisClient::new(url, RedisOptions::default()).expect("client")
}

fn bulk(s: &str) -> Value {
    Value::Bulk(s.as_bytes().to_vec())
}

#[test]
fn every_reply_type_from_a_real_server() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let c = client(&server.url());
    assert_eq!(
        c.query(&Cmd::new("SET").arg("k").arg("v"), deadline()),
        Ok(Value::Simple("OK".into()))
    );
    assert_eq!(
        c.query(&Cmd::new("GET").arg("k"), deadline()),
        Ok(bulk("v"))
    );
    assert_eq!(
        c.query(&Cmd::new("GET").arg("absent"), deadline()),
        Ok(Value::Nil)
    );
    assert_eq!(
        c.query(&Cmd::new("INCRBY").arg("n").arg(-5i64), deadline()),
        Ok(Value::Integer(-5))
    );
    assert_eq!(
        c.query(&Cmd::new("RPUSH").arg("l").arg("a").arg("b"), deadline()),
        Ok(Value::Integer(2))
    );
    assert_eq!(
        c.query(
            &Cmd::new("LRANGE").arg("l").arg(0u64).arg(-1i64),
            deadline()
        ),
        Ok(Value::Array(vec![bulk("a"), bulk("b")]))
    );
    assert_eq!(
        c.query(
            &Cmd::new("LRANGE").arg("none").arg(0u64).arg(-1i64),
            deadline()
        ),
        Ok(Value::Array(vec![]))
    );
    // A binary value with CRLF and NUL survives.
    let binary = b"a\r\nb\x00\xff".to_vec();
    c.query(&Cmd::new("SET").arg("bin").arg(binary.clone()), deadline())
        .unwrap();
    assert_eq!(
        c.query(&Cmd::new("GET").arg("bin"), deadline()),
        Ok(Value::Bulk(binary))
    );
    // Nested arrays from a script.
    let nested = Script::new("return {1, {2, 'x'}, {}}");
    assert_eq!(
        c.eval(&nested, &[] as &[&str], &[] as &[&str], deadline()),
        Ok(Value::Array(vec![
            Value::Integer(1),
            Value::Array(vec![Value::Integer(2), bulk("x")]),
            Value::Array(vec![]),
        ]))
    );
    // An error reply is an Err with the server's text.
    match c.query(&Cmd::new("INCR").arg("k"), deadline()) {
        Err(RedisError::Server(text)) => {
            assert_eq!(text, "ERR value is not an integer or out of range")
        }
        other => panic!("{other:?}"),
    }
    // The connection stays usable after an error reply, and is reused.
    c.ping(deadline()).unwrap();
    assert_eq!(c.open_connections(), 1);
}

#[test]
fn pipelining_sends_n_commands_and_reads_n_replies_in_order() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let c = client(&server.url());
    let mut cmds: Vec<Cmd> = (0..200u64)
        .map(|i| Cmd::new("RPUSH").arg("list").arg(i))
        .collect();
    cmds.insert(100, Cmd::new("NOSUCHCOMMAND"));
    cmds.push(Cmd::new("LLEN").arg("list"));
    let replies = c.pipeline(&cmds, deadline()).unwrap();
    assert_eq!(replies.len(), 202);
    for (i, reply) in replies[..100].iter().enumerate() {
        assert_eq!(reply, &Value::Integer(i as i64 + 1));
    }
    // One failing command does not hide the others' results.
    assert_eq!(replies[100].error_code(), Some("ERR"));
    assert_eq!(replies[101], Value::Integer(101));
    assert_eq!(replies[201], Value::Integer(200));
    // A pipeline larger than one socket read (replies span several reads).
    let big = "x".repeat(50_000);
    let cmds: Vec<Cmd> = (0..20)
        .map(|i| Cmd::new("SET").arg(format!("big{i}")).arg(big.as_str()))
        .chain((0..20).map(|i| Cmd::new("GET").arg(format!("big{i}"))))
        .collect();
    let replies = c.pipeline(&cmds, deadline()).unwrap();
    assert!(replies[20..].iter().all(|r| r == &bulk(&big)));
    assert_eq!(c.pipeline(&[], deadline()), Ok(vec![]));
}

#[test]
fn auth_with_requirepass_right_wrong_and_missing_password() {
    let Some(server) = RedisServer::start_with(&["--requirepass", "s3cret-pw"]) else {
        return;
    };
    let port = server.port;

    let good = client(&format!("redis://:s3cret-pw@127.0.0.1:{port}"));
    good.query(&Cmd::new("SET").arg("a").arg("1"), deadline())
        .unwrap();
    assert_eq!(
        good.query(&Cmd::new("GET").arg("a"), deadline()),
        Ok(bulk("1"))
    );

    let wrong = client(&format!("redis://:not-it@127.0.0.1:{port}"));
    let err = wrong.ping(deadline()).unwrap_err();
    let RedisError::Auth(text) = &err else {
        panic!("{err:?}")
    };
    assert!(text.starts_with("WRONGPASS"), "{text}");
    let shown = err.to_string();
    assert!(
        shown.starts_with("Redis authentication failed: WRONGPASS"),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("redis://:***@127.0.0.1:{port}/0")),
        "{shown}"
    );
    assert!(!shown.contains("not-it") && !format!("{err:?}").contains("not-it"));
    assert!(!format!("{wrong:?}").contains("not-it"));
    // A failed handshake leaves no connection behind.
    assert_eq!(wrong.open_connections(), 0);

    let missing = client(&server.url());
    match missing.ping(deadline()) {
        Err(RedisError::Auth(text)) => {
            assert!(text.starts_with("NOAUTH"), "{text}");
            assert!(text.contains("cache.redis.url"), "{text}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn auth_as_an_acl_user() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let admin = client(&server.url());
    admin
        .query(
            &Cmd::new("ACL")
                .arg("SETUSER")
                .arg("relay")
                .arg("on")
                .arg(">relay-pw")
                .arg("~cc-relay:*")
                .arg("+@all"),
            deadline(),
        )
        .unwrap();
    let port = server.port;
    let user = client(&format!("redis://relay:relay-pw@127.0.0.1:{port}"));
    assert_eq!(
        user.query(&Cmd::new("ACL").arg("WHOAMI"), deadline()),
        Ok(bulk("relay"))
    );
    user.query(&Cmd::new("SET").arg("cc-relay:x").arg("1"), deadline())
        .unwrap();
    // The ACL applies: keys outside the pattern are refused.
    match user.query(&Cmd::new("SET").arg("other").arg("1"), deadline()) {
        Err(RedisError::Server(text)) => assert!(text.starts_with("NOPERM"), "{text}"),
        other => panic!("{other:?}"),
    }
    let wrong = client(&format!("redis://relay:nope@127.0.0.1:{port}"));
    assert!(matches!(wrong.ping(deadline()), Err(RedisError::Auth(_))));
    let percent = client(&format!("redis://re%6Cay:relay%2Dpw@127.0.0.1:{port}"));
    percent.ping(deadline()).unwrap();
}

#[test]
fn select_puts_each_client_on_its_database() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let db3 = client(&format!("{}/3", server.url()));
    let db0 = client(&server.url());
    db3.query(&Cmd::new("SET").arg("k").arg("three"), deadline())
        .unwrap();
    assert_eq!(
        db0.query(&Cmd::new("GET").arg("k"), deadline()),
        Ok(Value::Nil)
    );
    assert_eq!(
        db3.query(&Cmd::new("GET").arg("k"), deadline()),
        Ok(bulk("three"))
    );
    let info = db3
        .query(&Cmd::new("CLIENT").arg("INFO"), deadline())
        .unwrap();
    let info = String::from_utf8_lossy(info.as_bytes().unwrap()).into_owned();
    assert!(info.contains(" db=3 "), "{info}");

    // An out-of-range database is an error, and nothing runs on database 0 instead.
    let bad = client(&format!("{}/99", server.url()));
    match bad.query(&Cmd::new("SET").arg("leak").arg("1"), deadline()) {
        Err(RedisError::Server(text)) => {
            assert!(text.starts_with("SELECT 99: ERR"), "{text}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        db0.query(&Cmd::new("EXISTS").arg("leak"), deadline()),
        Ok(Value::Integer(0))
    );
}

#[test]
fn evalsha_reloads_the_script_after_script_flush() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let c = client(&server.url());
    let script = Script::new("return redis.call('INCRBY', KEYS[1], ARGV[1])");
    let exists = |c: &RedisClient| {
        c.query(
            &Cmd::new("SCRIPT").arg("EXISTS").arg(script.sha1()),
            deadline(),
        )
        .unwrap()
    };
    assert_eq!(exists(&c), Value::Array(vec![Value::Integer(0)]));
    assert_eq!(
        c.eval(&script, &["n"], &["2"], deadline()),
        Ok(Value::Integer(2))
    );
    assert_eq!(exists(&c), Value::Array(vec![Value::Integer(1)]));
    assert_eq!(
        c.eval(&script, &["n"], &["3"], deadline()),
        Ok(Value::Integer(5))
    );
    c.query(&Cmd::new("SCRIPT").arg("FLUSH"), deadline())
        .unwrap();
    assert_eq!(exists(&c), Value::Array(vec![Value::Integer(0)]));
    // NOSCRIPT is handled inside: the script ran exactly once more.
    assert_eq!(
        c.eval(&script, &["n"], &["10"], deadline()),
        Ok(Value::Integer(15))
    );
    assert_eq!(exists(&c), Value::Array(vec![Value::Integer(1)]));
    // A script error is a Server error, not a retry loop.
    let broken = Script::new("return redis.call('NOSUCH')");
    match c.eval(&broken, &[] as &[&str], &[] as &[&str], deadline()) {
        Err(RedisError::Server(text)) => assert!(text.contains("Unknown Redis command"), "{text}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_stopped_server_times_out_within_the_deadline() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let c = client(&server.url());
    c.ping(deadline()).unwrap();
    server.pause();
    let budget = Duration::from_millis(50);
    // On the pooled connection, then on a new one (TCP connect still succeeds: the
    // kernel accepts for a stopped process).
    for round in 0..2 {
        let start = Instant::now();
        let result = c.query(&Cmd::new("GET").arg("k"), start + budget);
        let took = start.elapsed();
        assert!(
            matches!(result, Err(RedisError::Timeout(_))),
            "round {round}: {result:?}"
        );
        assert!(
            took >= budget,
            "round {round}: returned early after {took:?}"
        );
        assert!(
            took < budget + Duration::from_millis(250),
            "round {round}: took {took:?}"
        );
        // The timed-out connection was closed, not pooled.
        assert_eq!(c.open_connections(), 0);
    }
    // An already-passed deadline fails at once.
    let start = Instant::now();
    assert!(matches!(
        c.query(&Cmd::new("PING"), start),
        Err(RedisError::Timeout(_))
    ));
    assert!(start.elapsed() < Duration::from_millis(50));
    server.resume();
    c.ping(deadline()).unwrap();
}

#[test]
fn killed_server_fails_fast_and_a_restart_is_picked_up() {
    let Some(mut server) = RedisServer::start() else {
        return;
    };
    let c = client(&server.url());
    c.query(&Cmd::new("SET").arg("k").arg("1"), deadline())
        .unwrap();
    assert_eq!(c.open_connections(), 1);
    server.kill();
    let start = Instant::now();
    let err = c.query(&Cmd::new("GET").arg("k"), deadline()).unwrap_err();
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(err, RedisError::Connect(_)), "{err:?}");
    assert!(err.to_string().contains("127.0.0.1"), "{err}");
    assert_eq!(c.open_connections(), 0);

    server.restart();
    // A fresh connection; the data is gone (no persistence).
    assert_eq!(
        c.query(&Cmd::new("GET").arg("k"), deadline()),
        Ok(Value::Nil)
    );

    // A pooled connection the restart closed is noticed before use, not reported.
    c.query(&Cmd::new("SET").arg("k").arg("2"), deadline())
        .unwrap();
    server.restart();
    assert_eq!(
        c.query(&Cmd::new("GET").arg("k"), deadline()),
        Ok(Value::Nil)
    );
}

#[test]
fn the_pool_serves_many_threads_within_max_open() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let c = RedisClient::new(
        &server.url(),
        RedisOptions {
            max_open: 3,
            max_idle: 2,
            ..RedisOptions::default()
        },
    )
    .unwrap();
    let peak = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            let peak = Arc::clone(&peak);
            std::thread::spawn(move || {
                for _ in 0..200 {
                    c.query(&Cmd::new("INCR").arg("counter"), deadline())
                        .unwrap();
                    peak.fetch_max(c.open_connections(), std::sync::atomic::Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        c.query(&Cmd::new("GET").arg("counter"), deadline()),
        Ok(bulk("1600"))
    );
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    assert!((1..=3).contains(&peak), "peak {peak}");
    assert!(c.open_connections() <= 2);
    let server_clients = c
        .query(&Cmd::new("CLIENT").arg("LIST"), deadline())
        .unwrap();
    let lines = String::from_utf8_lossy(server_clients.as_bytes().unwrap())
        .lines()
        .count();
    assert!(lines <= 3, "{lines} connections on the server");
}

#[test]
fn rediss_with_the_test_ca() {
    let Some(server) = RedisServer::start_tls() else {
        return;
    };
    let ca = format!("{}/tests/fixtures/tls/ca.pem", env!("CARGO_MANIFEST_DIR"));
    let tls = cc_relay::net::client::tls_client_config(Some(&ca), true).unwrap();
    for host in ["localhost", "127.0.0.1"] {
        let c = RedisClient::new(
            &format!("rediss://{host}:{}/2", server.port),
            RedisOptions {
                tls: Some(Arc::clone(&tls)),
                ..RedisOptions::default()
            },
        )
        .unwrap();
        c.query(&Cmd::new("SET").arg("t").arg(host), deadline())
            .unwrap();
        assert_eq!(
            c.query(&Cmd::new("GET").arg("t"), deadline()),
            Ok(bulk(host))
        );
        // Pooled TLS connections are reused.
        c.ping(deadline()).unwrap();
        assert_eq!(c.open_connections(), 1);
    }
    // Without the test CA the certificate is refused.
    let untrusted = client(&format!("rediss://localhost:{}", server.port));
    let err = untrusted.ping(deadline()).unwrap_err();
    assert!(
        matches!(&err, RedisError::Io(m) | RedisError::Connect(m) if m.to_lowercase().contains("certificate")),
        "{err:?}"
    );
    // Plain RESP to a TLS port is a failure, not a hang past the deadline.
    let plain = client(&format!("redis://127.0.0.1:{}", server.port));
    let start = Instant::now();
    assert!(plain.ping(start + Duration::from_millis(200)).is_err());
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[test]
fn all_connections_busy_waits_until_the_deadline() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let c = RedisClient::new(
        &server.url(),
        RedisOptions {
            max_open: 1,
            ..RedisOptions::default()
        },
    )
    .unwrap();
    c.ping(deadline()).unwrap();
    // BLPOP holds the only connection for 1 s.
    let holder = {
        let c = c.clone();
        std::thread::spawn(move || {
            c.query(
                &Cmd::new("BLPOP").arg("never").arg(1u64),
                Instant::now() + Duration::from_secs(3),
            )
        })
    };
    assert!(redis_support::wait_for(GENEROUS, || {
        let info = client(&server.url())
            .query(&Cmd::new("INFO").arg("clients"), deadline())
            .unwrap();
        String::from_utf8_lossy(info.as_bytes().unwrap()).contains("blocked_clients:1")
    }));
    let start = Instant::now();
    let result = c.query(&Cmd::new("PING"), start + Duration::from_millis(50));
    assert_eq!(
        result,
        Err(RedisError::Timeout("waiting for a free connection"))
    );
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(holder.join().unwrap(), Ok(Value::NilArray));
    c.ping(deadline()).unwrap();
}
