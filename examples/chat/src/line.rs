//! One chat line: what a peer publishes on the chat topic, and the checks every node makes before it
//! relays or prints one.

use serde::{Deserialize, Serialize};

/// The longest nickname, in bytes (UTF-8).
pub const MAX_NICK: usize = 32;
/// The longest line of text, in bytes (UTF-8).
pub const MAX_TEXT: usize = 1024;
/// The largest encoded line: both strings and their two length prefixes (a postcard varint of a length
/// under 2^14 takes at most two bytes). Gossip refuses larger payloads before anyone decodes them.
pub const MAX_LINE_PAYLOAD: usize = MAX_NICK + MAX_TEXT + 4;

/// Why a line is refused, whether typed here or received from a peer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LineError {
    /// The payload is not an encoded line.
    #[error("not a chat line")]
    Malformed,
    /// The nickname is empty or longer than [`MAX_NICK`] bytes.
    #[error("a nickname has 1 to {MAX_NICK} bytes, this one has {0}")]
    BadNick(usize),
    /// The text is longer than [`MAX_TEXT`] bytes.
    #[error("a line has at most {MAX_TEXT} bytes, this one has {0}")]
    TooLong(usize),
    /// The nickname or text holds a control character, which could move the reader's cursor or rewrite
    /// their screen (terminal escape sequences).
    #[error("control characters are not allowed")]
    ControlCharacter,
}

/// A chat line. Who sent it is not in here: gossip signs every message by its publisher and checks the
/// signature before anything else, so the sender is the message's authenticated origin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatLine {
    /// The sender's chosen name (not unique; the origin's peer id is).
    pub nick: String,
    /// What they said.
    pub text: String,
}

impl ChatLine {
    /// A line, if it passes [`ChatLine::check`].
    pub fn new(nick: &str, text: &str) -> Result<Self, LineError> {
        let line = Self {
            nick: nick.to_owned(),
            text: text.to_owned(),
        };
        line.check().map(|()| line)
    }

    /// Decodes a received payload and checks it.
    pub fn decode(payload: &[u8]) -> Result<Self, LineError> {
        let line: Self = postcard::from_bytes(payload).map_err(|_| LineError::Malformed)?;
        line.check().map(|()| line)
    }

    /// The payload to publish. It does not check the line (tests publish bad ones on purpose).
    pub fn encode(&self) -> Vec<u8> {
        // Two strings always serialize into a Vec.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// The rules every node applies: a nickname of 1 to [`MAX_NICK`] bytes, at most [`MAX_TEXT`] bytes
    /// of text, no control characters in either.
    pub fn check(&self) -> Result<(), LineError> {
        if self.nick.is_empty() || self.nick.len() > MAX_NICK {
            return Err(LineError::BadNick(self.nick.len()));
        }
        if self.text.len() > MAX_TEXT {
            return Err(LineError::TooLong(self.text.len()));
        }
        if self.nick.chars().chain(self.text.chars()).any(char::is_control) {
            return Err(LineError::ControlCharacter);
        }
        Ok(())
    }
}
