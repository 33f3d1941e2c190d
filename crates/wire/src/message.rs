//! How a protocol's messages cross the wire: [`WireMessage`] and the [`Channel`]s it is carried on.
//!
//! A plain protocol speaks one channel, its own [`ProtocolId`], and its message type
//! is any serde type (the blanket implementation encodes it with the bounded [`codec`](crate::codec)).
//! A composite protocol ([`compose`](crate::compose)) speaks each of its children's channels: its
//! message type is an enum with one variant per child, built by [`wire_enum!`](crate::wire_enum), and a
//! message goes out on its variant's channel *without* any tag of the composite's own. So a child keeps
//! its wire format: a standalone gossip node and a coin node that embeds gossip talk to each other on
//! `/meshwork/gossip/4`.

use std::fmt;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{DecodeError, EncodeError, Protocol, ProtocolId};

/// One sub-protocol on the wire: the id that routes its streams and the largest message it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// The versioned protocol id.
    pub id: ProtocolId,
    /// Frames announcing more bytes are refused before anything is allocated.
    pub max_message_size: usize,
}

impl Channel {
    /// The channel of a plain protocol: its `ID` and `MAX_MESSAGE_SIZE`.
    pub const fn of<P: Protocol + ?Sized>() -> Self {
        Self {
            id: P::ID,
            max_message_size: P::MAX_MESSAGE_SIZE,
        }
    }
}

/// A message type as drivers see it: which channel carries a message, its bytes, and how bytes that
/// arrived on a channel decode. Every serde type is one already (one channel, index 0); composites get
/// theirs from [`wire_enum!`](crate::wire_enum).
pub trait WireMessage: Sized + Clone + fmt::Debug + Send + 'static {
    /// The index, in the protocol's [`Protocol::channels`], of the channel that carries this message.
    fn channel(&self) -> usize;
    /// Appends the message's encoding (what the channel carries) to `buf`.
    fn encode_to(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError>;
    /// Decodes bytes that arrived on `channel`: bounded, canonical, no trailing bytes.
    fn decode_from(channel: usize, bytes: &[u8]) -> Result<Self, DecodeError>;
    /// The size of [`WireMessage::encode_to`]'s output, without keeping it.
    fn wire_len(&self) -> Result<usize, EncodeError> {
        let mut buf = Vec::new();
        self.encode_to(&mut buf)?;
        Ok(buf.len())
    }
}

impl<T> WireMessage for T
where
    T: Serialize + DeserializeOwned + Clone + fmt::Debug + Send + 'static,
{
    fn channel(&self) -> usize {
        0
    }

    fn encode_to(&self, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        crate::encode_into(self, buf)
    }

    fn decode_from(channel: usize, bytes: &[u8]) -> Result<Self, DecodeError> {
        if channel != 0 {
            return Err(DecodeError::UnknownChannel(channel));
        }
        crate::decode(bytes)
    }

    fn wire_len(&self) -> Result<usize, EncodeError> {
        crate::encoded_len(self)
    }
}

/// Declares a composite's message enum: one variant per child protocol, in the order of the
/// composite's [`Protocol::channels`](crate::Protocol::channels), each wrapping that child's (plain,
/// one-channel) message type. Variant `i` is carried on channel `i` with the child's own encoding.
///
/// ```
/// meshwork_wire::wire_enum! {
///     /// What a chat node sends: gossip's messages and Kademlia's.
///     pub enum ChatMessage {
///         /// On the first channel.
///         Chat(String),
///         /// On the second.
///         Ping(u64),
///     }
/// }
/// use meshwork_wire::WireMessage;
/// let mut bytes = Vec::new();
/// ChatMessage::Ping(7).encode_to(&mut bytes)?;
/// assert_eq!(bytes, meshwork_wire::encode(&7u64)?); // no tag of the composite's own
/// assert!(matches!(ChatMessage::decode_from(1, &bytes)?, ChatMessage::Ping(7)));
/// assert!(ChatMessage::decode_from(2, &bytes).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[macro_export]
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($ty:ty) ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Debug)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant($ty) ),+
        }

        impl $crate::WireMessage for $name {
            #[allow(unused_assignments)]
            fn channel(&self) -> usize {
                let mut index = 0usize;
                $(
                    if let Self::$variant(_) = self {
                        return index;
                    }
                    index += 1;
                )+
                index
            }

            fn encode_to(&self, buf: &mut ::std::vec::Vec<u8>) -> ::std::result::Result<(), $crate::EncodeError> {
                match self {
                    $( Self::$variant(inner) => <$ty as $crate::WireMessage>::encode_to(inner, buf), )+
                }
            }

            #[allow(unused_assignments)]
            fn decode_from(channel: usize, bytes: &[u8]) -> ::std::result::Result<Self, $crate::DecodeError> {
                let mut index = 0usize;
                $(
                    if channel == index {
                        return <$ty as $crate::WireMessage>::decode_from(0, bytes).map(Self::$variant);
                    }
                    index += 1;
                )+
                Err($crate::DecodeError::UnknownChannel(channel))
            }

            fn wire_len(&self) -> ::std::result::Result<usize, $crate::EncodeError> {
                match self {
                    $( Self::$variant(inner) => <$ty as $crate::WireMessage>::wire_len(inner), )+
                }
            }
        }
    };
}
