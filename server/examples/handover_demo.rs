//! Writes the demo patient's handover page to a file, to look at in a browser or print.
//!
//! `cargo run -p mimamori-server --example handover_demo -- /tmp/handover.html [en]`

use anyhow::Context as _;
use mimamori_server::oncall::handover::{Language, demo::demo_input, render_html};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| "handover.html".to_owned());
    let language = match args.next().as_deref() {
        Some("en") => Language::En,
        _ => Language::Ja,
    };
    let html = render_html(&demo_input(language));
    std::fs::write(&path, html).with_context(|| format!("while writing {path}"))?;
    println!("{path}");
    Ok(())
}
