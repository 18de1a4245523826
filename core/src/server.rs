//! `wasmstack serve`: the data folder, the database, the first-start bootstrap, the
//! plugin host, and the HTTP listener.

use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::auth::secrets::Sealer;
use crate::auth::{passwords, store};
use crate::config::{HttpLimits, ServerConfig};
use crate::db::Db;
use crate::demo::{self, DemoDir};
use crate::jobs::Jobs;
use crate::orchestrate::Orchestrator;
use crate::orchestrate::reconcile::{self, Reconciler};
use crate::plugins::{HostConfig, PluginHost};

/// How `serve` was asked to run.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: a SQLite file in the data folder.
    pub database: Option<String>,
    /// The admin password for the first start; generated when absent.
    pub admin_password: Option<String>,
    /// The built web console served at /client/; none: no console.
    pub web_dir: Option<PathBuf>,
}

/// What a started server is, for callers that embed it (tests, the CLI).
pub struct Server {
    pub orchestrator: Orchestrator,
    pub listener: tokio::net::TcpListener,
    pub watcher: Option<crate::plugins::WatchHandle>,
    /// Brings recorded VM states in line with the hosts once serving starts.
    pub reconciler: Reconciler,
    pub console: Option<crate::web::Console>,
    /// The listener's limits, the connection cap fitted to the open-file limit.
    pub http: HttpLimits,
}

impl Server {
    /// Prepares everything up to the bound socket.
    pub async fn start(opts: &ServeOptions) -> Result<Server> {
        std::fs::create_dir_all(&opts.data_dir).with_context(|| format!("creating {}", opts.data_dir.display()))?;
        let config = ServerConfig::load(&opts.data_dir.join("wasmstack.toml"))?;
        // Before the first hash (the admin's, on a first start).
        passwords::set_threads(config.login.hash_threads);
        let (max_connections, open_files) = crate::connections::fit_connections(config.http.max_connections);
        if max_connections < config.http.max_connections {
            tracing::warn!(
                "serving at most {max_connections} connections, not {}: the open-file limit is {open_files}",
                config.http.max_connections
            );
        }
        let http = HttpLimits { max_connections, ..config.http };
        let url = opts.database.clone().unwrap_or_else(|| Db::sqlite_url(&opts.data_dir.join("wasmstack.db")));
        let db = Db::open(&url).await.with_context(|| format!("opening the database {}", redact(&url)))?;
        if let Some(first) = store::bootstrap(&db, opts.admin_password.clone()).await? {
            match first.generated_password {
                Some(password) => {
                    let file = opts.data_dir.join("admin-password");
                    write_private(&file, &password)?;
                    println!("First start: created user admin with password {password}");
                    println!("(also saved in {}; you will be asked to change it)", file.display());
                }
                None => println!("First start: created user admin with the password from WASMSTACK_ADMIN_PASSWORD"),
            }
        }
        let sealer = Sealer::load_or_create(&opts.data_dir.join("secrets.key")).context("loading the secrets key")?;
        let server_id = server_id(&opts.data_dir)?;
        let jobs = Jobs::new(db.clone(), server_id.clone());
        let failed = jobs.recover().await?;
        if failed > 0 {
            tracing::warn!("{failed} jobs were running when the server stopped; marked failed");
        }
        let interrupted = crate::cloud::templates::fail_interrupted(&db).await?;
        if interrupted > 0 {
            tracing::warn!("{interrupted} template downloads were cut off when the server stopped; marked failed");
        }
        let plugins = plugin_host(&opts.data_dir)?;
        // Load what is there before serving, so the first request finds its drivers.
        for ev in plugins.scan() {
            if ev.loaded {
                println!("plugin: {}", ev.message);
            } else {
                println!("plugin {}: {}", ev.file.display(), ev.message);
            }
        }
        // Metadata, userdata and passwords beside the drivers' namespaced DHCP services.
        let guest_data = crate::cloud::guest_data::DbGuestData::new(db.clone()).await.context("guest data")?;
        plugins.serve_guest_data(std::sync::Arc::new(guest_data), tokio::runtime::Handle::current(), &server_id);
        let watcher = plugins.watch_interval().map(|every| plugins.watch(every));
        let listener = tokio::net::TcpListener::bind(opts.listen)
            .await
            .with_context(|| format!("listening on {}", opts.listen))?;
        let keys = Default::default();
        let orchestrator = Orchestrator {
            db,
            jobs,
            sealer,
            plugins,
            keys,
            consoles: Default::default(),
            plugin_uploads: Default::default(),
            login: config.login,
        };
        // Built now, after the jobs above were failed, to know which VMs a crash left busy.
        let reconciler = Reconciler::new(orchestrator.clone()).await?;
        let console = opts.web_dir.clone().map(|dir| crate::web::Console::new(dir, &opts.data_dir));
        Ok(Server { orchestrator, listener, watcher, reconciler, console, http })
    }

    /// The API, and the console when there is one.
    fn routes(&self) -> axum::Router {
        let app = crate::http::routes(self.orchestrator.clone());
        match &self.console {
            Some(console) => app.merge(console.routes()),
            None => app,
        }
    }

    /// Serves until the process is stopped.
    pub async fn run(self) -> Result<()> {
        let app = self.routes();
        let _watcher = self.watcher;
        self.reconciler.spawn(reconcile::interval());
        crate::connections::serve(self.listener, app, self.http).await.context("serving HTTP")
    }

    /// Serves, and meanwhile sets up the demo cloud (see `demo`) when there is none yet.
    /// The server serves the demo template itself, so the set-up runs while serving.
    pub async fn run_demo(self, dir: DemoDir) -> Result<()> {
        let addr = self.listener.local_addr()?;
        // Downloads go to the address the server listens on; "all addresses" means loopback.
        let host = if addr.ip().is_unspecified() { std::net::Ipv4Addr::LOCALHOST.into() } else { addr.ip() };
        let base = format!("http://{}", SocketAddr::new(host, addr.port()));
        let template = dir.template();
        let serve_template = axum::routing::get(move || async move {
            match tokio::fs::read(&template).await {
                Ok(bytes) => Ok(([(axum::http::header::CONTENT_TYPE, "application/octet-stream")], bytes)),
                Err(_) => Err(axum::http::StatusCode::NOT_FOUND),
            }
        });
        let app = self.routes().route(demo::TEMPLATE_PATH, serve_template);
        let _watcher = self.watcher;
        self.reconciler.spawn(reconcile::interval());
        let serving = tokio::spawn(crate::connections::serve(self.listener, app, self.http));
        match demo::set_up(&self.orchestrator, &dir, &base).await {
            Ok(Some(s)) => {
                println!("Demo cloud ready: zone Demo ({}) on the Simulator", s.zone);
                println!(
                    "  template \"Demo Linux\" {}, offering Small {}, network demo-network {}",
                    s.template, s.offering, s.network
                );
            }
            Ok(None) => println!("Demo: this data folder already has a zone; left as it is"),
            Err(e) => {
                serving.abort();
                return Err(anyhow::Error::new(e).context("setting up the demo cloud"));
            }
        }
        serving.await.context("the HTTP server stopped")?.context("serving HTTP")
    }
}

/// The plugin host over `<data>/plugins`, with grants from `<data>/wasmstack.toml` if present
/// (and saved there when changed through the API).
fn plugin_host(data_dir: &Path) -> Result<PluginHost> {
    let config_file = data_dir.join("wasmstack.toml");
    let config = if config_file.exists() {
        HostConfig::load(&config_file)?
    } else {
        // Grants made from the API create the file.
        HostConfig { file: Some(config_file), ..HostConfig::new(data_dir.join("plugins")) }
    };
    std::fs::create_dir_all(&config.dir).with_context(|| format!("creating {}", config.dir.display()))?;
    Ok(PluginHost::new(config)?)
}

/// This server's id, kept in the data folder so that after a restart it recognises
/// the jobs it had been running.
fn server_id(data_dir: &Path) -> Result<String> {
    let file = data_dir.join("server-id");
    if let Ok(id) = std::fs::read_to_string(&file) {
        return Ok(id.trim().to_owned());
    }
    let id = crate::db::new_uuid();
    std::fs::write(&file, &id).with_context(|| format!("writing {}", file.display()))?;
    Ok(id)
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    writeln!(f, "{text}")?;
    Ok(())
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}
