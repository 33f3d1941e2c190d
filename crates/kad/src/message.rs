//! The kad wire messages: requests, responses and signed records.
//!
//! Every collection is bounded, so a hostile peer cannot make us allocate more than
//! [`crate::Kademlia`]'s `MAX_MESSAGE_SIZE` while decoding. Golden vectors pin the encodings
//! (`tests/message.rs`).

use meshwork_identity::{Keypair, Namespace, PeerId, Signature};
use meshwork_wire::{BoundedBytes, BoundedVec, Instant};
use serde::{Deserialize, Serialize};

use crate::{Key, PeerInfo, RecordError};

/// The most peers one response carries (the largest useful `k`).
pub const MAX_PEERS: usize = 20;
/// The largest record value, in bytes.
pub const MAX_VALUE: usize = 8 * 1024;
/// The signing namespace of kad records: a record signature verifies as nothing else.
pub const RECORD_NAMESPACE: Namespace = Namespace::new(b"meshwork/kad/record/1");

/// A list of peers as carried by responses.
pub type Peers = BoundedVec<PeerInfo, MAX_PEERS>;

/// Matches a response to its request. Chosen by the requester, echoed by the responder.
pub type RequestId = u64;

/// One kad message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A request; the receiver answers with a [`Message::Response`] of the same id.
    Request {
        /// Echoed in the response.
        id: RequestId,
        /// What is asked.
        request: Request,
    },
    /// The answer to our request `id`.
    Response {
        /// The request's id.
        id: RequestId,
        /// The answer.
        response: Response,
    },
}

/// What a peer can ask.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Are you alive? Answered by [`Response::Pong`].
    Ping,
    /// The `k` peers you know closest to `target`. Answered by [`Response::Nodes`].
    FindNode {
        /// The key looked up.
        target: Key,
    },
    /// The record stored under `key`, or closer peers. Answered by [`Response::Value`].
    GetValue {
        /// The record key.
        key: Key,
    },
    /// Store this record. Answered by [`Response::Stored`].
    PutValue {
        /// The signed record.
        record: Record,
    },
    /// The sender provides `key`, reachable at `addr`. Answered by [`Response::Stored`].
    AddProvider {
        /// The provided key.
        key: Key,
        /// Where the sender (the provider) can be reached.
        addr: crate::Address,
    },
    /// The providers of `key`, and closer peers. Answered by [`Response::Providers`].
    GetProviders {
        /// The provided key.
        key: Key,
    },
}

/// An answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Answer to [`Request::Ping`].
    Pong,
    /// Answer to [`Request::FindNode`]: the closest peers the responder knows.
    Nodes {
        /// Closest known peers to the target.
        closer: Peers,
    },
    /// Answer to [`Request::GetValue`].
    Value {
        /// The record, if the responder holds a valid one.
        record: Option<Record>,
        /// Closest known peers to the key.
        closer: Peers,
    },
    /// Answer to [`Request::PutValue`] and [`Request::AddProvider`].
    Stored {
        /// Whether the responder kept it.
        ok: bool,
    },
    /// Answer to [`Request::GetProviders`].
    Providers {
        /// Providers the responder knows of.
        providers: Peers,
        /// Closest known peers to the key.
        closer: Peers,
    },
}

/// A value stored in the DHT, signed by its publisher.
///
/// The signature covers the key, the expiry and the value, in [`RECORD_NAMESPACE`]. The expiry is an
/// absolute time of the driver's clock (virtual time in the simulator). The key is the publisher's own
/// ([`Key::for_record`]) or a shared name ([`Key::for_name`]); see [`crate::key`] for why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Where the record lives.
    pub key: Key,
    /// The application's bytes.
    pub value: BoundedBytes<MAX_VALUE>,
    /// Who signed it.
    pub publisher: PeerId,
    /// When it stops being valid, in nanoseconds of driver time.
    pub expires: u64,
    /// The publisher's signature.
    pub signature: Signature,
}

impl Record {
    /// Signs a new record expiring at `expires`. Refused with [`RecordError::ForeignKey`] if `key` is
    /// another publisher's own: no peer would store it.
    pub fn sign(keypair: &Keypair, key: Key, value: Vec<u8>, expires: Instant) -> Result<Self, RecordError> {
        if !key.admits_publisher(&keypair.peer_id()) {
            return Err(RecordError::ForeignKey);
        }
        let len = value.len();
        let value =
            BoundedBytes::try_from(value).map_err(|_| RecordError::TooLarge { len, max: MAX_VALUE })?;
        let expires = expires.as_nanos();
        let signature = keypair.sign(RECORD_NAMESPACE, &signed_bytes(&key, expires, &value));
        Ok(Self {
            key,
            value,
            publisher: keypair.peer_id(),
            expires,
            signature,
        })
    }

    /// The expiry as an [`Instant`].
    pub fn expires_at(&self) -> Instant {
        Instant::from_nanos(self.expires)
    }

    /// Checks that the key admits the publisher ([`Key::admits_publisher`]), that the record is
    /// neither expired at `now` nor expires later than `now + max_ttl`, and the signature (last: it is
    /// the one check that costs).
    pub fn verify(&self, now: Instant, max_ttl: std::time::Duration) -> Result<(), RecordError> {
        if !self.key.admits_publisher(&self.publisher) {
            return Err(RecordError::ForeignKey);
        }
        if self.expires_at() <= now {
            return Err(RecordError::Expired);
        }
        if self.expires_at() > now + max_ttl {
            return Err(RecordError::TooFarInFuture);
        }
        self.publisher
            .verify(
                RECORD_NAMESPACE,
                &signed_bytes(&self.key, self.expires, &self.value),
                &self.signature,
            )
            .map_err(|_| RecordError::BadSignature)
    }
}

/// What a record signature covers: `key || expires (big-endian) || value`.
fn signed_bytes(key: &Key, expires: u64, value: &[u8]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(40 + value.len());
    bytes.extend_from_slice(key.as_bytes());
    bytes.extend_from_slice(&expires.to_be_bytes());
    bytes.extend_from_slice(value);
    bytes
}
