//! The `qqbridge` command line: run the bridge, run the QQ simulator on its
//! own, print the Matrix registration, or check a config file.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use qqbridge::config::{self, Config};

#[derive(Parser)]
#[command(
    name = "qqbridge",
    version,
    about = "A bridge between Tencent QQ and Matrix / IRC"
)]
struct Cli {
    #[command(subcommand)]
    command: CliCommand,
}

#[derive(Subcommand)]
enum CliCommand {
    /// Run the bridge.
    Run {
        /// Config file [default: bridge.yaml, else bridge.example.yaml]
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Run the QQ server simulator on its own.
    Sim {
        #[arg(long, default_value = "127.0.0.1:8000")]
        listen: SocketAddr,
        /// Scenario YAML file [default: the built-in demo scenario]
        #[arg(long)]
        scenario: Option<PathBuf>,
        /// Serve the test-only control API on this loopback address.
        #[arg(long)]
        control: Option<SocketAddr>,
    },
    /// Print the Matrix appservice registration YAML.
    Registration {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Check a config file and exit.
    CheckConfig {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
}

fn config_path(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(|| {
        let preferred = Path::new("bridge.yaml");
        if preferred.exists() {
            preferred.to_path_buf()
        } else {
            PathBuf::from("bridge.example.yaml")
        }
    })
}

fn load(given: Option<PathBuf>) -> Result<Config, ExitCode> {
    let path = config_path(given);
    config::load_file(&path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// Raises the soft limit on open files to the hard limit, for the commands
/// that serve many QQ sessions (`run`, `sim`). Every HTTP QQ 1.1 request is
/// a new TCP connection, so thousands of polling sessions keep hundreds to
/// thousands of sockets open at peaks (a login wave, a busy CPU), past the
/// usual soft limit of 1024; the simulator then fails `accept` with EMFILE
/// and clients see dropped connections. The hard limit is what the
/// administrator allows, and raising the soft limit up to it needs no
/// privilege (Go and many servers do the same at start). On failure the
/// old limit simply stays.
#[cfg(unix)]
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed.
    let raised = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 || limit.rlim_cur >= limit.rlim_max
        {
            return;
        }
        let wanted = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0
    };
    if raised {
        tracing::debug!(
            from = limit.rlim_cur,
            to = limit.rlim_max,
            "raised the open-file limit"
        );
    } else {
        tracing::warn!(limit = limit.rlim_cur, "cannot raise the open-file limit");
    }
}

#[cfg(not(unix))]
fn raise_open_file_limit() {}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        CliCommand::CheckConfig { config } => {
            let path = config_path(config);
            match config::load_file(&path) {
                Ok(_) => {
                    println!("{}: ok", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        CliCommand::Run { config } => {
            let config = match load(config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            qqbridge::logging::init(&config.logging);
            raise_open_file_limit();
            match runtime.block_on(qqbridge::app::run(config)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        CliCommand::Sim {
            listen,
            scenario,
            control,
        } => {
            qqbridge::logging::init(&Default::default());
            raise_open_file_limit();
            match runtime.block_on(qqbridge::app::run_simulator(listen, scenario, control)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        CliCommand::Registration { config } => {
            let config = match load(config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match runtime.block_on(qqbridge::app::registration(&config)) {
                Ok(yaml) => {
                    print!("{yaml}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
