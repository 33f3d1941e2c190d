//! Errors a local caller can get.

use crate::TopicId;

/// Why a local publication was refused. Nothing was sent.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PublishError {
    /// The payload is larger than the topic allows.
    #[error("payload of {size} bytes exceeds the limit of {max} bytes for {topic:?}")]
    PayloadTooLarge {
        /// The topic.
        topic: TopicId,
        /// The payload size.
        size: usize,
        /// The topic's limit.
        max: usize,
    },
    /// The node has not subscribed to the topic, so it does not know the topic's limits.
    #[error("not subscribed to {0:?}")]
    NotSubscribed(TopicId),
}
