//! `Op::ImportAnalytics` and `Op::RankIdeas`: measured outcomes into objects and memory, and
//! the offline researcher's ranking, as the operator.

use crate::core::audit::Actor;
use crate::core::error::Result;
use crate::core::{outcomes, research};
use crate::protocol::{AnalyticsImported, Answer};

use super::CoreContext;

pub fn import(ctx: &mut CoreContext, csv: &str, source: &str) -> Result<Answer> {
    let kinds = ctx.kinds()?;
    let now = ctx.clock.now_ms();
    let import = outcomes::import_csv(&mut ctx.store, &kinds, &Actor::Operator, now, csv, source)?;
    let memory = ctx.memory()?;
    let reconciled =
        outcomes::reconcile(&mut ctx.store, &kinds, Some(&memory), &Actor::Operator, now)?;
    ctx.notify("objects", "analytics.imported");
    Ok(Answer::AnalyticsImported(Box::new(AnalyticsImported {
        import,
        reconciled,
    })))
}

pub fn rank(ctx: &mut CoreContext, goals: &[String]) -> Result<Answer> {
    let kinds = ctx.kinds()?;
    let now = ctx.clock.now_ms();
    let ranked = research::rank_ideas(&mut ctx.store, &kinds, &Actor::Operator, now, goals)?;
    ctx.notify("objects", "ideas.ranked");
    Ok(Answer::Ranked(ranked))
}
