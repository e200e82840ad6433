//! Drives the stream and the sequential reference model of
//! `tests/model/` with fuzzer-chosen operation sequences (the same model the
//! proptest in `tests/reference_model.rs` uses); any divergence in a result
//! or in the statistics is a crash.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run reference_model -s none` on a stable
//! toolchain (no sanitizer; the model checks behaviour, not memory).

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/model/mod.rs"]
mod model;

fuzz_target!(|data: &[u8]| {
    let (capacity, ops) = model::decode(data);
    if let Err(mismatch) = model::run(capacity, ops) {
        panic!("stream and model diverge: {mismatch}");
    }
});
