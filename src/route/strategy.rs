//! Provider order per request (SPEC §4.1): the five strategies, open-circuit skipping,
//! the all-open last resort and `max_attempts`. [`Router::plan`] only orders providers;
//! it never sends, never waits and never changes a breaker — the caller asks each
//! provider's `CircuitBreaker::admit` when it actually gets to it.
//!
//! Provider numbers everywhere are indices into `config.providers` (disabled providers
//! included, never planned), so the caller indexes its own per-provider tables with them.
//!
//! Orders (first = the pick, the rest = fallbacks in this order):
//! - failover: priority (higher first), then config order.
//! - round_robin: config order rotated by one per request.
//! - weighted_round_robin: the pick by smooth WRR exactly as nginx (every available
//!   provider's current weight grows by its weight, the largest is picked and loses the
//!   total; ties to the earlier provider in priority then config order); fallbacks by
//!   priority then config order. Providers with weight 0 are never the pick.
//! - shuffle: a deck of all providers, shuffled at the start of each round and dealt one
//!   per request; fallbacks are the rest of the deck from the pick on, wrapping around.
//! - model_based: the provider of the longest `routing.model_mapping` prefix of the model
//!   (a trailing `*` on a prefix is ignored; equal lengths: file order), else
//!   `default_provider`, alone — other providers are not assumed to serve that model;
//!   with neither, every provider by priority.
//!
//! Open circuits: a provider whose breaker reports `Unavailable` is left out, and does not
//! take part in WRR or consume a shuffle card. If every candidate is unavailable, the one
//! opened least recently is planned alone with `last_resort` set: the caller sends to it
//! without asking the breaker (never refuse while something might work).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::circuit::Availability;
use super::rng::{fresh_seed, SplitMix64};
use crate::config::schema::{Config, Strategy};

/// The providers to try for one request, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Indices into `config.providers`.
    pub providers: Vec<usize>,
    /// Every candidate's circuit was open; `providers` holds the least recently opened
    /// one, to be tried without `admit`.
    pub last_resort: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    /// Index into `config.providers`.
    index: usize,
    name: String,
    weight: u32,
}

#[derive(Debug)]
struct Deck {
    /// Positions into `Router::entries`.
    cards: Vec<usize>,
    dealt: usize,
    rng: SplitMix64,
}

impl Deck {
    fn shuffle(&mut self) {
        // Fisher–Yates.
        for i in (1..self.cards.len()).rev() {
            let j = self.rng.below(i as u64 + 1) as usize;
            self.cards.swap(i, j);
        }
        self.dealt = 0;
    }
}

#[derive(Debug)]
pub struct Router {
    strategy: Strategy,
    /// 0 = all.
    max_attempts: usize,
    /// Enabled providers in config order.
    entries: Vec<Entry>,
    /// Positions into `entries`, priority desc then config order.
    by_priority: Vec<usize>,
    /// (prefix, position), longest prefix first.
    model_routes: Vec<(String, usize)>,
    default_provider: Option<usize>,
    next_round_robin: AtomicUsize,
    /// Smooth WRR current weights, by position.
    current_weights: Mutex<Vec<i64>>,
    deck: Mutex<Deck>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Router {
    pub fn new(config: &Config) -> Router {
        Router::with_seed(config, fresh_seed())
    }

    /// As `new`, with a fixed shuffle seed (tests, benches).
    pub fn with_seed(config: &Config, seed: u64) -> Router {
        let mut priorities = Vec::new();
        let entries: Vec<Entry> = config
            .providers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.enabled)
            .map(|(index, p)| {
                priorities.push(p.effective_priority());
                Entry {
                    index,
                    name: p.name.clone(),
                    weight: p.effective_weight(),
                }
            })
            .collect();
        let mut by_priority: Vec<usize> = (0..entries.len()).collect();
        // Stable: equal priorities keep config order.
        by_priority.sort_by_key(|&pos| std::cmp::Reverse(priorities[pos]));
        let position_of = |name: &str| entries.iter().position(|e| e.name == name);
        let mut model_routes: Vec<(String, usize)> = config
            .routing
            .model_mapping
            .iter()
            .filter_map(|(prefix, provider)| {
                let prefix = prefix.strip_suffix('*').unwrap_or(prefix);
                position_of(provider).map(|pos| (prefix.to_string(), pos))
            })
            .collect();
        model_routes.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        let default_provider = config
            .routing
            .default_provider
            .as_deref()
            .and_then(position_of);
        let n = entries.len();
        Router {
            strategy: config.routing.strategy,
            max_attempts: usize::try_from(config.routing.max_attempts).unwrap_or(usize::MAX),
            entries,
            by_priority,
            model_routes,
            default_provider,
            next_round_robin: AtomicUsize::new(0),
            current_weights: Mutex::new(vec![0; n]),
            deck: Mutex::new(Deck {
                cards: (0..n).collect(),
                dealt: n,
                rng: SplitMix64::new(seed),
            }),
        }
    }

    /// After a reload: continue the round-robin rotation and each still-present
    /// provider's smooth-WRR weight, so a reload does not restart the distribution.
    /// Call before the new router is shared.
    pub fn carry_over_from(&mut self, old: &Router) {
        let next = old.next_round_robin.load(Ordering::Relaxed);
        self.next_round_robin = AtomicUsize::new(next);
        let old_weights = lock(&old.current_weights).clone();
        let weights = self
            .current_weights
            .get_mut()
            .unwrap_or_else(|e| e.into_inner());
        for (pos, entry) in self.entries.iter().enumerate() {
            let previous = old
                .entries
                .iter()
                .position(|e| e.name == entry.name)
                .and_then(|old_pos| old_weights.get(old_pos));
            if let (Some(&w), Some(slot)) = (previous, weights.get_mut(pos)) {
                *slot = w;
            }
        }
    }

    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// The strategy as configured, for the `X-CC-Relay-Strategy` debug header.
    pub fn strategy_name(&self) -> &'static str {
        match self.strategy {
            Strategy::Failover => "failover",
            Strategy::RoundRobin => "round_robin",
            Strategy::WeightedRoundRobin => "weighted_round_robin",
            Strategy::Shuffle => "shuffle",
            Strategy::ModelBased => "model_based",
        }
    }

    /// The provider `model_based` maps `model` to (index into `config.providers`), if
    /// any prefix or the default matches.
    pub fn model_route(&self, model: &str) -> Option<usize> {
        self.route_position(model)
            .map(|pos| self.entries[pos].index)
    }

    fn route_position(&self, model: &str) -> Option<usize> {
        self.model_routes
            .iter()
            .find(|(prefix, _)| model.starts_with(prefix.as_str()))
            .map(|&(_, pos)| pos)
            .or(self.default_provider)
    }

    /// Orders the providers for one request. `availability(i)` says whether provider `i`
    /// (index into `config.providers`) would admit a request now — normally
    /// `|i| breakers[i].availability(now)`. Advances round-robin / WRR / shuffle state.
    pub fn plan(&self, model: &str, availability: impl Fn(usize) -> Availability) -> Plan {
        let states: Vec<Availability> =
            self.entries.iter().map(|e| availability(e.index)).collect();
        let available = |pos: usize| matches!(states.get(pos), Some(Availability::Available));
        let n = self.entries.len();

        let candidates: Vec<usize> = match self.strategy {
            Strategy::Failover => self.by_priority.clone(),
            Strategy::RoundRobin => {
                let start = self.next_round_robin.fetch_add(1, Ordering::Relaxed);
                (0..n)
                    .map(|offset| start.wrapping_add(offset) % n.max(1))
                    .collect()
            }
            Strategy::WeightedRoundRobin => match self.smooth_weighted_pick(&available) {
                Some(pick) => std::iter::once(pick)
                    .chain(self.by_priority.iter().copied().filter(|&p| p != pick))
                    .collect(),
                None => self.by_priority.clone(),
            },
            Strategy::Shuffle => self.deal(&available),
            Strategy::ModelBased => match self.route_position(model) {
                Some(pos) => vec![pos],
                None => self.by_priority.clone(),
            },
        };

        // The candidates become the plan in place: one allocation fewer per request.
        let mut providers = candidates;
        let mut last_resort = false;
        if providers.iter().any(|&pos| available(pos)) {
            providers.retain(|&pos| available(pos));
        } else {
            let least_recently_opened = providers
                .iter()
                .copied()
                .filter_map(|pos| match states.get(pos) {
                    Some(Availability::Unavailable { opened_at }) => Some((*opened_at, pos)),
                    _ => None,
                })
                .min_by_key(|&(opened_at, _)| opened_at);
            providers.clear();
            if let Some((_, pos)) = least_recently_opened {
                providers.push(pos);
                last_resort = true;
            }
        }
        for pos in &mut providers {
            *pos = self.entries[*pos].index;
        }
        if self.max_attempts > 0 {
            providers.truncate(self.max_attempts);
        }
        Plan {
            providers,
            last_resort,
        }
    }

    /// nginx's smooth weighted round robin over the available providers.
    fn smooth_weighted_pick(&self, available: &dyn Fn(usize) -> bool) -> Option<usize> {
        let mut current = lock(&self.current_weights);
        let mut total: i64 = 0;
        let mut best: Option<usize> = None;
        for &pos in &self.by_priority {
            let weight = i64::from(self.entries[pos].weight);
            if weight == 0 || !available(pos) {
                continue;
            }
            let Some(slot) = current.get_mut(pos) else {
                continue;
            };
            *slot = slot.saturating_add(weight);
            total = total.saturating_add(weight);
            // Strictly greater: ties go to the earlier provider in priority order.
            let better = match best {
                None => true,
                Some(b) => current_of(&current, b) < current_of(&current, pos),
            };
            if better {
                best = Some(pos);
            }
        }
        if let Some(pick) = best {
            if let Some(slot) = current.get_mut(pick) {
                *slot = slot.saturating_sub(total);
            }
            return Some(pick);
        }
        drop(current);
        self.by_priority.iter().copied().find(|&pos| available(pos))
    }

    /// Deals the next available card; reshuffles when a round is used up.
    fn deal(&self, available: &dyn Fn(usize) -> bool) -> Vec<usize> {
        let n = self.entries.len();
        if !(0..n).any(available) {
            // Nothing to deal to: keep the round intact for when providers come back.
            return self.by_priority.clone();
        }
        let mut deck = lock(&self.deck);
        loop {
            if deck.dealt >= deck.cards.len() {
                deck.shuffle();
            }
            let at = deck.dealt;
            deck.dealt += 1;
            let Some(&card) = deck.cards.get(at) else {
                return self.by_priority.clone();
            };
            if available(card) {
                let mut order = Vec::with_capacity(n);
                order.extend_from_slice(&deck.cards[at..]);
                order.extend_from_slice(&deck.cards[..at]);
                return order;
            }
        }
    }
}

fn current_of(current: &[i64], pos: usize) -> i64 {
    current.get(pos).copied().unwrap_or(i64::MIN)
}
