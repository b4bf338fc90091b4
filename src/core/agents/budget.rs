//! Cost estimates and budget checks. A call that would take a run or a role's day over its
//! budget is not made: the run stops and asks the operator (an escalation with the reason).

use serde::Serialize;

use super::template::Budget;
use crate::core::llm::{Price, Usage};

/// What a run is expected to cost, and on what basis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Estimate {
    pub tokens: u64,
    pub usd: f64,
    /// `history of N runs` or `prompt size`.
    pub basis: String,
}

/// Estimate of one call: the prompt in full plus the whole output allowance.
#[must_use]
pub fn call_estimate(price: Price, prompt_tokens: u64, max_output: u32) -> (u64, f64) {
    let usage = Usage {
        input: prompt_tokens,
        output: u64::from(max_output),
    };
    (usage.input + usage.output, price.cost(usage))
}

/// Estimate of a whole run: the role's recent average when there is one, else one call.
#[must_use]
pub fn run_estimate(
    history: Option<(u64, f64, u64)>,
    price: Price,
    prompt_tokens: u64,
    max_output: u32,
) -> Estimate {
    if let Some((tokens, usd, n)) = history {
        Estimate {
            tokens,
            usd,
            basis: format!("average of the last {n} runs of this role"),
        }
    } else {
        let (tokens, usd) = call_estimate(price, prompt_tokens, max_output);
        Estimate {
            tokens,
            usd,
            basis: "prompt size and the output allowance".into(),
        }
    }
}

/// Spent so far.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Spent {
    pub task_tokens_spent: u64,
    pub task_usd_spent: f64,
    pub day_tokens: u64,
    pub day_usd: f64,
}

/// Why the next call may not be made, if it may not.
#[must_use]
pub fn check(budget: &Budget, spent: Spent, next_tokens: u64, next_usd: f64) -> Option<String> {
    let over_usd = |limit: f64, have: f64, what: &str| {
        (limit > 0.0 && have + next_usd > limit + 1e-12).then(|| {
            format!("the next model call (estimated ${next_usd:.4}) would bring {what} to ${:.4}, over its budget of ${limit:.4}", have + next_usd)
        })
    };
    let over_tok = |limit: u64, have: u64, what: &str| {
        (limit > 0 && have + next_tokens > limit).then(|| {
            format!("the next model call (estimated {next_tokens} tokens) would bring {what} to {} tokens, over its budget of {limit}", have + next_tokens)
        })
    };
    over_usd(budget.task_usd, spent.task_usd_spent, "this task")
        .or_else(|| over_tok(budget.task_tokens, spent.task_tokens_spent, "this task"))
        .or_else(|| over_usd(budget.day_usd, spent.day_usd, "today's spend of this role"))
        .or_else(|| {
            over_tok(
                budget.day_tokens,
                spent.day_tokens,
                "today's use of this role",
            )
        })
        .map(|r| {
            format!("budget: {r}; raise the budget in the role's template or approve a larger one")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_enforced_and_zero_means_none() {
        let b = Budget {
            task_tokens: 1000,
            task_usd: 0.10,
            day_tokens: 0,
            day_usd: 1.0,
        };
        assert!(check(&b, Spent::default(), 500, 0.05).is_none());
        let r = check(
            &b,
            Spent {
                task_usd_spent: 0.08,
                ..Spent::default()
            },
            10,
            0.05,
        )
        .unwrap();
        assert!(r.contains("this task") && r.contains("0.1000"), "{r}");
        assert!(
            check(
                &b,
                Spent {
                    task_tokens_spent: 900,
                    ..Spent::default()
                },
                200,
                0.0
            )
            .unwrap()
            .contains("tokens")
        );
        assert!(
            check(
                &b,
                Spent {
                    day_usd: 0.99,
                    ..Spent::default()
                },
                1,
                0.02
            )
            .unwrap()
            .contains("today")
        );
        assert!(
            check(
                &Budget::default(),
                Spent {
                    task_usd_spent: 1e9,
                    ..Spent::default()
                },
                1 << 40,
                1e9
            )
            .is_none()
        );
    }
}
