//! The [`Broadcast`] capability (DESIGN.md §6): what other crates need of gossip.

use crate::error::PublishError;
use crate::message::{MAX_PAYLOAD, MessageId, TopicId};
use crate::state::{Command, TopicOptions, Verdict};

/// Publish/subscribe with a validation callback, as other crates (the coin node's relay) consume it.
///
/// Implemented over [`Command`]s: a `Vec<Command>` collects them for a driver to hand to
/// [`Gossip`](crate::Gossip) (the node runtime will add an async mailbox later). Checks that need no state
/// (the absolute payload limit) fail here at once; per-topic limits fail as
/// [`Event::PublishFailed`](crate::Event::PublishFailed).
pub trait Broadcast {
    /// Publishes `payload` on `topic`.
    fn publish(&mut self, topic: TopicId, payload: Vec<u8>) -> Result<(), PublishError>;
    /// Subscribes to `topic`.
    fn subscribe(&mut self, topic: TopicId, options: TopicOptions);
    /// Gives the verdict on a message announced by [`Event::Validate`](crate::Event::Validate).
    fn validate(&mut self, id: MessageId, verdict: Verdict);
}

impl Broadcast for Vec<Command> {
    fn publish(&mut self, topic: TopicId, payload: Vec<u8>) -> Result<(), PublishError> {
        if payload.len() > MAX_PAYLOAD {
            return Err(PublishError::PayloadTooLarge {
                topic,
                size: payload.len(),
                max: MAX_PAYLOAD,
            });
        }
        self.push(Command::Publish(topic, payload));
        Ok(())
    }

    fn subscribe(&mut self, topic: TopicId, options: TopicOptions) {
        self.push(Command::Subscribe(topic, options));
    }

    fn validate(&mut self, id: MessageId, verdict: Verdict) {
        self.push(Command::Validated(id, verdict));
    }
}
