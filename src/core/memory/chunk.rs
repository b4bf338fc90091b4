//! Chunking: long texts are cut into overlapping windows of words that fit the model's
//! 256-token input (about 180 English words), so no part of a long text goes unindexed.

/// Words per chunk (about 256 word-piece tokens for English prose).
pub const CHUNK_WORDS: usize = 180;
/// Words shared by consecutive chunks, so a sentence cut at a boundary is still found.
pub const OVERLAP_WORDS: usize = 30;

/// Splits `text` into chunks. A text that fits is one chunk, returned unchanged.
#[must_use]
pub fn chunk(text: &str) -> Vec<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() <= CHUNK_WORDS {
        return vec![text.trim().to_string()];
    }
    let step = CHUNK_WORDS - OVERLAP_WORDS;
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let end = (start + CHUNK_WORDS).min(words.len());
        out.push(words[start..end].join(" "));
        if end == words.len() {
            break;
        }
        start += step;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(chunk("  hello world \n"), vec!["hello world".to_string()]);
    }

    #[test]
    fn long_text_overlaps_and_covers_every_word() {
        let words: Vec<String> = (0..500).map(|i| format!("w{i}")).collect();
        let chunks = chunk(&words.join(" "));
        assert_eq!(chunks.len(), 4);
        assert!(chunks[0].ends_with("w179"));
        assert!(chunks[1].starts_with("w150 "));
        assert!(chunks.last().unwrap().ends_with("w499"));
        for w in &words {
            assert!(
                chunks.iter().any(|c| c.split(' ').any(|x| x == w)),
                "{w} lost"
            );
        }
    }
}
