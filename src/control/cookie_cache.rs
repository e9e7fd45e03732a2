//! Retransmission cache: a request re-sent with a cookie already answered gets the same reply
//! again, without running the command twice (an `offer` must not allocate ports twice). rtpengine
//! keeps cookies for about 30 s. Memory is bounded by an entry count and a byte budget; when
//! either is exceeded the oldest entries go first.
//!
//! Entries are keyed by (client, cookie), the client being the transport's peer key
//! ([`NgPeer::key`](crate::control::transport::NgPeer::key)): a retransmission comes from the
//! client that sent the original, and anyone else who sends the same cookie (guessed, or seen on
//! the wire) runs a fresh command instead of reading that client's reply (a `list` or `query`
//! answer, say).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use crate::time::Millis;

/// How long rtpengine remembers a cookie.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// Default bound on the bytes of cookies plus replies held.
pub const DEFAULT_MAX_BYTES: usize = 64 << 20;

#[derive(Debug)]
struct Entry {
    inserted: Millis,
    reply: Vec<u8>,
}

/// (client, cookie) → full reply datagram, expiring after a TTL. Sans-IO: time is passed in.
#[derive(Debug)]
pub struct CookieCache {
    ttl: Duration,
    max_entries: usize,
    max_bytes: usize,
    bytes: usize,
    /// Keyed by [`entry_key`] of (client, cookie).
    map: HashMap<Vec<u8>, Entry>,
    /// Insertion order, oldest first; an item is stale if the map holds a newer entry for it.
    order: VecDeque<(Millis, Vec<u8>)>,
}

impl CookieCache {
    pub fn new(ttl: Duration, max_entries: usize) -> Self {
        CookieCache {
            ttl,
            max_entries,
            max_bytes: DEFAULT_MAX_BYTES,
            bytes: 0,
            map: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// Replaces the byte budget (cookies + replies).
    pub fn with_max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// The reply cached for `cookie` from `client`, if it is younger than the TTL.
    pub fn get(&mut self, now: Millis, client: &[u8], cookie: &[u8]) -> Option<Vec<u8>> {
        self.expire(now);
        self.map
            .get(&entry_key(client, cookie))
            .map(|e| e.reply.clone())
    }

    /// Remembers `reply` for `cookie` from `client` (replacing an older one).
    pub fn insert(&mut self, now: Millis, client: &[u8], cookie: &[u8], reply: Vec<u8>) {
        self.expire(now);
        let cookie = entry_key(client, cookie);
        if self.max_entries == 0 {
            return;
        }
        let size = cookie.len() + reply.len();
        if size > self.max_bytes {
            return;
        }
        if let Some(old) = self.map.remove(&cookie) {
            self.bytes -= cookie.len() + old.reply.len();
        }
        while !self.map.is_empty()
            && (self.map.len() >= self.max_entries || self.bytes + size > self.max_bytes)
        {
            self.pop_oldest();
        }
        self.bytes += size;
        self.order.push_back((now, cookie.clone()));
        self.map.insert(
            cookie,
            Entry {
                inserted: now,
                reply,
            },
        );
        self.compact();
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Bytes of cookies and replies held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn expire(&mut self, now: Millis) {
        while let Some((at, _)) = self.order.front() {
            if now.since(*at) < self.ttl {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Drops the oldest queue item, and its map entry unless that was re-inserted later.
    fn pop_oldest(&mut self) {
        let Some((at, cookie)) = self.order.pop_front() else {
            return;
        };
        if self.map.get(&cookie).is_some_and(|e| e.inserted == at) {
            if let Some(e) = self.map.remove(&cookie) {
                self.bytes -= cookie.len() + e.reply.len();
            }
        }
    }

    /// Stale queue items (from re-inserted cookies) would otherwise pile up; drop them once they
    /// outnumber live entries. Amortized O(1) per insert.
    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 16 {
            let map = &self.map;
            self.order
                .retain(|(at, c)| map.get(c).is_some_and(|e| e.inserted == *at));
        }
    }
}

/// One byte string for (client, cookie): the client's length, the client, the cookie. The
/// length prefix keeps ("ab", "c") and ("a", "bc") apart.
fn entry_key(client: &[u8], cookie: &[u8]) -> Vec<u8> {
    let len = u16::try_from(client.len()).unwrap_or(u16::MAX);
    let client = client.get(..usize::from(len)).unwrap_or(client);
    let mut key = Vec::with_capacity(2 + client.len() + cookie.len());
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(client);
    key.extend_from_slice(cookie);
    key
}

impl Default for CookieCache {
    fn default() -> Self {
        CookieCache::new(DEFAULT_TTL, 100_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One client for the tests that are not about clients.
    const C: &[u8] = b"c";

    fn ms(n: u64) -> Millis {
        Millis(n)
    }

    #[test]
    fn hit_within_ttl_miss_after() {
        let mut c = CookieCache::new(Duration::from_secs(30), 10);
        assert_eq!(c.get(ms(0), C, b"a"), None);
        c.insert(ms(0), C, b"a", b"a reply".to_vec());
        assert_eq!(c.get(ms(29_999), C, b"a"), Some(b"a reply".to_vec()));
        assert_eq!(c.get(ms(30_000), C, b"a"), None);
        assert!(c.is_empty());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn bounded_by_entries_oldest_first() {
        let mut c = CookieCache::new(Duration::from_secs(30), 3);
        for i in 0..5u8 {
            c.insert(ms(u64::from(i)), C, &[i], vec![i; 4]);
        }
        assert_eq!(c.len(), 3);
        assert_eq!(c.get(ms(10), C, &[0]), None);
        assert_eq!(c.get(ms(10), C, &[1]), None);
        assert_eq!(c.get(ms(10), C, &[4]), Some(vec![4; 4]));
        // Each entry: the 2-byte client length, the client, the cookie, the reply.
        assert_eq!(c.bytes(), 3 * (2 + 1 + 1 + 4));
    }

    #[test]
    fn bounded_by_bytes() {
        let mut c = CookieCache::new(Duration::from_secs(30), 100).with_max_bytes(30);
        c.insert(ms(0), C, b"a", vec![0; 9]);
        c.insert(ms(1), C, b"b", vec![0; 9]);
        assert_eq!(c.len(), 2);
        c.insert(ms(2), C, b"c", vec![0; 9]);
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(ms(3), C, b"a"), None);
        assert!(c.bytes() <= 30);
        // Larger than the whole budget: not cached at all.
        c.insert(ms(4), C, b"d", vec![0; 100]);
        assert_eq!(c.get(ms(5), C, b"d"), None);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn reinsert_replaces_and_restarts_ttl() {
        let mut c = CookieCache::new(Duration::from_millis(100), 10);
        c.insert(ms(0), C, b"k", b"one".to_vec());
        c.insert(ms(50), C, b"k", b"two".to_vec());
        assert_eq!(c.len(), 1);
        assert_eq!(c.bytes(), 2 + 1 + 1 + 3);
        // The first queue item expires at 100 but must not remove the newer entry.
        assert_eq!(c.get(ms(120), C, b"k"), Some(b"two".to_vec()));
        assert_eq!(c.get(ms(150), C, b"k"), None);
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let mut c = CookieCache::new(Duration::from_secs(1), 0);
        c.insert(ms(0), C, b"k", b"v".to_vec());
        assert_eq!(c.get(ms(0), C, b"k"), None);
    }

    #[test]
    fn another_clients_cookie_misses() {
        let mut c = CookieCache::new(Duration::from_secs(30), 10);
        c.insert(ms(0), b"kamailio", b"42_1", b"42_1 list reply".to_vec());
        assert_eq!(c.get(ms(1), b"attacker", b"42_1"), None);
        assert_eq!(
            c.get(ms(1), b"kamailio", b"42_1"),
            Some(b"42_1 list reply".to_vec())
        );
        // The client/cookie boundary is part of the key.
        c.insert(ms(2), b"ab", b"c", b"one".to_vec());
        assert_eq!(c.get(ms(3), b"a", b"bc"), None);
        // The same cookie from two clients: two entries.
        c.insert(ms(4), b"attacker", b"42_1", b"other".to_vec());
        assert_eq!(c.len(), 3);
        assert_eq!(
            c.get(ms(5), b"kamailio", b"42_1"),
            Some(b"42_1 list reply".to_vec())
        );
    }

    #[test]
    fn queue_stays_bounded_under_reinserts() {
        let mut c = CookieCache::new(Duration::from_secs(3600), 4);
        for i in 0..10_000u64 {
            c.insert(ms(i), C, b"same", b"r".to_vec());
        }
        assert_eq!(c.len(), 1);
        assert!(c.order.len() <= 2 * c.map.len() + 17, "{}", c.order.len());
    }
}
