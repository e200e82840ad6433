//! [`SendSink`]: a sender as a `futures::Sink`.
//!
//! A sink holds at most one item in flight: `start_send` starts a send of it,
//! and `poll_ready`, `poll_flush` and `poll_close` drive that send to its
//! end. The send is an ordinary one — a checkpoint of the scope current when
//! it is polled, with one commit point — so an item `start_send` accepted is
//! either sent or handed back, inside the error of the poll that settled it.
//! This is the guarantee `PollSender` gives tokio's sender and flume's
//! `SendSink` gives its own.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_sink::Sink;

use super::send::SendCall;
use super::sender::MemorySender;
use crate::error::SendError;

impl<T> MemorySender<T> {
    /// This handle as a [`Sink`](futures_sink::Sink), for
    /// `stream.forward(tx.into_sink())` and the other `SinkExt` combinators.
    /// See [`SendSink`] for how it keeps every item.
    pub fn into_sink(self) -> SendSink<T> {
        SendSink {
            send: SendCall::idle(self),
            in_flight: false,
        }
    }
}

/// A [`MemorySender`] as a [`Sink`]: made by
/// [`MemorySender::into_sink`].
///
/// * `poll_ready` completes the item in flight, if any: `Ok` once it is
///   taken (or buffered), or its error, *with the item inside*.
/// * `start_send` starts sending one item; call it only after `poll_ready`
///   returned `Ready(Ok(()))`.
/// * `poll_flush` completes the item in flight, as `poll_ready` does.
/// * `poll_close` flushes, then closes the handle (only this one, as
///   [`MemorySender::close`]).
///
/// Every send is a checkpoint of the scope current when the sink is polled:
/// in a cancelled scope the item in flight comes back in
/// [`SendError::Cancelled`]. Dropping the sink with an item still in flight
/// withdraws that item, as dropping a [`SendFuture`](crate::SendFuture) does.
///
/// ```
/// use futures::{SinkExt, StreamExt};
///
/// # futures::executor::block_on(async {
/// let (tx, rx) = scopestream::memory_stream(0);
/// let produce = async move {
///     let mut sink = tx.into_sink();
///     for i in 0..3 {
///         sink.send(i).await?;
///     }
///     sink.close().await // the last sender: the stream ends
/// };
/// let (sent, got) = futures::join!(produce, rx.collect::<Vec<_>>());
/// assert_eq!((sent, got), (Ok(()), vec![0, 1, 2]));
/// # });
/// ```
pub struct SendSink<T> {
    /// The one send the sink drives, idle between items; its `Drop`
    /// withdraws an item still in flight.
    send: SendCall<MemorySender<T>, T>,
    in_flight: bool,
}

impl<T> SendSink<T> {
    /// The sender the sink sends on.
    pub fn sender(&self) -> &MemorySender<T> {
        self.send.handle()
    }

    /// Drives the item in flight, if any, to its end.
    fn poll_in_flight(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), SendError<T>>> {
        if !self.in_flight {
            return Poll::Ready(Ok(()));
        }
        // Every poll is a checkpoint of the scope current at that poll.
        self.send.follow_current_scope();
        let result = std::task::ready!(self.send.poll_send(cx));
        self.in_flight = false;
        Poll::Ready(result)
    }
}

impl<T> Sink<T> for SendSink<T> {
    type Error = SendError<T>;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().poll_in_flight(cx)
    }

    /// # Panics
    ///
    /// If an item is still in flight: `poll_ready` did not return
    /// `Ready(Ok(()))` since the last `start_send`, which the `Sink` contract
    /// requires.
    fn start_send(self: Pin<&mut Self>, item: T) -> Result<(), Self::Error> {
        let this = self.get_mut();
        assert!(
            !this.in_flight,
            "`SendSink::start_send` called with an item in flight: poll_ready first"
        );
        this.send.start(item);
        this.in_flight = true;
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.get_mut().poll_in_flight(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_in_flight(cx))?;
        this.send.handle().close();
        Poll::Ready(Ok(()))
    }
}

impl<T> fmt::Debug for SendSink<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendSink")
            .field("sender", self.send.handle())
            .field("in_flight", &self.in_flight)
            .finish()
    }
}
