//! A fault-injecting TCP proxy for tests: put it on a link, then cut the
//! link (connections reset, new ones refused), blackhole it (connections
//! stay open but nothing gets through, as in a network partition) or heal
//! it. No root needed.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const PASS: u8 = 0;
const CUT: u8 = 1;
const BLACKHOLE: u8 = 2;

struct Shared {
    target: Mutex<Option<String>>,
    mode: AtomicU8,
    /// Both sides of every live connection, to reset them on a cut.
    streams: Mutex<Vec<TcpStream>>,
    stopped: AtomicBool,
}

pub struct Proxy {
    pub addr: String,
    shared: Arc<Shared>,
}

impl Proxy {
    /// A proxy on a free loopback port; set its target before use.
    pub fn new() -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Shared {
            target: Mutex::new(None),
            mode: AtomicU8::new(PASS),
            streams: Mutex::new(Vec::new()),
            stopped: AtomicBool::new(false),
        });
        let s = shared.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if s.stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(client) = client else { continue };
                if s.mode.load(Ordering::SeqCst) == CUT {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let target = s.target.lock().unwrap().clone();
                let Some(target) = target else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                let Ok(server) = TcpStream::connect_timeout(
                    &target.parse().expect("target is ip:port"),
                    Duration::from_secs(1),
                ) else {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                };
                {
                    let mut streams = s.streams.lock().unwrap();
                    streams.push(client.try_clone().unwrap());
                    streams.push(server.try_clone().unwrap());
                }
                pump(
                    client.try_clone().unwrap(),
                    server.try_clone().unwrap(),
                    s.clone(),
                );
                pump(server, client, s.clone());
            }
        });
        Proxy { addr, shared }
    }

    pub fn set_target(&self, target: &str) {
        *self.shared.target.lock().unwrap() = Some(target.to_string());
    }

    /// Resets every connection and refuses new ones.
    pub fn cut(&self) {
        self.shared.mode.store(CUT, Ordering::SeqCst);
        for s in self.shared.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Keeps connections open but lets nothing through (a partition).
    pub fn blackhole(&self) {
        self.shared.mode.store(BLACKHOLE, Ordering::SeqCst);
    }

    /// Lets traffic through again. Connections that lived through a
    /// blackhole lost bytes, so they are reset (as TCP gives up on a long
    /// partition); new ones pass.
    pub fn heal(&self) {
        for s in self.shared.streams.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        self.shared.mode.store(PASS, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stopped.store(true, Ordering::SeqCst);
        self.cut();
        // Wake the accept loop so it sees `stopped`.
        let _ = TcpStream::connect(&self.addr);
    }
}

/// Copies `from` to `to` until either side closes; drops the bytes while
/// blackholed.
fn pump(mut from: TcpStream, mut to: TcpStream, shared: Arc<Shared>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 16 * 1024];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => match shared.mode.load(Ordering::SeqCst) {
                    PASS => {
                        if to.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    BLACKHOLE => {}
                    _ => break,
                },
            }
        }
        let _ = from.shutdown(Shutdown::Both);
        let _ = to.shutdown(Shutdown::Both);
    });
}
