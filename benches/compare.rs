//! Side-by-side comparison with async-channel, flume, kanal and tokio's mpsc
//! (and crossbeam-channel and std's `sync_channel` for the blocking API),
//! measured in one run and printed as Markdown tables.
//!
//! ```sh
//! cargo bench --bench compare                 # everything (a few minutes)
//! cargo bench --bench compare -- spsc churn   # only scenarios whose name contains a filter
//! ```
//!
//! Every cell is the median of `SAMPLES` runs of the whole scenario, divided
//! by the number of messages (round trips for ping-pong, iterations for churn).
//! The message count of a scenario is calibrated once, on scopestream, so
//! that a run takes about `TARGET`; every library then moves the same count.
//! "ratio" is scopestream's time over the best peer's: below 1.00 we are
//! faster. A blank cell: the library has no such configuration (tokio's
//! mpsc has one consumer and no rendezvous; async-channel and std have no
//! rendezvous or no MPMC).

use std::future::Future;
use std::time::{Duration, Instant};

const SAMPLES: usize = 11;
const TARGET: Duration = Duration::from_millis(25);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cap {
    Bounded(usize),
    Unbounded,
}

impl std::fmt::Display for Cap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cap::Bounded(n) => write!(f, "{n}"),
            Cap::Unbounded => f.write_str("unbounded"),
        }
    }
}

const CAPS: [Cap; 4] = [
    Cap::Bounded(0),
    Cap::Bounded(1),
    Cap::Bounded(64),
    Cap::Unbounded,
];

/// (name, producers, consumers)
const TOPOLOGIES: [(&str, usize, usize); 3] =
    [("SPSC", 1, 1), ("MPSC 4", 4, 1), ("MPMC 4x4", 4, 4)];

// ---------------------------------------------------------------------------
// Async channels behind one interface.

trait AsyncChan: 'static {
    type Tx: Clone + Send + Sync + 'static;
    type Rx: Send + 'static;
    /// `None`: the library has no such channel.
    fn new(cap: Cap) -> Option<(Self::Tx, Self::Rx)>;
    /// `consumers` receiving handles; `None` if only one is possible.
    fn split(rx: Self::Rx, consumers: usize) -> Option<Vec<Self::Rx>>;
    fn send(tx: &Self::Tx, v: u64) -> impl Future<Output = ()> + Send;
    fn recv(rx: &mut Self::Rx) -> impl Future<Output = Option<u64>> + Send;
}

fn clone_n<R: Clone>(rx: R, n: usize) -> Option<Vec<R>> {
    Some((0..n).map(|_| rx.clone()).collect())
}

struct Ours;
impl AsyncChan for Ours {
    type Tx = scopestream::MemorySender<u64>;
    type Rx = scopestream::MemoryReceiver<u64>;
    fn new(cap: Cap) -> Option<(Self::Tx, Self::Rx)> {
        Some(match cap {
            Cap::Bounded(n) => scopestream::memory_stream(n),
            Cap::Unbounded => scopestream::unbounded_memory_stream(),
        })
    }
    fn split(rx: Self::Rx, n: usize) -> Option<Vec<Self::Rx>> {
        clone_n(rx, n)
    }
    async fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).await.unwrap()
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().await.ok()
    }
}

struct AsyncChannel;
impl AsyncChan for AsyncChannel {
    type Tx = async_channel::Sender<u64>;
    type Rx = async_channel::Receiver<u64>;
    fn new(cap: Cap) -> Option<(Self::Tx, Self::Rx)> {
        match cap {
            Cap::Bounded(0) => None, // capacity must be positive
            Cap::Bounded(n) => Some(async_channel::bounded(n)),
            Cap::Unbounded => Some(async_channel::unbounded()),
        }
    }
    fn split(rx: Self::Rx, n: usize) -> Option<Vec<Self::Rx>> {
        clone_n(rx, n)
    }
    async fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).await.unwrap()
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().await.ok()
    }
}

struct Flume;
impl AsyncChan for Flume {
    type Tx = flume::Sender<u64>;
    type Rx = flume::Receiver<u64>;
    fn new(cap: Cap) -> Option<(Self::Tx, Self::Rx)> {
        Some(match cap {
            Cap::Bounded(n) => flume::bounded(n),
            Cap::Unbounded => flume::unbounded(),
        })
    }
    fn split(rx: Self::Rx, n: usize) -> Option<Vec<Self::Rx>> {
        clone_n(rx, n)
    }
    async fn send(tx: &Self::Tx, v: u64) {
        tx.send_async(v).await.unwrap()
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv_async().await.ok()
    }
}

struct Kanal;
impl AsyncChan for Kanal {
    type Tx = kanal::AsyncSender<u64>;
    type Rx = kanal::AsyncReceiver<u64>;
    fn new(cap: Cap) -> Option<(Self::Tx, Self::Rx)> {
        Some(match cap {
            Cap::Bounded(n) => kanal::bounded_async(n),
            Cap::Unbounded => kanal::unbounded_async(),
        })
    }
    fn split(rx: Self::Rx, n: usize) -> Option<Vec<Self::Rx>> {
        clone_n(rx, n)
    }
    async fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).await.unwrap()
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        rx.recv().await.ok()
    }
}

struct TokioMpsc;
#[derive(Clone)]
enum TokioTx {
    Bounded(tokio::sync::mpsc::Sender<u64>),
    Unbounded(tokio::sync::mpsc::UnboundedSender<u64>),
}
enum TokioRx {
    Bounded(tokio::sync::mpsc::Receiver<u64>),
    Unbounded(tokio::sync::mpsc::UnboundedReceiver<u64>),
}
impl AsyncChan for TokioMpsc {
    type Tx = TokioTx;
    type Rx = TokioRx;
    fn new(cap: Cap) -> Option<(Self::Tx, Self::Rx)> {
        match cap {
            Cap::Bounded(0) => None, // no rendezvous
            Cap::Bounded(n) => {
                let (tx, rx) = tokio::sync::mpsc::channel(n);
                Some((TokioTx::Bounded(tx), TokioRx::Bounded(rx)))
            }
            Cap::Unbounded => {
                let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
                Some((TokioTx::Unbounded(tx), TokioRx::Unbounded(rx)))
            }
        }
    }
    fn split(rx: Self::Rx, n: usize) -> Option<Vec<Self::Rx>> {
        (n == 1).then(|| vec![rx])
    }
    async fn send(tx: &Self::Tx, v: u64) {
        match tx {
            TokioTx::Bounded(tx) => tx.send(v).await.unwrap(),
            TokioTx::Unbounded(tx) => tx.send(v).unwrap(),
        }
    }
    async fn recv(rx: &mut Self::Rx) -> Option<u64> {
        match rx {
            TokioRx::Bounded(rx) => rx.recv().await,
            TokioRx::Unbounded(rx) => rx.recv().await,
        }
    }
}

// ---------------------------------------------------------------------------
// Runtimes and scenarios.

#[derive(Clone, Copy)]
enum Rt {
    MultiThread,
    CurrentThread,
}

impl Rt {
    fn name(self) -> &'static str {
        match self {
            Rt::MultiThread => "tokio multi-thread (2 workers)",
            Rt::CurrentThread => "tokio current-thread",
        }
    }

    fn build(self) -> tokio::runtime::Runtime {
        match self {
            Rt::MultiThread => tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build(),
            Rt::CurrentThread => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
        }
        .unwrap()
    }
}

/// `producers` tasks send `messages` in all; `consumers` tasks drain until
/// the stream ends. `None` if the library cannot do it.
fn run_pipeline<C: AsyncChan>(
    rt: &tokio::runtime::Runtime,
    cap: Cap,
    producers: usize,
    consumers: usize,
    messages: usize,
) -> Option<Duration> {
    let (tx, rx) = C::new(cap)?;
    let rxs = C::split(rx, consumers)?;
    Some(rt.block_on(async move {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for p in 0..producers {
            let tx = tx.clone();
            let n = messages / producers + usize::from(p < messages % producers);
            tasks.push(tokio::spawn(async move {
                for i in 0..n {
                    C::send(&tx, i as u64).await;
                }
                0
            }));
        }
        drop(tx);
        for mut rx in rxs {
            tasks.push(tokio::spawn(async move {
                let mut got = 0;
                while C::recv(&mut rx).await.is_some() {
                    got += 1;
                }
                got
            }));
        }
        let mut received = 0;
        for task in tasks {
            received += task.await.unwrap();
        }
        assert_eq!(received, messages);
        start.elapsed()
    }))
}

/// Two streams, one item in flight: `rounds` round trips.
fn run_ping_pong<C: AsyncChan>(
    rt: &tokio::runtime::Runtime,
    cap: Cap,
    rounds: usize,
) -> Option<Duration> {
    let (ping_tx, mut ping_rx) = C::new(cap)?;
    let (pong_tx, mut pong_rx) = C::new(cap)?;
    Some(rt.block_on(async move {
        let start = Instant::now();
        let echo = tokio::spawn(async move {
            while let Some(v) = C::recv(&mut ping_rx).await {
                C::send(&pong_tx, v).await;
            }
        });
        for i in 0..rounds {
            C::send(&ping_tx, i as u64).await;
            assert_eq!(C::recv(&mut pong_rx).await, Some(i as u64));
        }
        drop(ping_tx);
        echo.await.unwrap();
        start.elapsed()
    }))
}

// ---------------------------------------------------------------------------
// Blocking channels.

trait SyncChan: 'static {
    type Tx: Clone + Send + 'static;
    type Rx: Send + 'static;
    fn new(cap: Cap) -> Option<(Self::Tx, Self::Rx)>;
    fn split(rx: Self::Rx, consumers: usize) -> Option<Vec<Self::Rx>>;
    fn send(tx: &Self::Tx, v: u64);
    fn recv(rx: &Self::Rx) -> Option<u64>;
}

struct OursBlocking;
impl SyncChan for OursBlocking {
    type Tx = scopestream::MemorySender<u64>;
    type Rx = scopestream::MemoryReceiver<u64>;
    fn new(cap: Cap) -> Option<(Self::Tx, Self::Rx)> {
        Ours::new(cap)
    }
    fn split(rx: Self::Rx, n: usize) -> Option<Vec<Self::Rx>> {
        clone_n(rx, n)
    }
    fn send(tx: &Self::Tx, v: u64) {
        tx.send_blocking(v).unwrap()
    }
    fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.recv_blocking().ok()
    }
}

struct Crossbeam;
impl SyncChan for Crossbeam {
    type Tx = crossbeam_channel::Sender<u64>;
    type Rx = crossbeam_channel::Receiver<u64>;
    fn new(cap: Cap) -> Option<(Self::Tx, Self::Rx)> {
        Some(match cap {
            Cap::Bounded(n) => crossbeam_channel::bounded(n),
            Cap::Unbounded => crossbeam_channel::unbounded(),
        })
    }
    fn split(rx: Self::Rx, n: usize) -> Option<Vec<Self::Rx>> {
        clone_n(rx, n)
    }
    fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).unwrap()
    }
    fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.recv().ok()
    }
}

struct StdSync;
#[derive(Clone)]
enum StdTx {
    Bounded(std::sync::mpsc::SyncSender<u64>),
    Unbounded(std::sync::mpsc::Sender<u64>),
}
impl SyncChan for StdSync {
    type Tx = StdTx;
    type Rx = std::sync::mpsc::Receiver<u64>;
    fn new(cap: Cap) -> Option<(Self::Tx, Self::Rx)> {
        Some(match cap {
            Cap::Bounded(n) => {
                let (tx, rx) = std::sync::mpsc::sync_channel(n);
                (StdTx::Bounded(tx), rx)
            }
            Cap::Unbounded => {
                let (tx, rx) = std::sync::mpsc::channel();
                (StdTx::Unbounded(tx), rx)
            }
        })
    }
    fn split(rx: Self::Rx, n: usize) -> Option<Vec<Self::Rx>> {
        (n == 1).then(|| vec![rx])
    }
    fn send(tx: &Self::Tx, v: u64) {
        match tx {
            StdTx::Bounded(tx) => tx.send(v).unwrap(),
            StdTx::Unbounded(tx) => tx.send(v).unwrap(),
        }
    }
    fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.recv().ok()
    }
}

struct FlumeBlocking;
impl SyncChan for FlumeBlocking {
    type Tx = flume::Sender<u64>;
    type Rx = flume::Receiver<u64>;
    fn new(cap: Cap) -> Option<(Self::Tx, Self::Rx)> {
        Flume::new(cap)
    }
    fn split(rx: Self::Rx, n: usize) -> Option<Vec<Self::Rx>> {
        clone_n(rx, n)
    }
    fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).unwrap()
    }
    fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.recv().ok()
    }
}

struct KanalBlocking;
impl SyncChan for KanalBlocking {
    type Tx = kanal::Sender<u64>;
    type Rx = kanal::Receiver<u64>;
    fn new(cap: Cap) -> Option<(Self::Tx, Self::Rx)> {
        Some(match cap {
            Cap::Bounded(n) => kanal::bounded(n),
            Cap::Unbounded => kanal::unbounded(),
        })
    }
    fn split(rx: Self::Rx, n: usize) -> Option<Vec<Self::Rx>> {
        clone_n(rx, n)
    }
    fn send(tx: &Self::Tx, v: u64) {
        tx.send(v).unwrap()
    }
    fn recv(rx: &Self::Rx) -> Option<u64> {
        rx.recv().ok()
    }
}

fn run_threads<C: SyncChan>(
    cap: Cap,
    producers: usize,
    consumers: usize,
    messages: usize,
) -> Option<Duration> {
    let (tx, rx) = C::new(cap)?;
    let rxs = C::split(rx, consumers)?;
    let start = Instant::now();
    let mut threads = Vec::new();
    for p in 0..producers {
        let tx = tx.clone();
        let n = messages / producers + usize::from(p < messages % producers);
        threads.push(std::thread::spawn(move || {
            for i in 0..n {
                C::send(&tx, i as u64);
            }
            0
        }));
    }
    drop(tx);
    for rx in rxs {
        threads.push(std::thread::spawn(move || {
            let mut got = 0;
            while C::recv(&rx).is_some() {
                got += 1;
            }
            got
        }));
    }
    let received: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(received, messages);
    Some(start.elapsed())
}

// ---------------------------------------------------------------------------
// Cancellation churn and the cost of a scope.

/// `iterations` receives on an empty rendezvous stream; every other one is
/// cancelled by its scope while blocked, the others get an item from a
/// sender that arrives after them.
fn churn_ours(rt: &tokio::runtime::Runtime, iterations: usize) -> Duration {
    use scopestream::CancelScope;
    rt.block_on(async {
        let (tx, rx) = scopestream::memory_stream::<u64>(0);
        let start = Instant::now();
        for i in 0..iterations {
            let scope = CancelScope::new();
            let recv = scope.run(rx.recv());
            let other = async {
                tokio::task::yield_now().await;
                if i % 2 == 0 {
                    scope.cancel();
                } else {
                    tx.send(i as u64).await.unwrap();
                }
            };
            let (got, ()) = tokio::join!(recv, other);
            assert_eq!(got.is_ok(), i % 2 == 1);
        }
        start.elapsed()
    })
}

/// The same with what a user writes today: async-channel, a tokio-util
/// `CancellationToken`, and `select!`.
fn churn_token(rt: &tokio::runtime::Runtime, iterations: usize) -> Duration {
    use tokio_util::sync::CancellationToken;
    rt.block_on(async {
        let (tx, rx) = async_channel::bounded::<u64>(1);
        let start = Instant::now();
        for i in 0..iterations {
            let token = CancellationToken::new();
            let recv = async {
                tokio::select! {
                    _ = token.cancelled() => None,
                    got = rx.recv() => got.ok(),
                }
            };
            let other = async {
                tokio::task::yield_now().await;
                if i % 2 == 0 {
                    token.cancel();
                } else {
                    tx.send(i as u64).await.unwrap();
                }
            };
            let (got, ()) = tokio::join!(recv, other);
            assert_eq!(got.is_some(), i % 2 == 1);
        }
        start.elapsed()
    })
}

/// `messages` receives of ready items, inside a never-cancelled scope or not.
fn ready_receives(rt: &tokio::runtime::Runtime, messages: usize, scoped: bool) -> Duration {
    let (tx, rx) = scopestream::unbounded_memory_stream::<u64>();
    rt.block_on(async {
        let start = Instant::now();
        let body = async {
            for i in 0..messages {
                tx.send(i as u64).await.unwrap();
                assert_eq!(rx.recv().await, Ok(i as u64));
            }
        };
        if scoped {
            scopestream::CancelScope::new().run(body).await;
        } else {
            body.await;
        }
        start.elapsed()
    })
}

/// `messages` sends, each followed by a receive under its own one-second
/// timeout (the item is ready, so none fires): what a per-operation timeout
/// costs on the common path.
fn timed_receives_ours(rt: &tokio::runtime::Runtime, messages: usize) -> Duration {
    let (tx, rx) = scopestream::memory_stream::<u64>(1);
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..messages {
            tx.send(i as u64).await.unwrap();
            let got = scopestream::move_on_after(Duration::from_secs(1), rx.recv()).await;
            assert_eq!(got, Some(Ok(i as u64)));
        }
        start.elapsed()
    })
}

/// The same with tokio's mpsc and `tokio::time::timeout`.
fn timed_receives_tokio(rt: &tokio::runtime::Runtime, messages: usize) -> Duration {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<u64>(1);
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..messages {
            tx.send(i as u64).await.unwrap();
            let got = tokio::time::timeout(Duration::from_secs(1), rx.recv()).await;
            assert_eq!(got, Ok(Some(i as u64)));
        }
        start.elapsed()
    })
}

/// The same with async-channel, a `CancellationToken` and `select!` against
/// a sleep, as applications glue it together today.
fn timed_receives_token(rt: &tokio::runtime::Runtime, messages: usize) -> Duration {
    use tokio_util::sync::CancellationToken;
    let (tx, rx) = async_channel::bounded::<u64>(1);
    let token = CancellationToken::new();
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..messages {
            tx.send(i as u64).await.unwrap();
            let got = tokio::select! {
                _ = token.cancelled() => None,
                _ = tokio::time::sleep(Duration::from_secs(1)) => None,
                got = rx.recv() => got.ok(),
            };
            assert_eq!(got, Some(i as u64));
        }
        start.elapsed()
    })
}

// ---------------------------------------------------------------------------
// Measuring and printing.

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

/// A closure that runs a scenario with the given number of units, or
/// `None` if the library cannot.
type Run<'a> = Box<dyn FnMut(usize) -> Option<Duration> + 'a>;

/// Median time per unit of each run over `SAMPLES` samples. The samples are
/// taken round-robin (one of each run, then again), so that drift in the
/// machine's speed during a row affects every library alike.
fn measure_row(units: usize, mut runs: Vec<Run<'_>>) -> Vec<Option<Duration>> {
    let supported: Vec<bool> = runs.iter_mut().map(|run| run(units).is_some()).collect();
    let mut samples = vec![Vec::new(); runs.len()];
    for _ in 0..SAMPLES {
        for (i, run) in runs.iter_mut().enumerate() {
            if supported[i] {
                samples[i].push(run(units).unwrap());
            }
        }
    }
    samples
        .into_iter()
        .map(|s| (!s.is_empty()).then(|| median(s) / units as u32))
        .collect()
}

/// Units so that one run of `f` takes about `TARGET`.
fn calibrate(mut f: impl FnMut(usize) -> Option<Duration>) -> usize {
    let probe = 1000;
    let took = f(probe).unwrap();
    let units = TARGET.as_secs_f64() / took.as_secs_f64() * probe as f64;
    (units as usize).clamp(500, 500_000)
}

fn fmt_time(d: Option<Duration>) -> String {
    match d {
        None => String::new(),
        Some(d) if d < Duration::from_micros(10) => format!("{} ns", d.as_nanos()),
        Some(d) => format!("{:.1} µs", d.as_secs_f64() * 1e6),
    }
}

struct Table {
    columns: Vec<&'static str>,
    rows: Vec<(String, Vec<Option<Duration>>)>,
}

impl Table {
    fn new(columns: Vec<&'static str>) -> Self {
        Table {
            columns,
            rows: Vec::new(),
        }
    }

    /// The first column is scopestream; the ratio is against the best other.
    fn row(&mut self, label: String, cells: Vec<Option<Duration>>) {
        let line = self.format_row(&label, &cells);
        println!("{line}");
        self.rows.push((label, cells));
    }

    fn header(&self, title: &str) {
        println!("\n### {title}\n");
        println!(
            "| scenario | {} | ratio |\n|---|{}---|",
            self.columns.join(" | "),
            "---|".repeat(self.columns.len())
        );
    }

    fn format_row(&self, label: &str, cells: &[Option<Duration>]) -> String {
        let best_peer = cells[1..].iter().flatten().min();
        let ratio = match (cells[0], best_peer) {
            (Some(ours), Some(best)) => format!("{:.2}", ours.as_secs_f64() / best.as_secs_f64()),
            _ => "—".to_owned(),
        };
        let cells: Vec<_> = cells.iter().map(|c| fmt_time(*c)).collect();
        format!("| {label} | {} | {ratio} |", cells.join(" | "))
    }
}

fn wanted(filters: &[String], name: &str) -> bool {
    filters.is_empty()
        || filters
            .iter()
            .any(|f| name.to_lowercase().contains(&f.to_lowercase()))
}

fn pipeline_cells(
    rt: &tokio::runtime::Runtime,
    cap: Cap,
    p: usize,
    c: usize,
) -> Vec<Option<Duration>> {
    let messages = calibrate(|n| run_pipeline::<Ours>(rt, cap, p, c, n));
    measure_row(
        messages,
        vec![
            Box::new(|n| run_pipeline::<Ours>(rt, cap, p, c, n)),
            Box::new(|n| run_pipeline::<AsyncChannel>(rt, cap, p, c, n)),
            Box::new(|n| run_pipeline::<Flume>(rt, cap, p, c, n)),
            Box::new(|n| run_pipeline::<Kanal>(rt, cap, p, c, n)),
            Box::new(|n| run_pipeline::<TokioMpsc>(rt, cap, p, c, n)),
        ],
    )
}

fn main() {
    // `cargo bench` passes `--bench`; anything else is a scenario filter.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("# scopestream side by side\n");
    println!(
        "{cores} cores; median of {SAMPLES} runs per cell, about {} ms each; time per message.",
        TARGET.as_millis()
    );
    let async_cols = vec![
        "scopestream",
        "async-channel",
        "flume",
        "kanal",
        "tokio mpsc",
    ];

    for rt_kind in [Rt::MultiThread, Rt::CurrentThread] {
        let rt = rt_kind.build();
        let mut table = Table::new(async_cols.clone());
        let mut printed = false;
        for (topo, p, c) in TOPOLOGIES {
            for cap in CAPS {
                let label = format!("{topo}, buffer {cap}");
                if !wanted(&filters, &format!("{label} {}", rt_kind.name())) {
                    continue;
                }
                if !printed {
                    table.header(&format!("Async, {}", rt_kind.name()));
                    printed = true;
                }
                table.row(label, pipeline_cells(&rt, cap, p, c));
            }
        }
        let label = "ping-pong, buffer 1 (per round trip)".to_owned();
        if wanted(&filters, &format!("{label} {}", rt_kind.name())) {
            if !printed {
                table.header(&format!("Async, {}", rt_kind.name()));
            }
            let cap = Cap::Bounded(1);
            let rounds = calibrate(|n| run_ping_pong::<Ours>(&rt, cap, n));
            table.row(
                label,
                measure_row(
                    rounds,
                    vec![
                        Box::new(|n| run_ping_pong::<Ours>(&rt, cap, n)),
                        Box::new(|n| run_ping_pong::<AsyncChannel>(&rt, cap, n)),
                        Box::new(|n| run_ping_pong::<Flume>(&rt, cap, n)),
                        Box::new(|n| run_ping_pong::<Kanal>(&rt, cap, n)),
                        Box::new(|n| run_ping_pong::<TokioMpsc>(&rt, cap, n)),
                    ],
                ),
            );
        }
    }

    let mut table = Table::new(vec![
        "scopestream",
        "crossbeam",
        "std mpsc",
        "flume",
        "kanal",
    ]);
    let mut printed = false;
    for (topo, p, c) in TOPOLOGIES {
        for cap in CAPS {
            let label = format!("{topo}, buffer {cap}");
            if !wanted(&filters, &format!("{label} blocking threads")) {
                continue;
            }
            if !printed {
                table.header("Blocking API, one thread per producer and consumer");
                printed = true;
            }
            let messages = calibrate(|n| run_threads::<OursBlocking>(cap, p, c, n));
            table.row(
                label,
                measure_row(
                    messages,
                    vec![
                        Box::new(|n| run_threads::<OursBlocking>(cap, p, c, n)),
                        Box::new(|n| run_threads::<Crossbeam>(cap, p, c, n)),
                        Box::new(|n| run_threads::<StdSync>(cap, p, c, n)),
                        Box::new(|n| run_threads::<FlumeBlocking>(cap, p, c, n)),
                        Box::new(|n| run_threads::<KanalBlocking>(cap, p, c, n)),
                    ],
                ),
            );
        }
    }

    if wanted(&filters, "churn scope") {
        let rt = Rt::CurrentThread.build();
        let mut table = Table::new(vec![
            "scopestream",
            "async-channel + CancellationToken + select!",
        ]);
        table.header("Cancellation churn, tokio current-thread (per receive, half of them cancelled while blocked)");
        let iterations = calibrate(|n| Some(churn_ours(&rt, n)));
        table.row(
            "churn".to_owned(),
            measure_row(
                iterations,
                vec![
                    Box::new(|n| Some(churn_ours(&rt, n))),
                    Box::new(|n| Some(churn_token(&rt, n))),
                ],
            ),
        );
        let mut table = Table::new(vec!["inside a never-cancelled scope", "outside any scope"]);
        table.header("The cost of a scope, tokio current-thread (send + receive of a ready item)");
        let messages = calibrate(|n| Some(ready_receives(&rt, n, true)));
        table.row(
            "scope overhead".to_owned(),
            measure_row(
                messages,
                vec![
                    Box::new(|n| Some(ready_receives(&rt, n, true))),
                    Box::new(|n| Some(ready_receives(&rt, n, false))),
                ],
            ),
        );
    }

    if wanted(&filters, "timeout") {
        let rt = Rt::CurrentThread.build();
        let mut table = Table::new(vec![
            "scopestream `move_on_after`",
            "tokio mpsc + `tokio::time::timeout`",
            "async-channel + token + `select!` with a sleep",
        ]);
        table
            .header("A timeout per receive, tokio current-thread (send + receive of a ready item)");
        let messages = calibrate(|n| Some(timed_receives_ours(&rt, n)));
        table.row(
            "per-receive timeout".to_owned(),
            measure_row(
                messages,
                vec![
                    Box::new(|n| Some(timed_receives_ours(&rt, n))),
                    Box::new(|n| Some(timed_receives_tokio(&rt, n))),
                    Box::new(|n| Some(timed_receives_token(&rt, n))),
                ],
            ),
        );
    }
}
