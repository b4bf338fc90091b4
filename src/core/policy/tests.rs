//! Table tests of rule matching, budgets, standing decisions and the lint.

use std::path::Path;

use super::engine::{NoStandingRules, StandingRules, match_rules};
use super::lint::{self, Severity};
use super::*;
use crate::core::effects::Reversibility;
use crate::core::error::Result;

struct Spent(f64, f64);
impl SpendLookup for Spent {
    fn spent_by_agent(&self, _: &str, _: &str) -> Result<f64> {
        Ok(self.0)
    }
    fn spent_by_workflow(&self, _: &str) -> Result<f64> {
        Ok(self.1)
    }
}

struct Always(&'static str, &'static str, &'static str);
impl StandingRules for Always {
    fn always_allowed(&self, agent: &str, action: &str, target: &str) -> Result<Option<String>> {
        Ok((agent == self.0 && action == self.1 && target == self.2).then(|| "r1".to_string()))
    }
}

fn req(agent: &str, action: &str, rev: Reversibility, target: &str) -> ActionRequest {
    ActionRequest {
        agent: agent.into(),
        action: action.into(),
        object_kind: None,
        amount: None,
        reversibility: rev,
        target: target.into(),
        cost: 0.0,
        workflow: None,
    }
}

const RULES: &str = r#"
currency = "EUR"
[budgets]
per_agent_per_day = 10.0
agents = { accountant = 500.0 }
workflows = { launch = 50.0 }

[[rule]]
id = "deny-big"
action = "payment.*"
amount = { min = 1000.0 }
outcome = "deny"
reason = "too big"

[[rule]]
id = "money"
amount = { min = 0.0 }
outcome = "require_approval"
reason = "money"

[[rule]]
id = "mail-team"
action = "email.send"
target = "*@mycompany.com"
outcome = "allow"
reason = "internal mail"

[[rule]]
id = "irreversible"
reversibility = ["irreversible"]
outcome = "require_approval"
reason = "cannot undo"
hold_secs = 300

[[rule]]
id = "drafts-by-writer"
agent = "writer"
kind = "draft"
outcome = "allow"
reason = "writers edit drafts"

[[rule]]
id = "costly"
cost = { min = 1.0 }
outcome = "require_approval"
reason = "costly"

[[rule]]
id = "cheap-reversible"
reversibility = ["reversible", "compensable"]
outcome = "allow"
reason = "cheap"
"#;

fn policy() -> Policy {
    Policy::parse(RULES, Path::new("policy.toml")).unwrap()
}

#[test]
fn first_match_table() {
    use Reversibility::{Compensable, Irreversible, Reversible};
    type Tweak = fn(&mut ActionRequest);
    let p = policy();
    let cases: Vec<(ActionRequest, Tweak, &str, Outcome)> = vec![
        (
            req("accountant", "payment.send", Irreversible, "acme"),
            |r| r.amount = Some(5000.0),
            "deny-big",
            Outcome::Deny,
        ),
        (
            req("accountant", "payment.send", Irreversible, "acme"),
            |r| r.amount = Some(999.99),
            "money",
            Outcome::RequireApproval,
        ),
        (
            req("accountant", "invoice.send", Compensable, "acme"),
            |r| r.amount = Some(0.0),
            "money",
            Outcome::RequireApproval,
        ),
        (
            req("scheduler", "email.send", Irreversible, "ann@mycompany.com"),
            |_| {},
            "mail-team",
            Outcome::Allow,
        ),
        (
            req(
                "scheduler",
                "email.send",
                Irreversible,
                "ann@mycompany.com.evil.io",
            ),
            |_| {},
            "irreversible",
            Outcome::RequireApproval,
        ),
        (
            req("writer", "draft.save", Reversible, "d1"),
            |r| r.object_kind = Some("draft".into()),
            "drafts-by-writer",
            Outcome::Allow,
        ),
        (
            req("writer", "draft.save", Reversible, "d1"),
            |r| r.object_kind = Some("contract".into()),
            "cheap-reversible",
            Outcome::Allow,
        ),
        (
            req("researcher", "search.paid", Reversible, "api"),
            |r| r.cost = 2.5,
            "costly",
            Outcome::RequireApproval,
        ),
        (
            req("researcher", "search.paid", Reversible, "api"),
            |r| r.cost = 0.5,
            "cheap-reversible",
            Outcome::Allow,
        ),
        (
            req("publisher", "site.publish", Reversible, "hello"),
            |_| {},
            "cheap-reversible",
            Outcome::Allow,
        ),
    ];
    for (mut r, tweak, rule, outcome) in cases {
        tweak(&mut r);
        let d = evaluate(&p, &r, 0, &Spent(0.0, 0.0), &NoStandingRules).unwrap();
        assert_eq!((d.rule.as_str(), d.outcome), (rule, outcome), "{r:?}");
        // Deterministic: the same inputs give the same decision.
        assert_eq!(
            d,
            evaluate(&p, &r, 0, &Spent(0.0, 0.0), &NoStandingRules).unwrap()
        );
    }
}

#[test]
fn malformed_requests_are_refused() {
    let p = policy();
    let mut r = req("a", "x.y", Reversibility::Reversible, "t");
    r.amount = Some(f64::NAN);
    assert!(evaluate(&p, &r, 0, &Spent(0.0, 0.0), &NoStandingRules).is_err());
    r.amount = None;
    r.cost = -1.0;
    assert!(evaluate(&p, &r, 0, &Spent(0.0, 0.0), &NoStandingRules).is_err());
    r.cost = 0.0;
    r.agent = " ".into();
    assert!(evaluate(&p, &r, 0, &Spent(0.0, 0.0), &NoStandingRules).is_err());
}

#[test]
fn nothing_matches_means_the_fallback_asks() {
    let p = policy();
    let d = match_rules(
        &p.file,
        &req("x", "tool.run", Reversibility::Irreversible, "t"),
    );
    assert_eq!(d.rule, "irreversible");
    let file = PolicyFile {
        rules: vec![],
        ..p.file.clone()
    };
    let d = match_rules(&file, &req("x", "tool.run", Reversibility::Reversible, "t"));
    assert_eq!(
        (d.rule.as_str(), d.outcome),
        ("fallback", Outcome::RequireApproval)
    );
}

#[test]
fn hold_applies_only_to_irreversible_actions() {
    let d = match_rules(
        &policy().file,
        &req("a", "email.send", Reversibility::Irreversible, "x@y.z"),
    );
    assert_eq!(d.hold_secs, 300);
}

#[test]
fn budgets_tighten_allow_into_approval_but_never_loosen_deny() {
    let p = policy();
    let mut r = req(
        "researcher",
        "search.paid",
        Reversibility::Reversible,
        "api",
    );
    r.cost = 0.9;
    let ok = evaluate(&p, &r, 0, &Spent(9.0, 0.0), &NoStandingRules).unwrap();
    assert_eq!(ok.outcome, Outcome::Allow);
    let over = evaluate(&p, &r, 0, &Spent(9.5, 0.0), &NoStandingRules).unwrap();
    assert_eq!(
        (over.outcome, over.rule.as_str()),
        (Outcome::RequireApproval, "budget:agent:researcher")
    );
    assert!(over.reason.contains("10.00 EUR"), "{}", over.reason);
    // A per-agent override.
    let mut acc = r.clone();
    acc.agent = "accountant".into();
    assert_eq!(
        evaluate(&p, &acc, 0, &Spent(400.0, 0.0), &NoStandingRules)
            .unwrap()
            .outcome,
        Outcome::Allow
    );
    // Per workflow.
    r.workflow = Some("launch".into());
    let wf = evaluate(&p, &r, 0, &Spent(0.0, 49.5), &NoStandingRules).unwrap();
    assert_eq!(wf.rule, "budget:workflow:launch");
    // Deny stays deny whatever the budget.
    let mut big = req(
        "accountant",
        "payment.send",
        Reversibility::Irreversible,
        "acme",
    );
    big.amount = Some(5000.0);
    assert_eq!(
        evaluate(&p, &big, 0, &Spent(1e9, 1e9), &NoStandingRules)
            .unwrap()
            .outcome,
        Outcome::Deny
    );
}

#[test]
fn always_allow_is_narrow_and_never_overrides_deny() {
    let p = policy();
    let standing = Always("scheduler", "email.send", "bob@client.com");
    let r = req(
        "scheduler",
        "email.send",
        Reversibility::Irreversible,
        "bob@client.com",
    );
    let d = evaluate(&p, &r, 0, &Spent(0.0, 0.0), &standing).unwrap();
    assert_eq!((d.outcome, d.rule.as_str()), (Outcome::Allow, "always:r1"));
    for other in [
        req(
            "writer",
            "email.send",
            Reversibility::Irreversible,
            "bob@client.com",
        ),
        req(
            "scheduler",
            "email.send",
            Reversibility::Irreversible,
            "eve@client.com",
        ),
        req(
            "scheduler",
            "sms.send",
            Reversibility::Irreversible,
            "bob@client.com",
        ),
    ] {
        assert_eq!(
            evaluate(&p, &other, 0, &Spent(0.0, 0.0), &standing)
                .unwrap()
                .outcome,
            Outcome::RequireApproval
        );
    }
    let mut pay = req(
        "scheduler",
        "payment.send",
        Reversibility::Irreversible,
        "bob@client.com",
    );
    pay.amount = Some(2000.0);
    let standing = Always("scheduler", "payment.send", "bob@client.com");
    assert_eq!(
        evaluate(&p, &pay, 0, &Spent(0.0, 0.0), &standing)
            .unwrap()
            .outcome,
        Outcome::Deny
    );
}

#[test]
fn explain_trace_says_why_each_rule_did_not_match() {
    let d = match_rules(
        &policy().file,
        &req("writer", "site.publish", Reversibility::Reversible, "hello"),
    );
    assert_eq!(d.trace.last().unwrap().rule, "cheap-reversible");
    assert!(
        d.trace[0]
            .because
            .contains("action \"site.publish\" does not match \"payment.*\""),
        "{:?}",
        d.trace[0]
    );
    assert!(
        d.trace[1].because.contains("moves no amount"),
        "{:?}",
        d.trace[1]
    );
    assert!(d.trace[4].because.contains("no kind"), "{:?}", d.trace[4]);
}

#[test]
fn unknown_field_is_located() {
    let text = "[[rule]]\nid = \"a\"\nouctome = \"allow\"\noutcome = \"allow\"\nreason = \"r\"\n";
    let err = Policy::parse(text, Path::new("/ws/policy.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("/ws/policy.toml:3:1:"), "{err}");
    assert!(err.contains("ouctome"), "{err}");
    let err = Policy::parse(
        "[[rule]]\nid = \"a\"\noutcome = \"maybe\"\nreason = \"\"\n",
        Path::new("p.toml"),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("p.toml:3:11:"), "{err}");
}

#[test]
fn lint_finds_shadowed_contradictory_duplicate_and_empty() {
    let text = r#"
[[rule]]
id = "all-site"
action = "site.*"
outcome = "require_approval"
reason = "public"

[[rule]]
id = "publish"
action = "site.publish"
agent = "publisher"
outcome = "allow"
reason = "never fires"

[[rule]]
id = "mail"
action = "email.send"
outcome = "allow"
reason = "x"

[[rule]]
id = "mail-again"
action = "email.send"
outcome = "deny"
reason = "y"

[[rule]]
id = "mail"
action = "sms.*"
amount = { min = 10.0, max = 5.0 }
outcome = "deny"
reason = "z"
"#;
    let p = Policy::parse(text, Path::new("policy.toml")).unwrap();
    let findings = lint::check(&p);
    let by = |rule: &str, sev: Severity, needle: &str| {
        findings
            .iter()
            .any(|f| f.rule == rule && f.severity == sev && f.message.contains(needle))
    };
    assert!(
        by(
            "publish",
            Severity::Warning,
            "shadowed by rule \"all-site\" (line 2)"
        ),
        "{findings:#?}"
    );
    let shadowed = findings.iter().find(|f| f.rule == "publish").unwrap();
    assert_eq!(shadowed.line, 8);
    assert!(
        by("mail-again", Severity::Error, "contradicts rule \"mail\""),
        "{findings:#?}"
    );
    assert!(by("mail", Severity::Error, "duplicate id"), "{findings:#?}");
    assert!(
        by("mail", Severity::Error, "amount range is empty"),
        "{findings:#?}"
    );
    assert!(
        !findings.iter().any(|f| f.rule == "all-site"),
        "{findings:#?}"
    );
}

#[test]
fn shipped_defaults_parse_and_lint_clean() {
    let p = Policy::built_in().unwrap();
    assert!(p.file.rules.len() >= 5);
    let findings = lint::check(&p);
    assert!(findings.is_empty(), "{findings:#?}");
    // Public site changes wait for the operator by default; irreversible sends are held.
    let d = match_rules(
        &p.file,
        &req(
            "publisher",
            "site.publish",
            Reversibility::Reversible,
            "hello",
        ),
    );
    assert_eq!(d.outcome, Outcome::RequireApproval);
    let d = match_rules(
        &p.file,
        &req(
            "scheduler",
            "webhook.crm",
            Reversibility::Irreversible,
            "crm",
        ),
    );
    assert_eq!((d.outcome, d.hold_secs), (Outcome::RequireApproval, 600));
}
