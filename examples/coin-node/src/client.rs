//! The RPC client the CLI (`wallet`, `status`), the bench and the tests use: jsonrpsee's HTTP client
//! with the cookie. It dereferences to the jsonrpsee client, so the typed methods of
//! [`CoinRpcClient`](crate::rpc::CoinRpcClient) are called on it directly.

use std::net::SocketAddr;
use std::ops::Deref;
use std::time::Duration;

use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use serde_json::Value;

use crate::rpc::ErrorCode;

/// Why an RPC call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The cookie is not a valid header value.
    #[error("bad cookie")]
    Cookie,
    /// The call failed (transport, HTTP status, or a JSON-RPC error).
    #[error(transparent)]
    Rpc(#[from] jsonrpsee::core::ClientError),
}

impl ClientError {
    /// The node's error code, when the node answered with an error (see [`ErrorCode::of`]).
    #[must_use]
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Rpc(error) => ErrorCode::of(error),
            Self::Cookie => None,
        }
    }
}

/// An authenticated client of one node.
#[derive(Debug, Clone)]
pub struct RpcClient {
    client: HttpClient,
}

impl RpcClient {
    /// A client of the node at `addr` presenting `cookie` (`None`: no credentials, for tests).
    pub fn new(addr: SocketAddr, cookie: Option<&str>) -> Result<Self, ClientError> {
        let mut headers = http::HeaderMap::new();
        if let Some(cookie) = cookie {
            let value =
                http::HeaderValue::from_str(&format!("Bearer {cookie}")).map_err(|_| ClientError::Cookie)?;
            headers.insert(http::header::AUTHORIZATION, value);
        }
        let client = HttpClientBuilder::default()
            .set_headers(headers)
            .request_timeout(Duration::from_secs(30))
            .max_request_size(64 * 1024 * 1024)
            .build(format!("http://{addr}"))?;
        Ok(Self { client })
    }

    /// Calls `method` with positional `params`, untyped: for methods outside
    /// [`CoinRpc`](crate::rpc::CoinRpcClient), or malformed calls in tests.
    pub async fn call(&self, method: &str, params: Vec<Value>) -> Result<Value, ClientError> {
        let mut builder = jsonrpsee::core::params::ArrayParams::new();
        for param in params {
            builder
                .insert(param)
                .map_err(jsonrpsee::core::ClientError::ParseError)?;
        }
        Ok(self.client.request(method, builder).await?)
    }
}

impl Deref for RpcClient {
    type Target = HttpClient;

    fn deref(&self) -> &HttpClient {
        &self.client
    }
}
