//! The situation that deadlocked AnyIO 4.4, on tokio.
//!
//! A worker streams progress reports to a collector over a rendezvous memory
//! stream. The worker's task group is cancelled from outside while the whole
//! application shuts down (the collector's scope is cancelled too). Both sides
//! then run cleanup code under a *shielded* scope: the collector waits for one
//! final report, and the worker sends it.
//!
//! AnyIO 4.4's `send_nowait` skipped a waiting receiver whose task "had a
//! pending cancellation", judging from the task rather than from the
//! receiver's (shielded) scope: the report was never delivered, the shielded
//! collector waited forever. Here deliverability is decided at delivery time
//! from the receiver's live scope chain, so the shielded collector is served.
//!
//! Run with `cargo run --example shielded_cleanup`.

use std::process::ExitCode;
use std::time::Duration;

use scopestream::{checkpoint, memory_stream, CancelScope, RecvError, TrySendError};

#[tokio::main]
async fn main() -> ExitCode {
    let (tx, rx) = memory_stream::<String>(0);
    let task_group = CancelScope::new();
    let shutdown = CancelScope::new();

    let collector = tokio::spawn(shutdown.run(async move {
        loop {
            match rx.recv().await {
                Ok(report) => println!("collector: {report}"),
                Err(RecvError::Cancelled) => break,
                Err(other) => return Err(other),
            }
        }
        let outer = CancelScope::current();
        println!("collector: shutting down (scope cancelled: {}); waiting for the final report under a shield", outer.is_cancelled());
        CancelScope::shielded().run(rx.recv()).await
    }));

    let worker = tokio::spawn(task_group.child().run(async move {
        let mut sent = 0;
        while checkpoint().await.is_ok() {
            if tx
                .send(format!("progress report {}", sent + 1))
                .await
                .is_err()
            {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        println!("worker: cancelled after {sent} reports; cleanup runs under a shield");
        CancelScope::shielded()
            .run(async {
                // Wait until the collector is blocked in its shielded receive:
                // exactly the moment AnyIO 4.4 got wrong.
                while tx.statistics().tasks_waiting_receive == 0 {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                println!(
                    "worker: collector waiting and counted as deliverable: {:?}",
                    tx.statistics()
                );
                match tx.try_send("final report".to_owned()) {
                    Ok(()) => {
                        println!(
                            "worker: try_send handed the final report to the shielded collector"
                        );
                        Ok(())
                    }
                    Err(TrySendError::Full(report)) => {
                        tx.send(report).await.map_err(|e| e.to_string())
                    }
                    Err(other) => Err(other.to_string()),
                }
            })
            .await
    }));

    tokio::time::sleep(Duration::from_millis(150)).await;
    println!("main: cancelling the worker's task group and shutting down");
    task_group.cancel();
    shutdown.cancel();

    let deadline = Duration::from_secs(5);
    let worker = tokio::time::timeout(deadline, worker).await;
    let collector = tokio::time::timeout(deadline, collector).await;
    match (worker, collector) {
        (Ok(Ok(Ok(()))), Ok(Ok(Ok(report)))) => {
            println!("collector: received {report:?}");
            println!("done: the final report was delivered; no deadlock");
            ExitCode::SUCCESS
        }
        (worker, collector) => {
            println!("FAILED: worker {worker:?}, collector {collector:?}");
            ExitCode::FAILURE
        }
    }
}
