//! `bond`: the Bond voice media engine.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use bond::admin::{self, AdminCommand};
use bond::{serve, telemetry, Config};
use bond_control_api::agent_token::TokenRole;
use bond_control_api::auth::Role;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "bond", version, about = "Bond: a real-time voice media engine")]
struct Cli {
    /// A bond.toml; BOND_* environment variables override it.
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run Bond: HTTP API, database, webhooks and media engine.
    Serve,
    /// Load the configuration, print the effective settings as TOML `--config` takes (secrets left out), and exit.
    CheckConfig,
    /// Organizations, API keys and the webhook public key.
    #[command(subcommand)]
    Admin(Admin),
    /// Tools for webhooks.
    #[command(subcommand)]
    Webhooks(Webhooks),
    /// Make a certificate authority and a server certificate it signs, for trying HTTPS (not for production).
    DevCert {
        /// Where to write ca.pem, ca-key.pem, cert.pem and key.pem.
        #[arg(long, default_value = "dev-cert")]
        out: PathBuf,
        /// A name or IP address the certificate is for, besides localhost and 127.0.0.1; repeatable.
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
enum Webhooks {
    /// Receive webhooks and print one line for each (a receiver for trying Bond out).
    Tail {
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: std::net::SocketAddr,
        /// The organization's webhook public key (bond admin public-key --org ID): check each signature.
        #[arg(long)]
        public_key: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum Admin {
    /// Create an organization; prints its id.
    CreateOrg { name: String },
    /// List organizations.
    ListOrgs,
    /// Create an API key; prints it once (only its hash is kept).
    CreateKey {
        #[arg(long = "org")]
        organization_id: String,
        #[arg(long, value_parser = ["admin", "supervisor", "agent"], default_value = "admin")]
        role: String,
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List an organization's API keys (id, role, prefix, name, created, revoked).
    ListKeys {
        #[arg(long = "org")]
        organization_id: String,
    },
    /// Revoke an API key by its id (`create-key` and `list-keys` print it); it stops working at once.
    RevokeKey { api_key_id: String },
    /// Make an agent token for the softphone at /agent (`agent:<name>` is how calls reach it).
    AgentToken {
        #[arg(long = "org")]
        organization_id: String,
        #[arg(long)]
        agent: String,
        /// The connection the agent's own calls are placed on (without it the agent only takes calls).
        #[arg(long = "connection")]
        connection_id: Option<String>,
        #[arg(long, default_value_t = 3600)]
        ttl_secs: i64,
    },
    /// Make a supervisor token for the supervisors' page at /supervisor.
    SupervisorToken {
        #[arg(long = "org")]
        organization_id: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value_t = 3600)]
        ttl_secs: i64,
    },
    /// Print an organization's webhook signing public key (base64 of the raw 32 bytes).
    PublicKey {
        #[arg(long = "org")]
        organization_id: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(cli.config.as_deref(), std::env::vars()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("bond: {e}");
            return ExitCode::from(2);
        }
    };
    let command = match cli.command {
        Command::CheckConfig => {
            return match config.to_toml() {
                Ok(text) => {
                    eprintln!("bond: configuration ok");
                    #[allow(clippy::print_stdout)] // the command's output: TOML for --config
                    {
                        print!("{text}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bond: the configuration does not print as TOML: {e}");
                    ExitCode::from(2)
                }
            };
        }
        Command::Serve => None,
        Command::DevCert { out, hosts } => {
            return match bond::dev_cert::make(&out, &hosts) {
                Ok(made) => {
                    let (ca, cert, key) = (made.ca.display(), made.cert.display(), made.key.display());
                    eprintln!("bond: wrote {ca} (trust it), {cert} (http.tls_cert) and {key} (http.tls_key)");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("bond: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Webhooks(Webhooks::Tail { listen, public_key }) => {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let served = runtime.map(|rt| rt.block_on(bond_control_api::tail::run(listen, public_key)));
            return match served.and_then(|r| r) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("bond: cannot receive webhooks on {listen}: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Command::Admin(a) => Some(match a {
            Admin::CreateOrg { name } => AdminCommand::CreateOrg { name },
            Admin::ListOrgs => AdminCommand::ListOrgs,
            Admin::CreateKey { organization_id, role, name } => AdminCommand::CreateKey {
                organization_id,
                role: Role::parse(&role).unwrap_or(Role::Admin),
                name,
            },
            Admin::ListKeys { organization_id } => AdminCommand::ListKeys { organization_id },
            Admin::RevokeKey { api_key_id } => AdminCommand::RevokeKey { api_key_id },
            Admin::PublicKey { organization_id } => AdminCommand::PublicKey { organization_id },
            Admin::AgentToken { organization_id, agent, connection_id, ttl_secs } => AdminCommand::Token {
                organization_id,
                name: agent,
                role: TokenRole::Agent,
                connection_id,
                ttl_secs,
            },
            Admin::SupervisorToken { organization_id, name, ttl_secs } => AdminCommand::Token {
                organization_id,
                name,
                role: TokenRole::Supervisor,
                connection_id: None,
                ttl_secs,
            },
        }),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bond: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(command) = command {
        return match runtime.block_on(admin::run(&config, command)) {
            Ok(output) => {
                let _ = std::io::stdout().write_all(output.as_bytes());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("bond: {e}");
                ExitCode::FAILURE
            }
        };
    }
    telemetry::init(&config.log);
    match runtime.block_on(serve::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "bond failed");
            eprintln!("bond: {e}");
            ExitCode::FAILURE
        }
    }
}
