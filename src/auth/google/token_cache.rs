//! One access token shared by every connection thread, refreshed single-flight.
//!
//! `get(now, refresh)` answers at once while the token is fresh. Inside the refresh
//! margin (google-auth's 3 min 45 s) the first caller runs `refresh` while everyone
//! else keeps the still-valid token; once the token has expired, later callers wait on
//! a condition variable for that one refresh instead of each hitting the token
//! endpoint. A failed refresh is handed to the threads that waited for it, and the
//! next caller tries again. The cache owns no clock and no transport: time and the
//! refresh action come from the caller.

use std::fmt;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use super::token::Token;
use super::GoogleAuthError;

/// google-auth's `REFRESH_THRESHOLD`: treat a token as due this many seconds early.
pub const REFRESH_MARGIN_SECS: u64 = 225;

/// A token plus the bookkeeping that keeps refreshes to one at a time.
pub struct TokenCache<E = GoogleAuthError> {
    state: Mutex<CacheState<E>>,
    refresh_finished: Condvar,
    margin_secs: u64,
}

struct CacheState<E> {
    token: Option<Token>,
    refreshing: bool,
    /// Counts finished refreshes, so a waiter can tell that the one it waited on ended.
    generation: u64,
    /// The newest failure and the generation it ended; cleared by a success.
    last_failure: Option<(u64, E)>,
    waiting: usize,
}

impl<E: Clone> Default for TokenCache<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E: Clone> TokenCache<E> {
    /// An empty cache with google-auth's refresh margin.
    pub fn new() -> Self {
        Self::with_margin(REFRESH_MARGIN_SECS)
    }

    /// An empty cache that refreshes `margin_secs` before expiry.
    pub fn with_margin(margin_secs: u64) -> Self {
        TokenCache {
            state: Mutex::new(CacheState {
                token: None,
                refreshing: false,
                generation: 0,
                last_failure: None,
                waiting: 0,
            }),
            refresh_finished: Condvar::new(),
            margin_secs,
        }
    }

    /// The cached token if it is fresh at `now_unix`, else the result of `refresh`
    /// (run by at most one thread at a time; see the module doc). A refresh that fails
    /// while the old token is still valid returns the old token.
    pub fn get(
        &self,
        now_unix: u64,
        refresh: impl FnOnce() -> Result<Token, E>,
    ) -> Result<Token, E> {
        let mut state = self.lock();
        loop {
            if let Some(token) = &state.token {
                if now_unix.saturating_add(self.margin_secs) < token.expires_at_unix {
                    return Ok(token.clone());
                }
            }
            let still_valid = state
                .token
                .as_ref()
                .filter(|token| now_unix < token.expires_at_unix);
            if !state.refreshing {
                break;
            }
            if let Some(token) = still_valid {
                return Ok(token.clone());
            }
            let waited_for = state.generation;
            state.waiting += 1;
            while state.refreshing && state.generation == waited_for {
                state = self
                    .refresh_finished
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            state.waiting -= 1;
            // Whatever that refresh produced is the answer: a usable token, or its error.
            if let Some(token) = state
                .token
                .as_ref()
                .filter(|token| now_unix < token.expires_at_unix)
            {
                return Ok(token.clone());
            }
            if let Some((generation, error)) = &state.last_failure {
                if *generation > waited_for {
                    return Err(error.clone());
                }
            }
            // The refresher panicked or the new token is already dead: take a turn.
        }

        state.refreshing = true;
        drop(state);
        let mut slot = RefreshSlot {
            cache: self,
            settled: false,
        };
        let outcome = refresh();
        let mut state = self.lock();
        slot.settled = true;
        state.refreshing = false;
        state.generation += 1;
        let answer = match outcome {
            Ok(token) => {
                state.token = Some(token.clone());
                state.last_failure = None;
                Ok(token)
            }
            Err(error) => {
                state.last_failure = Some((state.generation, error.clone()));
                match state
                    .token
                    .as_ref()
                    .filter(|token| now_unix < token.expires_at_unix)
                {
                    Some(token) => Ok(token.clone()),
                    None => Err(error),
                }
            }
        };
        self.refresh_finished.notify_all();
        answer
    }

    /// Forgets the token, e.g. after the upstream answered 401 to it.
    pub fn invalidate(&self) {
        self.lock().token = None;
    }

    /// How many threads are blocked waiting for a refresh (for tests and metrics).
    pub fn waiting_threads(&self) -> usize {
        self.lock().waiting
    }

    /// The refresh closure runs without the lock, so a panic there cannot poison it; a
    /// poisoned lock can only come from a panic in this file's own bookkeeping, which
    /// leaves the state consistent, so it is safe to keep going.
    fn lock(&self) -> MutexGuard<'_, CacheState<E>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<E> fmt::Debug for TokenCache<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The token itself is a secret; its expiry is enough to debug with.
        // try_lock: Debug may be called by a thread that already holds the lock.
        let Ok(state) = self.state.try_lock() else {
            return f.write_str("TokenCache { <busy> }");
        };
        f.debug_struct("TokenCache")
            .field(
                "expires_at_unix",
                &state.token.as_ref().map(|token| token.expires_at_unix),
            )
            .field("refreshing", &state.refreshing)
            .field("margin_secs", &self.margin_secs)
            .finish()
    }
}

/// Marks the refresh finished even if the refresh closure panics, so waiters wake and
/// one of them takes over instead of waiting forever.
struct RefreshSlot<'a, E> {
    cache: &'a TokenCache<E>,
    settled: bool,
}

impl<E> Drop for RefreshSlot<'_, E> {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let mut state = self
            .cache
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        state.refreshing = false;
        state.generation += 1;
        self.cache.refresh_finished.notify_all();
    }
}
