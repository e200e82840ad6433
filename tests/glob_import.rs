//! `use scopestream::*;` is harmless: no name it brings in shadows one of
//! std's prelude (the send future is `SendFuture`, not `Send`).

#![cfg(not(feature = "loom"))]

use scopestream::*;

fn spawnable<T: Send + 'static>(_: &T) {}

#[test]
fn a_glob_import_leaves_the_send_marker_trait_alone() {
    let (tx, rx) = memory_stream::<u32>(1);
    spawnable(&tx.send_owned(1));
    spawnable(&rx.recv_owned());
    let send: SendFuture<'_, u32> = tx.send(2);
    assert_eq!(futures::executor::block_on(send), Ok(()));
    assert_eq!(rx.try_recv(), Ok(2));
}
