//! Finding servers, naming them, picking their model.

use serde_json::json;

use super::*;

#[test]
fn urls_with_and_without_v1() {
    assert_eq!(
        candidates("http://127.0.0.1:8080").unwrap(),
        vec!["http://127.0.0.1:8080/v1", "http://127.0.0.1:8080"]
    );
    assert_eq!(
        candidates("http://127.0.0.1:8080/v1/").unwrap(),
        vec!["http://127.0.0.1:8080/v1"]
    );
    assert!(matches!(
        candidates("127.0.0.1:8080"),
        Err(ConnectError::BadUrl { .. })
    ));
    assert_eq!(
        infer_kind("https://api.anthropic.com/v1"),
        ProviderKind::Anthropic
    );
    assert_eq!(
        infer_kind("https://openrouter.ai/api/v1"),
        ProviderKind::Openai
    );
}

#[test]
fn names_follow_the_host() {
    assert_eq!(default_name("http://127.0.0.1:8080/v1", true), "local");
    assert_eq!(default_name("https://api.openai.com/v1", false), "openai");
    assert_eq!(
        default_name("https://api.anthropic.com/v1", false),
        "anthropic"
    );
    assert_eq!(
        default_name("https://openrouter.ai/api/v1", false),
        "openrouter"
    );
    assert!(check_name("offline").is_err());
    assert!(check_name("my box").is_err());
    assert!(check_name("gpu-box_2").is_ok());
}

#[test]
fn the_model_is_the_one_asked_for_or_the_first_chat_model() {
    let found = Found {
        base: "http://x/v1".into(),
        kind: ProviderKind::Openai,
        models: vec![
            "text-embedding-3-small".into(),
            "gpt-4o-mini".into(),
            "llama3.1:latest".into(),
        ],
    };
    assert_eq!(pick_model(&found, None).unwrap(), "gpt-4o-mini");
    assert_eq!(
        pick_model(&found, Some("llama3.1")).unwrap(),
        "llama3.1:latest"
    );
    let err = pick_model(&found, Some("nope")).unwrap_err().to_string();
    assert!(err.contains("gpt-4o-mini"), "{err}");
    assert!(model_ids(&json!({"object": "list"})).is_none());
}

#[test]
fn nothing_local_lists_the_ports_and_what_to_start() {
    let msg = ConnectError::NothingLocal {
        tried: LOCAL_SERVERS.to_vec(),
    }
    .to_string();
    for s in LOCAL_SERVERS {
        assert!(
            msg.contains(&s.port.to_string()) && msg.contains(s.start),
            "{msg}"
        );
    }
}

#[test]
fn a_key_never_shows_in_debug() {
    let a = Auth {
        var: "K".into(),
        key: "sk-secret".into(),
    };
    assert!(!format!("{a:?}").contains("sk-secret"));
}
