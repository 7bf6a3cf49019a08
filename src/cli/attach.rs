//! `braid attach --stdio`: the far end of `braid --remote ssh://host`. It connects to the
//! server's socket on this machine and copies bytes both ways between it and stdin/stdout, so
//! the server sees this process's Unix user (the SSH login) through `SO_PEERCRED`, and the TUI
//! runs at local speed on the agent's own machine.

use super::Globals;
use super::connect::Target;
use anyhow::Context;

#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Bridge stdin/stdout to the server's socket (what `--remote` runs over SSH)
    #[arg(long)]
    pub stdio: bool,
}

pub fn run(globals: &Globals, args: &Args) -> anyhow::Result<()> {
    if !args.stdio {
        anyhow::bail!(
            "attach only bridges: run `braid attach --stdio` (what `braid --remote ssh://host` runs there)"
        );
    }
    let config = globals.load()?;
    let path = match super::connect::target(globals, &config) {
        Target::Socket(p) => p,
        Target::Local(_) => anyhow::bail!(
            "no braid server runs here for {} (start one with `braid server`, or install the service)",
            config.data_dir.display()
        ),
        Target::Ssh(_) => anyhow::bail!("attach cannot bridge to another --remote"),
    };
    super::block_on(async move {
        let sock = tokio::net::UnixStream::connect(&path)
            .await
            .with_context(|| format!("cannot reach the braid server at {}", path.display()))?;
        let (mut sr, mut sw) = sock.into_split();
        let mut stdin = tokio::io::stdin();
        let mut stdout = tokio::io::stdout();
        let up = async {
            let r = tokio::io::copy(&mut stdin, &mut sw).await;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut sw).await;
            r
        };
        let down = async {
            let r = tokio::io::copy(&mut sr, &mut stdout).await;
            let _ = tokio::io::AsyncWriteExt::flush(&mut stdout).await;
            r
        };
        // Either side closing ends the bridge.
        tokio::select! {
            r = up => { r.context("reading stdin")?; }
            r = down => { r.context("writing stdout")?; }
        }
        anyhow::Ok(())
    })?
}
