//! Short-term memory: the running task's context. A plain value handed to the run; it is
//! never written to the knowledge base, only serialised into the run's checkpoint by the
//! agent runtime, so a resumed run continues with exactly the context it had.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::search::SearchHit;

/// One entry of a run's working context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContextEntry {
    /// A note the run keeps (an observation, a partial result).
    Note { text: String },
    /// Memory the run retrieved (with the retrieval id that records its provenance).
    Retrieved {
        retrieval: String,
        hits: Vec<SearchHit>,
    },
}

/// The context of one run, bounded so a long run cannot grow it without limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShortTermMemory {
    pub run_id: String,
    pub entries: Vec<ContextEntry>,
    /// Oldest entries are dropped beyond this many.
    pub capacity: usize,
}

impl ShortTermMemory {
    #[must_use]
    pub fn new(run_id: impl Into<String>, capacity: usize) -> Self {
        ShortTermMemory {
            run_id: run_id.into(),
            entries: Vec::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn note(&mut self, text: impl Into<String>) {
        self.push(ContextEntry::Note { text: text.into() });
    }

    pub fn retrieved(&mut self, retrieval: &super::retrieval::Retrieval) {
        self.push(ContextEntry::Retrieved {
            retrieval: retrieval.id.clone(),
            hits: retrieval.hits.clone(),
        });
    }

    fn push(&mut self, entry: ContextEntry) {
        self.entries.push(entry);
        if self.entries.len() > self.capacity {
            let excess = self.entries.len() - self.capacity;
            self.entries.drain(..excess);
        }
    }

    /// The context as prompt text, oldest first.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        for e in &self.entries {
            match e {
                ContextEntry::Note { text } => {
                    out.push_str("- ");
                    out.push_str(text);
                    out.push('\n');
                }
                ContextEntry::Retrieved { hits, .. } => {
                    for h in hits {
                        let _ = writeln!(
                            out,
                            "- [memory {} v{}] {}",
                            h.item, h.item_version, h.preview
                        );
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_and_round_trips_through_a_checkpoint() {
        let mut m = ShortTermMemory::new("run-1", 2);
        m.note("a");
        m.note("b");
        m.note("c");
        assert_eq!(m.entries.len(), 2);
        assert_eq!(m.render(), "- b\n- c\n");
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<ShortTermMemory>(&json).unwrap(), m);
    }
}
