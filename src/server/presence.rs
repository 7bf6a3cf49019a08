//! Presence: who is connected, which conversation each is looking at, who is typing a reply or a
//! note. Kept in memory by the server (it is about now; a restart starts empty and every client
//! reports again within [`REFRESH`]). A session's entry goes when its connection closes (a
//! killed client's socket closes with it) or, for a connection that hangs without closing (an
//! SSH link that died silently), when it has not reported for [`EXPIRE`].
//!
//! Every change signals a watch channel; each session that reports presence sends its agent
//! the whole list, filtered to what that agent may see (a conversation outside
//! their teams is shown as "online" without the conversation).

use super::Identity;
use crate::api::{Activity, PresenceEntry};
use crate::model::{ConversationId, Millis};
use crate::store::Scope;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How often a client reports while nothing changes (the TUI's heartbeat).
pub const REFRESH: Duration = Duration::from_secs(5);
/// An entry not refreshed for this long is gone (a connection that hangs without closing).
pub const EXPIRE: Duration = Duration::from_secs(15);

struct Slot {
    agent: String,
    display: String,
    conversation: Option<ConversationId>,
    /// The conversation's team and assignee when reported: who may see which conversation.
    team: Option<String>,
    assignee: Option<String>,
    activity: Activity,
    since: Millis,
    refreshed: Instant,
}

/// The server's presence table.
pub(crate) struct Presence {
    slots: Mutex<HashMap<u64, Slot>>,
    /// Signalled on every change (the value is nothing: a watch coalesces signals, so a
    /// session that was busy sends the list once for many changes).
    changed: watch::Sender<()>,
    next_session: AtomicU64,
}

/// Where a conversation lives, for deciding who may see that someone looks at it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Place {
    pub team: Option<String>,
    pub assignee: Option<String>,
}

impl Presence {
    pub fn new() -> Presence {
        Presence {
            slots: Mutex::new(HashMap::new()),
            changed: watch::channel(()).0,
            next_session: AtomicU64::new(1),
        }
    }

    /// A number for a new session.
    pub fn session_id(&self) -> u64 {
        self.next_session.fetch_add(1, Ordering::Relaxed)
    }

    /// Follow changes.
    pub fn subscribe(&self) -> watch::Receiver<()> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        self.changed.send_replace(());
    }

    /// Session `session` of `who` reports what it does. Others hear of it only when something
    /// they would see changed (a heartbeat only refreshes).
    pub fn report(
        &self,
        session: u64,
        who: &Identity,
        conversation: Option<ConversationId>,
        place: Place,
        activity: Activity,
        now: Millis,
    ) {
        let changed = {
            let Ok(mut slots) = self.slots.lock() else {
                return;
            };
            match slots.get_mut(&session) {
                Some(s) if s.conversation == conversation && s.activity == activity => {
                    s.refreshed = Instant::now();
                    let moved = s.team != place.team || s.assignee != place.assignee;
                    s.team = place.team;
                    s.assignee = place.assignee;
                    moved
                }
                _ => {
                    slots.insert(
                        session,
                        Slot {
                            agent: who.agent.clone(),
                            display: who.display.clone(),
                            conversation,
                            team: place.team,
                            assignee: place.assignee,
                            activity,
                            since: now,
                            refreshed: Instant::now(),
                        },
                    );
                    true
                }
            }
        };
        if changed {
            self.bump();
        }
    }

    /// The agents connected now (each once), for the rules' assignment among those online.
    pub fn online_agents(&self) -> Vec<String> {
        let Ok(slots) = self.slots.lock() else {
            return Vec::new();
        };
        let mut out: Vec<String> = slots.values().map(|s| s.agent.clone()).collect();
        out.sort();
        out.dedup();
        out
    }

    /// The session ended.
    pub fn leave(&self, session: u64) {
        let removed = self
            .slots
            .lock()
            .ok()
            .and_then(|mut s| s.remove(&session))
            .is_some();
        if removed {
            self.bump();
        }
    }

    /// Drop the entries not refreshed for `max_age`; returns how many.
    pub fn expire(&self, max_age: Duration) -> usize {
        let n = match self.slots.lock() {
            Ok(mut slots) => {
                let before = slots.len();
                slots.retain(|_, s| s.refreshed.elapsed() < max_age);
                before - slots.len()
            }
            Err(_) => 0,
        };
        if n > 0 {
            self.bump();
        }
        n
    }

    /// Everyone online as `scope` may see them: a conversation outside the scope is left out
    /// (the agent still shows as online). Oldest activity first, then by session.
    pub fn view(&self, scope: &Scope) -> Vec<PresenceEntry> {
        let Ok(slots) = self.slots.lock() else {
            return Vec::new();
        };
        let mut out: Vec<PresenceEntry> = slots
            .iter()
            .map(|(session, s)| {
                let visible = s.conversation.is_some()
                    && scope.allows(s.team.as_deref(), s.assignee.as_deref());
                PresenceEntry {
                    agent: s.agent.clone(),
                    display: s.display.clone(),
                    conversation: if visible { s.conversation } else { None },
                    activity: if visible {
                        s.activity
                    } else {
                        Activity::Viewing
                    },
                    since: s.since,
                    session: *session,
                }
            })
            .collect();
        out.sort_by_key(|e| (e.since, e.session));
        out
    }
}

/// `braid demo` only (the demo workspace's `simulate_colleagues`): its simulated agents are
/// online, each looking at one of the open conversations for a while and now and then typing a
/// reply or a note, so presence shows on a single user's screen. Runs until the server stops.
pub(crate) async fn simulate_colleagues(shared: std::sync::Arc<super::Shared>) {
    use crate::store::{QueueAnchor, QueueFilter};
    let colleagues: Vec<Identity> = shared
        .config
        .workspace
        .agents
        .iter()
        .map(|a| Identity {
            uid: 0,
            user: a.user.clone(),
            agent: a.name.clone(),
            display: a.display.clone().unwrap_or_else(|| a.name.clone()),
            role: a.role,
            teams: a.teams.clone(),
        })
        .collect();
    let mut every = tokio::time::interval(Duration::from_secs(4));
    let mut step: usize = 0;
    loop {
        every.tick().await;
        let sh = std::sync::Arc::clone(&shared);
        let rows = tokio::task::spawn_blocking(move || {
            let mut store = sh.take_store().ok()?;
            let rows = store.set_scope(Scope::all("demo")).ok().and_then(|()| {
                store
                    .queue_page(
                        &QueueFilter::Status(crate::model::Status::Open),
                        QueueAnchor::Top,
                        12,
                    )
                    .ok()
            });
            sh.give_store(store);
            rows
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_default();
        if rows.is_empty() {
            continue;
        }
        for (i, who) in colleagues.iter().enumerate() {
            // Each lingers about 12 s on a conversation; they rarely meet.
            let row = &rows[(step / 3 + i * 3) % rows.len()];
            let activity = match (step + i) % 6 {
                0 | 1 => Activity::Reply,
                2 if i % 2 == 1 => Activity::Note,
                _ => Activity::Viewing,
            };
            shared.presence.report(
                u64::MAX - i as u64,
                who,
                Some(row.id),
                Place {
                    team: row.team.clone(),
                    assignee: row.assignee.clone(),
                },
                activity,
                crate::model::now_millis(),
            );
        }
        step += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::api::Role;

    fn agent(name: &str, role: Role, teams: &[&str]) -> Identity {
        Identity {
            uid: 1000,
            user: name.into(),
            agent: name.into(),
            display: name.to_uppercase(),
            role,
            teams: teams.iter().map(|t| t.to_string()).collect(),
        }
    }

    fn place(team: Option<&str>) -> Place {
        Place {
            team: team.map(str::to_string),
            assignee: None,
        }
    }

    #[test]
    fn a_report_is_seen_and_a_heartbeat_changes_nothing() {
        let p = Presence::new();
        let mut rx = p.subscribe();
        let bob = agent("bob", Role::Agent, &["support"]);
        let s = p.session_id();
        p.report(
            s,
            &bob,
            Some(ConversationId(7)),
            place(None),
            Activity::Reply,
            10,
        );
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        let all = Scope::all("ann");
        let v = p.view(&all);
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].agent, "bob");
        assert_eq!(v[0].display, "BOB");
        assert_eq!(v[0].conversation, Some(ConversationId(7)));
        assert_eq!(v[0].activity, Activity::Reply);
        assert_eq!(v[0].since, 10);
        // The same again (a heartbeat): no push, `since` kept.
        p.report(
            s,
            &bob,
            Some(ConversationId(7)),
            place(None),
            Activity::Reply,
            99,
        );
        assert!(!rx.has_changed().unwrap());
        assert_eq!(p.view(&all)[0].since, 10);
        // Something else: pushed, a new `since`.
        p.report(
            s,
            &bob,
            Some(ConversationId(7)),
            place(None),
            Activity::Viewing,
            120,
        );
        assert!(rx.has_changed().unwrap());
        assert_eq!(p.view(&all)[0].since, 120);
    }

    /// A heartbeat from the same conversation is news when the conversation moved team or
    /// changed hands (who may see where the agent is changed), either one alone.
    #[test]
    fn a_conversation_that_moved_team_or_assignee_is_pushed_again() {
        let p = Presence::new();
        let mut rx = p.subscribe();
        let bob = agent("bob", Role::Agent, &["support"]);
        let s = p.session_id();
        let at = |team: &str, assignee: Option<&str>| Place {
            team: Some(team.into()),
            assignee: assignee.map(str::to_string),
        };
        let c = Some(ConversationId(4));
        p.report(s, &bob, c, at("support", None), Activity::Viewing, 1);
        rx.borrow_and_update();
        p.report(s, &bob, c, at("sales", None), Activity::Viewing, 2);
        assert!(rx.has_changed().unwrap(), "the team alone");
        rx.borrow_and_update();
        p.report(s, &bob, c, at("sales", Some("carol")), Activity::Viewing, 3);
        assert!(rx.has_changed().unwrap(), "the assignee alone");
        rx.borrow_and_update();
        p.report(s, &bob, c, at("sales", Some("carol")), Activity::Viewing, 4);
        assert!(!rx.has_changed().unwrap(), "nothing");
        // And what others see follows: carol now sees where bob is.
        let carol = Scope::teams("carol", ["billing"]);
        assert_eq!(p.view(&carol)[0].conversation, c);
    }

    #[test]
    fn leaving_and_expiry_remove_the_entry() {
        let p = Presence::new();
        let bob = agent("bob", Role::Agent, &[]);
        let a = p.session_id();
        let b = p.session_id();
        assert_ne!(a, b);
        p.report(a, &bob, None, place(None), Activity::Viewing, 1);
        p.report(b, &bob, None, place(None), Activity::Viewing, 2);
        assert_eq!(
            p.view(&Scope::all("x")).len(),
            2,
            "two terminals, two entries"
        );
        let mut rx = p.subscribe();
        p.leave(a);
        assert!(rx.has_changed().unwrap());
        rx.borrow_and_update();
        assert_eq!(p.view(&Scope::all("x")).len(), 1);
        p.leave(a);
        assert!(!rx.has_changed().unwrap(), "leaving twice is no change");
        assert_eq!(p.expire(Duration::from_secs(60)), 0);
        assert!(!rx.has_changed().unwrap());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(p.expire(Duration::from_millis(1)), 1);
        assert!(rx.has_changed().unwrap());
        assert!(p.view(&Scope::all("x")).is_empty());
    }

    #[test]
    fn a_conversation_outside_the_scope_is_not_named() {
        let p = Presence::new();
        let carol = agent("carol", Role::Agent, &["sales"]);
        let s = p.session_id();
        p.report(
            s,
            &carol,
            Some(ConversationId(3)),
            place(Some("sales")),
            Activity::Note,
            5,
        );
        let bob = Scope::teams("bob", ["support"]);
        let v = p.view(&bob);
        assert_eq!(v.len(), 1, "carol is online for bob");
        assert_eq!(v[0].conversation, None, "but not where");
        assert_eq!(v[0].activity, Activity::Viewing, "nor what she types");
        let dana = Scope::teams("dana", ["support", "sales"]);
        assert_eq!(p.view(&dana)[0].conversation, Some(ConversationId(3)));
        assert_eq!(p.view(&dana)[0].activity, Activity::Note);
        // Assigned to bob: bob sees it, as the store would show him the conversation.
        p.report(
            s,
            &carol,
            Some(ConversationId(3)),
            Place {
                team: Some("sales".into()),
                assignee: Some("bob".into()),
            },
            Activity::Note,
            5,
        );
        assert_eq!(p.view(&bob)[0].conversation, Some(ConversationId(3)));
    }
}
