//! Abuse limits: rates of messages, logins and registrations, back-off after
//! failed logins, and caps on WebSocket connections.
//!
//! Every limit answers the same way: `Err(wait)`, how long until the request
//! would be allowed. REST turns that into `429` with `Retry-After`, the
//! WebSocket into `message_failed` with `retry_after_ms`.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hashlink::LruCache;

use crate::config::Config;
use crate::models::UserId;

/// Entries a limiter keeps: a flood of distinct keys (addresses, account
/// names) cannot grow memory without end.
const MAX_TRACKED_KEYS: usize = 10_000;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A limiter's table: at [`MAX_TRACKED_KEYS`] entries, a new key evicts the
/// one used longest ago, in constant time (no scan of the table while the
/// lock is held, however many keys a flood brings). An active key is used
/// often and stays; the one evicted has been idle the longest.
type Table<K, V> = LruCache<K, V>;

/// The entry of `key`, marked as just used; made with `fresh` (evicting
/// the longest unused one if the table is full) when there is none.
fn entry<'t, K: Hash + Eq + Clone, V>(
    table: &'t mut Table<K, V>,
    key: &K,
    fresh: impl FnOnce() -> V,
) -> &'t mut V {
    if !table.contains_key(key) {
        table.insert(key.clone(), fresh());
    }
    table
        .get_mut(key)
        .unwrap_or_else(|| unreachable!("the entry was just inserted"))
}

/// A token bucket per key: `burst` requests at once, then `per_second`.
pub struct RateLimiter<K> {
    per_second: f64,
    burst: f64,
    buckets: Mutex<Table<K, Bucket>>,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A rate of 0 turns the limiter off.
    pub fn new(per_second: f64, burst: u32) -> Self {
        RateLimiter {
            per_second,
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(LruCache::new(MAX_TRACKED_KEYS)),
        }
    }

    /// Keys tracked now (for tests).
    pub fn tracked(&self) -> usize {
        lock(&self.buckets).len()
    }

    /// Takes a token for `key`, or says how long until one is available.
    pub fn check(&self, key: K) -> Result<(), Duration> {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut buckets = lock(&self.buckets);
        let bucket = entry(&mut buckets, &key, || Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.per_second;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }
}

/// Exponential back-off after failed logins: `free_failures` mistakes cost
/// nothing, then each further one doubles the wait, from one second up to
/// `max_wait`. A successful login clears an account's record.
pub struct LoginBackoff {
    free_failures: u32,
    max_wait: Duration,
    failures: Mutex<Table<String, Failures>>,
}

struct Failures {
    count: u32,
    blocked_until: Instant,
}

impl LoginBackoff {
    pub fn new(free_failures: u32, max_wait: Duration) -> Self {
        LoginBackoff {
            free_failures,
            max_wait,
            failures: Mutex::new(LruCache::new(MAX_TRACKED_KEYS)),
        }
    }

    /// `Err(wait)` while `key` is backing off.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        match lock(&self.failures).peek(key) {
            Some(f) if f.blocked_until > now => Err(f.blocked_until - now),
            _ => Ok(()),
        }
    }

    pub fn failed(&self, key: &str) {
        let now = Instant::now();
        let mut failures = lock(&self.failures);
        // The key guessed at most recently is the last to go: an account
        // under attack is guessed at all the time.
        let entry = entry(&mut failures, &key.to_owned(), || Failures {
            count: 0,
            blocked_until: now,
        });
        entry.count = entry.count.saturating_add(1);
        let over = entry.count.saturating_sub(self.free_failures);
        if over > 0 {
            let wait = Duration::from_secs(1u64 << (over - 1).min(20)).min(self.max_wait);
            entry.blocked_until = now + wait;
        }
    }

    pub fn succeeded(&self, key: &str) {
        lock(&self.failures).remove(key);
    }

    /// Keys tracked now (for tests and metrics).
    pub fn tracked(&self) -> usize {
        lock(&self.failures).len()
    }
}

/// The part of a client's address that per-address limits count against:
/// an IPv4 address, or the /64 network of an IPv6 address. A host picks
/// any address in its /64 at will (privacy addresses change by the hour),
/// so keyed by the whole address one host would have 2^64 fresh limits.
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !(u128::from(u64::MAX));
                IpAddr::V6(network.into())
            }
        },
    }
}

/// What a failed login counts against, each a key of bounded length
/// however long the identifier sent: the client's address; a browser that
/// holds a device cookie for the account; or, for everyone else, the
/// account (its id, or a digest of the unknown name tried).
pub enum LoginKey<'a> {
    Address(IpAddr),
    Device(&'a str),
    StrangersToAccount(UserId),
    StrangersToUnknownName(&'a str),
}

impl LoginKey<'_> {
    pub fn key(&self) -> String {
        match self {
            LoginKey::Address(ip) => format!("ip:{}", address_key(*ip)),
            LoginKey::Device(nonce) => format!("device:{nonce}"),
            LoginKey::StrangersToAccount(id) => format!("account:{id}"),
            LoginKey::StrangersToUnknownName(name) => {
                let digest = crate::auth::hash_token(&name.to_lowercase());
                format!("name:{}", crate::auth::to_hex(&digest[..16]))
            }
        }
    }
}

/// Caps on open WebSockets: in total (before the process runs out of
/// threads or file descriptors: each connection takes two threads and two
/// descriptors) and per user.
pub struct ConnectionLimits {
    max_total: usize,
    max_per_user: usize,
    total: AtomicUsize,
    per_user: Mutex<HashMap<UserId, usize>>,
}

/// One accepted socket; the count drops when it is dropped.
pub struct SocketSlot(Arc<ConnectionLimits>);

/// One authenticated connection of a user; the count drops when dropped.
pub struct UserSlot(Arc<ConnectionLimits>, UserId);

impl ConnectionLimits {
    pub fn new(max_total: usize, max_per_user: usize) -> Arc<Self> {
        Arc::new(ConnectionLimits {
            max_total,
            max_per_user,
            total: AtomicUsize::new(0),
            per_user: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a newly accepted socket, or `None` when all are taken.
    pub fn open_socket(self: &Arc<Self>) -> Option<SocketSlot> {
        let taken = self
            .total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_total).then_some(n + 1)
            });
        taken.ok().map(|_| SocketSlot(self.clone()))
    }

    /// A slot for another connection of `user`, or `None` at the cap.
    pub fn add_user_connection(self: &Arc<Self>, user: UserId) -> Option<UserSlot> {
        let mut per_user = lock(&self.per_user);
        let count = per_user.entry(user).or_insert(0);
        if *count >= self.max_per_user {
            return None;
        }
        *count += 1;
        Some(UserSlot(self.clone(), user))
    }

    pub fn open_sockets(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        self.0.total.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Drop for UserSlot {
    fn drop(&mut self) {
        let mut per_user = lock(&self.0.per_user);
        if let Some(count) = per_user.get_mut(&self.1) {
            *count -= 1;
            if *count == 0 {
                per_user.remove(&self.1);
            }
        }
    }
}

/// All the limits, built from the configuration.
pub struct Limits {
    /// Messages per user (REST and WebSocket alike).
    pub messages: RateLimiter<UserId>,
    /// Login attempts per client address.
    pub logins: RateLimiter<IpAddr>,
    /// Back-off after failures, per account and per address.
    pub login_failures: LoginBackoff,
    /// Registrations per client address.
    pub registrations: RateLimiter<IpAddr>,
    pub connections: Arc<ConnectionLimits>,
}

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        Limits {
            messages: RateLimiter::new(config.message_rate, config.message_burst),
            logins: RateLimiter::new(config.login_rate / 60.0, config.login_rate.ceil() as u32),
            login_failures: LoginBackoff::new(config.login_free_failures, config.login_max_backoff),
            registrations: RateLimiter::new(
                config.register_rate / 3600.0,
                config.register_rate.ceil() as u32,
            ),
            connections: ConnectionLimits::new(
                config.max_connections,
                config.max_connections_per_user,
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_limited_by_their_64_and_ipv4_by_address() {
        let key = |text: &str| address_key(text.parse().expect("address"));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2::"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("192.0.2.7"), key("::ffff:192.0.2.7"));
        assert_ne!(key("192.0.2.7"), key("192.0.2.8"));
        assert_eq!(
            LoginKey::Address(key("2001:db8::1")).key(),
            LoginKey::Address(key("2001:db8::2")).key()
        );
    }

    #[test]
    fn token_bucket_allows_the_burst_then_the_rate() {
        let limiter = RateLimiter::new(10.0, 3);
        for _ in 0..3 {
            assert!(limiter.check(1).is_ok());
        }
        let wait = limiter.check(1).expect_err("burst used up");
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        assert!(limiter.check(2).is_ok(), "other keys have their own bucket");
        assert!(RateLimiter::new(0.0, 1).check(1).is_ok(), "rate 0 = off");
    }

    #[test]
    fn login_backoff_doubles_after_the_free_failures() {
        let backoff = LoginBackoff::new(2, Duration::from_secs(60));
        backoff.failed("a");
        backoff.failed("a");
        assert!(backoff.check("a").is_ok(), "two free failures");
        backoff.failed("a");
        let first = backoff.check("a").expect_err("backing off");
        backoff.failed("a");
        let second = backoff.check("a").expect_err("backing off more");
        assert!(second > first);
        backoff.succeeded("a");
        assert!(backoff.check("a").is_ok());
        for _ in 0..64 {
            backoff.failed("b");
        }
        assert!(backoff.check("b").expect_err("capped") <= Duration::from_secs(60));
    }

    #[test]
    fn rate_limiter_tables_stay_bounded_under_a_flood_of_distinct_keys() {
        let limiter = RateLimiter::new(0.001, 1);
        for n in 0..(MAX_TRACKED_KEYS as u32 * 3) {
            let _ = limiter.check(n);
            let _ = limiter.check(n); // now empty: not forgotten as full
            assert!(limiter.tracked() <= MAX_TRACKED_KEYS);
        }
    }

    #[test]
    fn the_login_backoff_table_stays_bounded_under_a_flood_of_distinct_keys() {
        let backoff = LoginBackoff::new(0, Duration::from_secs(900));
        for n in 0..(MAX_TRACKED_KEYS * 3) {
            let long_name = format!("{n}{}", "x".repeat(1000));
            backoff.failed(&LoginKey::StrangersToUnknownName(&long_name).key());
            assert!(backoff.tracked() <= MAX_TRACKED_KEYS);
        }
        assert!(
            LoginKey::StrangersToUnknownName(&"y".repeat(65536))
                .key()
                .len()
                < 64
        );
    }

    #[test]
    fn a_key_in_use_outlives_a_flood_and_the_longest_idle_goes_first() {
        let backoff = LoginBackoff::new(0, Duration::from_secs(900));
        for n in 0..(MAX_TRACKED_KEYS * 3) {
            if n % 1000 == 0 {
                backoff.failed("account:1"); // still being guessed at
            }
            backoff.failed(&format!("flood:{n}"));
        }
        assert!(backoff.check("account:1").is_err(), "still backing off");
        assert!(backoff.check("flood:0").is_ok(), "the longest idle went");
        let limiter = RateLimiter::new(0.001, 1);
        let _ = limiter.check(u32::MAX);
        for n in 0..(MAX_TRACKED_KEYS as u32 * 2) {
            if n % 1000 == 0 {
                assert!(limiter.check(u32::MAX).is_err(), "its bucket is kept");
            }
            let _ = limiter.check(n);
        }
        assert_eq!(limiter.tracked(), MAX_TRACKED_KEYS);
    }

    #[test]
    fn connection_slots_are_returned_on_drop() {
        let limits = ConnectionLimits::new(2, 1);
        let a = limits.open_socket().expect("first");
        let _b = limits.open_socket().expect("second");
        assert!(limits.open_socket().is_none());
        drop(a);
        assert!(limits.open_socket().is_some());
        let user = limits.add_user_connection(7).expect("first for user 7");
        assert!(limits.add_user_connection(7).is_none());
        drop(user);
        assert!(limits.add_user_connection(7).is_some());
    }
}
