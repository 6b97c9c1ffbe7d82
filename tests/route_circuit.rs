//! CircuitBreaker (SPEC §4.3): every transition, the half-open probe budget, the
//! outcome classification tables, and concurrent failures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cc_relay::config::schema::HealthConfig;
use cc_relay::route::{
    is_breaker_failure, is_failover_trigger, Admission, AttemptOutcome, Availability,
    BreakerSettings, CircuitBreaker, CircuitState,
};

const OPEN_FOR: Duration = Duration::from_secs(30);

fn breaker(threshold: u32, probes: u32) -> CircuitBreaker {
    CircuitBreaker::new(BreakerSettings {
        failure_threshold: threshold,
        open_duration: OPEN_FOR,
        half_open_probes: probes,
    })
}

fn opened(b: &CircuitBreaker, now: Instant) {
    for _ in 0..b.settings().failure_threshold.max(1) {
        b.on_failure(now);
    }
    assert_eq!(b.state(now), CircuitState::Open);
}

#[test]
fn settings_come_from_the_health_config() {
    let s = BreakerSettings::from_config(&HealthConfig::default());
    assert_eq!(
        s,
        BreakerSettings {
            failure_threshold: 5,
            open_duration: Duration::from_millis(30_000),
            half_open_probes: 3
        }
    );
}

#[test]
fn closed_opens_after_threshold_consecutive_failures() {
    let t0 = Instant::now();
    let b = breaker(5, 3);
    for _ in 0..4 {
        b.on_failure(t0);
    }
    assert_eq!(b.state(t0), CircuitState::Closed);
    assert_eq!(b.consecutive_failures(), 4);
    // A success in between resets the count: failures must be consecutive.
    b.on_success(t0);
    assert_eq!(b.consecutive_failures(), 0);
    for _ in 0..4 {
        b.on_failure(t0);
    }
    assert_eq!(b.admit(t0), Admission::Closed);
    assert_eq!(b.opened_at(), None);
    b.on_failure(t0);
    assert_eq!(b.state(t0), CircuitState::Open);
    assert_eq!(b.admit(t0), Admission::Rejected);
    assert_eq!(b.opened_at(), Some(t0));
    assert_eq!(
        b.availability(t0),
        Availability::Unavailable { opened_at: t0 }
    );
    assert!(b.wants_probe(t0));
}

#[test]
fn open_becomes_half_open_after_open_duration() {
    let t0 = Instant::now();
    let b = breaker(1, 2);
    opened(&b, t0);
    let almost = t0 + OPEN_FOR - Duration::from_nanos(1);
    assert_eq!(b.admit(almost), Admission::Rejected);
    assert_eq!(b.state(almost), CircuitState::Open);
    let t1 = t0 + OPEN_FOR;
    assert_eq!(b.state(t1), CircuitState::HalfOpen);
    assert_eq!(b.availability(t1), Availability::Available);
    assert!(!b.wants_probe(t1));
}

#[test]
fn half_open_admits_exactly_the_probe_budget_and_all_successes_close() {
    let t0 = Instant::now();
    let b = breaker(1, 3);
    opened(&b, t0);
    let t1 = t0 + OPEN_FOR;
    assert_eq!(b.admit(t1), Admission::HalfOpenProbe);
    assert_eq!(b.admit(t1), Admission::HalfOpenProbe);
    assert_eq!(b.availability(t1), Availability::Available);
    assert_eq!(b.admit(t1), Admission::HalfOpenProbe);
    // Others see it as open meanwhile.
    assert_eq!(b.admit(t1), Admission::Rejected);
    assert_eq!(
        b.availability(t1),
        Availability::Unavailable { opened_at: t0 }
    );
    b.on_success(t1);
    b.on_success(t1);
    assert_eq!(b.state(t1), CircuitState::HalfOpen);
    b.on_success(t1);
    assert_eq!(b.state(t1), CircuitState::Closed);
    assert_eq!(b.admit(t1), Admission::Closed);
    assert_eq!(b.consecutive_failures(), 0);
    assert_eq!(b.opened_at(), Some(t0), "last opening stays visible");
}

#[test]
fn any_half_open_failure_reopens() {
    let t0 = Instant::now();
    let b = breaker(1, 3);
    opened(&b, t0);
    let t1 = t0 + OPEN_FOR;
    assert_eq!(b.admit(t1), Admission::HalfOpenProbe);
    assert_eq!(b.admit(t1), Admission::HalfOpenProbe);
    b.on_success(t1);
    b.on_failure(t1);
    assert_eq!(b.state(t1), CircuitState::Open);
    assert_eq!(b.opened_at(), Some(t1));
    assert_eq!(b.admit(t1 + OPEN_FOR / 2), Admission::Rejected);
    assert_eq!(b.admit(t1 + OPEN_FOR), Admission::HalfOpenProbe);
}

#[test]
fn a_successful_health_probe_half_opens_at_once() {
    let t0 = Instant::now();
    let b = breaker(2, 1);
    b.probe_succeeded(t0);
    assert_eq!(b.state(t0), CircuitState::Closed, "no effect when closed");
    opened(&b, t0);
    let t1 = t0 + Duration::from_secs(1);
    b.probe_succeeded(t1);
    assert_eq!(b.state(t1), CircuitState::HalfOpen);
    assert_eq!(b.admit(t1), Admission::HalfOpenProbe);
    assert_eq!(b.admit(t1), Admission::Rejected);
    b.on_success(t1);
    assert_eq!(b.state(t1), CircuitState::Closed);
}

#[test]
fn failures_while_open_do_not_push_the_reopen_time_out() {
    let t0 = Instant::now();
    let b = breaker(1, 1);
    opened(&b, t0);
    b.on_failure(t0 + Duration::from_secs(20));
    assert_eq!(b.opened_at(), Some(t0));
    assert_eq!(b.admit(t0 + OPEN_FOR), Admission::HalfOpenProbe);
}

#[test]
fn a_success_while_open_counts_as_a_probe() {
    let t0 = Instant::now();
    let b = breaker(1, 2);
    opened(&b, t0);
    let t1 = t0 + Duration::from_secs(1);
    b.on_success(t1); // e.g. the all-open last resort went through
    assert_eq!(b.state(t1), CircuitState::HalfOpen);
}

#[test]
fn an_abandoned_probe_gives_its_slot_back() {
    let t0 = Instant::now();
    let b = breaker(1, 1);
    opened(&b, t0);
    let t1 = t0 + OPEN_FOR;
    let probe = b.admit(t1);
    assert_eq!(probe, Admission::HalfOpenProbe);
    assert_eq!(b.admit(t1), Admission::Rejected);
    b.on_abandoned(Admission::Closed); // not a probe: nothing to give back
    assert_eq!(b.admit(t1), Admission::Rejected);
    b.on_abandoned(probe);
    assert_eq!(b.admit(t1), Admission::HalfOpenProbe);
}

#[test]
fn probe_slots_without_a_verdict_expire_after_open_duration() {
    let t0 = Instant::now();
    let b = breaker(1, 1);
    opened(&b, t0);
    let t1 = t0 + OPEN_FOR;
    assert_eq!(b.admit(t1), Admission::HalfOpenProbe);
    assert_eq!(b.admit(t1 + OPEN_FOR / 2), Admission::Rejected);
    assert_eq!(b.admit(t1 + OPEN_FOR), Admission::HalfOpenProbe);
}

#[test]
fn zero_threshold_and_zero_probes_act_as_one() {
    let t0 = Instant::now();
    let b = breaker(0, 0);
    b.on_failure(t0);
    assert_eq!(b.state(t0), CircuitState::Open);
    let t1 = t0 + OPEN_FOR;
    assert_eq!(b.admit(t1), Admission::HalfOpenProbe);
    assert_eq!(b.admit(t1), Admission::Rejected);
    b.on_success(t1);
    assert_eq!(b.state(t1), CircuitState::Closed);
}

#[test]
fn carry_over_keeps_the_state_under_new_settings() {
    let t0 = Instant::now();
    let old = breaker(1, 1);
    opened(&old, t0);
    let mut new = CircuitBreaker::new(BreakerSettings {
        failure_threshold: 3,
        open_duration: Duration::from_secs(10),
        half_open_probes: 2,
    });
    new.carry_over_from(&old);
    assert_eq!(new.state(t0), CircuitState::Open);
    assert_eq!(new.opened_at(), Some(t0));
    let t1 = t0 + Duration::from_secs(10);
    assert_eq!(new.admit(t1), Admission::HalfOpenProbe);
    assert_eq!(new.admit(t1), Admission::HalfOpenProbe);
    assert_eq!(new.admit(t1), Admission::Rejected);

    let closed = breaker(5, 1);
    closed.on_failure(t0);
    closed.on_failure(t0);
    let mut new = breaker(3, 1);
    new.carry_over_from(&closed);
    new.on_failure(t0);
    assert_eq!(
        new.state(t0),
        CircuitState::Open,
        "2 carried + 1 = threshold 3"
    );
}

#[test]
fn concurrent_failures_open_once() {
    let t0 = Instant::now();
    let b = Arc::new(breaker(50, 1));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let b = Arc::clone(&b);
            std::thread::spawn(move || {
                for _ in 0..100 {
                    b.on_failure(t0);
                    let _ = b.admit(t0);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(b.state(t0), CircuitState::Open);
    assert_eq!(b.opened_at(), Some(t0));
    assert_eq!(b.admit(t0), Admission::Rejected);
}

/// SPEC §4.3 / §4.1 classification, one row per outcome:
/// (outcome, counts for the breaker, fails over).
#[test]
fn outcome_classification_table() {
    use AttemptOutcome::*;
    let table: &[(AttemptOutcome, bool, bool)] = &[
        (Success, false, false),
        (Status(200), false, false),
        (Status(304), false, false),
        (Status(400), false, false),
        (Status(401), false, false),
        (Status(403), false, false),
        (Status(404), false, false),
        (Status(413), false, false),
        (Status(429), false, true),
        (Status(499), false, false),
        (Status(500), true, true),
        (Status(502), true, true),
        (Status(503), true, true),
        (Status(504), true, true),
        (Status(529), true, true),
        (Transport, true, true),
        (Timeout, true, true),
    ];
    for &(outcome, breaker_failure, failover) in table {
        assert_eq!(is_breaker_failure(outcome), breaker_failure, "{outcome:?}");
        assert_eq!(is_failover_trigger(outcome), failover, "{outcome:?}");
    }
}

#[test]
fn state_names() {
    let names: Vec<&str> = [
        CircuitState::Closed,
        CircuitState::Open,
        CircuitState::HalfOpen,
    ]
    .iter()
    .map(|s| s.as_str())
    .collect();
    assert_eq!(names, ["closed", "open", "half_open"]);
}
