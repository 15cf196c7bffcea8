//! A TCP proxy between the app and PostgreSQL that a test can stop and
//! start again: while stopped, nothing listens on its port (connections
//! are refused, as by a stopped server) and every connection it carried is
//! cut, so the app's pooled connections die as they would when PostgreSQL
//! goes down. The real cluster keeps running for the other tests.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

#[derive(Debug)]
pub struct PgProxy {
    /// Where the app connects.
    pub port: u16,
    upstream: SocketAddr,
    /// The accepting task and every connection's task while running.
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl PgProxy {
    /// A running proxy on a free local port forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Self {
            port,
            upstream,
            tasks: Arc::default(),
        };
        proxy.serve(listener);
        proxy
    }

    /// `url` (a postgres:// URL) through this proxy.
    pub fn url(&self, url: &str) -> String {
        let mut url = url::Url::parse(url).unwrap();
        url.set_host(Some("127.0.0.1")).unwrap();
        url.set_port(Some(self.port)).unwrap();
        url.to_string()
    }

    fn serve(&self, listener: TcpListener) {
        let tasks = self.tasks.clone();
        let upstream = self.upstream;
        let accept = tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                let connection = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(connection);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// PostgreSQL "stops": the port refuses connections and every open
    /// connection is cut.
    pub async fn stop(&self) {
        let tasks: Vec<_> = self.tasks.lock().unwrap().drain(..).collect();
        for task in &tasks {
            task.abort();
        }
        // Aborted tasks drop their sockets once they are polled again.
        for task in tasks {
            let _ = task.await;
        }
        assert!(
            TcpStream::connect(("127.0.0.1", self.port)).await.is_err(),
            "the stopped proxy still accepts connections"
        );
    }

    /// PostgreSQL is back, on the same port.
    pub async fn restart(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(e) if Instant::now() < deadline => {
                    eprintln!("rebinding port {}: {e}; retrying", self.port);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => panic!("cannot rebind port {}: {e}", self.port),
            }
        };
        self.serve(listener);
    }
}

impl Drop for PgProxy {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}
