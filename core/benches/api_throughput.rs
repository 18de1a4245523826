//! Signed-request throughput and latency of the API against a bare axum handler,
//! both measured in this run, on this machine, with the same client.
//!
//!   cargo bench -p wasmstack --bench api_throughput
//!
//! Two keep-alive client connections each send requests back to back for a few
//! seconds; then the cost of verifying one signature alone is measured.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use wasmstack::api::signing;
use wasmstack::auth::store;

use support::{Conn, encode};

const CONNECTIONS: usize = 2;

struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

async fn load(addr: SocketAddr, path: String, duration: Duration) -> Figures {
    let mut tasks = Vec::new();
    let start = Instant::now();
    for _ in 0..CONNECTIONS {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(addr).await;
            let mut lat = Vec::new();
            while start.elapsed() < duration {
                let t = Instant::now();
                let (status, _) = conn.get(&path).await;
                lat.push(t.elapsed());
                assert_eq!(status, 200, "{path}");
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let took = start.elapsed();
    all.sort();
    Figures {
        per_second: all.len() as f64 / took.as_secs_f64(),
        p50: all[all.len() / 2],
        p99: all[all.len() * 99 / 100],
    }
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let duration = Duration::from_secs(seconds);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let (api_addr, o, key, secret, _data) = support::start_server().await;

        let bare = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let bare_addr = bare.local_addr().unwrap();
        let body = r#"{"listdomainsresponse":{"count":1,"domain":[{"id":"5f4c2a10-0000-4000-8000-000000000000","name":"ROOT","level":0,"haschild":false,"path":"ROOT","state":"Active","created":"2026-01-01T00:00:00+0000"}]}}"#;
        let app = Router::new().route("/client/api", get(move || async move { ([("content-type", "application/json")], body) }));
        tokio::spawn(async move { axum::serve(bare, app).await.unwrap() });

        let expires = (chrono::Utc::now() + chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%S%z").to_string();
        let pairs: Vec<(String, String)> = [
            ("apiKey", key.as_str()),
            ("command", "listDomains"),
            ("response", "json"),
            ("signatureVersion", "3"),
            ("expires", expires.as_str()),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let signature = signing::sign(&secret, &signing::canonical(&pairs));
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={}", encode(v))).collect();
        let path = format!("/client/api?{}&signature={}", query.join("&"), encode(&signature));

        let bare_fig = load(bare_addr, "/client/api?command=listDomains&response=json".into(), duration).await;
        let api_fig = load(api_addr, path, duration).await;

        let t = Instant::now();
        for _ in 0..2000 {
            store::user_by_api_key(&o.db, &key).await.unwrap().unwrap();
        }
        println!("  where the time goes: one API-key lookup {:.1} µs", t.elapsed().as_secs_f64() * 1e6 / 2000.0);
        let t = Instant::now();
        for _ in 0..2000 {
            store::list_domains(&o.db, "/", None, None, None).await.unwrap();
        }
        println!("  where the time goes: one listDomains query {:.1} µs", t.elapsed().as_secs_f64() * 1e6 / 2000.0);
        let mut signed = pairs.clone();
        signed.push(("signature".into(), signature.clone()));
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            assert!(signing::verify(&signed, &signature, &secret));
        }
        let verify = t.elapsed() / n;

        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!("listDomains, {CONNECTIONS} keep-alive connections, {seconds} s each:");
        println!("  bare axum handler   {:>8.0} req/s  p50 {:.3} ms  p99 {:.3} ms", bare_fig.per_second, ms(bare_fig.p50), ms(bare_fig.p99));
        println!("  signed API (SQLite) {:>8.0} req/s  p50 {:.3} ms  p99 {:.3} ms", api_fig.per_second, ms(api_fig.p50), ms(api_fig.p99));
        println!(
            "  ratio               {:>8.2}x throughput, {:.2}x p50, {:.2}x p99",
            bare_fig.per_second / api_fig.per_second,
            api_fig.p50.as_secs_f64() / bare_fig.p50.as_secs_f64(),
            api_fig.p99.as_secs_f64() / bare_fig.p99.as_secs_f64()
        );
        println!("  signature verification alone: {:.2} µs per request", verify.as_secs_f64() * 1e6);
    });
}
