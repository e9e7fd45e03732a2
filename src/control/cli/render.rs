//! Typed replies → rtpengine-ctl's text, line for line as rtpengine 10.5 prints them (labels,
//! padding, blank lines), so scripts that read `rtpengine-ctl` output read ours. Figures rtprelay
//! does not keep (per-second rates, transcoding, redis, kernel-only streams) print as zero.

use std::fmt::Write;

use crate::control::cli::{CliRequest, SessionFilter, TerminateScope};
use crate::session::command::Setting;
use crate::session::reply::{CallReport, DrainStatus, Reply, SessionSummary};
use crate::session::reports::Snapshot;

/// The answer to `req`, whose session command answered `reply`.
pub fn render(req: &CliRequest, reply: &Reply) -> String {
    match (req, reply) {
        (CliRequest::NumSessions, Reply::Statistics(s)) => numsessions(s),
        (CliRequest::Totals, Reply::Statistics(s)) => totals(s),
        (CliRequest::Sessions(f), Reply::Sessions(list)) => sessions(*f, list),
        (CliRequest::Session(id), Reply::Call(c)) => session(id, c),
        (CliRequest::Session(id), _) => format!("\nCall ID not found ({id}).\n\n"),
        (CliRequest::Get(s), Reply::Setting(v)) => get(*s, *v),
        (CliRequest::Set(s, v), Reply::Ok) => set(*s, *v),
        (CliRequest::Terminate(scope), Reply::Terminated(_)) => terminated(scope),
        (CliRequest::Terminate(TerminateScope::Call(id)), _) => {
            format!("\nCall Id not found ({id}).\n\n")
        }
        (CliRequest::Drain(_), Reply::Drain(d)) => drain(d),
        (_, Reply::Error(e)) => format!("{e}\n"),
        (req, _) => render_local(req, 0),
    }
}

/// `drain` / `drain status`: one line scripts can read.
fn drain(d: &DrainStatus) -> String {
    match d.draining {
        true => format!("Draining: {} calls left.\n", d.calls),
        false => format!("Not draining: {} calls.\n", d.calls),
    }
}

/// The answer to a request that needs no session command: refusals, foreign calls (there are
/// none) and log levels (`level` is the current syslog-style level, after any `set`).
pub fn render_local(req: &CliRequest, level: i64) -> String {
    match req {
        CliRequest::Answer(text) => text.clone(),
        CliRequest::Sessions(SessionFilter::Foreign) => {
            "No foreign sessions on this media relay.\n".into()
        }
        CliRequest::Terminate(TerminateScope::Foreign) => {
            "All foreign calls terminated by operator.\n".into()
        }
        // rtprelay has one level for everything: it stands for rtpengine's `core`.
        CliRequest::GetLogLevel(None) => format!("core = {level}\n"),
        CliRequest::GetLogLevel(Some(sys)) if sys == "core" => format!("{level}\n"),
        CliRequest::GetLogLevel(Some(_)) => String::new(),
        CliRequest::LogLevels => "core - Everything that isn't part of another subsystem\n".into(),
        CliRequest::SetLogLevel(n) => format!("Success setting loglevel to {n}\n"),
        _ => "Unknown or incomplete command::\n".into(),
    }
}

fn numsessions(s: &Snapshot) -> String {
    format!(
        "Current sessions own: {n}\n\
         Current sessions foreign: 0\n\
         Current sessions total: {n}\n\
         Current transcoded media: 0\n\
         Current sessions ipv4 only media: 0\n\
         Current sessions ipv6 only media: 0\n\
         Current sessions ip mixed  media: 0\n",
        n = s.calls
    )
}

fn line(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, " {label:<48}:{value}");
}

fn totals(s: &Snapshot) -> String {
    let t = &s.totals;
    let packets = s.rtp.packets + s.rtcp.packets;
    let bytes = s.rtp.bytes + s.rtcp.bytes;
    let errors = s.rtp.errors + s.rtcp.errors;
    let mut o = String::from("\nStatistics over currently running sessions:\n\n");
    line(&mut o, "Owned sessions", s.calls);
    line(&mut o, "Foreign sessions", 0);
    line(&mut o, "Total sessions", s.calls);
    line(&mut o, "Transcoded media", 0);
    for what in ["Packets", "Bytes", "Errors"] {
        line(&mut o, &format!("{what} per second (userspace)"), 0);
    }
    for what in ["Packets", "Bytes", "Errors"] {
        line(&mut o, &format!("{what} per second (kernel)"), 0);
    }
    for what in ["Packets", "Bytes", "Errors"] {
        line(&mut o, &format!("{what} per second (total)"), 0);
    }
    line(&mut o, "Userspace-only media streams", s.streams);
    line(&mut o, "Kernel-only media streams", 0);
    line(&mut o, "Mixed kernel/userspace media streams", 0);
    o.push_str("\nTotal statistics (does not include current running sessions):\n\n");
    line(
        &mut o,
        "Uptime of rtpengine",
        format!("{} seconds", s.uptime_secs),
    );
    let ended = t.calls_created.saturating_sub(s.calls);
    line(&mut o, "Total managed sessions", ended);
    line(&mut o, "Total rejected sessions", t.rejected_session_limit);
    line(
        &mut o,
        "Total timed-out sessions via TIMEOUT",
        t.calls_timed_out,
    );
    for kind in ["SILENT_TIMEOUT", "FINAL_TIMEOUT", "OFFER_TIMEOUT"] {
        line(&mut o, &format!("Total timed-out sessions via {kind}"), 0);
    }
    line(&mut o, "Total regular terminated sessions", t.calls_deleted);
    line(
        &mut o,
        "Total forced terminated sessions",
        t.calls_terminated,
    );
    line(&mut o, "Total relayed packets (userspace)", packets);
    line(&mut o, "Total relayed packet errors (userspace)", errors);
    line(&mut o, "Total relayed bytes (userspace)", bytes);
    line(&mut o, "Total relayed packets (kernel)", 0);
    line(&mut o, "Total relayed packet errors (kernel)", 0);
    line(&mut o, "Total relayed bytes (kernel)", 0);
    line(&mut o, "Total relayed packets", packets);
    line(&mut o, "Total relayed packet errors", errors);
    line(&mut o, "Total relayed bytes", bytes);
    line(&mut o, "Total number of streams with no relayed packets", 0);
    line(&mut o, "Total number of 1-way streams", 0);
    let n = t.calls_ended.max(1) as f64;
    let average = t.calls_duration_secs / n;
    let deviation = (t.calls_duration_squared / n - average * average)
        .max(0.0)
        .sqrt();
    line(
        &mut o,
        "Average call duration",
        format!("{average:.6} seconds"),
    );
    line(
        &mut o,
        "Total calls duration",
        format!("{:.6} seconds", t.calls_duration_secs),
    );
    line(
        &mut o,
        "Total calls duration squared",
        format!("{:.6} seconds squared", t.calls_duration_squared),
    );
    line(
        &mut o,
        "Total calls duration standard deviation",
        format!("{deviation:.6} seconds"),
    );
    o.push('\n');
    o
}

fn sessions(filter: SessionFilter, list: &[SessionSummary]) -> String {
    if list.is_empty() {
        return match filter {
            SessionFilter::All => "No sessions on this media relay.\n".into(),
            SessionFilter::Own => "No own sessions on this media relay.\n".into(),
            SessionFilter::Foreign => "No foreign sessions on this media relay.\n".into(),
        };
    }
    let mut o = String::new();
    for c in list {
        let _ = writeln!(
            o,
            // rtprelay keeps no redis state.
            "callid: {:>60} | deletionmark:{:>4} | created:{:>12} | proxy:{} | redis_keyspace:0 | foreign:no",
            c.call_id,
            if c.deleted { "yes" } else { "no" },
            c.created,
            proxy(c.proxy),
        );
    }
    o
}

fn session(id: &str, c: &CallReport) -> String {
    let mut o = format!(
        "\ncallid: {id}\ndeletionmark: no\ncreated: {}\nproxy: {}\ntos: 0\nlast_signal: {}\n\
         redis_keyspace: 0\nforeign: no\n\n",
        c.created,
        proxy(c.proxy),
        c.last_signal
    );
    for (n, t) in c.tags.iter().enumerate() {
        let kind = match (t.tag.is_empty(), n) {
            (true, _) => "UNKNOWN",
            (false, 0) => "FROM_TAG",
            (false, _) => "TO_TAG",
        };
        let _ = writeln!(
            o,
            "--- Tag '{}', type: {kind}, label '{}', branch '', callduration 0.000000",
            t.tag,
            t.label.as_deref().unwrap_or("")
        );
        if let Some(peer) = &t.in_dialogue_with {
            let _ = writeln!(o, "---     subscribed to '{peer}'");
            let _ = writeln!(o, "---     subscription of '{peer}'");
        }
        for m in &t.medias {
            let _ = writeln!(
                o,
                "------ Media #{} ({} over {}) using unknown codec",
                m.index, m.kind, m.protocol
            );
            for (i, s) in m.streams.iter().enumerate() {
                let (ip, port) = s
                    .endpoint
                    .map_or((String::new(), 0), |e| (e.ip().to_string(), e.port()));
                let _ = writeln!(
                    o,
                    "-------- Port {:>15}:{:<5} <> {:>15}:{:<5}{}, SSRC 0, {} p, {} b, {} e, {} ts",
                    s.local.ip().to_string(),
                    s.local.port(),
                    ip,
                    port,
                    if i == 1 { " (RTCP)" } else { "" },
                    s.packets,
                    s.bytes,
                    s.errors,
                    s.last_packet
                );
            }
        }
    }
    o.push('\n');
    o
}

/// The NG client as rtpengine prints it (`IP:PORT`), or nothing.
fn proxy(p: Option<std::net::SocketAddr>) -> String {
    p.map(|a| a.to_string()).unwrap_or_default()
}

fn get(s: Setting, v: i64) -> String {
    match s {
        Setting::MaxSessions => format!("Maximum sessions configured on rtpengine: {v}\n"),
        Setting::Timeout => format!("TIMEOUT={v}\n"),
        Setting::SilentTimeout => format!("SILENT_TIMEOUT={v}\n"),
        Setting::OfferTimeout => format!("OFFER_TIMEOUT={v}\n"),
        Setting::FinalTimeout => format!("FINAL_TIMEOUT={v}\n"),
        Setting::DeleteDelay => format!("{v}\n"),
    }
}

fn set(s: Setting, v: i64) -> String {
    match s {
        Setting::MaxSessions if v == -1 => {
            "Success setting maxsessions to -1; disable feature\n".into()
        }
        Setting::MaxSessions => format!("Success setting maxsessions to {v}\n"),
        Setting::DeleteDelay => format!("Success setting delete-delay to {v}\n"),
        Setting::Timeout
        | Setting::SilentTimeout
        | Setting::OfferTimeout
        | Setting::FinalTimeout => format!("Success setting timeout to {v}\n"),
    }
}

fn terminated(scope: &TerminateScope) -> String {
    match scope {
        TerminateScope::All => "All calls terminated by operator.\n".into(),
        TerminateScope::Own => "All own calls terminated by operator.\n".into(),
        TerminateScope::Foreign => "All foreign calls terminated by operator.\n".into(),
        TerminateScope::Call(id) => {
            format!("\nCall Id ({id}) successfully terminated by operator.\n\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::cli::parse;

    fn snap(calls: u64) -> Snapshot {
        Snapshot {
            calls,
            streams: 0,
            uptime_secs: 0,
            totals: Default::default(),
            rtp: Default::default(),
            rtcp: Default::default(),
            plane: "mmsg",
        }
    }

    #[test]
    fn numsessions_and_settings() {
        let text = render(
            &CliRequest::NumSessions,
            &Reply::Statistics(Box::new(snap(2))),
        );
        assert!(text.starts_with(
            "Current sessions own: 2\nCurrent sessions foreign: 0\nCurrent sessions total: 2\n"
        ));
        assert_eq!(text.lines().count(), 7);
        assert_eq!(
            render(&CliRequest::Get(Setting::MaxSessions), &Reply::Setting(-1)),
            "Maximum sessions configured on rtpengine: -1\n"
        );
        assert_eq!(
            render(&CliRequest::Get(Setting::Timeout), &Reply::Setting(60)),
            "TIMEOUT=60\n"
        );
        assert_eq!(
            render(&parse(b"set maxsessions -1"), &Reply::Ok),
            "Success setting maxsessions to -1; disable feature\n"
        );
        assert_eq!(
            render(&parse(b"set timeout 90"), &Reply::Ok),
            "Success setting timeout to 90\n"
        );
    }

    #[test]
    fn sessions_and_terminate() {
        let list = vec![SessionSummary {
            call_id: "call-one-abc".into(),
            deleted: false,
            created: 1796623801,
            recording: false,
            proxy: Some("127.0.0.1:56138".parse().expect("addr")),
        }];
        assert_eq!(
            render(&parse(b"list sessions all"), &Reply::Sessions(list)),
            format!(
                "callid: {:>60} | deletionmark:  no | created:  1796623801 | proxy:127.0.0.1:56138 | redis_keyspace:0 | foreign:no\n",
                "call-one-abc"
            )
        );
        assert_eq!(
            render(&parse(b"list sessions own"), &Reply::Sessions(vec![])),
            "No own sessions on this media relay.\n"
        );
        assert_eq!(
            render(
                &parse(b"terminate x"),
                &Reply::Error("Unknown call-id".into())
            ),
            "\nCall Id not found (x).\n\n"
        );
        assert_eq!(
            render(&parse(b"terminate x"), &Reply::Terminated(1)),
            "\nCall Id (x) successfully terminated by operator.\n\n"
        );
        assert_eq!(
            render(&parse(b"terminate all"), &Reply::Terminated(3)),
            "All calls terminated by operator.\n"
        );
    }

    #[test]
    fn totals_lines_are_padded_like_rtpengine() {
        let text = render(&CliRequest::Totals, &Reply::Statistics(Box::new(snap(0))));
        assert!(text.starts_with(
            "\nStatistics over currently running sessions:\n\n Owned sessions                                  :0\n"
        ));
        assert!(text.contains(" Total relayed bytes                             :0\n"));
    }

    #[test]
    fn drain_answers() {
        use crate::session::command::DrainOp;
        let d = |draining, calls| Reply::Drain(DrainStatus { draining, calls });
        assert_eq!(
            render(&parse(b"drain"), &d(true, 3)),
            "Draining: 3 calls left.\n"
        );
        assert_eq!(
            render(&CliRequest::Drain(DrainOp::Status), &d(false, 2)),
            "Not draining: 2 calls.\n"
        );
    }
}
