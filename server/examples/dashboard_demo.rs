//! The dashboard over simulated patients, without broker or database.
//!
//! Run: `cargo run -p mimamori-server --example dashboard_demo -- 127.0.0.1:8080 [deterioration-every-s]`
//! then open the printed URL and log in with a printed account.

use std::time::Duration;

use anyhow::Context as _;
use mimamori_server::http::demo::{DEMO_DETERIORATION_EVERY, simulated_state};
use mimamori_server::http::simulated::DEMO_ACCOUNTS;
use mimamori_server::http::{HttpConfig, serve};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let every = match args.next() {
        Some(s) => Duration::from_secs(s.parse().context("while reading deterioration-every-s")?),
        None => DEMO_DETERIORATION_EVERY,
    };
    let (state, sim) = simulated_state(HttpConfig::default(), 1)
        .await
        .context("while setting up the demo")?;
    tokio::spawn(sim.run(Some(every)));
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("while binding {listen}"))?;
    let addr = listener.local_addr()?;
    println!("mimamori dashboard: http://{addr}/");
    for a in DEMO_ACCOUNTS {
        println!("  {:<10} {:<20} {:?}", a.login, a.password, a.role);
    }
    println!("  a patient deteriorates every {} s", every.as_secs());
    serve(listener, state, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("while serving")
}
