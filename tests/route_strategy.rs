//! Router::plan: exact orders per strategy (SPEC §4.1), open-circuit skipping, the
//! all-open last resort, max_attempts, and disabled providers.

use std::time::{Duration, Instant};

use cc_relay::config::schema::{Config, KeyConfig, ProviderConfig, ProviderType, Strategy};
use cc_relay::route::{Availability, BreakerSettings, CircuitBreaker, Plan, Router};

fn provider(name: &str, priority: i64, weight: u32) -> ProviderConfig {
    let mut p = ProviderConfig::new(name, ProviderType::Anthropic);
    p.priority = Some(priority);
    p.weight = Some(weight);
    p
}

fn config(strategy: Strategy, providers: Vec<ProviderConfig>) -> Config {
    let mut c = Config::with_providers(providers);
    c.routing.strategy = strategy;
    c
}

fn all_up(_: usize) -> Availability {
    Availability::Available
}

fn names(c: &Config, plan: &Plan) -> String {
    plan.providers
        .iter()
        .map(|&i| c.providers[i].name.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn first_picks(c: &Config, router: &Router, count: usize) -> String {
    (0..count)
        .map(|_| {
            let plan = router.plan("m", all_up);
            c.providers[plan.providers[0]].name.clone()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn failover_orders_by_priority_then_config_order() {
    let c = config(
        Strategy::Failover,
        vec![
            provider("a", 1, 1),
            provider("b", 3, 1),
            provider("c", 3, 1),
            provider("d", 2, 1),
        ],
    );
    let router = Router::with_seed(&c, 1);
    for _ in 0..3 {
        let plan = router.plan("m", all_up);
        assert_eq!(names(&c, &plan), "b,c,d,a");
        assert!(!plan.last_resort);
    }
}

#[test]
fn priority_and_weight_fall_back_to_the_first_key() {
    let mut a = ProviderConfig::new("a", ProviderType::Zai);
    a.keys.push(KeyConfig {
        priority: 1,
        weight: 1,
        ..KeyConfig::new("k1")
    });
    let mut b = ProviderConfig::new("b", ProviderType::Zai);
    b.keys.push(KeyConfig {
        priority: 9,
        weight: 3,
        ..KeyConfig::new("k2")
    });
    let c = config(Strategy::Failover, vec![a.clone(), b.clone()]);
    assert_eq!(
        names(&c, &Router::with_seed(&c, 1).plan("m", all_up)),
        "b,a"
    );
    let c = config(Strategy::WeightedRoundRobin, vec![a, b]);
    let router = Router::with_seed(&c, 1);
    assert_eq!(first_picks(&c, &router, 8), "b b a b b b a b");
}

#[test]
fn round_robin_rotates_config_order() {
    let c = config(
        Strategy::RoundRobin,
        vec![
            provider("a", 1, 1),
            provider("b", 5, 1),
            provider("c", 1, 1),
        ],
    );
    let router = Router::with_seed(&c, 1);
    let plans: Vec<String> = (0..5)
        .map(|_| names(&c, &router.plan("m", all_up)))
        .collect();
    assert_eq!(plans, ["a,b,c", "b,c,a", "c,a,b", "a,b,c", "b,c,a"]);
}

#[test]
fn smooth_weighted_round_robin_matches_nginx() {
    let c = config(
        Strategy::WeightedRoundRobin,
        vec![
            provider("a", 1, 5),
            provider("b", 1, 1),
            provider("c", 1, 1),
        ],
    );
    let router = Router::with_seed(&c, 1);
    assert_eq!(first_picks(&c, &router, 14), "a a b a c a a a a b a c a a");
}

#[test]
fn weighted_round_robin_fallbacks_are_the_rest_by_priority() {
    let c = config(
        Strategy::WeightedRoundRobin,
        vec![
            provider("a", 1, 1),
            provider("b", 2, 1),
            provider("c", 3, 2),
        ],
    );
    let router = Router::with_seed(&c, 1);
    let plans: Vec<String> = (0..4)
        .map(|_| names(&c, &router.plan("m", all_up)))
        .collect();
    // Weights c2 b1 a1, current weights per step (c,b,a):
    // (2,1,1)->c  (0,2,2)->b (tie: b's priority)  (2,-1,3)->a  (4,0,0)->c
    assert_eq!(plans, ["c,b,a", "b,c,a", "a,c,b", "c,b,a"]);
}

#[test]
fn weighted_round_robin_ties_go_to_priority_then_config_order() {
    let c = config(
        Strategy::WeightedRoundRobin,
        vec![
            provider("a", 1, 1),
            provider("b", 2, 1),
            provider("c", 1, 1),
        ],
    );
    let router = Router::with_seed(&c, 1);
    assert_eq!(first_picks(&c, &router, 6), "b a c b a c");
}

#[test]
fn weighted_round_robin_leaves_open_providers_out_of_the_rotation() {
    let c = config(
        Strategy::WeightedRoundRobin,
        vec![
            provider("a", 1, 5),
            provider("b", 1, 1),
            provider("c", 1, 2),
        ],
    );
    let router = Router::with_seed(&c, 1);
    let t0 = Instant::now();
    let a_open = |i: usize| {
        if i == 0 {
            Availability::Unavailable { opened_at: t0 }
        } else {
            Availability::Available
        }
    };
    let picks: Vec<String> = (0..6)
        .map(|_| names(&c, &router.plan("m", a_open)))
        .collect();
    assert_eq!(picks, ["c,b", "b,c", "c,b", "c,b", "b,c", "c,b"]);
}

#[test]
fn weight_zero_is_never_the_weighted_pick_but_still_a_fallback() {
    let c = config(
        Strategy::WeightedRoundRobin,
        vec![provider("a", 5, 0), provider("b", 1, 1)],
    );
    let router = Router::with_seed(&c, 1);
    for _ in 0..4 {
        assert_eq!(names(&c, &router.plan("m", all_up)), "b,a");
    }
}

#[test]
fn shuffle_deals_every_provider_once_per_round() {
    let providers: Vec<ProviderConfig> = (0..5).map(|i| provider(&format!("p{i}"), 1, 1)).collect();
    let c = config(Strategy::Shuffle, providers);
    let router = Router::with_seed(&c, 0xC0FFEE);
    let mut rounds = std::collections::HashSet::new();
    for _ in 0..200 {
        let mut seen = [0u32; 5];
        let mut round = Vec::new();
        for _ in 0..5 {
            let plan = router.plan("m", all_up);
            // The fallbacks are every other provider exactly once.
            let mut sorted = plan.providers.clone();
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2, 3, 4]);
            seen[plan.providers[0]] += 1;
            round.push(plan.providers[0]);
        }
        assert_eq!(seen, [1; 5], "each provider first exactly once per round");
        rounds.insert(round);
    }
    // 200 rounds from 120 possible orders: a fixed order would give 1.
    assert!(rounds.len() > 50, "only {} distinct rounds", rounds.len());
}

#[test]
fn shuffle_fallbacks_continue_the_deck() {
    let providers: Vec<ProviderConfig> = (0..4).map(|i| provider(&format!("p{i}"), 1, 1)).collect();
    let c = config(Strategy::Shuffle, providers);
    let router = Router::with_seed(&c, 7);
    let plans: Vec<Vec<usize>> = (0..4).map(|_| router.plan("m", all_up).providers).collect();
    let deck: Vec<usize> = plans.iter().map(|p| p[0]).collect();
    for (k, plan) in plans.iter().enumerate() {
        let expected: Vec<usize> = (0..4).map(|o| deck[(k + o) % 4]).collect();
        assert_eq!(plan, &expected);
    }
}

#[test]
fn shuffle_skips_open_providers_and_stays_fair_among_the_rest() {
    let providers: Vec<ProviderConfig> = (0..4).map(|i| provider(&format!("p{i}"), 1, 1)).collect();
    let c = config(Strategy::Shuffle, providers);
    let router = Router::with_seed(&c, 99);
    let t0 = Instant::now();
    let p2_open = |i: usize| {
        if i == 2 {
            Availability::Unavailable { opened_at: t0 }
        } else {
            Availability::Available
        }
    };
    let mut counts = [0u32; 4];
    for _ in 0..300 {
        let plan = router.plan("m", p2_open);
        assert!(!plan.providers.contains(&2));
        assert_eq!(plan.providers.len(), 3);
        counts[plan.providers[0]] += 1;
    }
    assert_eq!(counts[2], 0);
    assert_eq!(counts.iter().sum::<u32>(), 300);
    // Each round of 4 cards deals p0, p1, p3 once: exactly 100 each over 100 rounds.
    assert_eq!(counts, [100, 100, 0, 100]);
}

fn model_config(default: Option<&str>) -> Config {
    let mut c = config(
        Strategy::ModelBased,
        vec![
            provider("anthropic", 1, 1),
            provider("opus", 2, 1),
            provider("zai", 3, 1),
            provider("local", 4, 1),
        ],
    );
    c.routing.model_mapping = vec![
        ("claude".into(), "anthropic".into()),
        ("claude-opus".into(), "opus".into()),
        ("glm*".into(), "zai".into()),
        ("qwen".into(), "nowhere".into()),
    ];
    c.routing.default_provider = default.map(str::to_string);
    c
}

#[test]
fn model_based_longest_prefix_then_default() {
    let c = model_config(Some("local"));
    let router = Router::with_seed(&c, 1);
    let plan = |m: &str| names(&c, &router.plan(m, all_up));
    assert_eq!(plan("claude-opus-4-1"), "opus");
    assert_eq!(plan("claude-sonnet-4-5"), "anthropic");
    assert_eq!(plan("claude"), "anthropic");
    assert_eq!(plan("glm-4.6"), "zai");
    assert_eq!(plan("gpt-5"), "local");
    // A mapping to an unknown provider is ignored.
    assert_eq!(plan("qwen3"), "local");
    assert_eq!(router.model_route("claude-opus-4"), Some(1));
}

#[test]
fn model_based_without_default_uses_every_provider_by_priority() {
    let c = model_config(None);
    let router = Router::with_seed(&c, 1);
    assert_eq!(
        names(&c, &router.plan("gpt-5", all_up)),
        "local,zai,opus,anthropic"
    );
    assert_eq!(names(&c, &router.plan("glm-4.6", all_up)), "zai");
}

#[test]
fn model_based_mapped_provider_open_is_still_tried_as_last_resort() {
    let c = model_config(None);
    let router = Router::with_seed(&c, 1);
    let t0 = Instant::now();
    let zai_open = |i: usize| {
        if i == 2 {
            Availability::Unavailable { opened_at: t0 }
        } else {
            Availability::Available
        }
    };
    let plan = router.plan("glm-4.6", zai_open);
    assert_eq!(names(&c, &plan), "zai");
    assert!(plan.last_resort);
}

#[test]
fn open_circuits_are_skipped_for_every_strategy() {
    let t0 = Instant::now();
    let b_open = |i: usize| {
        if i == 1 {
            Availability::Unavailable { opened_at: t0 }
        } else {
            Availability::Available
        }
    };
    for strategy in [
        Strategy::Failover,
        Strategy::RoundRobin,
        Strategy::WeightedRoundRobin,
        Strategy::Shuffle,
        Strategy::ModelBased,
    ] {
        let c = config(
            strategy,
            vec![
                provider("a", 3, 1),
                provider("b", 2, 1),
                provider("c", 1, 1),
            ],
        );
        let router = Router::with_seed(&c, 5);
        for _ in 0..9 {
            let plan = router.plan("m", b_open);
            assert!(!plan.providers.contains(&1), "{strategy:?}: {plan:?}");
            assert_eq!(plan.providers.len(), 2, "{strategy:?}");
            assert!(!plan.last_resort);
        }
    }
}

#[test]
fn all_open_tries_the_least_recently_opened_only() {
    let t0 = Instant::now();
    let opened = [
        t0 + Duration::from_secs(5),
        t0 + Duration::from_secs(1),
        t0 + Duration::from_secs(3),
    ];
    let all_open = |i: usize| Availability::Unavailable {
        opened_at: opened[i],
    };
    for strategy in [
        Strategy::Failover,
        Strategy::RoundRobin,
        Strategy::WeightedRoundRobin,
        Strategy::Shuffle,
        Strategy::ModelBased,
    ] {
        let c = config(
            strategy,
            vec![
                provider("a", 3, 1),
                provider("b", 2, 1),
                provider("c", 1, 1),
            ],
        );
        let router = Router::with_seed(&c, 5);
        let plan = router.plan("m", all_open);
        assert_eq!(
            plan,
            Plan {
                providers: vec![1],
                last_resort: true
            },
            "{strategy:?}"
        );
    }
}

#[test]
fn real_breakers_drive_the_plan() {
    let c = config(
        Strategy::Failover,
        vec![provider("a", 2, 1), provider("b", 1, 1)],
    );
    let router = Router::with_seed(&c, 1);
    let settings = BreakerSettings {
        failure_threshold: 2,
        open_duration: Duration::from_secs(30),
        half_open_probes: 1,
    };
    let breakers = [CircuitBreaker::new(settings), CircuitBreaker::new(settings)];
    let t0 = Instant::now();
    breakers[0].on_failure(t0);
    breakers[0].on_failure(t0);
    let plan = router.plan("m", |i| breakers[i].availability(t0));
    assert_eq!(names(&c, &plan), "b");
    // After open_duration a is half-open with a free probe slot: planned first again.
    let later = t0 + Duration::from_secs(30);
    assert_eq!(
        names(&c, &router.plan("m", |i| breakers[i].availability(later))),
        "a,b"
    );
    // Once the single probe slot is taken, others see it as open.
    breakers[0].admit(later);
    assert_eq!(
        names(&c, &router.plan("m", |i| breakers[i].availability(later))),
        "b"
    );
}

#[test]
fn max_attempts_truncates_the_plan() {
    let mut c = config(
        Strategy::Failover,
        vec![
            provider("a", 3, 1),
            provider("b", 2, 1),
            provider("c", 1, 1),
        ],
    );
    c.routing.max_attempts = 2;
    let router = Router::with_seed(&c, 1);
    assert_eq!(names(&c, &router.plan("m", all_up)), "a,b");
}

#[test]
fn disabled_providers_are_never_planned_and_indices_are_config_indices() {
    let mut off = provider("off", 9, 9);
    off.enabled = false;
    let c = config(
        Strategy::RoundRobin,
        vec![provider("a", 1, 1), off, provider("c", 1, 1)],
    );
    let router = Router::with_seed(&c, 1);
    assert_eq!(router.plan("m", all_up).providers, [0, 2]);
    assert_eq!(router.plan("m", all_up).providers, [2, 0]);
}

#[test]
fn no_enabled_provider_gives_an_empty_plan() {
    let mut off = provider("off", 1, 1);
    off.enabled = false;
    let c = config(Strategy::Shuffle, vec![off]);
    let plan = Router::with_seed(&c, 1).plan("m", all_up);
    assert!(plan.providers.is_empty());
    assert!(!plan.last_resort);
}

#[test]
fn carry_over_continues_round_robin_and_weights() {
    let c = config(
        Strategy::WeightedRoundRobin,
        vec![
            provider("a", 1, 5),
            provider("b", 1, 1),
            provider("c", 1, 1),
        ],
    );
    let old = Router::with_seed(&c, 1);
    assert_eq!(first_picks(&c, &old, 3), "a a b");
    let mut new = Router::with_seed(&c, 1);
    new.carry_over_from(&old);
    assert_eq!(first_picks(&c, &new, 4), "a c a a");
}

#[test]
fn strategy_names_match_the_config_spelling() {
    let c = config(Strategy::WeightedRoundRobin, vec![provider("a", 1, 1)]);
    assert_eq!(Router::new(&c).strategy_name(), "weighted_round_robin");
}
