// temporary profiling driver (not committed)
fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cap: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().unwrap())
        .unwrap_or(64);
    let producers: usize = std::env::args()
        .nth(2)
        .map(|a| a.parse().unwrap())
        .unwrap_or(1);
    let t = std::time::Instant::now();
    let n = 2_000_000;
    rt.block_on(async move {
        let (tx, rx) = if cap == 999 {
            scopestream::unbounded_memory_stream::<u64>()
        } else {
            scopestream::memory_stream::<u64>(cap)
        };
        let mut tasks = vec![];
        for _ in 0..producers {
            let tx = tx.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..n / producers {
                    tx.send(i as u64).await.unwrap();
                }
            }));
        }
        drop(tx);
        let c = tokio::spawn(async move {
            let mut k = 0;
            while rx.recv().await.is_ok() {
                k += 1;
            }
            k
        });
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(c.await.unwrap(), n / producers * producers);
    });
    eprintln!("{:?} per msg", t.elapsed() / n as u32);
}
