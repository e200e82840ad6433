//! A plain sequential model of SPEC S1–S6, S8 and S12, driven side by side
//! with the real stream by random single-threaded operation sequences:
//! `try_send`, `try_recv`, receives through the `Stream` implementation that
//! wait and are later polled or abandoned, `close`, `clone`, dropping handles,
//! and `statistics`. Every step must give identical results and statistics.
//! The model lives in `tests/model/`, shared with the fuzz target.

#![cfg(not(feature = "loom"))]

mod model;

use model::{run, Op, CAPACITIES};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => any::<usize>().prop_map(Op::TrySend),
        3 => any::<usize>().prop_map(Op::TryRecv),
        4 => any::<usize>().prop_map(Op::PollNext),
        1 => any::<usize>().prop_map(Op::CloseSender),
        1 => any::<usize>().prop_map(Op::CloseReceiver),
        1 => any::<usize>().prop_map(Op::CloneSender),
        1 => any::<usize>().prop_map(Op::CloneReceiver),
        1 => any::<usize>().prop_map(Op::DropSender),
        1 => any::<usize>().prop_map(Op::DropReceiver),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn matches_the_sequential_model(
        capacity in proptest::sample::select(CAPACITIES.to_vec()),
        ops in proptest::collection::vec(op(), 1..120),
    ) {
        run(capacity, ops).map_err(TestCaseError::fail)?;
    }
}

#[test]
fn decodes_fuzzer_bytes() {
    let (capacity, ops) = model::decode(&[4, 0, 7, 2, 1, 8]);
    assert_eq!(capacity, None);
    assert_eq!(ops.len(), 2, "a trailing odd byte is ignored");
    assert!(matches!(ops[0], Op::TrySend(7)) && matches!(ops[1], Op::PollNext(1)));
    run(capacity, ops).unwrap();
}
