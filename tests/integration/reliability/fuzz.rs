//! Fuzzing with proptest (cargo-fuzz needs a nightly toolchain, which these machines lack).
//! Every parser of operator- or network-supplied input gets random and mutated inputs: it
//! must never panic, and file errors must name `file:line:column`.
//!
//! [`CASES`] is the table the README's "inputs fuzzed" figure comes from. To add a target,
//! add a row there and a `proptest!` block using `cases("name")` (here, in `fuzz_llm` for
//! model answers or in `fuzz_inputs` for files and bodies).

use std::path::Path;

use clap::Parser;
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde_json::{Value, json};

/// Generated cases per target (proptest runs exactly this many passing cases). The targets
/// of `fuzz_llm` (model answers) and `fuzz_inputs` (agent templates, object bodies, memory
/// imports) are listed here too.
pub const CASES: &[(&str, u32)] = &[
    ("agent_template_head", 512),
    ("schema_checked_body", 512),
    ("config_toml", 512),
    ("workflow_toml", 512),
    ("policy_toml", 512),
    ("connector_template", 512),
    ("csv_import", 512),
    ("analytics_json_rows", 256),
    ("webhook_response", 96),
    ("cli_args", 1024),
    ("sse_stream_openai", 512),
    ("sse_stream_anthropic", 512),
    ("sse_stream_http", 128),
    ("provider_json", 512),
    ("agent_template", 384),
    ("object_body_per_kind", 512),
    ("memory_import", 128),
];

pub(super) fn cases(name: &str) -> ProptestConfig {
    let n = CASES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
        .expect("target listed in CASES");
    ProptestConfig {
        cases: n,
        // Shrinking a parser input is cheap; keep failures readable.
        max_shrink_iters: 256,
        ..ProptestConfig::default()
    }
}

const WORKFLOW_SEED: &str = "name = \"launch\"\n[[stage]]\nname = \"draft\"\nrole = \"noop\"\n\
     [[stage]]\nname = \"review\"\nrole = \"noop\"\nafter = [\"draft\"]\napproval = true\n\
     [[stage]]\nname = \"publish\"\nrole = \"webhook\"\nafter = [\"review\"]\ninput = { steps = 2 }\n";

/// Characters that matter to TOML (and some that never should appear in one).
const TOML_ALPHABET: &[char] = &[
    '[', ']', '{', '}', '=', '"', '\'', '\n', '\r', '#', ',', '.', ' ', '\t', '\\', '0', '9', 'a',
    'z', '-', '+', ':', 'e', 'T', '\u{0}', '\u{7f}', 'é', '💥', '\u{feff}',
];

/// One edit of a seed text: (position fraction, kind, character, length).
fn edits() -> impl Strategy<Value = Vec<(f64, u8, usize, usize)>> {
    prop::collection::vec(
        (0.0..1.0f64, 0u8..4, 0..TOML_ALPHABET.len(), 1usize..40),
        1..8,
    )
}

/// Applies edits (insert a char, delete a run, duplicate a run, truncate) to `seed`.
fn mutate(seed: &str, edits: &[(f64, u8, usize, usize)]) -> String {
    let chars: Vec<char> = seed.chars().collect();
    mutate_seq(chars, edits, TOML_ALPHABET)
        .into_iter()
        .collect()
}

/// The edits of [`mutate`] on any sequence; inserted elements come from `alphabet`.
pub(super) fn mutate_seq<T: Clone>(
    mut items: Vec<T>,
    edits: &[(f64, u8, usize, usize)],
    alphabet: &[T],
) -> Vec<T> {
    for &(at, kind, c, len) in edits {
        // `at` is in 0..1, so the position is in 0..=items.len().
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let pos = ((items.len() as f64) * at) as usize;
        let end = (pos + len).min(items.len());
        match kind {
            0 => items.insert(pos, alphabet[c % alphabet.len()].clone()),
            1 => {
                items.drain(pos..end);
            }
            2 => {
                let run: Vec<T> = items[pos..end].to_vec();
                items.splice(pos..pos, run);
            }
            _ => items.truncate(end),
        }
    }
    items
}

/// Random inputs: mutations of a valid file, or arbitrary text.
pub(super) fn toml_inputs(seed: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        3 => edits().prop_map(move |e| mutate(seed, &e)),
        1 => ".{0,200}",
        1 => prop::collection::vec(prop::sample::select(TOML_ALPHABET), 0..120)
            .prop_map(|v| v.into_iter().collect()),
    ]
}

/// A TOML syntax error must be reported as `path:line:column: …`.
fn assert_located(text: &str, path: &Path, err: &keel::core::error::Error) {
    if toml::from_str::<toml::Table>(text).is_err() {
        let msg = err.to_string();
        let prefix = format!("{}:", path.display());
        let rest = msg.strip_prefix(&prefix).unwrap_or_else(|| {
            panic!("syntax error without the file name: {msg}");
        });
        let mut parts = rest.splitn(3, ':');
        let line = parts.next().and_then(|l| l.parse::<usize>().ok());
        let col = parts.next().and_then(|c| c.parse::<usize>().ok());
        assert!(
            line.is_some_and(|l| l >= 1) && col.is_some_and(|c| c >= 1),
            "syntax error without line:column: {msg}"
        );
    }
}

proptest! {
    #![proptest_config(cases("config_toml"))]
    #[test]
    fn config_toml_never_panics(text in toml_inputs(keel::core::config::TEMPLATE)) {
        let path = Path::new("/ws/config.toml");
        if let Err(e) = keel::core::toml_text::parse::<keel::core::config::Config>(&text, path) {
            assert_located(&text, path, &e);
        }
    }
}

proptest! {
    #![proptest_config(cases("workflow_toml"))]
    #[test]
    fn workflow_toml_never_panics(text in toml_inputs(WORKFLOW_SEED)) {
        let path = Path::new("/ws/agents/launch.workflow.toml");
        if let Err(e) = keel::core::workflow::Workflow::parse(&text, path) {
            assert_located(&text, path, &e);
        }
    }
}

proptest! {
    #![proptest_config(cases("policy_toml"))]
    #[test]
    fn policy_toml_never_panics(text in toml_inputs(keel::core::policy::DEFAULT_POLICY)) {
        let path = Path::new("/ws/policy.toml");
        match keel::core::policy::Policy::parse(&text, path) {
            Err(e) => assert_located(&text, path, &e),
            // A policy that parses can be linted and evaluated without panicking.
            Ok(policy) => {
                let _ = keel::core::policy::lint::check(&policy);
            }
        }
    }
}

const TEMPLATE_SEED: &str = "name = \"writer\"\nmodel = \"offline\"\nsubscriptions = [\"leads\", \"ideas\"]\n\
     [input_schema]\ntype = \"object\"\nrequired = [\"topic\"]\n\
     [input_schema.properties.topic]\ntype = \"string\"\nmaxLength = 200\n";

proptest! {
    #![proptest_config(cases("agent_template_head"))]
    /// The part of an agent template main reads today (name, input schema, subscriptions).
    #[test]
    fn agent_template_heads_never_panic(text in toml_inputs(TEMPLATE_SEED)) {
        let path = Path::new("/ws/agents/writer.toml");
        let mut catalog = keel::core::queue::roles::RoleCatalog::builtin();
        match catalog.add_template(&text, path) {
            Err(e) => assert_located(&text, path, &e),
            // A registered role checks any input without panicking, even with a mangled schema.
            Ok(()) => {
                for role in catalog.names().map(str::to_string).collect::<Vec<_>>() {
                    let _ = catalog.check_input(&role, &json!({"topic": "x", "n": [1, null]}));
                }
            }
        }
    }
}

/// A customer-like object schema: the shape object bodies and work items are checked against.
fn customer_schema() -> Value {
    json!({
        "type": "object",
        "required": ["name", "email"],
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "email": {"type": "string", "pattern": "^[^@\\s]+@[^@\\s]+$"},
            "mrr": {"type": "number", "minimum": 0},
            "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 20},
            "address": {"type": "object", "properties": {"country": {"type": "string"}}}
        },
        "additionalProperties": false
    })
}

proptest! {
    #![proptest_config(cases("schema_checked_body"))]
    #[test]
    fn schema_checked_bodies_never_panic(body in json_value(), schema in prop_oneof![3 => Just(customer_schema()), 1 => json_value()]) {
        use keel::core::queue::roles::check_schema;
        match check_schema("customer", &schema, &body) {
            Ok(()) => {}
            Err(keel::core::error::Error::Schema { field, message, .. }) => {
                // A refusal names the field (a JSON pointer) and says why.
                prop_assert!(field.starts_with('/') || field == "(schema)", "{}", field);
                prop_assert!(!message.is_empty());
            }
            Err(other) => prop_assert!(false, "unexpected error kind: {}", other),
        }
    }
}

proptest! {
    #![proptest_config(cases("connector_template"))]
    #[test]
    fn connector_templates_never_panic(
        template in prop_oneof![".{0,80}", "(\\{\\{[a-z._]{0,8}\\}?\\}?|[^{}]{0,6}){0,8}"],
        value in prop_oneof![Just(json!(null)), ".{0,20}".prop_map(Value::from), any::<f64>().prop_map(|f| json!(f))],
    ) {
        use keel::core::connectors::template::{Escape, render};
        let args = json!({"a": value, "b": {"c": [1, 2]}, "s": "x\"y"});
        let _ = render(&template, &args, Escape::Json);
        let _ = render(&template, &args, Escape::Url);
        // Whatever a value holds, it cannot break out of its JSON string (no injection).
        let quoted = render("{\"x\": \"{{a}}\", \"n\": {{b}}}", &args, Escape::Json);
        if let Ok(out) = quoted {
            prop_assert!(serde_json::from_str::<Value>(&out).is_ok(), "{}", out);
        }
    }
}

struct AnyPublication;
impl keel::core::connectors::analytics::PublicationIndex for AnyPublication {
    fn resolve(&self, reference: &str) -> Option<String> {
        (!reference.is_empty() && reference != "missing").then(|| format!("pub-{reference}"))
    }
}
struct CountingSink(usize);
impl keel::core::connectors::analytics::MetricSink for CountingSink {
    fn write(
        &mut self,
        records: &[keel::core::connectors::analytics::MetricRecord],
    ) -> keel::core::error::Result<usize> {
        for r in records {
            assert!(
                r.value.is_finite(),
                "a non-finite metric was accepted: {r:?}"
            );
        }
        self.0 += records.len();
        Ok(records.len())
    }
}

fn csv_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9-]{0,8}",
        "-?[0-9]{1,6}(\\.[0-9]{0,3})?",
        Just("NaN".to_string()),
        Just("inf".to_string()),
        Just("1e400".to_string()),
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]",
        "\"[^\"]{0,6}(\"\")?[^\"]{0,4}\"?",
        ".{0,10}",
    ]
}

pub(super) fn csv_text() -> impl Strategy<Value = String> {
    let header = prop_oneof![
        Just("publication,metric,value,date".to_string()),
        Just("date,value,metric,publication,extra".to_string()),
        "[a-z,]{0,30}",
    ];
    let rows = prop::collection::vec(prop::collection::vec(csv_cell(), 0..6), 0..12);
    (header, rows, prop::bool::ANY).prop_map(|(h, rows, crlf)| {
        let nl = if crlf { "\r\n" } else { "\n" };
        let body: Vec<String> = rows.into_iter().map(|r| r.join(",")).collect();
        format!("{h}{nl}{}", body.join(nl))
    })
}

proptest! {
    #![proptest_config(cases("csv_import"))]
    #[test]
    fn csv_import_never_panics(text in prop_oneof![4 => csv_text(), 1 => ".{0,200}"]) {
        let mut sink = CountingSink(0);
        if let Ok(report) = keel::core::connectors::analytics::import_csv(&text, "fuzz.csv", &AnyPublication, &mut sink) {
            prop_assert_eq!(report.imported, sink.0);
            for r in &report.rejected {
                prop_assert!(r.line >= 1, "rejections name a 1-based line: {:?}", r);
                prop_assert!(!r.message.is_empty());
            }
        }
    }
}

/// Arbitrary JSON values, biased towards analytics-shaped rows.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::from),
        Just(json!("2026-01-31")),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("publication".to_string()),
                    Just("metric".to_string()),
                    Just("value".to_string()),
                    Just("date".to_string()),
                    Just("rows".to_string()),
                    "[a-z]{1,6}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A loopback server that answers every request with the next canned raw response.
struct CannedServer {
    url: String,
    next: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl CannedServer {
    fn start() -> Self {
        use std::io::{BufRead, BufReader, Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let next = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let shared = std::sync::Arc::clone(&next);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut length = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                        break;
                    }
                    if let Some((n, v)) = line.split_once(':')
                        && n.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; length];
                let _ = reader.read_exact(&mut body);
                let reply = shared.lock().unwrap().clone();
                let mut conn = conn;
                let _ = conn.write_all(&reply);
            }
        });
        CannedServer { url, next }
    }
}

fn http_response() -> impl Strategy<Value = Vec<u8>> {
    let status = prop_oneof![
        Just(200u16),
        Just(201),
        Just(204),
        Just(302),
        Just(404),
        Just(409),
        Just(429),
        Just(500),
        Just(503),
        100u16..999
    ];
    let body = prop_oneof![
        json_value().prop_map(|v| v.to_string()),
        ".{0,300}",
        Just(String::new()),
        Just("{\"unterminated\": ".to_string()),
    ];
    let well_formed = (status, body, prop::bool::ANY).prop_map(|(s, b, lie)| {
        // Sometimes the Content-Length lies (a truncated or overlong body).
        let len = if lie { b.len() + 7 } else { b.len() };
        format!("HTTP/1.1 {s} X\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n{b}")
            .into_bytes()
    });
    prop_oneof![
        4 => well_formed,
        1 => prop::collection::vec(any::<u8>(), 0..200),
    ]
}

#[test]
fn webhook_and_analytics_responses_never_panic() {
    use keel::core::connectors::webhook::{WebhookConfig, WebhookConnector as ConfiguredHook};
    use keel::core::effects::Connector;
    let server = CannedServer::start();
    let cfg: WebhookConfig = toml::from_str(&format!(
        "url = \"{0}\"\nlookup_url = \"{0}?k={{{{idempotency_key}}}}\"\ntimeout_secs = 2\n",
        server.url
    ))
    .unwrap();
    let configured = ConfiguredHook::new("fuzz", cfg).unwrap();
    let builtin = keel::core::effects::webhook::WebhookConnector::loopback(&server.url).unwrap();
    let args = json!({"task": "t", "step": 0});
    let mut runner = proptest::test_runner::TestRunner::new(cases("webhook_response"));
    runner
        .run(&http_response(), |reply| {
            *server.next.lock().unwrap() = reply;
            // Any answer is an Ok or a classified error, never a panic.
            let _ = configured.perform("webhook.fuzz", &args, "key-1");
            let _ = configured.lookup("webhook.fuzz", &args, "key-1");
            let _ = builtin.perform(keel::core::effects::webhook::ACTION, &args, "key-2");
            let _ = builtin.lookup(keel::core::effects::webhook::ACTION, &args, "key-2");
            let mut sink = CountingSink(0);
            let _ = keel::core::connectors::analytics::import_http(
                &server.url,
                &std::collections::BTreeMap::new(),
                &AnyPublication,
                &mut sink,
            );
            Ok(())
        })
        .unwrap();
}

/// Words the CLI knows, so that random vectors reach deep into the subcommands.
const CLI_WORDS: &[&str] = &[
    "init",
    "demo",
    "audit",
    "show",
    "verify",
    "export",
    "models",
    "bench",
    "policy",
    "check",
    "explain",
    "approvals",
    "list",
    "approve",
    "reject",
    "cancel",
    "reconcile",
    "task",
    "add",
    "retry",
    "queue",
    "pause",
    "resume",
    "run",
    "torture",
    "store",
    "--json",
    "--workspace",
    "-w",
    "--role",
    "--workflow",
    "--input",
    "--key",
    "--title",
    "--trials",
    "--workers",
    "--limit",
    "--help",
    "-h",
    "--version",
    "--",
    "-",
    "0",
    "-1",
    "18446744073709551616",
    "{}",
    "{not json",
    "noop",
    "webhook",
    "\u{0}",
    "é",
    "--json=",
    "--trials=x",
];

/// Every subcommand name and long option of the real CLI, so random vectors reach all of
/// them (memory, objects, agents, runs, metrics… not only the words listed above).
fn cli_vocabulary() -> Vec<String> {
    fn walk(cmd: &clap::Command, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                out.push(format!("--{long}"));
            }
            if let Some(short) = arg.get_short() {
                out.push(format!("-{short}"));
            }
        }
        for sub in cmd.get_subcommands() {
            out.push(sub.get_name().to_string());
            walk(sub, out);
        }
    }
    let mut out: Vec<String> = CLI_WORDS.iter().map(|w| (*w).to_string()).collect();
    walk(
        &<keel::cli::Cli as clap::CommandFactory>::command(),
        &mut out,
    );
    out.sort();
    out.dedup();
    out
}

fn cli_args() -> impl Strategy<Value = Vec<String>> {
    let words = cli_vocabulary();
    assert!(words.len() > CLI_WORDS.len() + 40, "{} words", words.len());
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(words),
            1 => ".{0,12}",
        ],
        0..8,
    )
}

proptest! {
    #![proptest_config(cases("cli_args"))]
    #[test]
    fn cli_arguments_never_panic(args in cli_args()) {
        // Parse errors (and --help/--version) are Err values; a panic fails the test.
        let argv = std::iter::once("keel".to_string()).chain(args);
        if let Err(e) = keel::cli::Cli::try_parse_from(argv) {
            let _ = e.render().to_string();
        }
    }
}

/// The analytics JSON rows go through the same validation as CSV rows.
#[test]
fn analytics_json_rows_never_panic() {
    let server = CannedServer::start();
    let mut runner = proptest::test_runner::TestRunner::new(cases("analytics_json_rows"));
    runner
        .run(&json_value(), |body| {
            let body = body.to_string();
            *server.next.lock().unwrap() = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes();
            let mut sink = CountingSink(0);
            if let Ok(report) = keel::core::connectors::analytics::import_http(
                &server.url,
                &std::collections::BTreeMap::new(),
                &AnyPublication,
                &mut sink,
            ) {
                prop_assert_eq!(report.imported, sink.0);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn inputs_fuzzed_total_is_reported() {
    let total: u32 = CASES.iter().map(|(_, n)| n).sum();
    eprintln!(
        "inputs fuzzed per run: {total} over {} targets ({CASES:?})",
        CASES.len()
    );
    // Every target named in CASES has a test that runs it (a row nobody uses would
    // inflate the README's figure).
    let sources = [
        include_str!("fuzz.rs"),
        include_str!("fuzz_llm.rs"),
        include_str!("fuzz_inputs.rs"),
    ]
    .concat();
    for (name, _) in CASES {
        assert!(
            sources.matches(&format!("cases(\"{name}\")")).count() >= 1
                && sources.matches(&format!("\"{name}\"")).count() >= 2,
            "target {name} is listed but never run"
        );
    }
    assert!(total >= 7_000);
}
