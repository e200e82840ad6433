//! Instructions per operation, counted by valgrind's callgrind: single
//! thread, futures polled by hand with a no-op waker, so the count is
//! deterministic and machine noise does not enter it.
//!
//! ```sh
//! cargo bench --bench instructions
//! ```
//!
//! The benchmark re-runs itself under `valgrind --tool=callgrind` once per
//! (workload, library) at two iteration counts, and reports the difference
//! divided by the extra iterations: the steady-state cost of one pair of
//! operations, without setup, teardown or the first allocations. Without
//! valgrind on the machine it says so and exits successfully.

use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::process::Command;
use std::task::{Context, Poll, Waker};

/// Iterations of the short and the long run.
const SHORT: u64 = 1_000;
const LONG: u64 = 11_000;

const CHILD: &str = "SCOPESTREAM_INSTRUCTIONS_CHILD";

type Workload = fn(u64);

/// (workload, [(library, body)]).
fn workloads() -> Vec<(&'static str, Vec<(&'static str, Workload)>)> {
    vec![
        (
            "`try_send` + `try_recv`, buffer 64",
            vec![
                ("scopestream", try_pair::scopestream),
                ("kanal", try_pair::kanal),
                ("flume", try_pair::flume),
                ("tokio mpsc", try_pair::tokio),
                ("async-channel", try_pair::async_channel),
                ("crossbeam", try_pair::crossbeam),
            ],
        ),
        (
            "async `send` + `recv`, both ready, buffer 64",
            vec![
                ("scopestream", ready_pair::scopestream),
                ("kanal", ready_pair::kanal),
                ("flume", ready_pair::flume),
                ("tokio mpsc", ready_pair::tokio),
                ("async-channel", ready_pair::async_channel),
            ],
        ),
        (
            "a `recv` that blocks, then `try_send` wakes it and it completes, buffer 1",
            vec![
                ("scopestream", blocked_recv::scopestream),
                ("kanal", blocked_recv::kanal),
                ("flume", blocked_recv::flume),
                ("tokio mpsc", blocked_recv::tokio),
                ("async-channel", blocked_recv::async_channel),
            ],
        ),
        (
            "ready `recv` inside one long-lived scope",
            vec![("scopestream", scoped::long_lived)],
        ),
        (
            "ready `recv` in a fresh `CancelScope::new().run(..)` each time",
            vec![("scopestream", scoped::fresh)],
        ),
        (
            "ready `recv` under a per-receive timeout: `move_on_after` / `tokio::time::timeout`",
            vec![
                ("scopestream", scoped::timeout),
                ("tokio mpsc", scoped::tokio_timeout),
            ],
        ),
    ]
}

const LIBRARIES: [&str; 6] = [
    "scopestream",
    "kanal",
    "flume",
    "tokio mpsc",
    "async-channel",
    "crossbeam",
];

fn poll<F: Future>(fut: F) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    pin!(fut).poll(&mut cx)
}

mod try_pair {
    use super::black_box;

    pub fn scopestream(n: u64) {
        let (tx, rx) = scopestream::memory_stream::<u64>(64);
        for i in 0..n {
            tx.try_send(black_box(i)).unwrap();
            black_box(rx.try_recv().unwrap());
        }
    }
    pub fn kanal(n: u64) {
        let (tx, rx) = kanal::bounded::<u64>(64);
        for i in 0..n {
            assert!(tx.try_send(black_box(i)).unwrap());
            black_box(rx.try_recv().unwrap());
        }
    }
    pub fn flume(n: u64) {
        let (tx, rx) = flume::bounded::<u64>(64);
        for i in 0..n {
            tx.try_send(black_box(i)).unwrap();
            black_box(rx.try_recv().unwrap());
        }
    }
    pub fn tokio(n: u64) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(64);
        for i in 0..n {
            tx.try_send(black_box(i)).unwrap();
            black_box(rx.try_recv().unwrap());
        }
    }
    pub fn async_channel(n: u64) {
        let (tx, rx) = async_channel::bounded::<u64>(64);
        for i in 0..n {
            tx.try_send(black_box(i)).unwrap();
            black_box(rx.try_recv().unwrap());
        }
    }
    pub fn crossbeam(n: u64) {
        let (tx, rx) = crossbeam_channel::bounded::<u64>(64);
        for i in 0..n {
            tx.try_send(black_box(i)).unwrap();
            black_box(rx.try_recv().unwrap());
        }
    }
}

mod ready_pair {
    use super::{black_box, poll};

    pub fn scopestream(n: u64) {
        let (tx, rx) = scopestream::memory_stream::<u64>(64);
        for i in 0..n {
            assert!(poll(tx.send(black_box(i))).is_ready());
            assert!(black_box(poll(rx.recv())).is_ready());
        }
    }
    pub fn kanal(n: u64) {
        let (tx, rx) = kanal::bounded_async::<u64>(64);
        for i in 0..n {
            assert!(poll(tx.send(black_box(i))).is_ready());
            assert!(black_box(poll(rx.recv())).is_ready());
        }
    }
    pub fn flume(n: u64) {
        let (tx, rx) = flume::bounded::<u64>(64);
        for i in 0..n {
            assert!(poll(tx.send_async(black_box(i))).is_ready());
            assert!(black_box(poll(rx.recv_async())).is_ready());
        }
    }
    pub fn tokio(n: u64) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(64);
        for i in 0..n {
            assert!(poll(tx.send(black_box(i))).is_ready());
            assert!(black_box(poll(rx.recv())).is_ready());
        }
    }
    pub fn async_channel(n: u64) {
        let (tx, rx) = async_channel::bounded::<u64>(64);
        for i in 0..n {
            assert!(poll(tx.send(black_box(i))).is_ready());
            assert!(black_box(poll(rx.recv())).is_ready());
        }
    }
}

mod blocked_recv {
    use std::future::Future;
    use std::pin::pin;
    use std::task::{Context, Waker};

    use super::black_box;

    /// Polls `recv` (pending), lets `send` wake it, polls it to completion.
    fn round<F: Future>(recv: F, send: impl FnOnce()) {
        let mut cx = Context::from_waker(Waker::noop());
        let mut recv = pin!(recv);
        assert!(recv.as_mut().poll(&mut cx).is_pending());
        send();
        assert!(recv.as_mut().poll(&mut cx).is_ready());
    }

    pub fn scopestream(n: u64) {
        let (tx, rx) = scopestream::memory_stream::<u64>(1);
        for i in 0..n {
            round(rx.recv(), || tx.try_send(black_box(i)).unwrap());
        }
    }
    pub fn kanal(n: u64) {
        let (tx, rx) = kanal::bounded_async::<u64>(1);
        for i in 0..n {
            round(rx.recv(), || assert!(tx.try_send(black_box(i)).unwrap()));
        }
    }
    pub fn flume(n: u64) {
        let (tx, rx) = flume::bounded::<u64>(1);
        for i in 0..n {
            round(rx.recv_async(), || tx.try_send(black_box(i)).unwrap());
        }
    }
    pub fn tokio(n: u64) {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1);
        for i in 0..n {
            let tx = &tx;
            round(rx.recv(), move || tx.try_send(black_box(i)).unwrap());
        }
    }
    pub fn async_channel(n: u64) {
        let (tx, rx) = async_channel::bounded::<u64>(1);
        for i in 0..n {
            round(rx.recv(), || tx.try_send(black_box(i)).unwrap());
        }
    }
}

mod scoped {
    use scopestream::CancelScope;

    use super::{black_box, poll};

    pub fn long_lived(n: u64) {
        let (tx, rx) = scopestream::memory_stream::<u64>(64);
        let scope = CancelScope::new();
        for i in 0..n {
            tx.try_send(black_box(i)).unwrap();
            assert!(black_box(poll(scope.run(rx.recv()))).is_ready());
        }
    }
    pub fn fresh(n: u64) {
        let (tx, rx) = scopestream::memory_stream::<u64>(64);
        for i in 0..n {
            tx.try_send(black_box(i)).unwrap();
            assert!(black_box(poll(CancelScope::new().run(rx.recv()))).is_ready());
        }
    }
    pub fn timeout(n: u64) {
        let (tx, rx) = scopestream::memory_stream::<u64>(64);
        for i in 0..n {
            tx.try_send(black_box(i)).unwrap();
            let out = poll(scopestream::move_on_after(FAR, rx.recv()));
            assert!(black_box(out).is_ready());
        }
    }
    pub fn tokio_timeout(n: u64) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let _in_runtime = rt.enter();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(64);
        for i in 0..n {
            tx.try_send(black_box(i)).unwrap();
            let out = poll(tokio::time::timeout(FAR, rx.recv()));
            assert!(black_box(out).is_ready());
        }
    }

    /// A timeout that never fires: its cost on the ready path alone.
    const FAR: std::time::Duration = std::time::Duration::from_secs(5);
}

/// Instructions executed by this binary running `workload`/`library` for
/// `n` iterations under callgrind.
fn count(workload: usize, library: usize, n: u64) -> Option<u64> {
    let exe = std::env::current_exe().ok()?;
    let out = Command::new("valgrind")
        .args(["--tool=callgrind", "--callgrind-out-file=/dev/null"])
        .arg(exe)
        .env(CHILD, format!("{workload}:{library}:{n}"))
        .output()
        .ok()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stderr.lines().find(|l| l.contains("Collected :"))?;
    line.rsplit(':').next()?.trim().parse().ok()
}

fn main() {
    let table = workloads();
    if let Ok(spec) = std::env::var(CHILD) {
        let mut parts = spec.split(':').map(|p| p.parse::<u64>().unwrap());
        let (w, l, n) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        (table[w as usize].1[l as usize].1)(n);
        return;
    }
    if Command::new("valgrind").arg("--version").output().is_err() {
        println!("valgrind is not installed: no instruction counts");
        return;
    }
    // `cargo bench` passes `--bench`; a filter argument selects workloads.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    println!("# Instructions per operation pair (callgrind, single thread, no-op waker)\n");
    print!("| workload |");
    for lib in LIBRARIES {
        print!(" {lib} |");
    }
    println!();
    println!("|---{}|", "|---".repeat(LIBRARIES.len()));
    for (w, (name, libs)) in table.iter().enumerate() {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        let mut cells = vec![String::new(); LIBRARIES.len()];
        for (l, (lib, _)) in libs.iter().enumerate() {
            let (Some(short), Some(long)) = (count(w, l, SHORT), count(w, l, LONG)) else {
                cells[0] = "callgrind gave no count".into();
                continue;
            };
            let per_op = long.saturating_sub(short) / (LONG - SHORT);
            let col = LIBRARIES.iter().position(|x| x == lib).unwrap();
            cells[col] = per_op.to_string();
        }
        println!("| {name} | {} |", cells.join(" | "));
    }
}
