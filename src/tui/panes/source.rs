//! What a pane loads from the core: the query that asks for it and the typed answer that
//! fills it. [`Feed::deliver`] takes the payload out of the core's [`Answer`] — no decoding,
//! the answer already is the type the pane shows.

use crate::protocol::{Answer, Op, UnexpectedAnswer};

/// One thing the console loads: a pane's list, or a part of a pane (an object's history).
pub trait Source {
    /// What the core answers to [`Source::query`].
    type Answer: TryFrom<Answer, Error = UnexpectedAnswer>;

    /// The request for what is shown now (marking it in flight); None: nothing to ask yet.
    fn query(&mut self) -> Option<Op>;

    fn fill(&mut self, answer: Self::Answer);

    /// Shows a failure calmly where the answer would have gone.
    fn fail(&mut self, message: String);

    /// A request is in flight: a change arriving now reloads once it lands.
    fn loading(&self) -> bool {
        false
    }

    /// Whether a change should reload it (a screen never opened stays unloaded).
    fn wants_reload(&self) -> bool {
        true
    }
}

/// A [`Source`] whose answer type is hidden, so the app can hold any of them alike.
pub trait Feed {
    fn query(&mut self) -> Option<Op>;
    /// Fills the source with the answer's payload, or shows why not; true when it was filled.
    fn deliver(&mut self, result: Result<Answer, String>) -> bool;
    fn loading(&self) -> bool;
    fn wants_reload(&self) -> bool;
}

impl<S: Source> Feed for S {
    fn query(&mut self) -> Option<Op> {
        Source::query(self)
    }

    fn deliver(&mut self, result: Result<Answer, String>) -> bool {
        let payload = result.and_then(|a| S::Answer::try_from(a).map_err(|e| e.to_string()));
        match payload {
            Ok(answer) => {
                self.fill(answer);
                true
            }
            Err(message) => {
                self.fail(message);
                false
            }
        }
    }

    fn loading(&self) -> bool {
        Source::loading(self)
    }

    fn wants_reload(&self) -> bool {
        Source::wants_reload(self)
    }
}

#[cfg(test)]
mod tests {
    use super::{Feed, Source};
    use crate::protocol::{Answer, Op, Page, TaskRow};

    /// A source that records what it was given.
    #[derive(Default)]
    struct Recorder {
        filled: Option<Page<TaskRow>>,
        failed: Option<String>,
    }

    impl Source for Recorder {
        type Answer = Page<TaskRow>;

        fn query(&mut self) -> Option<Op> {
            None
        }

        fn fill(&mut self, answer: Page<TaskRow>) {
            self.filled = Some(answer);
        }

        fn fail(&mut self, message: String) {
            self.failed = Some(message);
        }
    }

    #[test]
    fn an_answer_is_decoded_into_its_type_once_or_shown_as_a_failure() {
        let page = Page {
            items: vec![TaskRow::default(), TaskRow::default()],
            total: 2,
        };
        let mut ok = Recorder::default();
        assert!(ok.deliver(Ok(Answer::Tasks(page.clone()))));
        assert_eq!(ok.filled, Some(page));

        let mut wrong_shape = Recorder::default();
        assert!(!wrong_shape.deliver(Ok(Answer::Objects(Page::default()))));
        assert!(
            wrong_shape
                .failed
                .as_deref()
                .is_some_and(|m| m.starts_with("unexpected answer from the core"))
        );

        let mut refused = Recorder::default();
        assert!(!refused.deliver(Err("no such run".into())));
        assert_eq!(refused.failed.as_deref(), Some("no such run"));
        assert!(refused.filled.is_none());
    }
}
