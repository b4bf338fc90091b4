//! A provider that answers only from recorded calls (by request hash) and never touches the
//! network: what `keel runs replay` runs against.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use super::{ChatRequest, ChatResponse, DeltaSink, LlmError, Price, Provider};

/// Recorded answers keyed by request hash; the same request asked twice gets its answers
/// in the recorded order.
pub type Recordings = Arc<Mutex<BTreeMap<String, VecDeque<ChatResponse>>>>;

#[derive(Debug, Clone)]
pub struct Recorded {
    name: String,
    model: String,
    calls: Recordings,
}

impl Recorded {
    #[must_use]
    pub fn new(name: &str, model: &str, calls: Recordings) -> Self {
        Recorded {
            name: name.to_string(),
            model: model.to_string(),
            calls,
        }
    }
}

impl Provider for Recorded {
    fn name(&self) -> &str {
        &self.name
    }
    fn kind(&self) -> &'static str {
        "recorded"
    }
    fn model(&self) -> &str {
        &self.model
    }
    fn price(&self) -> Price {
        Price::default()
    }
    fn chat<'a>(
        &'a self,
        req: &'a ChatRequest,
        sink: DeltaSink<'a>,
        _cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<ChatResponse, LlmError>> {
        Box::pin(async move {
            let hash = req.hash(&self.name);
            let found = self
                .calls
                .lock()
                .map_err(|_| LlmError::NotRecorded {
                    request_hash: hash.clone(),
                })?
                .get_mut(&hash)
                .and_then(VecDeque::pop_front);
            let resp = found.ok_or(LlmError::NotRecorded { request_hash: hash })?;
            sink(&resp.text);
            Ok(resp)
        })
    }
}
