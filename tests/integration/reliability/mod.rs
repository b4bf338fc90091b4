//! Reliability and security (issue 10): crash torture, fuzzing, concurrency, disk faults,
//! secrets and permissions. Each file covers one concern.

mod concurrency;
mod concurrency_console;
mod disk;
mod fuzz;
mod fuzz_inputs;
mod fuzz_llm;
mod security;
mod torture;
