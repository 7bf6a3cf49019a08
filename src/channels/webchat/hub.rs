//! Who is connected: each visitor's open WebSockets and long-poll mailbox. Agent replies and a
//! visitor's own messages (for their other tabs) are pushed through here.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// A long-poll visitor counts as connected this long after their last poll ended.
pub const POLL_ONLINE: Duration = Duration::from_secs(10);
/// Frames a long-poll mailbox keeps for its next poll.
const MAILBOX: usize = 100;
/// Frames waiting to go out on one socket; a socket that falls this far behind is dropped.
pub const SOCKET_QUEUE: usize = 64;

pub type Frame = Arc<str>;

#[derive(Default)]
struct Mailbox {
    frames: VecDeque<Frame>,
    /// Polls waiting right now.
    waiting: usize,
    last_poll: Option<Instant>,
    /// Bumped by each new poll: an older poll still waiting sees it and ends (one pending
    /// poll per visitor).
    poll_gen: u64,
}

/// What a long poll ends with.
#[derive(Debug, PartialEq, Eq)]
pub enum Polled {
    Frames(Vec<Frame>),
    /// A newer poll of the same visitor took over; this one ends at once with nothing.
    Superseded,
}

/// Why no connection slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// `max_connections` are open.
    Full,
    /// This address holds `max_connections_per_ip`.
    Address,
}

#[derive(Default)]
struct Visitor {
    sockets: Vec<(u64, mpsc::Sender<Frame>)>,
    mailbox: Option<Mailbox>,
    notify: Arc<Notify>,
}

impl Visitor {
    fn idle(&self) -> bool {
        self.sockets.is_empty()
            && self.mailbox.as_ref().is_none_or(|m| {
                m.waiting == 0 && m.last_poll.is_none_or(|t| t.elapsed() > POLL_ONLINE)
            })
    }
}

#[derive(Default)]
pub struct Hub {
    visitors: Mutex<HashMap<String, Visitor>>,
    next_id: AtomicU64,
    /// Open WebSockets plus long polls in progress.
    connections: AtomicUsize,
    /// The same, per client address.
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Woken whenever a visitor connects (a reply waiting for a reloading page).
    connected: Notify,
}

struct Waiting<'a> {
    hub: &'a Hub,
    visitor: &'a str,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        let mut map = self.hub.lock();
        if let Some(m) = map.get_mut(self.visitor).and_then(|v| v.mailbox.as_mut()) {
            m.waiting = m.waiting.saturating_sub(1);
            m.last_poll = Some(Instant::now());
        }
    }
}

/// A reserved connection slot (of an address, when known); released on drop.
pub struct Slot(Arc<Hub>, Option<IpAddr>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.release();
        if let Some(ip) = self.1 {
            let mut map = self.0.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = map.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

/// One registered WebSocket; unregisters on drop.
pub struct SocketGuard {
    hub: Arc<Hub>,
    visitor: String,
    id: u64,
}

impl Drop for SocketGuard {
    fn drop(&mut self) {
        let mut map = self.hub.lock();
        if let Some(v) = map.get_mut(&self.visitor) {
            v.sockets.retain(|(id, _)| *id != self.id);
            if v.idle() {
                map.remove(&self.visitor);
            }
        }
    }
}

impl SocketGuard {
    pub fn id(&self) -> u64 {
        self.id
    }
}

impl Hub {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Visitor>> {
        self.visitors.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserve a connection slot, unless `max` are open.
    fn try_reserve(&self, max: usize) -> bool {
        let mut n = self.connections.load(Ordering::Relaxed);
        loop {
            if n >= max {
                return false;
            }
            match self.connections.compare_exchange_weak(
                n,
                n + 1,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => n = now,
            }
        }
    }

    fn release(&self) {
        self.connections.fetch_sub(1, Ordering::Relaxed);
    }

    /// A connection slot held until dropped; None when `max` connections are open.
    pub fn slot(self: &Arc<Self>, max: usize) -> Option<Slot> {
        self.try_reserve(max).then(|| Slot(Arc::clone(self), None))
    }

    /// A connection slot of `ip`: refused when `max` connections are open, or when `ip` holds
    /// `max_per_ip` (WebSockets and pending long polls alike), so one address cannot take them
    /// all.
    pub fn slot_for(
        self: &Arc<Self>,
        ip: IpAddr,
        max: usize,
        max_per_ip: usize,
    ) -> Result<Slot, Busy> {
        let mut map = self.per_ip.lock().unwrap_or_else(PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if *n >= max_per_ip {
            if *n == 0 {
                map.remove(&ip);
            }
            return Err(Busy::Address);
        }
        if !self.try_reserve(max) {
            if *n == 0 {
                map.remove(&ip);
            }
            return Err(Busy::Full);
        }
        *n += 1;
        Ok(Slot(Arc::clone(self), Some(ip)))
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Visitors connected now.
    pub fn online(&self) -> usize {
        self.lock().values().filter(|v| !v.idle()).count()
    }

    /// Register a WebSocket of `visitor` (its slot already reserved): frames for it arrive on
    /// the returned receiver.
    pub fn add_socket(self: &Arc<Self>, visitor: &str) -> (SocketGuard, mpsc::Receiver<Frame>) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(SOCKET_QUEUE);
        self.lock()
            .entry(visitor.to_string())
            .or_default()
            .sockets
            .push((id, tx));
        self.connected.notify_waiters();
        (
            SocketGuard {
                hub: Arc::clone(self),
                visitor: visitor.to_string(),
                id,
            },
            rx,
        )
    }

    /// Push a frame to every connection of `visitor` but `except` (a socket id). False: the
    /// visitor has no connection.
    pub fn push(&self, visitor: &str, frame: &Frame, except: Option<u64>) -> bool {
        let mut map = self.lock();
        let Some(v) = map.get_mut(visitor) else {
            return false;
        };
        let mut reached = false;
        v.sockets.retain(|(id, tx)| {
            if Some(*id) == except {
                return true;
            }
            match tx.try_send(Arc::clone(frame)) {
                Ok(()) => {
                    reached = true;
                    true
                }
                // A socket this far behind is dropped (its task closes it).
                Err(mpsc::error::TrySendError::Full(_)) => false,
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            }
        });
        if let Some(m) = &mut v.mailbox
            && (m.waiting > 0 || m.last_poll.is_some_and(|t| t.elapsed() <= POLL_ONLINE))
        {
            if m.frames.len() >= MAILBOX {
                m.frames.pop_front();
            }
            m.frames.push_back(Arc::clone(frame));
            v.notify.notify_waiters();
            reached = true;
        }
        reached
    }

    /// Whether `visitor` has any connection (sockets, or a recent poll).
    pub fn is_connected(&self, visitor: &str) -> bool {
        self.lock().get(visitor).is_some_and(|v| !v.idle())
    }

    /// Wait up to `limit` for `visitor` to connect. True: connected.
    pub async fn wait_connected(&self, visitor: &str, limit: Duration) -> bool {
        let end = tokio::time::Instant::now() + limit;
        loop {
            let woke = self.connected.notified();
            tokio::pin!(woke);
            woke.as_mut().enable();
            if self.is_connected(visitor) {
                return true;
            }
            if tokio::time::timeout_at(end, woke).await.is_err() {
                return self.is_connected(visitor);
            }
        }
    }

    /// A long poll of `visitor`: the frames waiting, or those that arrive within `limit`. A
    /// poll still waiting for the same visitor ends at once ([`Polled::Superseded`]): one
    /// pending poll per visitor (a reloaded page's new poll takes over from its old one).
    pub async fn poll(&self, visitor: &str, limit: Duration) -> Polled {
        let (notify, ticket) = {
            let mut map = self.lock();
            let v = map.entry(visitor.to_string()).or_default();
            let m = v.mailbox.get_or_insert_with(Mailbox::default);
            m.poll_gen += 1;
            let ticket = m.poll_gen;
            if m.waiting > 0 {
                v.notify.notify_waiters();
            }
            if !m.frames.is_empty() {
                m.last_poll = Some(Instant::now());
                return Polled::Frames(m.frames.drain(..).collect());
            }
            m.waiting += 1;
            (Arc::clone(&v.notify), ticket)
        };
        // Counted as waiting until this returns or is dropped (the client went away).
        let _waiting = Waiting { hub: self, visitor };
        self.connected.notify_waiters();
        let end = tokio::time::Instant::now() + limit;
        loop {
            let woke = notify.notified();
            tokio::pin!(woke);
            woke.as_mut().enable();
            match self.take(visitor, ticket) {
                Some(Polled::Frames(f)) if f.is_empty() => {}
                Some(p) => return p,
                None => {}
            }
            if tokio::time::timeout_at(end, woke).await.is_err() {
                return self
                    .take(visitor, ticket)
                    .unwrap_or(Polled::Frames(Vec::new()));
            }
        }
    }

    /// The frames waiting for the poll `ticket` of `visitor` (empty: none yet), or Superseded.
    fn take(&self, visitor: &str, ticket: u64) -> Option<Polled> {
        let mut map = self.lock();
        let m = map.get_mut(visitor)?.mailbox.as_mut()?;
        if m.poll_gen != ticket {
            return Some(Polled::Superseded);
        }
        Some(Polled::Frames(m.frames.drain(..).collect()))
    }

    /// Note a long-poll visitor as seen (hello, send), so replies wait in their mailbox.
    pub fn touch_poller(&self, visitor: &str) {
        let mut map = self.lock();
        let v = map.entry(visitor.to_string()).or_default();
        v.mailbox.get_or_insert_with(Mailbox::default).last_poll = Some(Instant::now());
        drop(map);
        self.connected.notify_waiters();
    }

    /// Forget long-poll visitors gone for good (called now and then).
    pub fn sweep(&self) {
        self.lock().retain(|_, v| !v.idle());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sockets_and_polls_get_pushes() {
        let hub = Arc::new(Hub::default());
        assert!(!hub.push("a", &Frame::from("x"), None));
        let slot = hub.slot(10).unwrap();
        assert_eq!(hub.connections(), 1);
        let (g, mut rx) = hub.add_socket("a");
        assert!(hub.is_connected("a"));
        assert!(hub.push("a", &Frame::from("x"), None));
        assert_eq!(&*rx.recv().await.unwrap(), "x");
        assert!(
            !hub.push("a", &Frame::from("y"), Some(g.id())),
            "only the sender's socket"
        );
        drop(g);
        drop(slot);
        assert!(!hub.is_connected("a"));
        assert_eq!(hub.connections(), 0);

        let hub2 = Arc::clone(&hub);
        let poll = tokio::spawn(async move { hub2.poll("b", Duration::from_secs(5)).await });
        assert!(hub.wait_connected("b", Duration::from_secs(2)).await);
        assert!(hub.push("b", &Frame::from("z"), None));
        let got = poll.await.unwrap();
        assert_eq!(got, Polled::Frames(vec![Frame::from("z")]));
        // Between polls, frames wait in the mailbox.
        assert!(hub.push("b", &Frame::from("w"), None));
        assert_eq!(
            hub.poll("b", Duration::from_millis(10)).await,
            Polled::Frames(vec![Frame::from("w")])
        );
    }

    #[test]
    fn slots_are_bounded_per_address_too() {
        let hub = Arc::new(Hub::default());
        let a: IpAddr = [203, 0, 113, 1].into();
        let b: IpAddr = [203, 0, 113, 2].into();
        let a1 = hub.slot_for(a, 3, 2).unwrap();
        let _a2 = hub.slot_for(a, 3, 2).unwrap();
        assert_eq!(hub.slot_for(a, 3, 2).err(), Some(Busy::Address));
        let _b1 = hub.slot_for(b, 3, 2).unwrap();
        assert_eq!(hub.slot_for(b, 3, 2).err(), Some(Busy::Full));
        drop(a1);
        let _a3 = hub.slot_for(a, 3, 2).unwrap();
        assert_eq!(hub.connections(), 3);
    }

    #[test]
    fn slots_are_bounded() {
        let hub = Arc::new(Hub::default());
        let a = hub.slot(2).unwrap();
        let _b = hub.slot(2).unwrap();
        assert!(hub.slot(2).is_none());
        drop(a);
        assert!(hub.slot(2).is_some());
    }
}
