//! `braid webhooks`: the workspace's `[[webhooks]]` endpoints (admins only; the server holds
//! the secrets and the queue).
//!
//! ```text
//! braid webhooks status          per endpoint: delivered, pending, failing, failed, last
//!                                success, last error, next retry
//! braid webhooks test crm        a signed `ping` now; prints the HTTP status
//! braid webhooks retry crm       the failed deliveries of `crm` are sent again
//! ```

use super::client::{Client, unexpected};
use super::{Globals, write_json};
use crate::api::{Request, Response};
use crate::sanitize::for_terminal_line as clean;
use std::io::Write;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Sub,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Sub {
    /// Each endpoint's queue: delivered, pending, failing, failed, last success, last error,
    /// next retry
    Status {
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Send the endpoint a signed `ping` event now and print the HTTP status (exit 1 if not
    /// 2xx)
    Test {
        /// The endpoint's name in [[webhooks]]
        name: String,
        /// Print JSON instead of text
        #[arg(long)]
        json: bool,
    },
    /// Send the endpoint's failed deliveries again (after fixing the receiver)
    Retry {
        /// The endpoint's name in [[webhooks]]
        name: String,
    },
}

pub fn run(globals: &Globals, args: &Args, out: &mut dyn Write) -> anyhow::Result<()> {
    let (client, _config) = Client::open(globals, "webhooks")?;
    match &args.command {
        Sub::Status { json } => {
            let list = match client.call(Request::WebhooksStatus)? {
                Response::Webhooks(l) => l,
                other => return Err(unexpected("webhooks_status", &other)),
            };
            drop(client);
            if *json {
                return write_json(out, &list);
            }
            write_status(&list, crate::model::now_millis(), out)
        }
        Sub::Test { name, json } => {
            let t = match client.call(Request::WebhookTest { name: name.clone() })? {
                Response::WebhookTested(t) => t,
                other => return Err(unexpected("webhook_test", &other)),
            };
            drop(client);
            if *json {
                write_json(out, &t)?;
            } else {
                let status = match t.status {
                    Some(s) => format!("HTTP {s}"),
                    None => "no answer".into(),
                };
                writeln!(
                    out,
                    "{} {} -> {status} in {} ms (delivery {})",
                    clean(&t.name),
                    clean(&t.url),
                    t.ms,
                    clean(&t.delivery)
                )?;
                if let Some(e) = &t.error {
                    writeln!(out, "  {}", clean(e))?;
                }
            }
            if !t.ok {
                anyhow::bail!(
                    "the ping to '{}' was not accepted; fix the receiver (or its url/secret in \
                     [[webhooks]]) and test again",
                    clean(&t.name)
                );
            }
            Ok(())
        }
        Sub::Retry { name } => {
            let m = match client.call(Request::WebhookRetry { name: name.clone() })? {
                Response::Done(m) => m,
                other => return Err(unexpected("webhook_retry", &other)),
            };
            writeln!(out, "{}", clean(&m))?;
            Ok(())
        }
    }
}

fn ago(now: i64, at: i64) -> String {
    let d = now - at;
    if d >= 0 {
        format!("{} ago", crate::units::duration_label(d.max(1000)))
    } else {
        format!("in {}", crate::units::duration_label((-d).max(1000)))
    }
}

/// The text form of `braid webhooks status`.
pub fn write_status(
    list: &[crate::api::WebhookStatus],
    now: i64,
    out: &mut dyn Write,
) -> anyhow::Result<()> {
    if list.is_empty() {
        writeln!(
            out,
            "no webhooks: add [[webhooks]] (name, url, events, secret_command) to the server's \
             config"
        )?;
        return Ok(());
    }
    for w in list {
        let c = &w.counts;
        writeln!(
            out,
            "{}  {}  events: {}",
            clean(&w.name),
            clean(&w.url),
            clean(&w.events.join(", "))
        )?;
        if let Some(p) = &w.problem {
            writeln!(out, "  NOT SENDING: {}", clean(p))?;
        }
        writeln!(
            out,
            "  delivered {}  pending {}  failing {}  failed {}",
            c.delivered, c.pending, c.failing, c.failed
        )?;
        writeln!(
            out,
            "  last success: {}",
            c.last_success
                .map(|t| format!("{} ({})", super::fmt::rfc3339(t), ago(now, t)))
                .unwrap_or_else(|| "never".into())
        )?;
        if let Some(e) = &c.last_error {
            writeln!(
                out,
                "  last error: {}{}",
                c.last_error_at
                    .map(|t| format!("{} ", ago(now, t)))
                    .unwrap_or_default(),
                clean(e)
            )?;
        }
        if let Some(t) = c.next_retry {
            writeln!(
                out,
                "  next retry: {} ({})",
                super::fmt::rfc3339(t),
                ago(now, t)
            )?;
        }
        if c.failed > 0 {
            writeln!(
                out,
                "  `braid webhooks retry {}` sends the failed ones again",
                clean(&w.name)
            )?;
        }
    }
    Ok(())
}
