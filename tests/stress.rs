//! Accounting stress test (SPEC S7): producers and consumers on a
//! multi-thread runtime while other tasks cancel scopes, toggle shields, set
//! and move deadlines (some already past, some racing the operation),
//! drop futures mid-wait (`select!` against a short timer) and close clones.
//! An exact ledger then proves every unique item ended exactly once.
//!
//! `SCOPESTREAM_SOAK=<seconds>` repeats the whole run for that long.

#![cfg(not(feature = "loom"))]

mod common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::stream;
use scopestream::{CancelScope, MemoryReceiver, MemorySender, RecvError, SendError};

#[derive(Default)]
struct Entry {
    received: AtomicUsize,
    returned: AtomicUsize,
    send_dropped: AtomicUsize,
    buffered: AtomicUsize,
    drops: AtomicUsize,
}

struct Ledger {
    entries: Vec<Entry>,
}

struct Item {
    id: usize,
    ledger: Arc<Ledger>,
}

impl Drop for Item {
    fn drop(&mut self) {
        self.ledger.entries[self.id].drops.fetch_add(1, SeqCst);
    }
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    received: usize,
    returned: usize,
    send_future_dropped: usize,
    buffered: usize,
}

const PRODUCERS: usize = 3;
const CONSUMERS: usize = 3;
const PER_PRODUCER: usize = 3000;

async fn run(size: Option<usize>, seed: u64) -> Totals {
    let total = PRODUCERS * PER_PRODUCER;
    let ledger = Arc::new(Ledger {
        entries: (0..total).map(|_| Entry::default()).collect(),
    });
    let (tx, rx): (MemorySender<Item>, MemoryReceiver<Item>) = stream(size);
    // Scopes and receiver clones the chaos task may hit.
    let scopes: Arc<Mutex<Vec<CancelScope>>> = Arc::default();
    let clones: Arc<Mutex<Vec<Arc<MemoryReceiver<Item>>>>> = Arc::default();
    let producers_done = Arc::new(AtomicBool::new(false));

    let mut producers = Vec::new();
    for p in 0..PRODUCERS {
        let (tx, ledger, scopes) = (tx.clone(), ledger.clone(), scopes.clone());
        producers.push(tokio::spawn(async move {
            let mut rng = Rng(seed ^ ((p as u64 + 1) * 0x9E37_79B9));
            for i in 0..PER_PRODUCER {
                let id = p * PER_PRODUCER + i;
                let item = Item {
                    id,
                    ledger: ledger.clone(),
                };
                let scope = CancelScope::new();
                scopes.lock().unwrap().push(scope.clone());
                if rng.below(20) == 0 {
                    scope.cancel(); // level-triggered: the send must not happen
                } else if rng.below(8) == 0 {
                    // A deadline racing this very send.
                    scope.set_deadline(Some(Instant::now() + micros(rng.below(400))));
                } else if rng.below(6) == 0 {
                    // A cancel racing this very send.
                    let (scope, yields) = (scope.clone(), rng.below(4));
                    tokio::spawn(async move {
                        for _ in 0..yields {
                            tokio::task::yield_now().await;
                        }
                        scope.cancel();
                    });
                }
                let timer = Duration::from_millis(rng.below(3));
                tokio::select! {
                    result = scope.run(tx.send(item)) => match result {
                        Ok(()) => {}
                        Err(SendError::Cancelled(item)) => {
                            ledger.entries[item.id].returned.fetch_add(1, SeqCst);
                        }
                        Err(other) => panic!("unexpected send error {other:?}"),
                    },
                    _ = tokio::time::sleep(timer) => {
                        ledger.entries[id].send_dropped.fetch_add(1, SeqCst);
                    }
                }
            }
        }));
    }
    drop(tx);

    let mut consumers = Vec::new();
    for c in 0..CONSUMERS {
        let (rx, ledger, scopes, clones) =
            (rx.clone(), ledger.clone(), scopes.clone(), clones.clone());
        consumers.push(tokio::spawn(async move {
            let mut rng = Rng(seed ^ ((c as u64 + 11) * 0x85EB_CA6B));
            let mut mine = Arc::new(rx.clone());
            clones.lock().unwrap().push(mine.clone());
            loop {
                let scope = CancelScope::new();
                if rng.below(4) == 0 {
                    scope.set_shield(true);
                }
                if rng.below(6) == 0 {
                    scope.set_deadline(Some(Instant::now() + micros(rng.below(400))));
                }
                scopes.lock().unwrap().push(scope.clone());
                if rng.below(30) == 0 {
                    // Fall behind for a moment, so that senders block.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                let result = if rng.below(4) == 0 {
                    // Start the receive, give senders a moment to commit an
                    // item to it, then drop it: the item must go back.
                    let mut recv = std::pin::pin!(scope.run(mine.recv()));
                    match futures::poll!(recv.as_mut()) {
                        std::task::Poll::Ready(result) => Some(result),
                        std::task::Poll::Pending => {
                            for _ in 0..rng.below(3) {
                                tokio::task::yield_now().await;
                            }
                            None
                        }
                    }
                } else {
                    let timer = Duration::from_millis(rng.below(3));
                    tokio::select! {
                        result = scope.run(mine.recv()) => Some(result),
                        _ = tokio::time::sleep(timer) => None,
                    }
                };
                match result {
                    Some(Ok(item)) => {
                        ledger.entries[item.id].received.fetch_add(1, SeqCst);
                    }
                    Some(Err(RecvError::Cancelled)) | None => {}
                    Some(Err(RecvError::Closed)) => {
                        mine = Arc::new(rx.clone());
                        clones.lock().unwrap().push(mine.clone());
                    }
                    Some(Err(RecvError::EndOfStream)) => break,
                }
            }
        }));
    }

    let chaos = {
        let (scopes, clones, done) = (scopes.clone(), clones.clone(), producers_done.clone());
        tokio::spawn(async move {
            let mut rng = Rng(seed ^ 0xC0FF_EE00);
            while !done.load(SeqCst) {
                {
                    let scopes = scopes.lock().unwrap();
                    if !scopes.is_empty() {
                        let scope = &scopes[rng.below(scopes.len() as u64) as usize];
                        match rng.below(5) {
                            0 => scope.cancel(),
                            1 => scope.set_shield(!scope.is_shielded()),
                            // Move a deadline earlier (possibly into the
                            // past) or later, while operations are blocked.
                            2 => scope.set_deadline(Some(Instant::now() + micros(rng.below(200)))),
                            3 => {
                                scope.set_deadline(Some(Instant::now() + Duration::from_secs(3600)))
                            }
                            _ => {}
                        }
                    }
                }
                if rng.below(20) == 0 {
                    let clones = clones.lock().unwrap();
                    if !clones.is_empty() {
                        clones[rng.below(clones.len() as u64) as usize].close();
                    }
                }
                {
                    let mut scopes = scopes.lock().unwrap();
                    if scopes.len() > 256 {
                        scopes.drain(..128);
                    }
                }
                tokio::task::yield_now().await;
            }
        })
    };

    for producer in producers {
        producer.await.unwrap();
    }
    producers_done.store(true, SeqCst);
    chaos.await.unwrap();
    // Let blocked consumers see the end: no scope can be cancelled any more.
    for consumer in consumers {
        tokio::time::timeout(Duration::from_secs(30), consumer)
            .await
            .expect("a consumer never saw the end of the stream")
            .unwrap();
    }

    while let Ok(item) = rx.try_recv() {
        item.ledger.entries[item.id].buffered.fetch_add(1, SeqCst);
    }
    assert_eq!(rx.statistics().tasks_waiting_receive, 0);
    drop(rx);
    scopes.lock().unwrap().clear();
    clones.lock().unwrap().clear();

    let mut totals = Totals::default();
    for (id, entry) in ledger.entries.iter().enumerate() {
        let received = entry.received.load(SeqCst);
        let returned = entry.returned.load(SeqCst);
        let buffered = entry.buffered.load(SeqCst);
        let send_dropped = entry.send_dropped.load(SeqCst);
        let drops = entry.drops.load(SeqCst);
        assert_eq!(drops, 1, "item {id} dropped {drops} times");
        assert!(
            received + returned + buffered <= 1,
            "item {id}: received {received}, returned {returned}, buffered {buffered}"
        );
        if received == 1 {
            totals.received += 1;
        } else if returned == 1 {
            totals.returned += 1;
        } else if buffered == 1 {
            totals.buffered += 1;
        } else {
            // Not received, not returned, not in the stream: it must have
            // been dropped with its own send future.
            assert_eq!(send_dropped, 1, "item {id} is unaccounted for");
            totals.send_future_dropped += 1;
        }
    }
    assert_eq!(
        totals.received + totals.returned + totals.send_future_dropped + totals.buffered,
        total,
        "every item ended exactly once: {totals:?}"
    );
    totals
}

fn micros(n: u64) -> Duration {
    Duration::from_micros(n)
}

#[test]
fn accounting_under_chaos() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let soak = std::env::var("SCOPESTREAM_SOAK")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_secs);
    let start = Instant::now();
    let mut round = 0u64;
    loop {
        for size in [Some(0), Some(1), Some(16), None] {
            let totals = runtime.block_on(run(size, 0x5EED + round));
            println!(
                "ledger (buffer {size:?}): received {}, returned in errors {}, dropped with their send futures {}, still buffered {}",
                totals.received, totals.returned, totals.send_future_dropped, totals.buffered
            );
        }
        round += 1;
        match soak {
            Some(limit) if start.elapsed() < limit => continue,
            _ => break,
        }
    }
}
