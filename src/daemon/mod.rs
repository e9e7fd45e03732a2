//! The running daemon: wires the configuration, the data plane, the workers, the session engine
//! and the NG transports together, and stops them cleanly on SIGTERM/SIGINT.

pub mod binder;
pub mod cli;
pub mod control;
pub mod drain;
pub mod dtls;
pub mod guard;
pub mod keys;
pub mod recorder;
pub mod standby;
pub mod store;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;

use crate::config::Config;
use crate::control::dispatch::Dispatcher;
use crate::control::transport;
use crate::daemon::binder::SocketBinder;
use crate::daemon::control::{Control, ControlState};
use crate::dataplane::{probe, xdp, DataplaneRequest};
use crate::session::{Engine, EngineConfig};
use crate::time::Clock;
use crate::worker::Workers;

/// Why the daemon could not start.
#[derive(Debug, Error)]
pub enum DaemonError {
    #[error("no media interface configured (use --interface)")]
    NoInterface,
    #[error("cannot listen for NG on {addr}: {source}")]
    Listen {
        addr: String,
        source: crate::control::transport::TransportError,
    },
    #[error("recording: {0}")]
    Recording(#[from] recorder::RecorderError),
    #[error("XDP plane requested with --no-fallback, but it cannot run: {0}")]
    Xdp(String),
    #[error("cannot start workers: {0}")]
    Workers(String),
    #[error("worker {0} panicked too often ({budget} in {secs} s) and stopped; exiting so that a supervisor restarts the relay", budget = crate::worker::PANIC_BUDGET, secs = crate::worker::PANIC_WINDOW.as_secs())]
    WorkerDied(usize),
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    #[error("cannot write pidfile {path}: {source}")]
    Pidfile {
        path: String,
        source: std::io::Error,
    },
}

/// Runs until SIGTERM/SIGINT.
pub fn run(cfg: Config) -> Result<(), DaemonError> {
    if cfg.interfaces.is_empty() {
        return Err(DaemonError::NoInterface);
    }
    // SIGINT stops at once; SIGTERM drains first when `--drain-grace` is set (see drain.rs).
    let stop = Arc::new(AtomicBool::new(false));
    let term = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, stop.clone())
        .map_err(DaemonError::Signals)?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, term.clone())
        .map_err(DaemonError::Signals)?;
    let mut drain = drain::DrainWatch::new(cfg.drain_grace);
    if let Some(path) = &cfg.pidfile {
        std::fs::write(path, format!("{}\n", std::process::id())).map_err(|source| {
            DaemonError::Pidfile {
                path: path.display().to_string(),
                source,
            }
        })?;
    }

    match crate::sys::rlimit::raise_nofile() {
        // Four sockets per two-party call, plus a few for control.
        Ok(n) => tracing::info!(
            open_files = n,
            calls = n.saturating_sub(64) / 4,
            "open-files limit (about this many calls)"
        ),
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-files limit"),
    }
    let clock = Clock::new();
    let dtls = dtls::context(&cfg.dtls);
    let policy = guard::policy(&cfg);
    let request = cfg.plane_request();
    let (plane, reason) = probe::choose(request);
    // Held until shutdown: dropping it detaches the program from the interfaces.
    let KernelPlanes {
        program: mut xdp,
        sockets: xsks,
        reason,
    } = start_kernel_planes(&cfg, request, plane.name(), reason)?;
    let offload = xdp.as_ref().map(|p| crate::worker::Offloading {
        table: p.table(),
        install: !cfg.xdp_no_offload,
    });
    let threads = cfg.num_threads.max(1);
    if let Some(Err(e)) = xdp.as_ref().map(|p| p.table().set_partitions(threads)) {
        tracing::warn!(error = %e, "XDP: counter slots not partitioned between the workers");
    }
    let (ev_tx, ev_rx) = crossbeam_channel::unbounded();
    let workers = Workers::spawn(crate::worker::WorkersConfig {
        workers: threads,
        cpus: cfg.cpus.clone(),
        plane,
        clock,
        events: ev_tx,
        offload,
        xsks,
        policy: policy.clone(),
        tuning: crate::worker::SocketTuning {
            connect_latched: cfg.connect_latched,
            uring_fixed_files: cfg.uring_fixed_files,
        },
        dtls: dtls.clone(),
    })
    .map_err(|e| DaemonError::Workers(e.to_string()))?;
    tracing::info!(plane = workers.plane_name(), reason = %reason, "data plane chosen");
    let mut engine = Engine::new(engine_config(
        &cfg,
        workers.plane_name(),
        policy.clone(),
        dtls,
    ));
    engine.set_key_source(Box::new(keys::OsKeys));
    let recorder = match &cfg.recording_dir {
        Some(dir) => match recorder::Recorder::start(
            dir,
            cfg.recording_method.as_deref(),
            cfg.recording_format.as_deref(),
        ) {
            Ok(r) => {
                tracing::info!(dir = %dir.display(), "recording to the spool");
                Some(r)
            }
            // rtpengine's `proc` method needs its kernel module: run, but without recording.
            Err(e @ recorder::RecorderError::Method(_)) => {
                tracing::warn!(error = %e, "recording is off");
                None
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let control = Control::new(
        ControlState {
            dispatcher: Dispatcher::default(),
            engine,
            binder: SocketBinder::default(),
            workers,
            recorder,
        },
        clock,
        ev_rx,
    )
    .with_store(store::CallStore::start(&cfg, clock.now().unix_us));
    // Before NG is served: a client's first command after a restart finds its call.
    store::restore_at_start(&cfg, &control, clock);
    // A hot standby takes over on the CLI's `takeover`, on SIGUSR1, or when its address appears.
    let takeover = Arc::new(AtomicBool::new(false));
    let standby = standby::Standby::start(&cfg, takeover.clone());
    let control = if standby.is_some() {
        signal_hook::flag::register(signal_hook::consts::SIGUSR1, takeover.clone())
            .map_err(DaemonError::Signals)?;
        control.with_takeover(Some(takeover))
    } else {
        control
    };
    let standby = match standby.map(|s| s.spawn_watch(control.clone())) {
        Some(Ok(w)) => Some(w),
        Some(Err(e)) => {
            tracing::warn!(error = %e, "cannot start the standby's watcher: no takeover");
            None
        }
        None => None,
    };

    let handler: transport::NgHandler = {
        let control = control.clone();
        Arc::new(move |peer: &transport::NgPeer, msg: &[u8]| control.handle_message(peer, msg))
    };
    // NG over UDP ignores datagrams from the relay's own media sockets (and port 0): exactly
    // the ports the session layer holds (the table the target checks read too).
    let ports = policy.load().ports().clone();
    let ng_filter = Arc::new(ng_source_filter(&cfg).with_probe(Arc::new(move |a| {
        ports.is_relay_socket(a) || ports.wildcard_holds(a.ip(), a.port())
    })));
    // UDP last: tests and health checks take an NG ping over UDP as "everything is up".
    let mut listeners = Vec::new();
    for addr in &cfg.listen_tcp_ng {
        listeners.push(
            transport::spawn_tcp(*addr, handler.clone()).map_err(|source| DaemonError::Listen {
                addr: format!("tcp {addr}"),
                source,
            })?,
        );
    }
    let metrics: transport::MetricsFn = {
        let control = control.clone();
        let filter = ng_filter.clone();
        Arc::new(move || {
            let mut text = control.metrics();
            text.push_str(&transport::filter::render_metrics(&filter));
            text
        })
    };
    let http = transport::HttpOptions {
        metrics: Some(metrics),
        ready: Some({
            let control = control.clone();
            Arc::new(move || control.ready())
        }),
        hosts: transport::http_policy::HostPolicy::new(
            transport::http::machine_hostname()
                .into_iter()
                .chain(cfg.http_allow_hosts.iter().cloned()),
        ),
        limits: transport::HttpLimits::default(),
    };
    for addr in &cfg.listen_http {
        listeners.push(
            transport::spawn_http(*addr, handler.clone(), http.clone()).map_err(|source| {
                DaemonError::Listen {
                    addr: format!("http {addr}"),
                    source,
                }
            })?,
        );
    }
    for addr in &cfg.listen_ng {
        listeners.push(
            transport::spawn_udp(*addr, handler.clone(), ng_filter.clone()).map_err(|source| {
                DaemonError::Listen {
                    addr: format!("udp {addr}"),
                    source,
                }
            })?,
        );
    }
    for addr in &cfg.listen_cli {
        listeners.push(cli::spawn(*addr, control.clone()).map_err(|source| {
            DaemonError::Listen {
                addr: format!("cli {addr}"),
                source: transport::TransportError::Bind {
                    addr: *addr,
                    source,
                },
            }
        })?);
    }
    let ifaces: Vec<String> = cfg.interfaces.iter().map(describe_interface).collect();
    tracing::info!(interfaces = %ifaces.join(", "), ng = ?cfg.listen_ng, "rtprelay ready");

    let mut next_refresh = std::time::Instant::now() + guard::REFRESH;
    let mut died = None;
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        control.tick();
        if let Some(w) = control.dead_worker() {
            died = Some(w);
            break;
        }
        if drain.should_stop(
            term.swap(false, Ordering::Relaxed),
            &control,
            std::time::Instant::now(),
        ) {
            break;
        }
        if std::time::Instant::now() >= next_refresh {
            guard::refresh(&policy);
            next_refresh = std::time::Instant::now() + guard::REFRESH;
        }
    }
    tracing::info!(worker_died = ?died, "shutting down");
    for l in listeners {
        l.stop();
    }
    if let Some(s) = standby {
        s.shutdown();
    }
    control.shutdown();
    // Dropping the program detaches it from the interfaces.
    if xdp.take().is_some() {
        tracing::info!("XDP program detached");
    }
    if let Some(path) = &cfg.pidfile {
        let _ = std::fs::remove_file(path);
    }
    match died {
        Some(w) => Err(DaemonError::WorkerDied(w)),
        None => Ok(()),
    }
}

/// The NG UDP source filter: the media interfaces' addresses (every host address for an
/// unspecified one) with the media port range; the daemon adds the probe of the ports held.
fn ng_source_filter(cfg: &Config) -> transport::SourceFilter {
    let locals: Vec<std::net::IpAddr> = cfg.interfaces.iter().map(|i| i.local).collect();
    let host: Vec<std::net::IpAddr> = if locals.iter().any(|ip| ip.is_unspecified()) {
        match crate::sys::ifaddrs::host_addresses() {
            Ok(h) => h.into_iter().map(|a| a.addr).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the host's addresses for the NG source filter");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let relay = transport::filter::relay_addresses(&locals, &host);
    transport::SourceFilter::new(relay, cfg.port_min, cfg.port_max)
}

/// What [`start_kernel_planes`] set up.
struct KernelPlanes {
    /// The attached XDP program; dropping it detaches it.
    program: Option<crate::sys::xdp::XdpProgram>,
    /// AF_XDP sockets, one per receive queue of each device (afxdp only).
    sockets: Vec<crate::sys::xsk::XskSocket>,
    /// What to log as the reason for the plane.
    reason: String,
}

impl KernelPlanes {
    fn new(
        program: Option<crate::sys::xdp::XdpProgram>,
        sockets: Vec<crate::sys::xsk::XskSocket>,
        reason: String,
    ) -> KernelPlanes {
        KernelPlanes {
            program,
            sockets,
            reason,
        }
    }
}

/// With `xdp` or `afxdp` requested: load and attach the program (and open the AF_XDP sockets),
/// or say why not; the reason names the userspace plane `user` that serves the rest. `-F`
/// turns a failure into an error.
fn start_kernel_planes(
    cfg: &Config,
    request: DataplaneRequest,
    user: &str,
    reason: String,
) -> Result<KernelPlanes, DaemonError> {
    let afxdp = request == DataplaneRequest::Afxdp;
    if request != DataplaneRequest::Xdp && !afxdp {
        return Ok(KernelPlanes::new(None, Vec::new(), reason));
    }
    let p = match start_xdp(cfg) {
        Ok(p) => p,
        Err(e) if cfg.no_fallback => return Err(DaemonError::Xdp(e.to_string())),
        Err(e) => {
            let reason = format!("xdp unavailable ({e}), falling back to {user} ({reason})");
            tracing::warn!(%reason, "the XDP plane was asked for but cannot run here");
            return Ok(KernelPlanes::new(None, Vec::new(), reason));
        }
    };
    if let Err(e) = p.table().set_port_range(cfg.port_min, cfg.port_max) {
        tracing::warn!(error = %e, "XDP: cannot set the port range; AF_XDP will not take the relay's frames");
    }
    let addrs: Vec<_> = cfg.interfaces.iter().map(|i| i.local).collect();
    if let Err(e) = p.table().set_local_addrs(&addrs) {
        tracing::warn!(error = %e, "XDP: cannot set the local addresses; every address counts as the relay's");
    }
    let reason = format!(
        "xdp: {}; userspace path {user} ({reason})",
        xdp::describe(&p)
    );
    if !afxdp {
        return Ok(KernelPlanes::new(Some(p), Vec::new(), reason));
    }
    let refused = control_port_in_media_range(cfg).or_else(|| too_many_local_addresses(cfg));
    let opened = match refused {
        Some(e) => Err(e),
        None => crate::dataplane::afxdp::open_sockets(&p),
    };
    match opened {
        Ok(s) => {
            let reason = format!(
                "afxdp: {} AF_XDP socket(s) ({}) on {} of {} worker(s); {reason}",
                s.len(),
                if s.iter().all(|x| x.zero_copy()) {
                    "zero-copy"
                } else if s.iter().any(|x| x.zero_copy()) {
                    "zero-copy and copy mode"
                } else {
                    "copy mode"
                },
                cfg.num_threads.max(1).min(s.len()),
                cfg.num_threads.max(1),
            );
            Ok(KernelPlanes::new(Some(p), s, reason))
        }
        Err(e) if cfg.no_fallback => Err(DaemonError::Xdp(format!("AF_XDP: {e}"))),
        Err(e) => {
            let reason = format!("AF_XDP unavailable ({e}), running xdp; {reason}");
            tracing::warn!(%reason, "the AF_XDP plane was asked for but cannot run here");
            Ok(KernelPlanes::new(Some(p), Vec::new(), reason))
        }
    }
}

/// With AF_XDP, every UDP packet to the media port range that the kernel does not forward goes
/// to the AF_XDP workers, which drop what is not media: a UDP control listener (NG over UDP)
/// inside that range would go deaf. TCP listeners (NG over TCP, HTTP) are not affected.
fn control_port_in_media_range(cfg: &Config) -> Option<String> {
    cfg.listen_ng
        .iter()
        .map(|a| a.port())
        .find(|p| (cfg.port_min..=cfg.port_max).contains(p))
        .map(|p| {
            format!(
                "control port {p} lies in the media port range {}-{}",
                cfg.port_min, cfg.port_max
            )
        })
}

/// With several workers, AF_XDP finds the worker owning a frame's port in a table with room for
/// a fixed number of local addresses: with more, frames landing on another worker's queue could
/// not reach their flow.
fn too_many_local_addresses(cfg: &Config) -> Option<String> {
    let max = crate::dataplane::afxdp::MAX_LOCAL_ADDRS;
    let mut locals: Vec<_> = cfg.interfaces.iter().map(|i| i.local).collect();
    locals.sort_unstable();
    locals.dedup();
    (cfg.num_threads > 1 && locals.len() > max).then(|| {
        format!(
            "{} local addresses on the interfaces, more than the {max} AF_XDP serves with \
             several workers",
            locals.len()
        )
    })
}

/// Find the devices behind the media interfaces and attach the program to them.
fn start_xdp(cfg: &Config) -> Result<crate::sys::xdp::XdpProgram, xdp::XdpStartError> {
    let host =
        crate::sys::ifaddrs::host_addresses().map_err(|source| xdp::XdpStartError::Device {
            name: "(all)".into(),
            source,
        })?;
    let locals: Vec<_> = cfg.interfaces.iter().map(|i| i.local).collect();
    let devices = xdp::devices_for(&locals, &host)?;
    xdp::start(&devices)
}

fn engine_config(
    cfg: &Config,
    plane: &'static str,
    policy: crate::guard::SharedPolicy,
    dtls: Option<Arc<crate::dtls::DtlsContext>>,
) -> EngineConfig {
    EngineConfig {
        interfaces: cfg.interfaces.clone(),
        port_min: cfg.port_min,
        port_max: cfg.port_max,
        endpoint_learning: cfg.endpoint_learning,
        strict_source: cfg.strict_source_default,
        learning_window: Duration::from_secs(3),
        timeout: cfg.timeout,
        silent_timeout: cfg.silent_timeout,
        final_timeout: cfg.final_timeout,
        offer_timeout: cfg.offer_timeout,
        delete_delay: cfg.delete_delay,
        max_sessions: cfg.max_sessions,
        plane,
        instance_id: instance_id(),
        policy,
        port_seed: rand::random(),
        dtls,
    }
}

/// 12 random hex digits naming this run of the relay (std's hasher keys are random per process).
fn instance_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    format!("{:012x}", h.finish() & 0xffff_ffff_ffff)
}

fn describe_interface(i: &crate::config::Interface) -> String {
    match i.advertised {
        Some(adv) if adv != i.local => format!("{}/{}!{}", i.name, i.local, adv),
        _ => format!("{}/{}", i.name, i.local),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_control_port_inside_the_media_range_is_named() {
        let mut cfg = Config {
            port_min: 30000,
            port_max: 40000,
            ..Config::default()
        };
        cfg.listen_ng = vec!["127.0.0.1:22222".parse().expect("addr")];
        assert_eq!(control_port_in_media_range(&cfg), None);
        // TCP listeners do not go through AF_XDP.
        cfg.listen_http = vec!["127.0.0.1:35000".parse().expect("addr")];
        cfg.listen_tcp_ng = vec!["127.0.0.1:35001".parse().expect("addr")];
        assert_eq!(control_port_in_media_range(&cfg), None);
        cfg.listen_ng.push("127.0.0.1:35000".parse().expect("addr"));
        let why = control_port_in_media_range(&cfg).expect("overlap");
        assert!(
            why.contains("35000") && why.contains("30000-40000"),
            "{why}"
        );
    }

    #[test]
    fn more_local_addresses_than_afxdp_tells_apart_refuse_it_with_several_workers() {
        let iface = |i: usize| crate::config::Interface {
            name: format!("i{i}"),
            local: std::net::IpAddr::from([10, 0, 0, i as u8]),
            advertised: None,
        };
        let max = crate::dataplane::afxdp::MAX_LOCAL_ADDRS;
        let mut cfg = Config {
            num_threads: 4,
            interfaces: (0..max).map(iface).collect(),
            ..Config::default()
        };
        cfg.interfaces.push(iface(0)); // the same address twice counts once
        assert_eq!(too_many_local_addresses(&cfg), None);
        cfg.interfaces.push(iface(max));
        let why = too_many_local_addresses(&cfg).expect("refused");
        assert!(why.contains(&format!("{}", max + 1)), "{why}");
        cfg.num_threads = 1;
        assert_eq!(too_many_local_addresses(&cfg), None);
    }
}
