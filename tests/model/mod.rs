//! The sequential reference model of SPEC S1–S6, S8 and S12 and the driver
//! that runs an operation sequence against it and the real stream side by
//! side. Shared by `tests/reference_model.rs` (proptest) and the fuzz target.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use futures_core::Stream;
use scopestream::{
    memory_stream, unbounded_memory_stream, MemoryReceiver, MemorySender, Statistics, TryRecvError,
    TrySendError,
};

/// `assert_eq!` that returns the mismatch as an error instead of panicking.
macro_rules! check_eq {
    ($real:expr, $model:expr, $($ctx:tt)+) => {{
        let (real, model) = (&$real, &$model);
        if real != model {
            return Err(format!(
                "{}: real {:?}, model {:?}",
                format!($($ctx)+),
                real,
                model
            ));
        }
    }};
}

/// The buffer sizes worth exploring; `None` is unbounded.
pub const CAPACITIES: [Option<usize>; 5] = [Some(0), Some(1), Some(2), Some(5), None];

/// Decodes raw bytes (a fuzzer's input) into a capacity and an operation
/// sequence: the first byte picks the capacity, then two bytes per operation.
pub fn decode(bytes: &[u8]) -> (Option<usize>, Vec<Op>) {
    let Some((&first, rest)) = bytes.split_first() else {
        return (Some(0), Vec::new());
    };
    let capacity = CAPACITIES[usize::from(first) % CAPACITIES.len()];
    let ops = rest
        .chunks_exact(2)
        .map(|pair| {
            let i = usize::from(pair[1]);
            match pair[0] % 9 {
                0 => Op::TrySend(i),
                1 => Op::TryRecv(i),
                2 => Op::PollNext(i),
                3 => Op::CloseSender(i),
                4 => Op::CloseReceiver(i),
                5 => Op::CloneSender(i),
                6 => Op::CloneReceiver(i),
                7 => Op::DropSender(i),
                _ => Op::DropReceiver(i),
            }
        })
        .collect();
    (capacity, ops)
}

#[derive(Debug, Clone)]
pub enum Op {
    TrySend(usize),
    TryRecv(usize),
    /// `poll_next` once, as a fresh or an earlier, abandoned `next()` would.
    PollNext(usize),
    CloseSender(usize),
    CloseReceiver(usize),
    CloneSender(usize),
    CloneReceiver(usize),
    DropSender(usize),
    DropReceiver(usize),
}

#[derive(Debug)]
struct ModelReceiver {
    closed: bool,
}

#[derive(Debug)]
struct Model {
    capacity: Option<usize>,
    buffer: VecDeque<u32>,
    senders: Vec<bool>, // closed?
    receivers: Vec<ModelReceiver>,
}

impl Model {
    fn open_senders(&self) -> usize {
        self.senders.iter().filter(|closed| !**closed).count()
    }

    fn open_receivers(&self) -> usize {
        self.receivers.iter().filter(|r| !r.closed).count()
    }

    fn has_room(&self) -> bool {
        self.capacity.is_none_or(|cap| self.buffer.len() < cap)
    }

    fn statistics(&self) -> Statistics {
        Statistics {
            current_buffer_used: self.buffer.len(),
            max_buffer_size: self.capacity,
            open_send_streams: self.open_senders(),
            open_receive_streams: self.open_receivers(),
            // A pending `poll_next` is never counted (SPEC S10, S6).
            tasks_waiting_send: 0,
            tasks_waiting_receive: 0,
        }
    }

    fn try_send(&mut self, s: usize, item: u32) -> Result<(), TrySendError<u32>> {
        if self.senders[s] {
            return Err(TrySendError::Closed(item));
        }
        if self.open_receivers() == 0 {
            return Err(TrySendError::Broken(item));
        }
        // A pending `poll_next` is never committed to: the item is buffered
        // if there is room, and its next poll takes it from there.
        if self.has_room() {
            self.buffer.push_back(item);
            Ok(())
        } else {
            Err(TrySendError::Full(item))
        }
    }

    fn try_recv(&mut self, r: usize) -> Result<u32, TryRecvError> {
        if self.receivers[r].closed {
            return Err(TryRecvError::Closed);
        }
        if let Some(item) = self.buffer.pop_front() {
            return Ok(item);
        }
        if self.open_senders() == 0 {
            Err(TryRecvError::EndOfStream)
        } else {
            Err(TryRecvError::Empty)
        }
    }

    /// SPEC S10: each poll is a fresh receive, whatever earlier polls did;
    /// a pending one leaves nothing behind.
    fn poll_next(&mut self, r: usize) -> Poll<Option<u32>> {
        match self.try_recv(r) {
            Ok(item) => Poll::Ready(Some(item)),
            Err(TryRecvError::Empty) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        }
    }

    fn close_sender(&mut self, s: usize) {
        self.senders[s] = true;
    }

    fn close_receiver(&mut self, r: usize) {
        if std::mem::replace(&mut self.receivers[r].closed, true) {
            return;
        }
        if self.open_receivers() == 0 {
            self.buffer.clear();
        }
    }
}

/// The real handles, index-aligned with the model's.
struct Real {
    senders: Vec<MemorySender<u32>>,
    receivers: Vec<MemoryReceiver<u32>>,
}

fn pick(len: usize, raw: usize) -> Option<usize> {
    (len > 0).then(|| raw % len)
}

pub fn run(capacity: Option<usize>, ops: Vec<Op>) -> Result<(), String> {
    let (tx, rx) = match capacity {
        Some(n) => memory_stream(n),
        None => unbounded_memory_stream(),
    };
    let mut real = Real {
        senders: vec![tx],
        receivers: vec![rx],
    };
    let mut model = Model {
        capacity,
        buffer: VecDeque::new(),
        senders: vec![false],
        receivers: vec![ModelReceiver { closed: false }],
    };
    let mut next_item = 0u32;
    let mut cx = Context::from_waker(Waker::noop());
    for (step, op) in ops.into_iter().enumerate() {
        let ns = real.senders.len();
        let nr = real.receivers.len();
        match op {
            Op::TrySend(i) => {
                let Some(s) = pick(ns, i) else { continue };
                next_item += 1;
                let got = real.senders[s].try_send(next_item);
                check_eq!(got, model.try_send(s, next_item), "step {}: {:?}", step, op);
            }
            Op::TryRecv(i) => {
                let Some(r) = pick(nr, i) else { continue };
                check_eq!(
                    real.receivers[r].try_recv(),
                    model.try_recv(r),
                    "step {}",
                    step
                );
            }
            Op::PollNext(i) => {
                let Some(r) = pick(nr, i) else { continue };
                let got = Pin::new(&mut real.receivers[r]).poll_next(&mut cx);
                check_eq!(got, model.poll_next(r), "step {}", step);
            }
            Op::CloseSender(i) => {
                let Some(s) = pick(ns, i) else { continue };
                real.senders[s].close();
                model.close_sender(s);
            }
            Op::CloseReceiver(i) => {
                let Some(r) = pick(nr, i) else { continue };
                real.receivers[r].close();
                model.close_receiver(r);
            }
            Op::CloneSender(i) => {
                let Some(s) = pick(ns, i) else { continue };
                real.senders.push(real.senders[s].clone());
                model.senders.push(model.senders[s]);
            }
            Op::CloneReceiver(i) => {
                let Some(r) = pick(nr, i) else { continue };
                real.receivers.push(real.receivers[r].clone());
                let closed = model.receivers[r].closed;
                model.receivers.push(ModelReceiver { closed });
            }
            Op::DropSender(i) => {
                let Some(s) = pick(ns, i) else { continue };
                drop(real.senders.remove(s));
                model.close_sender(s);
                model.senders.remove(s);
            }
            Op::DropReceiver(i) => {
                let Some(r) = pick(nr, i) else { continue };
                drop(real.receivers.remove(r));
                model.close_receiver(r);
                model.receivers.remove(r);
            }
        }
        let stats = match (real.senders.first(), real.receivers.first()) {
            (Some(tx), _) => tx.statistics(),
            (None, Some(rx)) => rx.statistics(),
            (None, None) => break,
        };
        check_eq!(stats, model.statistics(), "statistics after step {}", step);
    }
    Ok(())
}
