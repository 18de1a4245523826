//! The `wasmstack` command.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use wasmstack::demo::DemoDir;
use wasmstack::plugins::{DriverKind, HostConfig, LoadedPlugin, PluginHost, conformance, scaffold, signing, witdocs};
use wasmstack::server::{ServeOptions, Server};

#[derive(Parser)]
#[command(name = "wasmstack", version, about = "IaaS management server whose drivers are WebAssembly components")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the management server: the CloudStack-compatible API at /client/api.
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Folder for the database, keys, plugins and configuration.
        #[arg(long, env = "WASMSTACK_DATA_DIR", default_value = "wasmstack-data")]
        data_dir: PathBuf,
        /// Database URL: sqlite://FILE or postgres://USER:PASS@HOST/DB (default: SQLite in the data folder).
        #[arg(long, env = "WASMSTACK_DATABASE")]
        database: Option<String>,
        /// The built web console, served at /client/ (default: the `web` folder beside this program).
        #[arg(long, env = "WASMSTACK_WEB_DIR")]
        web_dir: Option<PathBuf>,
        /// On a data folder without zones, set up a ready demo cloud on the Simulator.
        #[arg(long)]
        demo: bool,
    },
    /// Driver plugins: what is loaded, what each asks for and what is granted.
    Plugins {
        #[command(subcommand)]
        command: PluginsCommand,
    },
}

#[derive(clap::Args)]
struct HostArgs {
    /// Server configuration file (TOML) with the plugin folder, limits and grants.
    #[arg(long, env = "WASMSTACK_CONFIG")]
    config: Option<PathBuf>,
    /// Plugin folder; overrides the one in the configuration.
    #[arg(long)]
    plugin_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum PluginsCommand {
    /// Loads every driver in the plugin folder and lists them, with refusals.
    List(HostArgs),
    /// Validates one `.wasm` file and shows what it is and asks for.
    Inspect {
        file: PathBuf,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Writes a new driver crate: Cargo.toml, the WIT, a skeleton, grants and a README.
    New {
        /// hypervisor, storage or network.
        #[arg(long, value_parser = ["hypervisor", "storage", "network"])]
        kind: String,
        /// The driver's name (lowercase letters, digits, dashes).
        name: String,
        /// Where to write it (default ./NAME); must be missing or empty.
        dir: Option<PathBuf>,
    },
    /// Runs the conformance calls of a driver's kind against scratch targets.
    Check {
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// Let a network driver build and remove a scratch network on this host.
        #[arg(long)]
        network: bool,
        /// A driver setting KEY=VALUE (repeatable), as an operator gives it when adding a
        /// pool or host; checked against the driver's config-schema.
        #[arg(long = "detail", value_name = "KEY=VALUE", value_parser = parse_detail)]
        details: Vec<(String, String)>,
    },
    /// Makes an ed25519 key pair for signing plugins; prints the public key to trust.
    Keygen {
        /// Where to write the private key (never overwritten).
        keyfile: PathBuf,
    },
    /// Writes the WIT API reference (Markdown) from the WIT doc comments.
    WitDocs {
        /// Write here instead of to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Signs a plugin: writes FILE.sig beside it.
    Sign {
        /// A private key from `plugins keygen`.
        #[arg(long)]
        key: PathBuf,
        file: PathBuf,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    // The server logs its work; the one-shot commands print their answers instead.
    let default_filter = if matches!(cli.command, Command::Serve { .. }) { "info" } else { "error" };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::Serve { listen, data_dir, database, web_dir, demo } => serve(
            ServeOptions {
                listen,
                data_dir,
                database,
                admin_password: std::env::var("WASMSTACK_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty()),
                web_dir: web_dir.or_else(default_web_dir),
            },
            demo,
        ),
        Command::Plugins { command: PluginsCommand::List(args) } => plugins_list(&args),
        Command::Plugins { command: PluginsCommand::Inspect { file, host } } => plugins_inspect(&file, &host),
        Command::Plugins { command: PluginsCommand::New { kind, name, dir } } => plugins_new(&kind, &name, dir),
        Command::Plugins { command: PluginsCommand::Check { file, json, network, details } } => {
            plugins_check(&file, json, conformance::CheckOptions { network, details: details.into_iter().collect() })
        }
        Command::Plugins { command: PluginsCommand::Keygen { keyfile } } => {
            let public = signing::keygen(&keyfile).map_err(anyhow::Error::msg)?;
            println!("wrote the private key to {}; keep it secret", keyfile.display());
            println!("trust it in wasmstack.toml: [plugin-host] trusted-keys = [\"{public}\"]");
            Ok(())
        }
        Command::Plugins { command: PluginsCommand::WitDocs { out } } => match out {
            Some(path) => {
                std::fs::write(&path, witdocs::render()).with_context(|| format!("writing {}", path.display()))
            }
            None => {
                print!("{}", witdocs::render());
                Ok(())
            }
        },
        Command::Plugins { command: PluginsCommand::Sign { key, file } } => {
            let (sig, public) = signing::sign(&key, &file).map_err(anyhow::Error::msg)?;
            println!("wrote {} (signed by {public})", sig.display());
            Ok(())
        }
    }
}

fn serve(opts: ServeOptions, demo: bool) -> Result<()> {
    // The demo's grants must be in place before the plugin host reads them.
    let demo = if demo { Some(DemoDir::prepare(&opts.data_dir)?) } else { None };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let server = Server::start(&opts).await?;
        println!("wasmstack API listening on http://{}/client/api", server.listener.local_addr()?);
        match demo {
            Some(dir) => server.run_demo(dir).await,
            None => server.run().await,
        }
    })
}

/// Where scripts/build.sh puts the console: `web` beside the binary, so the two travel together.
fn default_web_dir() -> Option<PathBuf> {
    Some(std::env::current_exe().ok()?.parent()?.join("web"))
}

fn host_config(args: &HostArgs) -> Result<HostConfig> {
    let mut config = match &args.config {
        Some(path) => HostConfig::load(path).with_context(|| format!("reading {}", path.display()))?,
        None => HostConfig::new("plugins"),
    };
    if let Some(dir) = &args.plugin_dir {
        config.dir = dir.clone();
    }
    Ok(config)
}

fn plugins_list(args: &HostArgs) -> Result<()> {
    let host = PluginHost::new(host_config(args)?)?;
    let events = host.scan();
    let refused: Vec<_> = events.iter().filter(|e| !e.loaded).collect();
    if args.json {
        let plugins: Vec<_> = host.list().iter().map(|p| describe_json(p)).collect();
        let out = serde_json::json!({ "dir": host.dir(), "plugins": plugins, "refused": refused });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!("plugin folder: {}", host.dir().display());
    let plugins = host.list();
    if plugins.is_empty() {
        println!("no drivers loaded");
    }
    for p in &plugins {
        print_plugin(p);
    }
    for e in &refused {
        println!("refused {}: {}", e.file.display(), e.message);
    }
    Ok(())
}

fn plugins_inspect(file: &std::path::Path, args: &HostArgs) -> Result<()> {
    let host = PluginHost::new(host_config(args)?)?;
    let plugin = host.load_file(file)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&describe_json(&plugin))?);
    } else {
        print_plugin(&plugin);
    }
    if !plugin.missing_grants().is_empty() && !args.json {
        println!("  note: until the missing grants are added, calls that need them are refused");
    }
    let installed_as = format!("{}.wasm", plugin.info.name);
    if file.file_name().and_then(|n| n.to_str()) != Some(installed_as.as_str()) && !args.json {
        println!("  note: a plugin's name is its file name: install this one as {installed_as}");
    }
    if plugin.info.name.is_empty() {
        bail!("the plugin has no name");
    }
    Ok(())
}

fn plugins_new(kind: &str, name: &str, dir: Option<PathBuf>) -> Result<()> {
    let kind = match kind {
        "hypervisor" => DriverKind::Hypervisor,
        "storage" => DriverKind::Storage,
        _ => DriverKind::Network,
    };
    let dir = dir.unwrap_or_else(|| PathBuf::from(name));
    let files = scaffold::generate(kind, name, &dir)?;
    println!("wrote a {} driver in {}: {}", kind.as_str(), dir.display(), files.join(" "));
    println!("build it: cd {} && cargo build --release --target wasm32-wasip2", dir.display());
    println!("check it: wasmstack plugins check target/wasm32-wasip2/release/{}", scaffold::artifact(name));
    Ok(())
}

fn parse_detail(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("\"{s}\" is not KEY=VALUE")),
    }
}

fn plugins_check(file: &std::path::Path, json: bool, opts: conformance::CheckOptions) -> Result<()> {
    let report = conformance::check(file, &opts);
    if json {
        let mut v = serde_json::to_value(&report)?;
        v["passed"] = report.passed().into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", report.text());
    }
    if !report.passed() {
        bail!("{} does not conform", file.display());
    }
    Ok(())
}

fn print_plugin(p: &LoadedPlugin) {
    let i = &p.info;
    println!("{} {} ({} driver, {})", i.name, i.version, i.kind.as_str(), p.wit_version_label());
    println!("  {}", i.description);
    println!("  serves: {}", i.serves.summary());
    println!("  file: {} (sha256 {})", p.file.display(), &p.sha256[..16]);
    let limits = p.settings.limits;
    println!("  limits: {} MiB memory, {} ms per call", limits.memory_mib, limits.timeout.as_millis());
    for cap in &i.capabilities {
        let state = if p.settings.grants.covers(cap) { "granted" } else { "NOT granted" };
        println!("  asks: {cap} [{state}]");
    }
    for cap in p.settings.grants.capabilities() {
        println!("  granted: {cap}");
    }
}

fn describe_json(p: &LoadedPlugin) -> serde_json::Value {
    serde_json::json!({
        "name": p.info.name,
        "version": p.info.version,
        "kind": p.info.kind,
        "description": p.info.description,
        "wit": p.wit_version_label(),
        "serves": p.info.serves,
        "file": p.file,
        "sha256": p.sha256,
        "asks": p.info.capabilities,
        "granted": p.settings.grants.capabilities(),
        "missing": p.missing_grants(),
        "memory_mib": p.settings.limits.memory_mib,
        "timeout_ms": p.settings.limits.timeout.as_millis() as u64,
        "config_schema": p.info.config_schema,
    })
}
