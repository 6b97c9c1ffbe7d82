//! What the relay adds to latency, measured against the same mock upstream reached
//! directly: (a) per streamed event at 1 and 256 concurrent streams, (b) per non-streamed
//! request at concurrency 1 and throughput over 64 keep-alive connections, (d) time to
//! the first streamed event. A bare byte forwarder (`Forwarder`) is measured alongside as
//! the floor any thread-per-connection proxy pays on this machine. Own timing code
//! (`harness = false`); `--quick` or `CC_RELAY_BENCH_QUICK=1` runs one tiny iteration of
//! each for CI.
//!
//! `CC_RELAY_BENCH_ONLY=stream,nonstream,throughput,ttfb` (any subset) runs only those
//! sections, e.g. to profile one of them; `CC_RELAY_BENCH_STREAMS=1` (or `256`, or
//! `1,256`) picks the stream counts of the stream section.
//!
//! Direct, floor and relayed runs alternate in rounds so a change in machine load (two
//! shared cores) hits all of them alike. On a machine busy with other work the tails
//! measure that work, not the relay; for the low-CPU sections a real-time run gets
//! close to an idle machine:
//! `CC_RELAY_BENCH_ONLY=stream,nonstream,ttfb CC_RELAY_BENCH_STREAMS=1 chrt -f 10 <bench>`.
//! (Not for 256 streams or throughput: they saturate the CPUs.)
//!
//! This file drives and reports; it never tunes the relay.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use common::*;

/// Pace of the mock's events, as in the issue: 5 ms apart.
const PACE_US: u64 = 5_000;
/// A ten times slower pace for a second 256-stream run: the same number of open streams
/// and threads at a tenth of the events per second, so what concurrency itself costs can
/// be told apart from what a saturated CPU costs.
const SLOW_PACE_US: u64 = 50_000;

struct Plan {
    stream_runs: Vec<StreamRun>,
    /// Sequential non-streamed requests per round, rounds.
    sequential: (usize, usize),
    throughput_conns: usize,
    throughput_round: Duration,
    throughput_rounds: usize,
    /// Sequential zero-delta streams per round, rounds.
    ttfb: (usize, usize),
    warmup: usize,
}

impl Plan {
    fn new(quick: bool) -> Plan {
        if quick {
            Plan {
                stream_runs: vec![
                    StreamRun::new(1, 10, 1, PACE_US),
                    StreamRun::new(16, 4, 1, PACE_US),
                ],
                sequential: (20, 1),
                throughput_conns: 64,
                throughput_round: Duration::from_millis(100),
                throughput_rounds: 1,
                ttfb: (10, 1),
                warmup: 2,
            }
        } else {
            Plan {
                stream_runs: vec![
                    StreamRun::new(1, 200, 5, PACE_US),
                    StreamRun::new(256, 40, 2, PACE_US),
                    StreamRun::new(256, 12, 2, SLOW_PACE_US),
                ],
                sequential: (1000, 5),
                throughput_conns: 64,
                throughput_round: Duration::from_millis(1500),
                throughput_rounds: 2,
                ttfb: (200, 5),
                warmup: 200,
            }
        }
    }
}

/// One configuration of the stream section.
#[derive(Clone, Copy)]
struct StreamRun {
    streams: usize,
    events: usize,
    rounds: usize,
    pace_us: u64,
}

impl StreamRun {
    fn new(streams: usize, events: usize, rounds: usize, pace_us: u64) -> StreamRun {
        StreamRun {
            streams,
            events,
            rounds,
            pace_us,
        }
    }

    /// Events per second the relay must carry while all streams run.
    fn events_per_second(&self) -> f64 {
        self.streams as f64 * 1e6 / self.pace_us as f64
    }

    /// Tag for the machine-readable lines: the pace only when it is not the issue's.
    fn tags(&self) -> String {
        if self.pace_us == PACE_US {
            format!("streams={}", self.streams)
        } else {
            format!("streams={} pace_us={}", self.streams, self.pace_us)
        }
    }
}

/// The three ways to reach the mock, in the order every round visits them.
#[derive(Clone, Copy)]
struct Targets {
    direct: SocketAddr,
    floor: SocketAddr,
    relay: SocketAddr,
    floor_pid: u32,
    /// The relay's own process, when it has one (for its CPU time).
    relay_pid: Option<u32>,
}

impl Targets {
    fn all(&self) -> [SocketAddr; 3] {
        [self.direct, self.floor, self.relay]
    }
}

/// CPU time burnt during `f` by `pid` (None when there is no pid or /proc fails).
fn cpu_during<T>(
    pid: Option<u32>,
    f: impl FnOnce() -> Result<T, String>,
) -> Result<(T, Option<u64>), String> {
    let before = pid.and_then(|p| cpu_time_us(p).ok());
    let out = f()?;
    let after = pid.and_then(|p| cpu_time_us(p).ok());
    Ok((out, before.zip(after).map(|(b, a)| a.saturating_sub(b))))
}

fn add_cpu(sum: &mut Option<u64>, spent: Option<u64>) {
    *sum = sum.zip(spent).map(|(s, x)| s + x);
}

fn main() {
    run_child_if_asked();
    now_ns();
    let opts = Options::from_env();
    if let Err(e) = run(opts) {
        eprintln!("relay_latency: {e}");
        std::process::exit(1);
    }
}

fn run(opts: Options) -> Result<(), String> {
    let started = Instant::now();
    let plan = Plan::new(opts.quick);
    let mock = MockUpstream::start().map_err(|e| format!("mock upstream: {e}"))?;
    let floor = ChildRelay::start_forwarder(mock.addr).map_err(|e| format!("forwarder: {e}"))?;
    let relay = RelayUnderTest::start(&mock.url()).map_err(|e| format!("relay: {e}"))?;
    let targets = Targets {
        direct: mock.addr,
        floor: floor.addr,
        relay: relay.addr(),
        floor_pid: floor.pid(),
        relay_pid: relay.pid(),
    };
    let mode = if opts.quick { "quick" } else { "full" };
    let mut report = Report::new(format!("relay_latency ({mode})"));
    report.note(format!(
        "{}; bare forwarder (floor) in another child; mock upstream and clients in the bench process; all on loopback",
        relay.describe()
    ));
    report.note("added = relay percentile - direct percentile of the same figure");
    report.note(format!(
        "goals are judged 'unsure' when the direct figure alone exceeds {NOISE_FACTOR}x the goal"
    ));
    report.note(format!("load average at start: {}", load_average()));

    warm_up(&targets, plan.warmup)?;
    let only = std::env::var("CC_RELAY_BENCH_ONLY").unwrap_or_default();
    let wanted = |section: &str| only.is_empty() || only.split(',').any(|s| s == section);
    if wanted("stream") {
        stream_section(&plan, &targets, &mut report)?;
    }
    if wanted("nonstream") {
        nonstream_section(&plan, &targets, &mut report)?;
    }
    if wanted("throughput") {
        throughput_section(&plan, &targets, &mock, &mut report)?;
    }
    if wanted("ttfb") {
        ttfb_section(&plan, &targets, &mut report)?;
    }
    report.note(format!(
        "ran in {:.1} s; load average at end: {}",
        started.elapsed().as_secs_f64(),
        load_average()
    ));
    report.print();
    Ok(())
}

/// (a) per-event latency.
fn stream_section(plan: &Plan, targets: &Targets, report: &mut Report) -> Result<(), String> {
    let counts = std::env::var("CC_RELAY_BENCH_STREAMS").unwrap_or_default();
    let wanted = |n: usize| counts.is_empty() || counts.split(',').any(|c| c == n.to_string());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    for run_plan in plan.stream_runs.iter().filter(|r| wanted(r.streams)) {
        let StreamRun {
            streams,
            events,
            rounds,
            pace_us,
        } = *run_plan;
        let tags = run_plan.tags();
        let run = per_event_latency(targets, run_plan)?;
        let goal = match (streams, pace_us) {
            (1, PACE_US) => Some(50.0),
            (256, PACE_US) => Some(200.0),
            _ => None,
        };
        report.note(format!(
            "stream events: {streams} streams x {events} events x {rounds} rounds, \
             paced {pace_us} us ({:.0} events/s); {} samples per path",
            run_plan.events_per_second(),
            run.relay.n
        ));
        let harness_us = run.bench_cpu_direct_us as f64 / run.direct.n.max(1) as f64;
        let relay_us = run
            .relay_cpu_us
            .map(|cpu| cpu as f64 / run.relay.n.max(1) as f64);
        // CPU the relayed run asks of the machine: the relay's own share plus the mock
        // and clients (measured on the direct run, where they are alone). Near or over the
        // cores there are, events queue for a CPU and the tail measures that queue.
        let cores_needed =
            relay_us.map(|relay_us| (relay_us + harness_us) * run_plan.events_per_second() / 1e6);
        let saturated = cores_needed.is_some_and(|c| c > 0.7 * cores);
        if saturated {
            report.note(format!(
                "{streams} streams at {pace_us} us need {:.1} of {cores} cores: \
                 the CPUs are saturated, so the goal is judged 'unsure'",
                cores_needed.unwrap_or(0.0)
            ));
        }
        report.set_unsure(saturated);
        report.compare_latency(
            &format!("event latency, {streams} streams @{}ms,", pace_us / 1000),
            "stream",
            &tags,
            run.direct,
            Some(run.floor),
            run.relay,
            goal,
        );
        report.set_unsure(false);
        report.single(
            &format!("mock+client CPU per direct event, {streams} streams (us)"),
            "direct_cpu_per_event_us",
            &tags,
            harness_us,
            None,
        );
        report.single(
            &format!("floor CPU per forwarded event, {streams} streams (us)"),
            "floor_cpu_per_event_us",
            &tags,
            run.floor_cpu_us as f64 / run.floor.n.max(1) as f64,
            None,
        );
        if let (Some(relay_us), Some(cores_needed)) = (relay_us, cores_needed) {
            report.single(
                &format!("relay CPU per relayed event, {streams} streams (us)"),
                "relay_cpu_per_event_us",
                &tags,
                relay_us,
                None,
            );
            report.single(
                &format!("cores the relayed run needs, {streams} streams (of {cores})"),
                "stream_cores_needed",
                &tags,
                cores_needed,
                None,
            );
        }
    }
    Ok(())
}

/// (b) one non-streamed request at a time.
fn nonstream_section(plan: &Plan, targets: &Targets, report: &mut Report) -> Result<(), String> {
    let (per_round, rounds) = plan.sequential;
    let [d, f, r] = sequential(
        targets,
        per_round,
        rounds,
        &messages_request(PLAIN_BODY),
        false,
    )?;
    report.note(format!(
        "non-stream: {} requests per path, one at a time on one keep-alive connection",
        d.n
    ));
    report.compare_latency(
        "non-stream request, conc 1,",
        "nonstream",
        "conc=1",
        d,
        Some(f),
        r,
        Some(100.0),
    );
    Ok(())
}

/// (b) requests per second over many keep-alive connections.
fn throughput_section(
    plan: &Plan,
    targets: &Targets,
    mock: &MockUpstream,
    report: &mut Report,
) -> Result<(), String> {
    let conns = plan.throughput_conns;
    let tp = throughput(
        mock,
        targets,
        conns,
        plan.throughput_round,
        plan.throughput_rounds,
    )?;
    report.note(format!(
        "throughput: {conns} keep-alive client connections, {} x {} ms per path; the relay \
         opened {} upstream connections for {} requests",
        plan.throughput_rounds,
        plan.throughput_round.as_millis(),
        tp.relay_upstream_conns,
        tp.relay_requests
    ));
    report.compare(
        &format!("non-stream throughput, conc {conns} (req/s)"),
        "nonstream",
        "rps",
        &format!("conc={conns}"),
        Trio {
            direct: tp.rps[0],
            floor: Some(tp.rps[1]),
            relay: tp.rps[2],
        },
        None,
    );
    report.single(
        &format!("mock+client CPU per direct request, conc {conns} (us)"),
        "direct_cpu_per_request_us",
        &format!("conc={conns}"),
        tp.bench_cpu_direct_us as f64 / tp.direct_requests.max(1) as f64,
        None,
    );
    report.single(
        &format!("floor CPU per request, conc {conns} (us)"),
        "floor_cpu_per_request_us",
        &format!("conc={conns}"),
        tp.floor_cpu_us as f64 / tp.floor_requests.max(1) as f64,
        None,
    );
    if let Some(cpu) = tp.relay_cpu_us {
        report.single(
            &format!("relay CPU per request, conc {conns} (us)"),
            "relay_cpu_per_request_us",
            &format!("conc={conns}"),
            cpu as f64 / tp.relay_requests.max(1) as f64,
            None,
        );
    }
    Ok(())
}

/// (d) time to the first streamed event.
fn ttfb_section(plan: &Plan, targets: &Targets, report: &mut Report) -> Result<(), String> {
    let (per_round, rounds) = plan.ttfb;
    let request = messages_request(&stream_body(0, 0, 0));
    let [d, f, r] = sequential(targets, per_round, rounds, &request, true)?;
    report.note(format!(
        "ttfb: request written -> first whole event read, {} streams per path, keep-alive",
        d.n
    ));
    for (stat, d, f, r) in [("p50", d.p50, f.p50, r.p50), ("p99", d.p99, f.p99, r.p99)] {
        let trio = Trio {
            direct: us(d),
            floor: Some(us(f)),
            relay: us(r),
        };
        report.compare(
            &format!("ttfb {stat} (us)"),
            "ttfb",
            &format!("{stat}_us"),
            "",
            trio,
            None,
        );
    }
    Ok(())
}

/// Opens pooled upstream connections and faults in code paths before timing.
fn warm_up(targets: &Targets, n: usize) -> Result<(), String> {
    for addr in targets.all() {
        let mut wire = Wire::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        let plain = messages_request(PLAIN_BODY);
        let stream = messages_request(&stream_body(2, 0, 0));
        let mut sink = Vec::new();
        for _ in 0..n {
            request_once(&mut wire, &plain).map_err(|e| format!("warm-up {addr}: {e}"))?;
            stream_once(&mut wire, &stream, &mut sink)
                .map_err(|e| format!("warm-up stream {addr}: {e}"))?;
        }
    }
    Ok(())
}

struct EventRun {
    direct: Summary,
    floor: Summary,
    relay: Summary,
    /// The relay's CPU over its runs, stream set-up included (None in-process).
    relay_cpu_us: Option<u64>,
    floor_cpu_us: u64,
    /// This process (mock + clients) over the direct runs: the same events' price
    /// without any proxy, for scale.
    bench_cpu_direct_us: u64,
}

/// (a) `streams` concurrent streams (one client thread and connection each), `events`
/// stamped deltas each; latency = receive - send of every delta.
fn per_event_latency(targets: &Targets, plan: &StreamRun) -> Result<EventRun, String> {
    let StreamRun {
        streams,
        events,
        rounds,
        pace_us,
    } = *plan;
    let mut samples: [Vec<u64>; 3] = Default::default();
    let mut relay_cpu = Some(0);
    let mut floor_cpu = Some(0);
    let mut bench_cpu = Some(0);
    let me = Some(std::process::id());
    for _ in 0..rounds {
        let (d, spent) = cpu_during(me, || run_streams(targets.direct, streams, events, pace_us))?;
        samples[0].extend(d);
        add_cpu(&mut bench_cpu, spent);
        let (f, spent) = cpu_during(Some(targets.floor_pid), || {
            run_streams(targets.floor, streams, events, pace_us)
        })?;
        samples[1].extend(f);
        add_cpu(&mut floor_cpu, spent);
        let (r, spent) = cpu_during(targets.relay_pid, || {
            run_streams(targets.relay, streams, events, pace_us)
        })?;
        samples[2].extend(r);
        add_cpu(&mut relay_cpu, spent);
    }
    let [mut d, mut f, mut r] = samples;
    Ok(EventRun {
        direct: summarize(&mut d),
        floor: summarize(&mut f),
        relay: summarize(&mut r),
        relay_cpu_us: relay_cpu,
        floor_cpu_us: floor_cpu.unwrap_or(0),
        bench_cpu_direct_us: bench_cpu.unwrap_or(0),
    })
}

fn run_streams(
    addr: SocketAddr,
    streams: usize,
    events: usize,
    pace_us: u64,
) -> Result<Vec<u64>, String> {
    let barrier = Barrier::new(streams);
    let results: Vec<Result<Vec<u64>, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..streams)
            .map(|k| {
                let barrier = &barrier;
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, move || {
                        // Connect first, so every stream starts together after the barrier.
                        let wire = Wire::connect(addr);
                        barrier.wait();
                        let mut wire = wire.map_err(|e| format!("connect {addr}: {e}"))?;
                        let phase = k as u64 * pace_us / streams as u64;
                        let request = messages_request(&stream_body(events, pace_us, phase));
                        let mut latencies = Vec::with_capacity(events);
                        let seen = stream_once(&mut wire, &request, &mut latencies)
                            .map_err(|e| format!("stream via {addr}: {e}"))?;
                        if latencies.len() != events || !seen.saw_message_stop {
                            return Err(format!(
                                "stream via {addr}: {} of {events} stamped events, message_stop {}",
                                latencies.len(),
                                seen.saw_message_stop
                            ));
                        }
                        Ok(latencies)
                    })
            })
            .collect();
        handles.into_iter().map(join).collect()
    });
    let mut all = Vec::with_capacity(streams * events);
    for r in results {
        all.extend(r?);
    }
    Ok(all)
}

fn join<T>(
    h: std::io::Result<std::thread::ScopedJoinHandle<'_, Result<T, String>>>,
) -> Result<T, String> {
    match h {
        Ok(h) => h
            .join()
            .unwrap_or_else(|_| Err("client thread panicked".into())),
        Err(e) => Err(format!("spawn client thread: {e}")),
    }
}

/// (b), (d): one request at a time on one keep-alive connection per path, alternating
/// paths every `per_round` requests. Measures the whole answer, or with `first_event`
/// the time to the first whole SSE event.
fn sequential(
    targets: &Targets,
    per_round: usize,
    rounds: usize,
    request: &[u8],
    first_event: bool,
) -> Result<[Summary; 3], String> {
    let mut wires = Vec::new();
    for addr in targets.all() {
        wires.push(Wire::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?);
    }
    let mut samples: [Vec<u64>; 3] = Default::default();
    let mut sink = Vec::new();
    for _ in 0..rounds {
        for (wire, out) in wires.iter_mut().zip(samples.iter_mut()) {
            for _ in 0..per_round {
                let took = if first_event {
                    stream_once(wire, request, &mut sink).map(|seen| seen.ttfb_ns)
                } else {
                    request_once(wire, request)
                };
                out.push(took.map_err(|e| format!("request: {e}"))?);
                sink.clear();
            }
        }
    }
    Ok(samples.map(|mut s| summarize(&mut s)))
}

struct Throughput {
    /// req/s: direct, floor, relay.
    rps: [f64; 3],
    direct_requests: u64,
    floor_requests: u64,
    relay_requests: u64,
    floor_cpu_us: u64,
    /// Upstream connections the mock accepted during the relayed rounds.
    relay_upstream_conns: u64,
    relay_cpu_us: Option<u64>,
    bench_cpu_direct_us: u64,
}

/// (b) completed non-streamed requests per second over `conns` keep-alive connections,
/// each sending its next request as soon as the last answer arrived.
fn throughput(
    mock: &MockUpstream,
    targets: &Targets,
    conns: usize,
    round: Duration,
    rounds: usize,
) -> Result<Throughput, String> {
    let mut totals = [(0u64, Duration::ZERO); 3];
    let mut upstream_conns = 0;
    let mut relay_cpu = Some(0);
    let mut floor_cpu = Some(0);
    let mut bench_cpu = Some(0);
    let me = Some(std::process::id());
    for _ in 0..rounds {
        let (d, spent) = cpu_during(me, || throughput_round(targets.direct, conns, round))?;
        add_cpu(&mut bench_cpu, spent);
        let (f, spent) = cpu_during(Some(targets.floor_pid), || {
            throughput_round(targets.floor, conns, round)
        })?;
        add_cpu(&mut floor_cpu, spent);
        let accepted = mock.connections_accepted();
        let (r, spent) = cpu_during(targets.relay_pid, || {
            throughput_round(targets.relay, conns, round)
        })?;
        upstream_conns += mock.connections_accepted() - accepted;
        add_cpu(&mut relay_cpu, spent);
        for (total, (n, took)) in totals.iter_mut().zip([d, f, r]) {
            total.0 += n;
            total.1 += took;
        }
    }
    let rate = |(n, took): (u64, Duration)| n as f64 / took.as_secs_f64().max(1e-9);
    Ok(Throughput {
        rps: totals.map(rate),
        direct_requests: totals[0].0,
        floor_requests: totals[1].0,
        relay_requests: totals[2].0,
        floor_cpu_us: floor_cpu.unwrap_or(0),
        relay_upstream_conns: upstream_conns,
        relay_cpu_us: relay_cpu,
        bench_cpu_direct_us: bench_cpu.unwrap_or(0),
    })
}

fn throughput_round(
    addr: SocketAddr,
    conns: usize,
    round: Duration,
) -> Result<(u64, Duration), String> {
    let request = messages_request(PLAIN_BODY);
    let done = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let barrier = Barrier::new(conns + 1);
    let (results, counted, took) = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..conns)
            .map(|_| {
                let (request, done, stop, barrier) = (&request, &done, &stop, &barrier);
                std::thread::Builder::new()
                    .stack_size(256 * 1024)
                    .spawn_scoped(scope, move || {
                        let wire = Wire::connect(addr);
                        barrier.wait();
                        let mut wire = wire.map_err(|e| format!("connect {addr}: {e}"))?;
                        while !stop.load(Ordering::Relaxed) {
                            request_once(&mut wire, request)
                                .map_err(|e| format!("request via {addr}: {e}"))?;
                            done.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(())
                    })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let before = done.load(Ordering::Relaxed);
        std::thread::sleep(round);
        let counted = done.load(Ordering::Relaxed) - before;
        let took = started.elapsed();
        stop.store(true, Ordering::Relaxed);
        let results: Vec<Result<(), String>> = handles.into_iter().map(join).collect();
        (results, counted, took)
    });
    for r in results {
        r?;
    }
    Ok((counted, took))
}
