//! Tiny glob matching for rule fields: `*` matches any run of characters, `?` one character.
//! Matching is on whole strings and case-sensitive, so `site.*` never matches `website.x`.

/// Whether `text` matches `pattern`.
#[must_use]
pub fn matches(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with backtracking to the last `*` (linear in practice).
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// Whether every string matched by `narrow` is also matched by `wide` (conservative: may
/// answer false for exotic patterns, never true wrongly).
#[must_use]
pub fn covers(wide: &str, narrow: &str) -> bool {
    if wide == narrow || wide.chars().all(|c| c == '*') && !wide.is_empty() {
        return true;
    }
    if !narrow.contains(['*', '?']) {
        return matches(wide, narrow);
    }
    // `prefix*` covers any pattern that starts with the same literal prefix.
    if let Some(prefix) = wide.strip_suffix('*')
        && !prefix.contains(['*', '?'])
    {
        return narrow.starts_with(prefix);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let cases = [
            ("*", "anything", true),
            ("site.*", "site.publish", true),
            ("site.*", "website.publish", false),
            ("*@example.com", "ann@example.com", true),
            ("*@example.com", "ann@example.com.evil", false),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("*.*", "a.b", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ];
        for (p, t, want) in cases {
            assert_eq!(matches(p, t), want, "{p} vs {t}");
        }
    }

    #[test]
    fn coverage() {
        assert!(covers("*", "site.*"));
        assert!(covers("site.*", "site.publish"));
        assert!(covers("site.*", "site.pub*"));
        assert!(!covers("site.publish", "site.*"));
        assert!(!covers("email.*", "site.*"));
    }

    /// The glob agrees with the equivalent regular expression, and `covers` never claims
    /// coverage that a concrete string disproves (the lint relies on it).
    mod props {
        use proptest::prelude::*;

        fn to_regex(p: &str) -> regex::Regex {
            let mut r = String::from("^");
            for c in p.chars() {
                match c {
                    '*' => r.push_str(".*"),
                    '?' => r.push('.'),
                    c => r.push_str(&regex::escape(&c.to_string())),
                }
            }
            r.push('$');
            regex::Regex::new(&r).unwrap()
        }

        proptest! {
            #[test]
            fn matches_like_a_regex(p in "[ab.*?]{0,6}", t in "[ab.]{0,8}") {
                prop_assert_eq!(super::matches(&p, &t), to_regex(&p).is_match(&t));
            }

            #[test]
            fn covers_is_sound(w in "[ab.*]{0,5}", n in "[ab.*]{0,5}", t in "[ab.]{0,7}") {
                if super::covers(&w, &n) && super::matches(&n, &t) {
                    prop_assert!(super::matches(&w, &t), "{w} covers {n} but not {t}");
                }
            }
        }
    }
}
