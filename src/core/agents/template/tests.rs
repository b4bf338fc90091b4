//! Template loading, hashing, overrides and their errors.

use std::path::Path;

use super::*;

#[test]
fn workflow_files_beside_the_templates_are_not_read_as_roles() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("content.workflow.toml"),
        include_str!("../../../../agents/content.workflow.toml"),
    )
    .unwrap();
    let loaded = Templates::load(dir.path()).unwrap();
    assert!(loaded.broken.is_empty(), "{:?}", loaded.broken);
    assert!(
        Templates::check_all(dir.path())
            .iter()
            .all(|(name, r)| r.is_ok() && !name.ends_with(".workflow"))
    );
}

#[test]
fn shipped_templates_load_and_hash_stably() {
    let a = Templates::shipped().unwrap();
    let b = Templates::shipped().unwrap();
    assert_eq!(a.by_name.len(), 7);
    for (name, l) in &a.by_name {
        assert_eq!(l.hash, b.by_name[name].hash);
        assert_eq!(l.hash.len(), 64);
    }
}

#[test]
fn a_broken_workspace_file_disables_only_its_role() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("editor.toml"), "description = 3\n").unwrap();
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let all = Templates::load(dir.path()).unwrap();
    let err = all.get("editor").unwrap_err().to_string();
    assert!(err.contains("editor.toml:1:15"), "{err}");
    assert!(all.get("writer").is_ok());
    assert_eq!(all.by_name.len(), 6);
}

#[test]
fn a_stored_version_rebuilds_to_the_same_hash() {
    let all = Templates::shipped().unwrap();
    for l in all.by_name.values() {
        let back = Loaded::from_stored(&l.canonical(), &l.hash).unwrap();
        assert_eq!(back.template, l.template);
        assert_eq!(back.schema, l.schema);
    }
}

#[test]
fn comments_do_not_change_the_hash_but_content_does() {
    let (_, text) = SHIPPED[0];
    let p = Path::new("x.toml");
    let base = load_text("r", text, p).unwrap().hash;
    let commented = format!("# a comment\n{text}");
    assert_eq!(load_text("r", &commented, p).unwrap().hash, base);
    let changed = text.replacen("description = \"", "description = \"New. ", 1);
    assert_ne!(load_text("r", &changed, p).unwrap().hash, base);
}

#[test]
fn subscribers_match_topics_and_prefixes() {
    let mut all = Templates::shipped().unwrap();
    assert_eq!(all.subscribers("drafts.ready"), ["editor"]);
    all.by_name
        .get_mut("analyst")
        .unwrap()
        .template
        .subscriptions = vec!["drafts.*".into()];
    assert_eq!(all.subscribers("drafts.ready"), ["analyst", "editor"]);
    assert!(all.subscribers("nothing").is_empty());
}

#[test]
fn unknown_field_is_located() {
    let (_, text) = SHIPPED[0];
    let bad = text.replacen("[budget]\n", "[budget]\nbogus = 1\n", 1);
    let err = load_text("r", &bad, Path::new("agents/r.toml"))
        .unwrap_err()
        .to_string();
    let line = bad.lines().position(|l| l.starts_with("bogus")).unwrap() + 1;
    assert!(
        err.starts_with(&format!("agents/r.toml:{line}:1:")),
        "{err}"
    );
    assert!(err.contains("bogus"), "{err}");
}

#[test]
fn unknown_tool_and_bad_schema_are_errors() {
    let (_, text) = SHIPPED[0];
    let bad = text.replacen("allowed = [", "allowed = [\"rm_rf\", ", 1);
    let err = load_text("r", &bad, Path::new("r.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("rm_rf"), "{err}");
    let bad = text.replacen("schema = '''", "schema = '''{oops ", 1);
    let err = load_text("r", &bad, Path::new("r.toml"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("not valid JSON"), "{err}");
}
