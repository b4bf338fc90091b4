//! `keel mcp serve --http`: Streamable HTTP on a loopback address, every request checked for
//! the bearer token before rmcp sees it.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};

use super::handler::KeelServer;
use super::token;
use crate::core::handle::CoreHandle;

/// The address to listen on, refused unless it is loopback: the token is the only lock.
pub fn loopback(addr: &str) -> anyhow::Result<SocketAddr> {
    let parsed: SocketAddr = addr
        .parse()
        .with_context(|| format!("{addr:?} is not an address like 127.0.0.1:8765"))?;
    if !parsed.ip().is_loopback() {
        bail!("keel serves MCP over HTTP on loopback only (127.0.0.1 or ::1), not {addr}");
    }
    Ok(parsed)
}

fn unauthorized()
-> hyper::Response<http_body_util::combinators::BoxBody<Bytes, std::convert::Infallible>> {
    let mut response = hyper::Response::new(
        Full::new(Bytes::from_static(
            b"a bearer token is required (keel mcp serve --http prints where it is)\n",
        ))
        .boxed(),
    );
    *response.status_mut() = hyper::StatusCode::UNAUTHORIZED;
    response.headers_mut().insert(
        hyper::header::WWW_AUTHENTICATE,
        hyper::header::HeaderValue::from_static("Bearer"),
    );
    response
}

/// Serves until the process is stopped. `ready` gets the bound address (port 0 picks one).
pub async fn serve(
    handle: CoreHandle,
    addr: SocketAddr,
    token: String,
    ready: impl FnOnce(SocketAddr),
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    ready(listener.local_addr()?);
    let service = StreamableHttpService::new(
        move || Ok(KeelServer::new(handle.clone())),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let token = Arc::new(token);
    loop {
        let (stream, peer) = listener.accept().await.context("accepting a connection")?;
        let service = service.clone();
        let token = Arc::clone(&token);
        tokio::spawn(async move {
            let serve_one = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let service = service.clone();
                let token = Arc::clone(&token);
                async move {
                    let header = request
                        .headers()
                        .get(hyper::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok());
                    if !token::authorizes(header, &token) {
                        tracing::warn!(%peer, "mcp serve: a request without the bearer token was refused");
                        return Ok::<_, std::convert::Infallible>(unauthorized());
                    }
                    Ok(service.handle(request).await)
                }
            });
            if let Err(e) = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), serve_one)
                .await
            {
                tracing::debug!(%peer, "mcp serve: connection ended: {e}");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_served() {
        assert!(loopback("127.0.0.1:8765").is_ok());
        assert!(loopback("[::1]:0").is_ok());
        let err = loopback("0.0.0.0:8765").unwrap_err().to_string();
        assert!(err.contains("loopback"), "{err}");
        assert!(loopback("localhost").is_err());
    }
}
