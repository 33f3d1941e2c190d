//! The [`Broadcast`] capability (ARCHITECTURE.md): what an application needs of a broadcast protocol.
//!
//! It is implemented by [`Gossip`] itself and called by a composite that owns gossip as a child (the coin
//! node's `CoinApp`, in the step where it handles an input): a publication goes out in that step, and
//! the verdict on a message that waits for validation is given in the step that asked for it
//! ([`Event::Validate`](crate::Event::Validate) is answered before the parent's `handle` returns), so no
//! verdict can be lost in a queue.

use meshwork_wire::{Input, Instant, Output, Protocol};

use crate::error::PublishError;
use crate::message::{MessageId, TopicId};
use crate::state::{Command, Event, Gossip, TopicOptions, Verdict};

/// Publish/subscribe with validation before forwarding, as a protocol that an application embeds.
pub trait Broadcast: Protocol {
    /// Publishes `payload` on a subscribed `topic`; the message's id, or why it was refused.
    fn publish(
        &mut self,
        now: Instant,
        topic: TopicId,
        payload: Vec<u8>,
        out: &mut Vec<Output<Self>>,
    ) -> Result<MessageId, PublishError>;
    /// Receives and relays `topic` from now on.
    fn subscribe(&mut self, topic: TopicId, options: TopicOptions);
    /// The verdict on a message that waits for validation: `Accept` delivers and forwards it,
    /// `Reject` drops it and counts it against its sender, `Ignore` drops it quietly.
    fn validated(&mut self, now: Instant, id: MessageId, verdict: Verdict, out: &mut Vec<Output<Self>>);
}

impl Broadcast for Gossip {
    fn publish(
        &mut self,
        now: Instant,
        topic: TopicId,
        payload: Vec<u8>,
        out: &mut Vec<Output<Self>>,
    ) -> Result<MessageId, PublishError> {
        let start = out.len();
        self.handle(now, Input::Command(Command::Publish(topic, payload)), out);
        // The outcome is one of the events the command pushed; take it out of the outputs, since the
        // caller gets it as the answer.
        let mut answer = None;
        let mut i = start;
        while i < out.len() {
            match &out[i] {
                Output::Emit(Event::Published { id, .. }) => {
                    answer = Some(Ok(*id));
                    out.remove(i);
                }
                Output::Emit(Event::PublishFailed(error)) => {
                    answer = Some(Err(error.clone()));
                    out.remove(i);
                }
                _ => i += 1,
            }
        }
        answer.unwrap_or(Err(PublishError::NotSubscribed(topic)))
    }

    fn subscribe(&mut self, topic: TopicId, options: TopicOptions) {
        self.set_topic(topic, Some(options));
    }

    fn validated(&mut self, now: Instant, id: MessageId, verdict: Verdict, out: &mut Vec<Output<Self>>) {
        self.handle(now, Input::Command(Command::Validated(id, verdict)), out);
    }
}
