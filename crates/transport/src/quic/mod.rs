//! QUIC (quinn + rustls, ring provider) with both sides authenticated by their ed25519 keys.

mod cert;
mod connection;
mod handshakes;
mod listener;
mod paths;
mod tls;
mod transport;

pub use cert::{CertError, peer_id_of_cert};
pub(crate) use connection::close_reason;
pub use connection::{QuicConnection, QuicStream};
pub use paths::{MAX_QUEUED, Outbound, RelayPaths};
pub use transport::{
    CLOSE_WAIT, QUINN_SERVER_NAME, QuicTransport, UDP_BUFFER_BYTES, quinn_client_config, quinn_server_config,
    udp_socket,
};
