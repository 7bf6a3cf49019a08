//! Campaigns on the server: a task walks the due enrolments every [`TICK`] (the store's
//! [`crate::store::Store::campaign_tick`]: replies leave, business hours defer, consent is
//! checked, each channel's pace gives the send time, `queue_reply_tx` queues), off the async
//! threads on a pooled store; and the `campaign` requests (dry run and status: supervisor;
//! start and stop: admin).

use super::Shared;
use crate::api::{CampaignAnswer, CampaignOp, Request, Response};
use crate::campaign::{Campaign, Step};
use crate::model::{Channel, now_millis};
use crate::store::campaign::StepText;
use crate::store::{Scope, Store};
use std::sync::Arc;
use std::time::Duration;

/// How often due steps are looked for (and paced sends queued, up to
/// [`crate::store::campaign::HORIZON_MS`] ahead).
pub(crate) const TICK: Duration = Duration::from_secs(1);

/// A step's text for a contact on a channel: on WhatsApp the step's approved template (its
/// one parameter, if it takes one, the contact's first name), elsewhere the canned reply it
/// names (rendered for the contact; unfilled variables refuse the send) or its text.
pub fn render_step(
    library: &crate::canned::Library,
    templates: &[crate::template::Template],
    c: &Campaign,
    step: &Step,
    channel: Channel,
    vars: &crate::canned::Vars,
) -> Result<StepText, String> {
    if channel == Channel::WhatsApp {
        let name = step.whatsapp_template.as_deref().ok_or_else(|| {
            format!(
                "campaign '{}' has no whatsapp_template for this step",
                c.name
            )
        })?;
        let t = templates.iter().find(|t| t.name == name).ok_or_else(|| {
            format!("no approved WhatsApp template '{name}': add it to [[whatsapp.templates]]")
        })?;
        let first = vars
            .get("contact.first_name")
            .unwrap_or("there")
            .to_string();
        let params: Vec<String> = (0..t.params()).map(|_| first.clone()).collect();
        let body = t.render(&params)?;
        return Ok(StepText {
            body,
            meta: Some(t.meta(&params).to_string()),
            templated: true,
        });
    }
    let body = match (&step.template, &step.text) {
        (Some(name), _) => {
            let t = library.get(name).ok_or_else(|| {
                format!(
                    "no canned reply '{name}' in the workspace's templates/ (known: {})",
                    library.names().join(", ")
                )
            })?;
            let r = crate::canned::render(t, Some(channel), vars);
            if !r.missing.is_empty() {
                return Err(format!(
                    "canned reply '{name}' leaves {} unfilled",
                    r.missing.join(", ")
                ));
            }
            r.text
        }
        (None, Some(text)) => {
            let r = crate::canned::render_text(text, vars);
            if !r.missing.is_empty() {
                return Err(format!("the step leaves {} unfilled", r.missing.join(", ")));
            }
            r.text
        }
        (None, None) => return Err("the step has no text".into()),
    };
    Ok(StepText {
        body,
        meta: None,
        templated: false,
    })
}

/// One tick on a store (the task's body; tests call it with their own clock).
pub fn tick(
    store: &mut Store,
    config: &crate::config::Config,
    library: &crate::canned::Library,
    now: crate::model::Millis,
) -> anyhow::Result<crate::store::campaign::TickReport> {
    let templates = config.templates();
    let render = |c: &Campaign, s: &Step, ch: Channel, v: &crate::canned::Vars| {
        render_step(library, &templates, c, s, ch, v)
    };
    Ok(store.campaign_tick(
        &config.workspace.campaigns,
        &config.workspace.sla,
        &render,
        now,
    )?)
}

/// The task: every [`TICK`], the due steps.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut every = tokio::time::interval(TICK);
    loop {
        every.tick().await;
        if shared.config.workspace.campaigns.campaigns.is_empty() {
            continue;
        }
        let sh = Arc::clone(&shared);
        let done = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let mut store = sh.take_store()?;
            let r = (|| {
                store.set_scope(Scope::all("campaign"))?;
                tick(&mut store, &sh.config, &sh.canned.current().0, now_millis())
            })();
            sh.give_store(store);
            r
        })
        .await;
        match done {
            Ok(Ok(r)) => {
                if r.sent + r.left + r.failed + r.excluded > 0 {
                    tracing::debug!(
                        sent = r.sent,
                        left = r.left,
                        failed = r.failed,
                        excluded = r.excluded,
                        deferred = r.deferred,
                        "campaigns"
                    );
                }
            }
            Ok(Err(e)) => tracing::warn!("campaigns: {e}"),
            Err(e) => tracing::warn!("campaigns: {e}"),
        }
    }
}

/// Answer a campaign request on a store (roles checked first).
pub fn answer_on(
    store: &mut Store,
    cfg: &crate::campaign::CampaignConfig,
    who: &super::Identity,
    op: CampaignOp,
    now: crate::model::Millis,
) -> Response {
    let req = Request::Campaign(op.clone());
    if let Err(reason) = super::authz::check(who, &req) {
        return super::handler::refuse(store, who, &req, reason);
    }
    // Campaigns reach contacts across every team: the store reads them whole (the role
    // check above is the wall).
    if let Err(e) = store.set_scope(Scope::all(&who.agent)) {
        return Response::Error(format!("the server cannot set up your view: {e}"));
    }
    let r = (|| -> Result<CampaignAnswer, String> {
        Ok(match op {
            CampaignOp::DryRun { name } => {
                let c = cfg.require(&name)?;
                CampaignAnswer::DryRun(store.campaign_dry_run(c, now).map_err(|e| e.to_string())?)
            }
            CampaignOp::Start { name, confirmed } => {
                let c = cfg.require(&name)?;
                if !confirmed {
                    return Err(format!(
                        "look before sending: braid campaign dry-run {name} shows who it takes; \
                         then braid campaign start {name} --yes"
                    ));
                }
                CampaignAnswer::Started(
                    store
                        .campaign_start(c, &who.agent, now)
                        .map_err(|e| e.to_string())?,
                )
            }
            CampaignOp::Stop { name } => {
                let active = store
                    .campaign_stop(&name, &who.agent, now)
                    .map_err(|e| e.to_string())?;
                CampaignAnswer::Stopped { name, active }
            }
            CampaignOp::Status { name } => {
                let list: Vec<&Campaign> = match &name {
                    Some(n) => vec![cfg.require(n)?],
                    None => cfg.campaigns.iter().collect(),
                };
                let mut out = Vec::new();
                for c in list {
                    out.push(store.campaign_status(c).map_err(|e| e.to_string())?);
                }
                CampaignAnswer::Status { campaigns: out }
            }
        })
    })();
    match r {
        Ok(a) => Response::Campaign(Box::new(a)),
        Err(e) => Response::Error(e),
    }
}

/// Answer [`Request::Campaign`] off the async threads.
pub(crate) async fn answer(
    shared: &Arc<Shared>,
    who: &Arc<super::Identity>,
    op: CampaignOp,
) -> Response {
    let sh = Arc::clone(shared);
    let w = Arc::clone(who);
    let done = tokio::task::spawn_blocking(move || {
        let mut store = match sh.take_store() {
            Ok(s) => s,
            Err(e) => return Response::Error(format!("the server cannot open its store: {e}")),
        };
        let r = answer_on(
            &mut store,
            &sh.config.workspace.campaigns,
            &w,
            op,
            now_millis(),
        );
        sh.give_store(store);
        r
    })
    .await;
    done.unwrap_or_else(|e| Response::Error(format!("campaign request failed: {e}")))
}
