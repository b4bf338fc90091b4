//! One integration-test binary (each extra binary costs a link on a 2-core machine).
//! Each module covers one capability and uses only public APIs or the real `keel` binary.

mod memory;
mod support;
mod workspace;
