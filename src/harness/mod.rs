//! The test rig that wires both halves in one thread: a synchronous harness around the real
//! [`App`] (a client: key scripts go through the real keymap and update) whose requests are
//! answered inline by the server's own handler on a real store, with the screen drawn on a
//! ratatui `TestBackend`. It stands beside `tui/` and `server/`, not in either: the TUI only
//! ever sees the api; only this rig (and the TUI scenario tests in `tests.rs`) holds both.
//! Used by those tests, the integration tests and the key-to-frame benchmarks.

use crate::config::Config;
use crate::model::Millis;
use crate::store::Store;
use crate::tui::app::{App, Effect, Event};
use crate::tui::keymap::{Keymap, parse_key_script};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

pub struct Harness {
    pub app: App,
    pub store: Store,
    pub term: Terminal<TestBackend>,
    /// Who the server takes the app's user for (an admin named `agent`).
    pub who: crate::server::Identity,
    /// Effects other than store requests (Quit, RunEditor), in order.
    pub other_effects: Vec<Effect>,
    /// The server's approved WhatsApp templates (its config's `[[whatsapp.templates]]`).
    pub templates: Vec<crate::template::Template>,
    /// The server's canned replies (its `templates/` folder).
    pub canned: crate::canned::Library,
    /// The server's `suggest_command`.
    pub suggest_command: Option<String>,
    /// The workspace's `[[campaigns]]` (answered as the server's session does).
    pub campaigns: crate::campaign::CampaignConfig,
}

impl Harness {
    /// An app of `width` x `height` on `store`, as agent `agent`, with the clock at `now`.
    pub fn new(
        store: Store,
        agent: &str,
        width: u16,
        height: u16,
        now: Millis,
    ) -> anyhow::Result<Harness> {
        crate::tui::time::set_fixed_offset(0);
        let mut config = Config::with_data_dir(std::env::temp_dir());
        config.agent = agent.to_string();
        // The rig's scenarios are written against the newest-first order; a test of the
        // triage order (the shipped default) sets `app.queue_order` and reloads.
        config.queue_order = crate::store::QueueOrder::Activity;
        let keymap = Keymap::default_shipped()?;
        let app = App::new(&config, keymap, (width, height), now);
        let term = Terminal::new(TestBackend::new(width, height))?;
        let who = crate::server::Identity::local_admin(agent);
        let mut h = Harness {
            who,
            app,
            store,
            term,
            other_effects: Vec::new(),
            templates: Vec::new(),
            canned: Default::default(),
            suggest_command: None,
            campaigns: Default::default(),
        };
        let fx = h.app.start();
        h.run(fx);
        Ok(h)
    }

    /// Carry out effects until none are left (store requests answered inline).
    pub fn run(&mut self, effects: Vec<Effect>) {
        let mut queue = effects;
        while !queue.is_empty() {
            let mut next = Vec::new();
            for fx in queue {
                match fx {
                    // Presence is the server's session state, not the store's: the rig
                    // answers `who` from the presence the app was pushed (`Event::Presence`).
                    Effect::Request(crate::api::Request::Who) => {
                        let online = self.app.presence.clone();
                        next.extend(
                            self.app
                                .handle(Event::Data(crate::api::Response::Online(online))),
                        );
                    }
                    Effect::Request(crate::api::Request::Campaign(op)) => {
                        let resp = crate::server::campaign::answer_on(
                            &mut self.store,
                            &self.campaigns,
                            &self.who,
                            op,
                            self.app.now,
                        );
                        next.extend(self.app.handle(Event::Data(resp)));
                    }
                    Effect::Request(mut r) => {
                        crate::server::handler::resolve_template(&self.templates, &mut r);
                        crate::server::handler::resolve_canned(
                            &self.canned,
                            self.suggest_command.as_deref(),
                            5_000,
                            &mut r,
                        );
                        let resp = crate::server::handler::handle(&mut self.store, &self.who, r);
                        next.extend(self.app.handle(Event::Data(resp)));
                    }
                    other => self.other_effects.push(other),
                }
            }
            queue = next;
        }
    }

    /// Feed one event and carry out its effects.
    pub fn event(&mut self, ev: Event) {
        let fx = self.app.handle(ev);
        self.run(fx);
    }

    /// Type a key script such as `"jj:assign bob<CR>"`.
    pub fn keys(&mut self, script: &str) -> anyhow::Result<()> {
        for key in parse_key_script(script)? {
            self.event(Event::Key(key));
        }
        Ok(())
    }

    /// Deliver whatever the store's events table holds after `after` as a change-feed update.
    pub fn follow_feed(
        &mut self,
        after: crate::model::EventId,
    ) -> anyhow::Result<crate::model::EventId> {
        let events = self.store.events_since(after, 10_000)?;
        let last = events.last().map(|e| e.id).unwrap_or(after);
        self.event(Event::Feed(events));
        Ok(last)
    }

    /// Derive notifications from the events the store holds (as the server does after each
    /// change) for `agents`, and deliver this app's agent's as the server's push.
    pub fn notify(&mut self, agents: &[crate::store::NotifyAgent]) -> anyhow::Result<usize> {
        let batches = crate::server::notify::derive(&mut self.store, agents)?;
        let mut n = 0;
        for b in batches {
            if b.agent == self.app.agent {
                n += b.rows.len();
                self.event(Event::Notification {
                    rows: b.rows,
                    unread: b.unread,
                });
            }
        }
        Ok(n)
    }

    /// Draw a frame and return the screen as text, one line per row (trailing spaces trimmed).
    pub fn screen(&mut self) -> anyhow::Result<String> {
        let app = &self.app;
        self.term.draw(|f| crate::tui::ui::draw(f, app))?;
        let buf = self.term.backend().buffer();
        let mut out = String::new();
        for y in 0..buf.area.height {
            let mut line = String::new();
            let mut skip = 0;
            for x in 0..buf.area.width {
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                let sym = buf[(x, y)].symbol();
                line.push_str(sym);
                skip = unicode_width::UnicodeWidthStr::width(sym).saturating_sub(1);
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        Ok(out)
    }

    /// Draw a frame without reading it back (benchmarks).
    pub fn draw(&mut self) -> anyhow::Result<()> {
        let app = &self.app;
        self.term.draw(|f| crate::tui::ui::draw(f, app))?;
        Ok(())
    }
}

/// A workspace of `n` open conversations, each a different customer at `@bigcorp.com` with one
/// email asking about a refund ("where is my refund for order I"), arriving over the day
/// before `now`; written in one transaction. The `:g//` benchmark's data (`:g/refund/tag
/// bulk` touches all `n`): see `bench_global_over_10000_conversations` in bulk_tests.rs.
pub fn bulk_workspace(n: usize, now: Millis) -> anyhow::Result<Store> {
    use crate::identity::Claim;
    use crate::ingest::{Inbound, Settings, ingest_in};
    use crate::model::{Channel, Direction, IdentityKind};
    let mut store = Store::open_in_memory()?;
    let settings = Settings::default();
    let tx = store.write()?;
    for i in 0..n {
        let at: Millis = now - 86_400_000 + i as Millis;
        let m = Inbound {
            channel: Channel::Email,
            account: String::new(),
            external_id: format!("<bench-{i}@x>"),
            direction: Direction::In,
            customer: Claim::new(IdentityKind::Email, format!("c{i}@bigcorp.com")),
            linked: Vec::new(),
            customer_name: Some(format!("Customer {i}")),
            author: None,
            subject: Some("Refund".into()),
            body: format!("where is my refund for order {i}"),
            sent_at: at,
            meta: None,
            cursor: None,
        };
        ingest_in(&tx, &m, &settings, at)?;
    }
    tx.commit()?;
    Ok(store)
}

#[cfg(test)]
mod audit_tests;
#[cfg(test)]
mod bulk_tests;
#[cfg(test)]
mod campaign_tests;
#[cfg(test)]
mod canned_tests;
#[cfg(test)]
mod channel_tests;
#[cfg(test)]
mod consent_tests;
#[cfg(test)]
mod contacts_tests;
#[cfg(test)]
mod fields_tests;
#[cfg(test)]
mod reports_tests;
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod sla_tests;
#[cfg(test)]
mod tasks_tests;
#[cfg(test)]
mod team_tests;
#[cfg(test)]
mod tests;
