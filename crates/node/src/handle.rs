//! Typed handles: how the application talks to one protocol inside a running node.

use std::marker::PhantomData;

use meshwork_wire::{Instant, Output, Protocol};
use tokio::sync::{mpsc, oneshot};

use crate::NodeError;
use crate::runtime::Inbox;
use crate::slot::{AnyCall, Call};

/// A cloneable mailbox to one protocol of a running node (ARCHITECTURE.md: a handle, not a god object).
///
/// Every method queues a request for the node task, which owns the protocol's state; nothing here
/// touches the state from another thread. Requests wait while the node's inbox is full.
pub struct Handle<P: Protocol> {
    slot: usize,
    inbox: mpsc::Sender<Inbox>,
    _protocol: PhantomData<fn() -> P>,
}

impl<P: Protocol> Clone for Handle<P> {
    fn clone(&self) -> Self {
        Self {
            slot: self.slot,
            inbox: self.inbox.clone(),
            _protocol: PhantomData,
        }
    }
}

impl<P: Protocol> std::fmt::Debug for Handle<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handle").field("protocol", &P::ID).finish()
    }
}

impl<P> Handle<P>
where
    P: Protocol + Send + 'static,
    P::Command: Send + 'static,
{
    pub(crate) fn new(slot: usize, inbox: mpsc::Sender<Inbox>) -> Self {
        Self {
            slot,
            inbox,
            _protocol: PhantomData,
        }
    }

    async fn send(&self, call: Call<P>) -> Result<(), NodeError> {
        let call: AnyCall = Box::new(call);
        self.inbox
            .send(Inbox::Call {
                slot: self.slot,
                call,
            })
            .await
            .map_err(|_| NodeError::Stopped)
    }

    /// Hands the protocol `Input::Command(command)`.
    pub async fn command(&self, command: P::Command) -> Result<(), NodeError> {
        self.send(Call::Command(command)).await
    }

    /// Runs `f` on the protocol's state inside the node task, with `now` and the protocol's output list
    /// (whatever `f` pushes there is carried out like the protocol's own outputs), and returns its result.
    /// Use it for reads (`|state, _, _| state.tip()`) and for application calls that are not commands.
    pub async fn call<R, F>(&self, f: F) -> Result<R, NodeError>
    where
        R: Send + 'static,
        F: FnOnce(&mut P, Instant, &mut Vec<Output<P>>) -> R + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.send(Call::With(Box::new(move |state, now, out| {
            // The caller may have given up waiting; the work is done either way.
            let _ = reply.send(f(state, now, out));
        })))
        .await?;
        answer.await.map_err(|_| NodeError::Stopped)
    }

    /// Reads (or changes) the protocol's state: `handle.with(|kad| kad.num_queries())`.
    pub async fn with<R, F>(&self, f: F) -> Result<R, NodeError>
    where
        R: Send + 'static,
        F: FnOnce(&mut P) -> R + Send + 'static,
    {
        self.call(move |state, _, _| f(state)).await
    }
}

/// The events one protocol emits, in order, from a bounded queue
/// ([`NodeConfig::event_queue`](crate::NodeConfig::event_queue)); when it is full, newer events are
/// dropped and counted rather than stalling the node.
pub struct Events<P: Protocol> {
    rx: mpsc::Receiver<P::Event>,
}

impl<P: Protocol> std::fmt::Debug for Events<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events").field("protocol", &P::ID).finish()
    }
}

impl<P: Protocol> Events<P> {
    pub(crate) fn new(rx: mpsc::Receiver<P::Event>) -> Self {
        Self { rx }
    }

    /// The next event; `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<P::Event> {
        self.rx.recv().await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<P::Event> {
        self.rx.try_recv().ok()
    }
}
