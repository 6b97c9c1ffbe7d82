//! cc-relay's own stub resolver, so a static binary never loads the host's NSS modules:
//! host names become addresses through `/etc/hosts`, then A and AAAA queries to the
//! nameservers of `/etc/resolv.conf`, and `connect_happy_eyeballs` turns the addresses
//! into one connected `TcpStream`. This module owns the sockets, retries and the cache;
//! message bytes are `codec::dns`'s business, and it never reads NSS, nsswitch.conf or
//! environment variables, and never sleeps (every wait is bounded by a deadline the
//! caller passes as an `Instant`).
//!
//! Call order: build one `Resolver` (`Resolver::system()` in the binary,
//! `Resolver::from_files(hosts, resolv_conf)` in tests, `.with_port(p)` to reach a mock),
//! share it (`&Resolver` / `Arc<Resolver>`: it is `Sync`), then per connection either
//! `resolver.connect(host, port, deadline)`, or `resolver.resolve(host, deadline)` and
//! `connect_happy_eyeballs(&addrs, port, deadline)`.
//!
//! What `resolve` does, in order: IP literals (also `[v6]`) come back as they are; the
//! hosts file answers next; `localhost` and `*.localhost` are loopback (RFC 6761); the
//! cache answers while its TTL lasts; otherwise the candidate names of the search list
//! (per `ndots`, as glibc orders them) are asked one after the other until one has
//! addresses. For each candidate the AAAA and A queries go out together on one connected
//! UDP socket with an OS-chosen source port and an unpredictable id; a reply counts only
//! when it comes from the server's address and port and echoes the id and the question —
//! anything else is dropped and the wait goes on. A truncated reply is asked again over
//! TCP. SERVFAIL/REFUSED and silence move on to the next nameserver (`rotate` spreads the
//! first choice), `attempts` rounds in all, each try bounded by `timeout`. A CNAME chain
//! is followed inside the answer and, when it leaves the answer, asked for again (at most
//! `MAX_CNAME_REQUERIES` times). Not done: negative caching, re-reading the files when
//! they change (build a new `Resolver` on reload), `RES_OPTIONS`/`LOCALDOMAIN`.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use crossbeam_channel::RecvTimeoutError;
use ring::rand::{SecureRandom, SystemRandom};

use crate::codec::dns::{self, Message, QueryType, ResponseCode};
use crate::net::transport::is_timeout;

/// Where `Resolver::system` reads its configuration.
pub const HOSTS_PATH: &str = "/etc/hosts";
pub const RESOLV_CONF_PATH: &str = "/etc/resolv.conf";
/// The DNS port; `Resolver::with_port` overrides it (resolv.conf has no port syntax).
pub const DNS_PORT: u16 = 53;
/// glibc's MAXNS: later `nameserver` lines are ignored.
pub const MAX_NAMESERVERS: usize = 3;
/// How long a connection attempt gets before the next address is tried alongside it
/// (RFC 8305's recommended Connection Attempt Delay).
pub const CONNECTION_ATTEMPT_DELAY: Duration = Duration::from_millis(250);
/// Times a CNAME chain that ends outside an answer is asked for again.
pub const MAX_CNAME_REQUERIES: usize = 4;
/// Cache entries never live longer than this, whatever the TTL says.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(3600);
/// Names the cache holds at most.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

/// glibc's bounds on the `options` values.
const MAX_NDOTS: usize = 15;
const MAX_TIMEOUT_SECS: u64 = 30;
const MAX_ATTEMPTS: usize = 5;
/// Big enough for any datagram, so a server ignoring our payload size is still read whole.
const UDP_BUFFER_LEN: usize = 65_535;
/// Happy-eyeballs helper threads only run `connect_timeout`.
const CONNECT_THREAD_STACK: usize = 64 * 1024;

/// What `/etc/resolv.conf` says, with glibc's defaults and bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// At most `MAX_NAMESERVERS`, in file order; `127.0.0.1:53` when the file names none.
    pub nameservers: Vec<SocketAddr>,
    /// Search domains, normalized (lowercase, no trailing dot); the last `search` or
    /// `domain` line wins.
    pub search: Vec<String>,
    /// Names with at least this many dots are tried as-is before the search list (1).
    pub ndots: usize,
    /// How long one try waits for an answer (5 s; 1..=30 s from the file).
    pub timeout: Duration,
    /// Rounds over all nameservers (2; 1..=5).
    pub attempts: usize,
    /// Start each query at the next nameserver instead of the first.
    pub rotate: bool,
    /// Add an EDNS0 OPT record (payload 1232) to queries (`options edns0`, as glibc).
    pub edns0: bool,
}

impl Default for ResolvConf {
    fn default() -> Self {
        ResolvConf::parse("")
    }
}

impl ResolvConf {
    /// Parses resolv.conf text. Unknown lines and options, and values that do not parse,
    /// are ignored as glibc ignores them; the result is always usable.
    pub fn parse(text: &str) -> ResolvConf {
        let mut conf = ResolvConf {
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            timeout: Duration::from_secs(5),
            attempts: 2,
            rotate: false,
            edns0: false,
        };
        for line in text.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    let server = words.next().and_then(parse_nameserver);
                    if let Some(server) = server {
                        if conf.nameservers.len() < MAX_NAMESERVERS
                            && !conf.nameservers.contains(&server)
                        {
                            conf.nameservers.push(server);
                        }
                    }
                }
                Some("search") => conf.search = words.filter_map(search_domain).collect(),
                Some("domain") => {
                    conf.search = words.next().and_then(search_domain).into_iter().collect()
                }
                Some("options") => words.for_each(|option| conf.apply_option(option)),
                _ => {}
            }
        }
        if conf.nameservers.is_empty() {
            conf.nameservers
                .push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), DNS_PORT));
        }
        conf
    }

    fn apply_option(&mut self, option: &str) {
        let (key, value) = match option.split_once(':') {
            Some((key, value)) => (key, value.parse::<u64>().ok()),
            None => (option, None),
        };
        match (key, value) {
            ("ndots", Some(n)) => {
                self.ndots = usize::try_from(n).unwrap_or(MAX_NDOTS).min(MAX_NDOTS)
            }
            ("timeout", Some(n)) => {
                self.timeout = Duration::from_secs(n.clamp(1, MAX_TIMEOUT_SECS));
            }
            ("attempts", Some(n)) => {
                self.attempts = usize::try_from(n)
                    .unwrap_or(MAX_ATTEMPTS)
                    .clamp(1, MAX_ATTEMPTS);
            }
            ("rotate", None) => self.rotate = true,
            ("edns0", None) => self.edns0 = true,
            _ => {}
        }
    }
}

/// `1.2.3.4`, `2001:db8::1`, or `fe80::1%eth0` / `fe80::1%2` (link-local with a zone).
fn parse_nameserver(text: &str) -> Option<SocketAddr> {
    match text.split_once('%') {
        None => text
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, DNS_PORT)),
        Some((address, zone)) => {
            let v6 = address.parse::<Ipv6Addr>().ok()?;
            let scope = zone.parse::<u32>().ok().or_else(|| interface_index(zone))?;
            Some(SocketAddr::V6(SocketAddrV6::new(v6, DNS_PORT, 0, scope)))
        }
    }
}

/// An interface's index from sysfs, read as a file rather than through libc; None in an empty root.
fn interface_index(name: &str) -> Option<u32> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return None;
    }
    let text = std::fs::read_to_string(format!("/sys/class/net/{name}/ifindex")).ok()?;
    text.trim().parse().ok()
}

fn search_domain(domain: &str) -> Option<String> {
    dns::normalize_name(domain).ok()
}

/// `/etc/hosts`: address, canonical name, aliases; `#` starts a comment. Every line
/// naming a host adds its address (in file order, without repeats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostsFile {
    by_name: HashMap<String, Vec<IpAddr>>,
}

impl HostsFile {
    /// Parses hosts-file text; lines that do not parse are skipped.
    pub fn parse(text: &str) -> HostsFile {
        let mut by_name: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for line in text.lines() {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let address = words.next().and_then(|word| {
                // A zone is meaningless off-link and std cannot carry a name: drop it.
                let bare = word.split('%').next().unwrap_or(word);
                bare.parse::<IpAddr>().ok()
            });
            let Some(address) = address else { continue };
            for name in words.filter_map(|w| dns::normalize_name(w).ok()) {
                let addresses = by_name.entry(name).or_default();
                if !addresses.contains(&address) {
                    addresses.push(address);
                }
            }
        }
        HostsFile { by_name }
    }

    /// The addresses for `name` as `dns::normalize_name` returns it.
    pub fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        self.by_name.get(name).map(Vec::as_slice)
    }
}

struct CacheEntry {
    addresses: Vec<IpAddr>,
    expires: Instant,
}

/// Positive answers by name, each kept for its smallest TTL (at most `MAX_CACHE_TTL`).
/// The caller passes `now`, so expiry is testable without waiting.
pub struct DnsCache {
    entries: Mutex<HashMap<String, CacheEntry>>,
    capacity: usize,
}

impl DnsCache {
    pub fn new(capacity: usize) -> DnsCache {
        DnsCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The cached addresses for `name`, unless they expired at or before `now`.
    pub fn get(&self, name: &str, now: Instant) -> Option<Vec<IpAddr>> {
        let mut entries = self.lock();
        match entries.get(name) {
            Some(entry) if now < entry.expires => Some(entry.addresses.clone()),
            Some(_) => {
                entries.remove(name);
                None
            }
            None => None,
        }
    }

    /// Keeps `addresses` for `ttl` from `now`. A zero TTL or no addresses caches nothing.
    /// When full, expired entries go first, then the one closest to expiry.
    pub fn insert(&self, name: &str, addresses: Vec<IpAddr>, ttl: Duration, now: Instant) {
        let ttl = ttl.min(MAX_CACHE_TTL);
        if ttl.is_zero() || addresses.is_empty() || self.capacity == 0 {
            return;
        }
        let Some(expires) = now.checked_add(ttl) else {
            return;
        };
        let mut entries = self.lock();
        if entries.len() >= self.capacity && !entries.contains_key(name) {
            entries.retain(|_, entry| now < entry.expires);
            if entries.len() >= self.capacity {
                let soonest = entries
                    .iter()
                    .min_by_key(|(_, entry)| entry.expires)
                    .map(|(key, _)| key.clone());
                if let Some(key) = soonest {
                    entries.remove(&key);
                }
            }
        }
        entries.insert(name.to_string(), CacheEntry { addresses, expires });
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, CacheEntry>> {
        // A panic elsewhere while holding the lock leaves a consistent map behind.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl fmt::Debug for DnsCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DnsCache")
            .field("len", &self.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

/// Why a host name gave no addresses. Each variant carries the host as the caller gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// Not something DNS can carry (empty label, label over 63 bytes, space, ...).
    InvalidName(String),
    /// NXDOMAIN for every candidate name.
    NotFound(String),
    /// The name exists but has no A or AAAA record.
    NoAddresses(String),
    /// The servers answered SERVFAIL / REFUSED, or an answer made no sense.
    ServerFailure(String, String),
    /// No usable answer before the deadline or after every attempt.
    Timeout(String),
    /// The sockets themselves failed (no route, port unreachable, ...).
    Network(String, String),
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolveError::InvalidName(host) => write!(f, "resolve {host}: not a valid host name"),
            ResolveError::NotFound(host) => write!(f, "resolve {host}: no such host"),
            ResolveError::NoAddresses(host) => write!(f, "resolve {host}: no addresses"),
            ResolveError::ServerFailure(host, why) => write!(f, "resolve {host}: {why}"),
            ResolveError::Timeout(host) => write!(f, "resolve {host}: timed out"),
            ResolveError::Network(host, why) => write!(f, "resolve {host}: {why}"),
        }
    }
}

impl std::error::Error for ResolveError {}

impl From<ResolveError> for io::Error {
    fn from(error: ResolveError) -> io::Error {
        let kind = match &error {
            ResolveError::InvalidName(_) => io::ErrorKind::InvalidInput,
            ResolveError::NotFound(_) | ResolveError::NoAddresses(_) => io::ErrorKind::NotFound,
            ResolveError::Timeout(_) => io::ErrorKind::TimedOut,
            ResolveError::ServerFailure(..) | ResolveError::Network(..) => io::ErrorKind::Other,
        };
        io::Error::new(kind, error.to_string())
    }
}

/// Why one query got no usable answer; the variants are ordered by how much they say,
/// and the most telling one seen across servers is reported.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum QueryFailure {
    Network(String),
    Timeout,
    Server(String),
}

impl QueryFailure {
    fn from_io(error: &io::Error) -> QueryFailure {
        if is_timeout(error) {
            QueryFailure::Timeout
        } else {
            QueryFailure::Network(error.to_string())
        }
    }
}

/// One question in flight, and what the servers said about it so far.
struct QueryState<'a> {
    name: &'a str,
    qtype: QueryType,
    edns: bool,
    answer: Option<Message>,
    /// The most telling failure so far; `None` when no server was tried yet.
    failure: Option<QueryFailure>,
}

impl QueryState<'_> {
    fn note(&mut self, failure: QueryFailure) {
        self.failure = self.failure.take().max(Some(failure));
    }
}

/// What one candidate name came to.
enum NameOutcome {
    Found(Vec<IpAddr>, u32),
    NoAddresses,
    NotFound,
    Failed(QueryFailure),
}

/// The stub resolver; see the module docs. Cheap to share: `&Resolver` from any thread.
#[derive(Debug)]
pub struct Resolver {
    hosts: HostsFile,
    conf: ResolvConf,
    cache: DnsCache,
    next_server: AtomicUsize,
}

impl Resolver {
    pub fn new(hosts: HostsFile, conf: ResolvConf) -> Resolver {
        Resolver {
            hosts,
            conf,
            cache: DnsCache::new(DEFAULT_CACHE_CAPACITY),
            next_server: AtomicUsize::new(0),
        }
    }

    /// The host's `/etc/hosts` and `/etc/resolv.conf`; a file that cannot be read counts
    /// as empty (so: nameserver 127.0.0.1, as glibc does).
    pub fn system() -> Resolver {
        let hosts = std::fs::read_to_string(HOSTS_PATH).unwrap_or_default();
        let conf = std::fs::read_to_string(RESOLV_CONF_PATH).unwrap_or_default();
        Resolver::new(HostsFile::parse(&hosts), ResolvConf::parse(&conf))
    }

    /// Reads the two files; a missing file counts as empty, any other read error is
    /// returned.
    pub fn from_files(hosts_path: &Path, resolv_conf_path: &Path) -> io::Result<Resolver> {
        let hosts = read_if_present(hosts_path)?;
        let conf = read_if_present(resolv_conf_path)?;
        Ok(Resolver::new(
            HostsFile::parse(&hosts),
            ResolvConf::parse(&conf),
        ))
    }

    /// Sends every query to `port` instead of 53 (tests, or a local forwarder).
    pub fn with_port(mut self, port: u16) -> Resolver {
        for server in &mut self.conf.nameservers {
            server.set_port(port);
        }
        self
    }

    pub fn conf(&self) -> &ResolvConf {
        &self.conf
    }

    pub fn hosts(&self) -> &HostsFile {
        &self.hosts
    }

    pub fn cache(&self) -> &DnsCache {
        &self.cache
    }

    /// Addresses for `host` (IPv6 before IPv4), finished by `deadline`.
    pub fn resolve(&self, host: &str, deadline: Instant) -> Result<Vec<IpAddr>, ResolveError> {
        self.resolve_at(host, Instant::now(), deadline)
    }

    /// `resolve` with the cache's clock given: `now` decides what in the cache has
    /// expired and when new entries expire. Sockets still wait by the real clock,
    /// bounded by `deadline`.
    pub fn resolve_at(
        &self,
        host: &str,
        now: Instant,
        deadline: Instant,
    ) -> Result<Vec<IpAddr>, ResolveError> {
        let literal = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if let Ok(ip) = literal.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        let name =
            dns::normalize_name(host).map_err(|_| ResolveError::InvalidName(host.to_string()))?;
        if let Some(addresses) = self.hosts.lookup(&name) {
            return Ok(addresses.to_vec());
        }
        if name == "localhost" || name.ends_with(".localhost") {
            return Ok(vec![
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
            ]);
        }
        let absolute = host.ends_with('.');
        // A relative name's answer depends on the search list, an absolute one's not.
        let cache_key = if absolute {
            format!("{name}.")
        } else {
            name.clone()
        };
        if let Some(addresses) = self.cache.get(&cache_key, now) {
            return Ok(addresses);
        }

        let mut saw_no_addresses = false;
        let mut server_failure: Option<String> = None;
        for candidate in self.candidates(&name, absolute) {
            match self.lookup_name(&candidate, deadline) {
                NameOutcome::Found(addresses, ttl) => {
                    let ttl = Duration::from_secs(u64::from(ttl));
                    self.cache.insert(&cache_key, addresses.clone(), ttl, now);
                    return Ok(addresses);
                }
                NameOutcome::NotFound => {}
                NameOutcome::NoAddresses => saw_no_addresses = true,
                // Like glibc: a SERVFAIL for one candidate does not stop the search, but
                // silence does (every later candidate would wait the same way).
                NameOutcome::Failed(QueryFailure::Server(why)) => server_failure = Some(why),
                NameOutcome::Failed(QueryFailure::Timeout) => {
                    return Err(ResolveError::Timeout(host.to_string()))
                }
                NameOutcome::Failed(QueryFailure::Network(why)) => {
                    return Err(ResolveError::Network(host.to_string(), why))
                }
            }
        }
        Err(match (server_failure, saw_no_addresses) {
            (Some(why), _) => ResolveError::ServerFailure(host.to_string(), why),
            (None, true) => ResolveError::NoAddresses(host.to_string()),
            (None, false) => ResolveError::NotFound(host.to_string()),
        })
    }

    /// Resolves `host` and connects to it with `connect_happy_eyeballs`.
    pub fn connect(&self, host: &str, port: u16, deadline: Instant) -> io::Result<TcpStream> {
        let addresses = self.resolve(host, deadline)?;
        connect_happy_eyeballs(&addresses, port, deadline)
    }

    /// The names to ask for, in order: glibc's `res_search` order.
    fn candidates(&self, name: &str, absolute: bool) -> Vec<String> {
        if absolute {
            return vec![name.to_string()];
        }
        let expanded = self
            .conf
            .search
            .iter()
            .filter_map(|domain| dns::normalize_name(&format!("{name}.{domain}")).ok());
        let mut names = Vec::new();
        if name.matches('.').count() >= self.conf.ndots {
            names.push(name.to_string());
            names.extend(expanded);
        } else {
            names.extend(expanded);
            names.push(name.to_string());
        }
        let mut unique: Vec<String> = Vec::with_capacity(names.len());
        for candidate in names {
            if !unique.contains(&candidate) {
                unique.push(candidate);
            }
        }
        unique
    }

    /// AAAA and A for one fully qualified name.
    fn lookup_name(&self, name: &str, deadline: Instant) -> NameOutcome {
        let asks = [(name, QueryType::Aaaa), (name, QueryType::A)];
        let results = self.query(&asks, deadline);
        let mut addresses = Vec::new();
        let mut ttl = u32::MAX;
        let mut not_found = false;
        let mut failure: Option<QueryFailure> = None;
        for ((_, qtype), result) in asks.iter().zip(results) {
            let outcome = match result {
                Ok(message) if message.header.rcode == ResponseCode::NameError => {
                    not_found = true;
                    continue;
                }
                Ok(message) => self.chain_addresses(name, *qtype, message, deadline),
                Err(why) => Err(why),
            };
            match outcome {
                Ok(Some((found, found_ttl))) => {
                    addresses.extend(found);
                    ttl = ttl.min(found_ttl);
                }
                Ok(None) => {}
                Err(why) => failure = failure.max(Some(why)),
            }
        }
        if !addresses.is_empty() {
            NameOutcome::Found(addresses, ttl)
        } else if not_found {
            NameOutcome::NotFound
        } else if let Some(why) = failure {
            NameOutcome::Failed(why)
        } else {
            NameOutcome::NoAddresses
        }
    }

    /// The addresses an answer leads to, asking again where its CNAME chain leaves it.
    /// `Ok(None)`: the name (or its alias target) has no records of this type.
    fn chain_addresses(
        &self,
        name: &str,
        qtype: QueryType,
        mut message: Message,
        deadline: Instant,
    ) -> Result<Option<(Vec<IpAddr>, u32)>, QueryFailure> {
        let mut asked = name.to_string();
        let mut ttl = u32::MAX;
        for requery in 0..=MAX_CNAME_REQUERIES {
            let chain = message
                .follow_chain(&asked, qtype)
                .map_err(|e| QueryFailure::Server(e.to_string()))?;
            if let Some(chain_ttl) = chain.ttl {
                ttl = ttl.min(chain_ttl);
            }
            if !chain.addresses.is_empty() {
                return Ok(Some((chain.addresses, ttl)));
            }
            // An SOA in the authority section: the target has no such record.
            if !chain.ends_outside(&asked) || message.is_negative() {
                return Ok(None);
            }
            if requery == MAX_CNAME_REQUERIES {
                break;
            }
            asked = dns::normalize_name(&chain.canonical_name)
                .map_err(|_| QueryFailure::Server("CNAME target is not a host name".into()))?;
            let mut results = self.query(&[(&asked, qtype)], deadline);
            message = match results.pop() {
                Some(Ok(next)) if next.header.rcode == ResponseCode::NameError => return Ok(None),
                Some(Ok(next)) => next,
                Some(Err(why)) => return Err(why),
                None => return Err(QueryFailure::Timeout),
            };
        }
        Err(QueryFailure::Server("CNAME chain too long".into()))
    }

    /// Nameservers in the order to try them for one query.
    fn server_order(&self) -> Vec<SocketAddr> {
        let servers = &self.conf.nameservers;
        if servers.is_empty() {
            return Vec::new();
        }
        let start = if self.conf.rotate {
            self.next_server.fetch_add(1, Ordering::Relaxed) % servers.len()
        } else {
            0
        };
        (0..servers.len())
            .filter_map(|i| servers.get((start + i) % servers.len()).copied())
            .collect()
    }

    /// Asks every `(name, type)` of `asks` (names already normalized), server after
    /// server, round after round, until each has an answer (NOERROR or NXDOMAIN) or time
    /// runs out.
    fn query(
        &self,
        asks: &[(&str, QueryType)],
        deadline: Instant,
    ) -> Vec<Result<Message, QueryFailure>> {
        let mut states: Vec<QueryState<'_>> = asks
            .iter()
            .map(|&(name, qtype)| QueryState {
                name,
                qtype,
                edns: self.conf.edns0,
                answer: None,
                failure: None,
            })
            .collect();
        let servers = self.server_order();
        if servers.is_empty() {
            for state in &mut states {
                state.note(QueryFailure::Network("no nameserver configured".into()));
            }
        }
        'rounds: for _ in 0..self.conf.attempts.max(1) {
            for &server in &servers {
                if states.iter().all(|s| s.answer.is_some()) {
                    break 'rounds;
                }
                let now = Instant::now();
                if now >= deadline {
                    break 'rounds;
                }
                let try_deadline = now
                    .checked_add(self.conf.timeout)
                    .map_or(deadline, |t| t.min(deadline));
                exchange_udp(server, &mut states, try_deadline);
            }
        }
        states
            .into_iter()
            .map(|s| {
                s.answer
                    .ok_or_else(|| s.failure.unwrap_or(QueryFailure::Timeout))
            })
            .collect()
    }
}

fn read_if_present(path: &Path) -> io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e),
    }
}

/// Time left until `deadline`, `None` when it has passed.
fn time_left(deadline: Instant) -> Option<Duration> {
    deadline
        .checked_duration_since(Instant::now())
        .filter(|left| !left.is_zero())
}

/// One try against one server: every unanswered state's query goes out on a fresh
/// connected UDP socket; replies are matched by source, id and question until all are
/// settled or `try_deadline` passes.
fn exchange_udp(server: SocketAddr, states: &mut [QueryState<'_>], try_deadline: Instant) {
    let local = match server {
        SocketAddr::V4(_) => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
        SocketAddr::V6(_) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), 0),
    };
    let socket = match UdpSocket::bind(local).and_then(|s| s.connect(server).map(|()| s)) {
        Ok(socket) => socket,
        Err(e) => {
            for state in states.iter_mut().filter(|s| s.answer.is_none()) {
                state.note(QueryFailure::from_io(&e));
            }
            return;
        }
    };
    // The id each unanswered state's query went out with.
    let mut in_flight: Vec<Option<u16>> = vec![None; states.len()];
    for i in 0..states.len() {
        if let Err(e) = send_udp_query(&socket, states, &mut in_flight, i) {
            // An ICMP error from an earlier send surfaces here once, and only here.
            fail_in_flight(states, &mut in_flight, QueryFailure::from_io(&e));
            return;
        }
    }
    let mut buffer = vec![0u8; UDP_BUFFER_LEN];
    while in_flight.iter().any(Option::is_some) {
        let Some(left) = time_left(try_deadline) else {
            break;
        };
        if let Err(e) = socket.set_read_timeout(Some(left)) {
            fail_in_flight(states, &mut in_flight, QueryFailure::from_io(&e));
            return;
        }
        let (len, from) = match socket.recv_from(&mut buffer) {
            Ok(received) => received,
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
            // ICMP port unreachable and friends: this server is not there.
            Err(e) => {
                fail_in_flight(states, &mut in_flight, QueryFailure::from_io(&e));
                return;
            }
        };
        if from.ip() != server.ip() || from.port() != server.port() {
            continue;
        }
        let Some(Ok(message)) = buffer.get(..len).map(dns::parse_message) else {
            continue;
        };
        let matched = (0..states.len()).find(|&i| {
            match (in_flight.get(i).copied().flatten(), states.get(i)) {
                (Some(id), Some(state)) => message.answers_query(id, state.name, state.qtype),
                _ => false,
            }
        });
        let Some(i) = matched else {
            continue;
        };
        if let Some(slot) = in_flight.get_mut(i) {
            *slot = None;
        }
        let Some(state) = states.get_mut(i) else {
            continue;
        };
        let message = if message.header.truncated {
            match exchange_tcp(server, state, try_deadline) {
                Ok(full) => full,
                Err(why) => {
                    state.note(why);
                    continue;
                }
            }
        } else {
            message
        };
        let ask_again = match message.header.rcode {
            ResponseCode::NoError | ResponseCode::NameError => {
                state.answer = Some(message);
                false
            }
            // A server from before EDNS: ask it again without the OPT record.
            ResponseCode::FormatError if state.edns => {
                state.edns = false;
                state.note(QueryFailure::Server(describe_rcode(
                    ResponseCode::FormatError,
                )));
                true
            }
            other => {
                state.note(QueryFailure::Server(describe_rcode(other)));
                false
            }
        };
        if ask_again {
            if let Err(e) = send_udp_query(&socket, states, &mut in_flight, i) {
                fail_in_flight(states, &mut in_flight, QueryFailure::from_io(&e));
                return;
            }
        }
    }
    fail_in_flight(states, &mut in_flight, QueryFailure::Timeout);
}

fn fail_in_flight(states: &mut [QueryState<'_>], in_flight: &mut [Option<u16>], why: QueryFailure) {
    for (state, slot) in states.iter_mut().zip(in_flight.iter_mut()) {
        if slot.take().is_some() {
            state.note(why.clone());
        }
    }
}

/// Sends state `i`'s query (if it still needs one) under an id no other query in flight
/// on this socket uses. A send error means the server is unreachable and is returned
/// (the state itself is noted as failed).
fn send_udp_query(
    socket: &UdpSocket,
    states: &mut [QueryState<'_>],
    in_flight: &mut [Option<u16>],
    i: usize,
) -> io::Result<()> {
    let Some(state) = states.get_mut(i) else {
        return Ok(());
    };
    if state.answer.is_some() {
        return Ok(());
    }
    let mut id = random_id();
    while in_flight.contains(&Some(id)) {
        id = random_id();
    }
    let mut packet = Vec::with_capacity(64);
    if dns::encode_query(id, state.name, state.qtype, state.edns, &mut packet).is_err() {
        state.note(QueryFailure::Server("name cannot be queried".into()));
        return Ok(());
    }
    match socket.send(&packet) {
        Ok(_) => {
            if let Some(slot) = in_flight.get_mut(i) {
                *slot = Some(id);
            }
            Ok(())
        }
        Err(e) => {
            state.note(QueryFailure::from_io(&e));
            Err(e)
        }
    }
}

/// The same question over TCP (RFC 1035 4.2.2: two-byte length prefix), after a
/// truncated UDP reply.
fn exchange_tcp(
    server: SocketAddr,
    state: &QueryState<'_>,
    deadline: Instant,
) -> Result<Message, QueryFailure> {
    let left = time_left(deadline).ok_or(QueryFailure::Timeout)?;
    let mut stream =
        TcpStream::connect_timeout(&server, left).map_err(|e| QueryFailure::from_io(&e))?;
    let _ = stream.set_nodelay(true);
    let id = random_id();
    let mut packet = vec![0u8, 0u8];
    dns::encode_query(id, state.name, state.qtype, state.edns, &mut packet)
        .map_err(|e| QueryFailure::Server(e.to_string()))?;
    let query_len = u16::try_from(packet.len() - 2)
        .map_err(|_| QueryFailure::Server("query too long".into()))?;
    packet[..2].copy_from_slice(&query_len.to_be_bytes());
    let left = time_left(deadline).ok_or(QueryFailure::Timeout)?;
    stream
        .set_write_timeout(Some(left))
        .and_then(|()| stream.write_all(&packet))
        .map_err(|e| QueryFailure::from_io(&e))?;
    let mut length = [0u8; 2];
    read_full(&mut stream, &mut length, deadline)?;
    let mut reply = vec![0u8; usize::from(u16::from_be_bytes(length))];
    read_full(&mut stream, &mut reply, deadline)?;
    let message =
        dns::parse_message(&reply).map_err(|e| QueryFailure::Server(format!("TCP answer: {e}")))?;
    if !message.answers_query(id, state.name, state.qtype) || message.header.truncated {
        return Err(QueryFailure::Server(
            "TCP answer does not match the query".into(),
        ));
    }
    Ok(message)
}

/// Fills `buf` from `stream`, each read bounded by what is left until `deadline`.
fn read_full(
    stream: &mut TcpStream,
    buf: &mut [u8],
    deadline: Instant,
) -> Result<(), QueryFailure> {
    let mut filled = 0;
    while filled < buf.len() {
        let left = time_left(deadline).ok_or(QueryFailure::Timeout)?;
        stream
            .set_read_timeout(Some(left))
            .map_err(|e| QueryFailure::from_io(&e))?;
        let Some(rest) = buf.get_mut(filled..) else {
            break;
        };
        match stream.read(rest) {
            Ok(0) => {
                return Err(QueryFailure::Network(
                    "server closed the TCP connection".into(),
                ))
            }
            Ok(n) => filled += n,
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(QueryFailure::Network(e.to_string())),
        }
    }
    Ok(())
}

fn describe_rcode(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormatError => "server answered FORMERR".into(),
        ResponseCode::ServerFailure => "server answered SERVFAIL".into(),
        ResponseCode::NameError => "NXDOMAIN".into(),
        ResponseCode::NotImplemented => "server answered NOTIMP".into(),
        ResponseCode::Refused => "server answered REFUSED".into(),
        ResponseCode::Other(code) => format!("server answered RCODE {code}"),
    }
}

/// A query id nobody off-path can guess: straight from the OS (getrandom(2), or
/// /dev/urandom on kernels without it, through ring). Only if the OS has no randomness
/// to give does a SplitMix64 sequence seeded from the clock and this process's address
/// layout take over, so resolution keeps working on odd embedded kernels.
fn random_id() -> u16 {
    let mut bytes = [0u8; 2];
    if SystemRandom::new().fill(&mut bytes).is_ok() {
        return u16::from_be_bytes(bytes);
    }
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut seed = STATE.load(Ordering::Relaxed);
    if seed == 0 {
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let local = 0u8;
        let address = &local as *const u8 as u64;
        seed = clock ^ address.rotate_left(32) ^ u64::from(std::process::id());
    }
    let next = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    STATE.store(next, Ordering::Relaxed);
    let mut z = next;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u16
}

/// The order happy eyeballs tries addresses in: the families alternate, starting with the
/// family of the first address; within a family the given order is kept; repeats dropped.
pub fn interleave_families(addresses: &[IpAddr]) -> Vec<IpAddr> {
    let mut unique: Vec<IpAddr> = Vec::with_capacity(addresses.len());
    for address in addresses {
        if !unique.contains(address) {
            unique.push(*address);
        }
    }
    let first_is_v6 = unique.first().is_some_and(IpAddr::is_ipv6);
    let (mut preferred, mut other): (Vec<IpAddr>, Vec<IpAddr>) = unique
        .into_iter()
        .partition(|address| address.is_ipv6() == first_is_v6);
    preferred.reverse();
    other.reverse();
    let mut ordered = Vec::with_capacity(preferred.len() + other.len());
    loop {
        match (preferred.pop(), other.pop()) {
            (None, None) => return ordered,
            (a, b) => ordered.extend(a.into_iter().chain(b)),
        }
    }
}

fn connect_by(address: SocketAddr, deadline: Instant) -> io::Result<TcpStream> {
    let left = time_left(deadline)
        .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "connect deadline passed"))?;
    TcpStream::connect_timeout(&address, left)
}

/// Connects to `port` on one of `addresses` (RFC 8305 style): attempts start in
/// `interleave_families` order, the next one `CONNECTION_ATTEMPT_DELAY` after the
/// previous if that has not connected yet (at once if it failed); the first to connect
/// wins, and any that connect later are closed. Attempts run on small helper threads;
/// the call returns by `deadline` either way.
pub fn connect_happy_eyeballs(
    addresses: &[IpAddr],
    port: u16,
    deadline: Instant,
) -> io::Result<TcpStream> {
    let ordered = interleave_families(addresses);
    match ordered.as_slice() {
        [] => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "no addresses to connect to",
            ))
        }
        [only] => return connect_by(SocketAddr::new(*only, port), deadline),
        _ => {}
    }
    let (results_tx, results_rx) = crossbeam_channel::unbounded::<io::Result<TcpStream>>();
    let mut next = 0usize;
    let mut running = 0usize;
    let mut next_start = Instant::now();
    let mut last_error: Option<io::Error> = None;
    loop {
        let now = Instant::now();
        if now >= deadline {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "connect timed out"));
        }
        if let Some(&address) = ordered.get(next) {
            if now >= next_start || running == 0 {
                next += 1;
                let target = SocketAddr::new(address, port);
                let sender = results_tx.clone();
                let spawned = thread::Builder::new()
                    .name("happy-eyeballs".into())
                    .stack_size(CONNECT_THREAD_STACK)
                    .spawn(move || {
                        // If the race is already won the receiver is gone, the send
                        // fails, and the late stream is dropped: closed.
                        let _ = sender.send(connect_by(target, deadline));
                    });
                match spawned {
                    Ok(_) => {
                        running += 1;
                        next_start = now + CONNECTION_ATTEMPT_DELAY;
                    }
                    Err(e) => last_error = Some(e),
                }
                continue;
            }
        } else if running == 0 {
            return Err(last_error
                .unwrap_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "connect timed out")));
        }
        let wake = if next < ordered.len() {
            next_start.min(deadline)
        } else {
            deadline
        };
        match results_rx.recv_deadline(wake) {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => {
                running -= 1;
                last_error = Some(e);
                // A failed attempt frees its slot at once.
                next_start = Instant::now();
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                return Err(io::Error::other("connect attempts vanished"));
            }
        }
    }
}
