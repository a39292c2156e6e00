//! stdio mode: the MCP server runs as our child; its stdin and stdout are relayed to and from
//! ours, line by line (the MCP stdio transport is newline-delimited JSON-RPC).
//!
//! ```text
//! host stdin ──thread──▶ child stdin        child stdout ──thread──▶ host stdout
//!                 └─ copy ─▶ recorder ◀─ copy ─┘
//! ```
//!
//! Each pump is a plain thread with blocking I/O: it hands a copy of a line to the recorder with
//! a non-blocking `try_send`, then writes the line on and flushes it. The copy goes first so
//! the recorder sees a message before anything the other side does in reply to it (a
//! `tools/list` answer before the call it allows, a request before its answer); `try_send`
//! never waits, so recording never delays or reorders the relay (if the recorder ever fell
//! 8192 messages behind, a copy is dropped and counted, never the message). Bytes are passed through exactly as read,
//! including a last line without a newline. With enforcement on, a host line is parsed before
//! it is written, and a refused `tools/call` is answered on stdout instead of being relayed.
//!
//! The child's stderr is inherited. The child runs in its own process group, so a terminal's
//! Ctrl-C reaches it once, through us: SIGINT, SIGTERM and SIGHUP are forwarded. When the host
//! closes our stdin, the child's stdin is closed; a child still running after the grace period
//! is killed. We exit with the child's exit code (128 + signal when a signal ended it).

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::guard::{denial, Guard};
use super::observe::{learn_tools, Catalog, Dir};
use super::Observed;

/// How long a child may run on after the host closed our stdin.
pub const STDIN_GRACE: Duration = Duration::from_secs(5);

pub struct Relay {
    pub command: Vec<String>,
    pub observed: mpsc::Sender<Observed>,
    pub guard: Option<Guard>,
    pub catalog: Catalog,
    pub lost: Arc<AtomicU64>,
}

fn hand_over(tx: &mpsc::Sender<Observed>, lost: &AtomicU64, msg: Observed) {
    if tx.try_send(msg).is_err() {
        let n = lost.fetch_add(1, Ordering::Relaxed);
        if n == 0 {
            eprintln!("mcp-audit wrap: warning: the recorder fell behind; some messages were relayed without being recorded");
        }
    }
}

/// Runs the child and relays until it exits; returns its exit code.
pub async fn run(relay: Relay) -> anyhow::Result<u8> {
    let Relay {
        command,
        observed,
        guard,
        catalog,
        lost,
    } = relay;
    let Some((program, args)) = command.split_first() else {
        anyhow::bail!("no server command; give it after `--`, e.g. `mcp-audit wrap -- npx -y @modelcontextprotocol/server-filesystem /tmp`");
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(|e| {
        anyhow::anyhow!(
            "cannot start `{program}`: {}",
            crate::error::describe_io(&e)
        )
    })?;
    let pid = child.id();
    let (Some(child_in), Some(child_out)) = (child.stdin.take(), child.stdout.take()) else {
        anyhow::bail!("cannot open pipes to `{program}`");
    };
    let host_out = Arc::new(Mutex::new(std::io::stdout()));
    let enforce = guard.is_some();

    let (stdin_closed_tx, stdin_closed) = oneshot::channel::<()>();
    {
        let observed = observed.clone();
        let lost = lost.clone();
        let host_out = host_out.clone();
        let catalog = catalog.clone();
        let mut guard = guard;
        std::thread::Builder::new()
            .name("wrap-host-in".into())
            .spawn(move || {
                let mut input = BufReader::with_capacity(64 << 10, std::io::stdin().lock());
                let mut child_in = child_in;
                let mut line = Vec::with_capacity(4096);
                // Bounded by the host's input: ends at EOF or when the child is gone.
                loop {
                    line.clear();
                    match input.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    if let Some(g) = guard.as_mut() {
                        if let Ok(msg) = serde_json::from_slice::<serde_json::Value>(&line) {
                            if let Some(reason) = g.check(&msg, &catalog) {
                                let answer = denial(&msg, &reason);
                                hand_over(
                                    &observed,
                                    &lost,
                                    Observed::Denied {
                                        scope: 0,
                                        request: msg,
                                        reason,
                                        env: Default::default(),
                                    },
                                );
                                let mut out = host_out.lock().unwrap_or_else(|p| p.into_inner());
                                let _ = out.write_all(&answer).and_then(|()| out.flush());
                                drop(out);
                                continue;
                            }
                        }
                    }
                    hand_over(
                        &observed,
                        &lost,
                        Observed::Message {
                            scope: 0,
                            dir: Dir::HostToServer,
                            bytes: line.clone(),
                            env: Default::default(),
                            at: Instant::now(),
                        },
                    );
                    if child_in
                        .write_all(&line)
                        .and_then(|()| child_in.flush())
                        .is_err()
                    {
                        break;
                    }
                }
                // Closing the child's stdin is how the host's goodbye reaches it.
                drop(child_in);
                let _ = stdin_closed_tx.send(());
            })?;
    }

    let (out_done_tx, out_done) = oneshot::channel::<()>();
    {
        let observed = observed.clone();
        let lost = lost.clone();
        std::thread::Builder::new()
            .name("wrap-child-out".into())
            .spawn(move || {
                let mut input = BufReader::with_capacity(64 << 10, child_out);
                let mut line = Vec::with_capacity(4096);
                loop {
                    line.clear();
                    match input.read_until(b'\n', &mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {}
                    }
                    // The guard must know a tool's definition before the host can call it.
                    if enforce && memchr_tools(&line) {
                        if let Ok(msg) = serde_json::from_slice::<serde_json::Value>(&line) {
                            if let Some(result) = msg.get("result") {
                                learn_tools(&catalog, result);
                            }
                        }
                    }
                    hand_over(
                        &observed,
                        &lost,
                        Observed::Message {
                            scope: 0,
                            dir: Dir::ServerToHost,
                            bytes: line.clone(),
                            env: Default::default(),
                            at: Instant::now(),
                        },
                    );
                    let mut out = host_out.lock().unwrap_or_else(|p| p.into_inner());
                    let ok = out.write_all(&line).and_then(|()| out.flush()).is_ok();
                    drop(out);
                    if !ok {
                        break;
                    }
                }
                let _ = out_done_tx.send(());
            })?;
    }

    let (exit_tx, mut exited) = oneshot::channel();
    std::thread::Builder::new()
        .name("wrap-child-wait".into())
        .spawn(move || {
            let _ = exit_tx.send(child.wait());
        })?;

    let status = supervise(pid, &mut exited, stdin_closed).await?;
    // The child's last lines are still being relayed when it exits; a grandchild holding the
    // pipe open must not keep us here.
    let _ = tokio::time::timeout(Duration::from_secs(2), out_done).await;
    Ok(exit_code(status))
}

fn memchr_tools(line: &[u8]) -> bool {
    line.windows(8).any(|w| w == b"\"tools\":") || line.windows(9).any(|w| w == b"\"tools\" :")
}

async fn supervise(
    pid: u32,
    exited: &mut oneshot::Receiver<std::io::Result<std::process::ExitStatus>>,
    stdin_closed: oneshot::Receiver<()>,
) -> anyhow::Result<std::process::ExitStatus> {
    let mut signals = Signals::new()?;
    let mut stdin_closed = Some(stdin_closed);
    let mut kill_at: Option<tokio::time::Instant> = None;
    loop {
        let grace = async {
            match kill_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let closed = async {
            match stdin_closed.as_mut() {
                Some(rx) => {
                    let _ = rx.await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            status = &mut *exited => {
                return status
                    .map_err(|_| anyhow::anyhow!("lost track of the server process"))?
                    .map_err(|e| anyhow::anyhow!("cannot wait for the server process: {e}"));
            }
            sig = signals.next() => forward(pid, sig),
            () = closed => {
                stdin_closed = None;
                kill_at = Some(tokio::time::Instant::now() + STDIN_GRACE);
            }
            () = grace => {
                eprintln!("mcp-audit wrap: the server did not exit within {}s of its stdin closing; killing it", STDIN_GRACE.as_secs());
                kill_at = None;
                forward(pid, Sig::Kill);
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Sig {
    Int,
    Term,
    Hup,
    Kill,
}

#[cfg(unix)]
fn forward(pid: u32, sig: Sig) {
    use rustix::process::{kill_process, Pid, Signal};
    let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return;
    };
    let sig = match sig {
        Sig::Int => Signal::INT,
        Sig::Term => Signal::TERM,
        Sig::Hup => Signal::HUP,
        Sig::Kill => Signal::KILL,
    };
    // The child may have exited just now; nothing to do then.
    let _ = kill_process(pid, sig);
}

#[cfg(not(unix))]
fn forward(_pid: u32, _sig: Sig) {}

struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    #[cfg(unix)]
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    #[cfg(not(unix))]
    fn new() -> anyhow::Result<Self> {
        Ok(Self {})
    }

    #[cfg(unix)]
    async fn next(&mut self) -> Sig {
        tokio::select! {
            _ = self.int.recv() => Sig::Int,
            _ = self.term.recv() => Sig::Term,
            _ = self.hup.recv() => Sig::Hup,
        }
    }

    #[cfg(not(unix))]
    async fn next(&mut self) -> Sig {
        std::future::pending().await
    }
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return code as u8;
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(sig) = status.signal() {
            return 128u8.wrapping_add(sig as u8);
        }
    }
    1
}
