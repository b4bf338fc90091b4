//! The core: state, orchestration, memory, agents and side effects. No terminal types here.

pub mod audit;
pub mod canonical;
pub mod clock;
pub mod config;
pub mod effects;
pub mod error;
pub mod handle;
pub mod ids;
pub mod memory;
pub mod model_assets;
pub mod objects;
pub mod redact;
pub mod store;
pub mod workspace;

pub use error::{Error, Result};
