//! The `--listen-cli` service: rtpengine's CLI over TCP, as `rtpengine-ctl` and `rtprelay-ctl`
//! speak it. A client connects, sends one line, reads the answer until the relay closes.
//!
//! A control-plane listener, so bounded: one line of at most [`MAX_LINE`] bytes, read within
//! [`READ_DEADLINE`], at most [`MAX_CONNECTIONS`] clients at a time (more are closed at once).
//! Parsing and rendering are in `control::cli`; the call table is reached only through the
//! session engine ([`Control::handle_admin`]).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::control::cli::{self, CliRequest, TerminateScope, MAX_LINE};
use crate::control::transport::Listener;
use crate::daemon::control::Control;

/// Clients served at the same time.
pub const MAX_CONNECTIONS: usize = 16;
/// The whole command line must arrive within this.
pub const READ_DEADLINE: Duration = Duration::from_secs(5);
/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// Binds `addr` and serves the CLI on a thread until the returned listener is stopped.
pub fn spawn(addr: SocketAddr, control: Control) -> std::io::Result<Listener> {
    let socket = TcpListener::bind(addr)?;
    socket.set_nonblocking(true)?;
    let local = socket.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let thread = std::thread::Builder::new().name("cli".into()).spawn({
        let stop = stop.clone();
        move || accept_loop(&socket, &control, &stop)
    })?;
    tracing::info!(addr = %local, "CLI listening");
    Ok(Listener::new(local, stop, thread))
}

fn accept_loop(socket: &TcpListener, control: &Control, stop: &AtomicBool) {
    let busy = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        let (stream, peer) = match socket.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(POLL);
                continue;
            }
            Err(e) => {
                tracing::debug!(error = %e, "CLI accept failed");
                std::thread::sleep(POLL);
                continue;
            }
        };
        if busy.fetch_add(1, Ordering::AcqRel) >= MAX_CONNECTIONS {
            busy.fetch_sub(1, Ordering::AcqRel);
            drop(stream);
            continue;
        }
        let control = control.clone();
        let busy_conn = busy.clone();
        let spawned = std::thread::Builder::new()
            .name("cli-conn".into())
            .spawn(move || {
                serve(stream, peer, &control);
                busy_conn.fetch_sub(1, Ordering::AcqRel);
            });
        if spawned.is_err() {
            busy.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// One client: read its line, answer, close.
fn serve(mut stream: TcpStream, peer: SocketAddr, control: &Control) {
    let Some(line) = read_line(&mut stream) else {
        return;
    };
    let req = cli::parse(&line);
    {
        // A command about one call is logged in that call's span (the engine's own lines are too).
        let span = match &req {
            CliRequest::Session(id) | CliRequest::Terminate(TerminateScope::Call(id)) => {
                crate::session::log::call_span(id, None)
            }
            _ => tracing::Span::none(),
        };
        let _in_call = span.enter();
        tracing::debug!(%peer, request = ?req, "CLI command");
    }
    let answer = execute(&req, control);
    let _ = stream.set_write_timeout(Some(READ_DEADLINE));
    let _ = stream.write_all(answer.as_bytes());
    let _ = stream.shutdown(Shutdown::Both);
}

/// Runs a parsed request: through the engine when it needs the call table, here otherwise.
pub fn execute(req: &CliRequest, control: &Control) -> String {
    if let Some(cmd) = req.command() {
        return cli::render(req, &control.handle_admin(cmd));
    }
    if let CliRequest::Takeover = req {
        return match control.request_takeover() {
            true => "Takeover requested.\n".into(),
            false => "Not a standby (no --redis-follow): nothing to take over.\n".into(),
        };
    }
    if let CliRequest::SetLogLevel(n) = req {
        crate::config::logging::set_level(*n);
        tracing::info!(level = n, "log level changed by operator");
    }
    cli::render_local(req, crate::config::logging::current_level())
}

/// The first line (without `\n`), or what came before the client stopped sending. `None` when
/// the line is too long, late or the connection failed.
fn read_line(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let deadline = Instant::now() + READ_DEADLINE;
    let mut line = Vec::with_capacity(128);
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .ok()?;
        let n = match stream.read(&mut buf) {
            Ok(0) => return Some(line),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return None,
        };
        let chunk = buf.get(..n)?;
        if let Some(end) = chunk.iter().position(|&b| b == b'\n') {
            line.extend_from_slice(chunk.get(..end)?);
            return (line.len() <= MAX_LINE).then_some(line);
        }
        line.extend_from_slice(chunk);
        if line.len() > MAX_LINE {
            return None;
        }
    }
}
