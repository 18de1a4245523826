//! The console proxy's relay: round-trip latency and throughput through the WebSocket
//! proxy, as ratios to a direct TCP connection to the same display, in the same run.
//!
//! The display is a local TCP peer (an echo for round trips, a byte source for
//! throughput): what the relay costs does not depend on what speaks RFB behind it. The
//! ticket is for a real VM, deployed on the demo cloud, and goes through every check.
//!
//!   cargo bench -p wasmstack --bench console_relay      (ROUNDS=2000 MEGABYTES=256)

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use wasmstack::demo::DemoDir;
use wasmstack::orchestrate::consoles::{Display, SOCKET_PATH};
use wasmstack::server::{ServeOptions, Server};

use support::{Conn, call, ms, p50_p99, wasm_dir};

const MESSAGE: usize = 64;

fn env_num(var: &str, default: usize) -> usize {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A display stand-in: the first byte picks echo (`e`) or source (`s` + u64 length).
async fn display() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            s.set_nodelay(true).unwrap();
            tokio::spawn(async move {
                let mut mode = [0u8; 1];
                if s.read_exact(&mut mode).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; 64 << 10];
                if mode[0] == b's' {
                    let mut len = [0u8; 8];
                    s.read_exact(&mut len).await.unwrap();
                    let mut left = u64::from_be_bytes(len) as usize;
                    while left > 0 {
                        let n = left.min(buf.len());
                        if s.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        left -= n;
                    }
                    return;
                }
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

async fn direct_rounds(peer: SocketAddr, rounds: usize) -> Vec<Duration> {
    let mut s = TcpStream::connect(peer).await.unwrap();
    s.set_nodelay(true).unwrap();
    s.write_all(b"e").await.unwrap();
    let msg = [7u8; MESSAGE];
    let mut back = [0u8; MESSAGE];
    let mut lat = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        s.write_all(&msg).await.unwrap();
        s.read_exact(&mut back).await.unwrap();
        lat.push(t.elapsed());
    }
    lat
}

async fn direct_bytes(peer: SocketAddr, total: usize) -> Duration {
    let mut s = TcpStream::connect(peer).await.unwrap();
    let t = Instant::now();
    s.write_all(b"s").await.unwrap();
    s.write_all(&(total as u64).to_be_bytes()).await.unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut got = 0;
    while got < total {
        let n = s.read(&mut buf).await.unwrap();
        assert!(n > 0, "the display closed early");
        got += n;
    }
    t.elapsed()
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn proxied(server: SocketAddr, token: &str) -> Ws {
    let url = format!("ws://{server}{SOCKET_PATH}?token={token}");
    let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("the proxy lets the ticket in");
    ws
}

/// Reads binary frames until `want` bytes came.
async fn receive(ws: &mut Ws, want: usize) {
    let mut got = 0;
    while got < want {
        match ws.next().await.expect("the relay closed early").unwrap() {
            Message::Binary(b) => got += b.len(),
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

async fn proxied_rounds(mut ws: Ws, rounds: usize) -> Vec<Duration> {
    ws.send(Message::Binary(vec![b'e'].into())).await.unwrap();
    let mut lat = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        ws.send(Message::Binary(vec![7u8; MESSAGE].into())).await.unwrap();
        receive(&mut ws, MESSAGE).await;
        lat.push(t.elapsed());
    }
    lat
}

async fn proxied_bytes(mut ws: Ws, total: usize) -> Duration {
    let t = Instant::now();
    let mut start = vec![b's'];
    start.extend_from_slice(&(total as u64).to_be_bytes());
    ws.send(Message::Binary(start.into())).await.unwrap();
    receive(&mut ws, total).await;
    t.elapsed()
}

fn main() {
    let rounds = env_num("ROUNDS", 2000);
    let total = env_num("MEGABYTES", 256) << 20;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // The demo cloud on the Simulator, with a running VM to open consoles for.
        let data = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(data.path().join("plugins")).unwrap();
        for driver in ["kvm", "local", "vlan"] {
            std::fs::copy(
                wasm_dir().join(format!("{driver}.wasm")),
                data.path().join(format!("plugins/{driver}.wasm")),
            )
            .expect("built drivers (scripts/build.sh)");
        }
        let demo = DemoDir::prepare(data.path()).unwrap();
        let opts = ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            data_dir: data.path().to_owned(),
            database: None,
            admin_password: Some("bench-password".into()),
            web_dir: None,
        };
        let server = Server::start(&opts).await.unwrap();
        let addr = server.listener.local_addr().unwrap();
        let orch = server.orchestrator.clone();
        let admin = wasmstack::auth::store::user_by_login(&orch.db, "admin", "/").await.unwrap().unwrap();
        let (key, secret) = wasmstack::auth::store::register_keys(&orch.db, &orch.sealer, admin.id).await.unwrap();
        tokio::spawn(server.run_demo(demo));
        let mut conn = Conn::open(addr).await;
        // The demo is done when its zone is enabled (its last step) and the template ready.
        let template = loop {
            let z = call(&mut conn, &key, &secret, &[("command", "listZones"), ("response", "json")], false).await;
            let t = call(
                &mut conn,
                &key,
                &secret,
                &[("command", "listTemplates"), ("templatefilter", "featured"), ("response", "json")],
                false,
            )
            .await;
            let enabled = z["zone"].get(0).is_some_and(|z| z["allocationstate"] == "Enabled");
            if let Some(t) = t["template"].get(0).filter(|t| enabled && t["isready"] == true) {
                break t.clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let offering =
            call(&mut conn, &key, &secret, &[("command", "listServiceOfferings"), ("response", "json")], false).await;
        let vm = call(
            &mut conn,
            &key,
            &secret,
            &[
                ("command", "deployVirtualMachine"),
                ("zoneid", template["zoneid"].as_str().unwrap()),
                ("templateid", template["id"].as_str().unwrap()),
                ("serviceofferingid", offering["serviceoffering"][0]["id"].as_str().unwrap()),
                ("response", "json"),
            ],
            true,
        )
        .await;
        let vm_id = vm["virtualmachine"]["id"].as_str().unwrap().to_owned();

        let peer = display().await;
        let ticket = || orch.consoles.issue_to(&vm_id, None, Display { host: "127.0.0.1".into(), port: peer.port() });

        // Warm both paths, then measure them alternately so drift hits both alike.
        direct_rounds(peer, 100).await;
        proxied_rounds(proxied(addr, &ticket()).await, 100).await;
        let mut direct = Vec::new();
        let mut relayed = Vec::new();
        for _ in 0..4 {
            direct.extend(direct_rounds(peer, rounds / 4).await);
            relayed.extend(proxied_rounds(proxied(addr, &ticket()).await, rounds / 4).await);
        }
        let (d50, d99) = p50_p99(direct);
        let (r50, r99) = p50_p99(relayed);
        println!("round trip of {MESSAGE} bytes, {rounds} rounds:");
        println!("  direct TCP        p50 {:.3} ms  p99 {:.3} ms", ms(d50), ms(d99));
        println!("  through the proxy p50 {:.3} ms  p99 {:.3} ms", ms(r50), ms(r99));
        println!(
            "  added: p50 +{:.3} ms ({:.2}x), p99 +{:.3} ms ({:.2}x)",
            ms(r50.saturating_sub(d50)),
            r50.as_secs_f64() / d50.as_secs_f64(),
            ms(r99.saturating_sub(d99)),
            r99.as_secs_f64() / d99.as_secs_f64()
        );

        let mb = total as f64 / (1 << 20) as f64;
        let mut best_direct = Duration::MAX;
        let mut best_relayed = Duration::MAX;
        for _ in 0..3 {
            best_direct = best_direct.min(direct_bytes(peer, total).await);
            best_relayed = best_relayed.min(proxied_bytes(proxied(addr, &ticket()).await, total).await);
        }
        let (d, r) = (mb / best_direct.as_secs_f64(), mb / best_relayed.as_secs_f64());
        println!("throughput, display to viewer, {mb:.0} MiB (best of 3):");
        println!("  direct TCP        {d:.0} MiB/s");
        println!("  through the proxy {r:.0} MiB/s ({:.2} of direct)", r / d);
    });
}
