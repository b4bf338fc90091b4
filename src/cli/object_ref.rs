//! `keel objects show draft/pricing` as well as `keel objects show draft pricing`: objects
//! are written `KIND/ID` everywhere keel shows them (audit subjects, approvals, the console),
//! so the CLI takes that form too. The one `KIND/ID` word is split before clap parses.

use std::ffi::OsString;

/// Subcommands of `objects` whose first two positionals are KIND and ID.
const TAKES_KIND_AND_ID: &[&str] = &["show", "history", "diff", "revert", "archive", "unarchive"];

/// The arguments with a `KIND/ID` word after `objects <subcommand>` split in two.
pub fn expand(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let args: Vec<OsString> = args.into_iter().collect();
    // The subcommand is the first word that is neither an option nor the workspace
    // option's value (`-w DIR`, `--workspace DIR`).
    let mut i = 1;
    while let Some(a) = args.get(i).and_then(|a| a.to_str()) {
        if a == "-w" || a == "--workspace" {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            break;
        }
    }
    if args.get(i).is_none_or(|a| a != "objects") {
        return args;
    }
    let objects = i;
    let Some(sub) = args.get(objects + 1).and_then(|a| a.to_str()) else {
        return args;
    };
    if !TAKES_KIND_AND_ID.contains(&sub) {
        return args;
    }
    // The first word after the subcommand that is not an option.
    let Some(at) = (objects + 2..args.len()).find(|&i| {
        args[i]
            .to_str()
            .is_some_and(|a| !a.starts_with('-') || a == "-")
    }) else {
        return args;
    };
    let Some((kind, id)) = args[at].to_str().and_then(|a| a.split_once('/')) else {
        return args;
    };
    if kind.is_empty() || id.is_empty() {
        return args;
    }
    let (kind, id) = (OsString::from(kind), OsString::from(id));
    let mut out = args[..at].to_vec();
    out.push(kind);
    out.push(id);
    out.extend_from_slice(&args[at + 1..]);
    out
}

#[cfg(test)]
mod tests {
    use super::expand;

    fn run(line: &str) -> String {
        expand(line.split(' ').map(Into::into))
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn kind_slash_id_becomes_two_words_only_where_both_are_expected() {
        assert_eq!(
            run("keel -w ws objects show draft/pricing --json"),
            "keel -w ws objects show draft pricing --json"
        );
        assert_eq!(
            run("keel objects diff --json idea/x 1 2"),
            "keel objects diff --json idea x 1 2"
        );
        // Already two words, another subcommand, or no id: untouched.
        assert_eq!(
            run("keel objects show draft p"),
            "keel objects show draft p"
        );
        assert_eq!(run("keel objects put draft/x"), "keel objects put draft/x");
        assert_eq!(run("keel objects show draft/"), "keel objects show draft/");
        assert_eq!(run("keel audit show draft/x"), "keel audit show draft/x");
        // "objects" as an argument of another command is just a word.
        assert_eq!(
            run("keel memory add objects show draft/x"),
            "keel memory add objects show draft/x"
        );
        assert_eq!(
            run("keel --workspace objects objects show draft/x"),
            "keel --workspace objects objects show draft x"
        );
    }
}
