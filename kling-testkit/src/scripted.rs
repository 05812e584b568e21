//! Fake servers for what httpmock cannot do: answers in a given order,
//! connections cut without an answer, a port nobody serves.

use serde_json::Value;

/// A 127.0.0.1 port with nothing listening.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

/// A server that accepts connections, reads the request, and closes without
/// answering: the client cannot know whether the request was acted on.
pub async fn resetting_server() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            drop(socket);
        }
    });
    (url, handle)
}

/// One canned HTTP answer.
#[derive(Clone, Debug)]
pub struct Canned {
    /// The HTTP status.
    pub status: u16,
    /// Headers besides `content-length` and `connection`.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Canned {
    /// A JSON body.
    pub fn json(status: u16, body: &Value) -> Canned {
        Canned {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }
    /// An HTML error page, as a proxy in front of the service sends.
    pub fn html(status: u16) -> Canned {
        Canned {
            status,
            headers: vec![("content-type".into(), "text/html".into())],
            body: "<!DOCTYPE html><html><body>cloudflare error</body></html>".into(),
        }
    }
    /// With one more header.
    pub fn header(mut self, name: &str, value: &str) -> Canned {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A request the scripted server received.
#[derive(Clone, Debug)]
pub struct Received {
    /// When it arrived.
    pub at: std::time::Instant,
    /// The request line and headers.
    pub head: String,
    /// The body.
    pub body: Vec<u8>,
}

/// An HTTP/1.1 server on 127.0.0.1 that answers requests in order with a script
/// (the last answer repeats), one request per connection. httpmock answers every
/// matching request the same way; sequences (429 then 200) need this.
pub struct ScriptedServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Every request, in order.
    pub received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl ScriptedServer {
    /// Starts serving `script` (at least one answer).
    pub async fn start(script: Vec<Canned>) -> ScriptedServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        assert!(!script.is_empty());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = received.clone();
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                // Read the head, then Content-Length bytes of body.
                let (head, mut body) = loop {
                    let n = match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => break (String::new(), Vec::new()),
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (
                            String::from_utf8_lossy(&buf[..end]).into_owned(),
                            buf[end + 4..].to_vec(),
                        );
                    }
                };
                if head.is_empty() {
                    continue;
                }
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while body.len() < length {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => body.extend_from_slice(&chunk[..n]),
                    }
                }
                log.lock().unwrap().push(Received {
                    at: std::time::Instant::now(),
                    head,
                    body,
                });
                let canned = &script[next.min(script.len() - 1)];
                next += 1;
                let mut out = format!(
                    "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                    canned.status,
                    canned.body.len()
                );
                for (k, v) in &canned.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&canned.body);
                let _ = socket.write_all(out.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        ScriptedServer {
            url,
            received,
            _task: task,
        }
    }

    /// How many requests arrived.
    pub fn hits(&self) -> usize {
        self.received.lock().unwrap().len()
    }
}
