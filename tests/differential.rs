//! Differential test: the same real-world offer/answer exchanges (tests/differential/corpus/*.exch: desk phones,
//! PBXs, SBCs, IMS, WebRTC, fax, MSRP, video, IPv6, odd line endings, malformed bodies) are played over NG to
//! Debian's rtpengine and to rtprelay, both started with the same options on loopback; the replies' `result`,
//! `error-reason`, `warning` and SDP are compared line by line after normalising what may legitimately differ
//! (tests/differential/normalize.rs). Each exchange is `same`, `justified` (listed with its reason in
//! tests/differential/known-differences.txt) or `DIFFERS`; the test fails on any unjustified difference and on
//! a listed difference that no longer occurs.
//!
//! `RTPRELAY_DIFF_REPORT=1` prints every diff and never fails (for development); `RTPRELAY_DIFF_ONLY=text` plays
//! only the exchanges whose name contains `text`. Without rtpengine the relay test skips, or fails under
//! `RTPRELAY_E2E=1`. The full report is also written to `<target>/tmp/differential-report.txt`.

#[path = "differential/classify.rs"]
mod classify;
mod common;
#[path = "differential/corpus.rs"]
mod corpus;
#[path = "differential/known.rs"]
mod known;
#[path = "differential/normalize.rs"]
mod normalize;
#[path = "differential/textdiff.rs"]
mod textdiff;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::bencode::{Dict, Value};
use common::{require_or_skip, NgClient, PortBlock, Relay, RelayKind};
use corpus::Exchange;
use known::Known;
use normalize::Normalizer;

/// Options both relays get besides `relay_args`' (127.0.0.1, NG and port range): an IPv6 address on the same
/// interface, so IPv6 and address-family exchanges have somewhere to go.
const EXTRA_ARGS: &[&str] = &["-i", "::1"];

/// Every category the corpus must cover (the list).
const REQUIRED_CATEGORIES: &[&str] = &[
    "polycom",
    "yealink",
    "cisco",
    "grandstream",
    "snom",
    "avaya",
    "freeswitch",
    "asterisk",
    "sonus-ribbon",
    "oracle-acme",
    "ims",
    "webrtc",
    "t38",
    "msrp",
    "video",
    "ipv6",
    "line-endings",
    "malformed",
    "rfc",
];

/// The smallest corpus the issue accepts.
const MIN_EXCHANGES: usize = 60;

fn diff_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/differential")
}

fn load_corpus() -> Vec<Exchange> {
    corpus::load_dir(&diff_dir().join("corpus")).unwrap_or_else(|e| panic!("corpus: {e}"))
}

fn load_known() -> Vec<Known> {
    known::load(&diff_dir().join("known-differences.txt"))
        .unwrap_or_else(|e| panic!("known differences: {e}"))
}

#[test]
fn corpus_is_well_formed() {
    let exchanges = load_corpus();
    assert!(
        exchanges.len() >= MIN_EXCHANGES,
        "{} exchanges, at least {MIN_EXCHANGES} wanted",
        exchanges.len()
    );
    let categories: BTreeSet<&str> = exchanges.iter().map(|e| e.category.as_str()).collect();
    for c in REQUIRED_CATEGORIES {
        assert!(categories.contains(c), "no exchange of category {c}");
    }
    for ex in &exchanges {
        assert!(
            ex.first_from_tag().is_some() || ex.steps.iter().all(|s| s.command == "ping"),
            "{}: no from-tag in any step",
            ex.name
        );
        for (i, step) in ex.steps.iter().enumerate() {
            // Endpoint ports must stay out of the test port blocks (20000..30000), where each relay's own
            // allocations are recognised as such.
            let sdp = String::from_utf8_lossy(step.sdp.as_deref().unwrap_or_default()).into_owned();
            for line in sdp.lines() {
                let port = line
                    .strip_prefix("m=")
                    .and_then(|m| m.split(' ').nth(1))
                    .or_else(|| {
                        line.strip_prefix("a=rtcp:")
                            .and_then(|r| r.split(' ').next())
                    })
                    .and_then(|p| p.split('/').next())
                    .and_then(|p| p.trim().parse::<u32>().ok());
                if let Some(p) = port {
                    assert!(
                        !(20000..30000).contains(&p),
                        "{} step {}: port {p} lies in the test port blocks; pick another",
                        ex.name,
                        i + 1
                    );
                }
            }
        }
    }
    for k in load_known() {
        let ex = exchanges
            .iter()
            .find(|e| e.name == k.exchange)
            .unwrap_or_else(|| panic!("known difference for unknown exchange {}", k.exchange));
        assert!(
            (1..=ex.steps.len()).contains(&k.step),
            "known difference {} step {}: no such step",
            k.exchange,
            k.step
        );
    }
}

/// The first sentence of a reason (the whole text is in the known-differences file).
fn short(reason: &str) -> String {
    match reason.find(". ") {
        Some(i) => format!("{}.", &reason[..i]),
        None => reason.to_owned(),
    }
}

/// What one relay answered to each step of an exchange (`None`: no reply).
fn play(client: &NgClient, ex: &Exchange) -> Vec<Option<Dict>> {
    let call_id = format!("diff-{}", ex.name);
    let mut replies = Vec::new();
    for step in &ex.steps {
        let mut req = step.params.clone();
        req.insert(b"command".to_vec(), step.command.as_str().into());
        if !step.omit.iter().any(|k| k == "call-id") {
            req.entry(b"call-id".to_vec())
                .or_insert_with(|| call_id.as_str().into());
        }
        if let Some(sdp) = &step.sdp {
            req.insert(b"sdp".to_vec(), Value::Bytes(sdp.clone()));
        }
        replies.push(client.request(req).ok());
    }
    // Clean up; the reply does not matter.
    if let Some(tag) = ex.first_from_tag() {
        let _ = client.delete(&call_id, &tag);
    }
    replies
}

/// The outcome of one exchange.
enum Outcome {
    Same,
    /// Every differing step is listed, with these reasons.
    Justified(Vec<String>),
    /// Some step differs and is not (exactly) listed; the labels of all differing steps.
    Differs(Vec<String>),
}

struct Compared {
    outcome: Outcome,
    /// The per-step report text (diffs), printed for unjustified exchanges or in report mode.
    detail: String,
    /// Known entries this exchange used.
    used: Vec<(String, usize)>,
}

fn compare(
    ex: &Exchange,
    ranges: [(u16, u16); 2],
    replies: [&[Option<Dict>]; 2],
    known: &[Known],
) -> Compared {
    let inputs: Vec<&[u8]> = ex.steps.iter().filter_map(|s| s.sdp.as_deref()).collect();
    let mut norm_e = Normalizer::new(ranges[0], &inputs);
    let mut norm_r = Normalizer::new(ranges[1], &inputs);
    let mut detail = String::new();
    let mut labels = Vec::new();
    let mut reasons = Vec::new();
    let mut unjustified = false;
    let mut used = Vec::new();
    for (i, step) in ex.steps.iter().enumerate() {
        let a = norm_e.render(replies[0].get(i).and_then(Option::as_ref));
        let b = norm_r.render(replies[1].get(i).and_then(Option::as_ref));
        if a == b {
            continue;
        }
        let d = textdiff::diff(&a, &b);
        let changes = textdiff::changes(&d);
        let step_labels = classify::classify(&changes);
        let entry = known
            .iter()
            .find(|k| k.exchange == ex.name && k.step == i + 1);
        let justified = entry.is_some_and(|k| k.matches(&changes));
        detail.push_str(&format!(
            "  step {} {}: {}{}\n",
            i + 1,
            step.command,
            step_labels.join("; "),
            match (entry, justified) {
                (Some(k), true) => format!(" [justified: {}]", k.reason),
                (Some(_), false) =>
                    " [a known-differences entry exists but its lines do not match]".to_owned(),
                (None, _) => String::new(),
            }
        ));
        detail.push_str(&textdiff::unified(&d, 3));
        if let Some(k) = entry {
            used.push((k.exchange.clone(), k.step));
            if justified {
                reasons.push(k.reason.clone());
            }
        }
        if !justified {
            unjustified = true;
        }
        labels.extend(step_labels);
    }
    let outcome = if unjustified {
        Outcome::Differs(labels)
    } else if reasons.is_empty() {
        Outcome::Same
    } else {
        Outcome::Justified(reasons)
    };
    Compared {
        outcome,
        detail,
        used,
    }
}

#[test]
fn differential_vs_rtpengine() {
    let mut exchanges = load_corpus();
    let known = load_known();
    if !require_or_skip("rtpengine") {
        return;
    }
    let report_mode = std::env::var("RTPRELAY_DIFF_REPORT").as_deref() == Ok("1");
    let only = std::env::var("RTPRELAY_DIFF_ONLY").unwrap_or_default();
    if !only.is_empty() {
        exchanges.retain(|e| e.name.contains(&only));
    }

    let (ports_e, ports_r) = (PortBlock::acquire(), PortBlock::acquire());
    let engine = Relay::start(RelayKind::Rtpengine, &ports_e, EXTRA_ARGS);
    let relay = Relay::start(RelayKind::Rtprelay, &ports_r, EXTRA_ARGS);
    let clients = [engine.client(), relay.client()];
    // Loopback does not lose datagrams: one retry, and a relay that does not answer is reported as such.
    let clients = clients.map(|mut c| {
        c.timeout = Duration::from_millis(1500);
        c.retries = 1;
        c
    });
    let ranges = [ports_e.media_range(), ports_r.media_range()];

    let mut report = String::new();
    let (mut same, mut justified, mut differs) = (0, 0, 0);
    let mut by_class: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut used_known = BTreeSet::new();
    let mut failing = Vec::new();
    for ex in &exchanges {
        let re = play(&clients[0], ex);
        let rr = play(&clients[1], ex);
        let c = compare(ex, ranges, [&re, &rr], &known);
        used_known.extend(c.used);
        let (line, show) = match &c.outcome {
            Outcome::Same => {
                same += 1;
                (format!("same       {}", ex.name), false)
            }
            Outcome::Justified(reasons) => {
                justified += 1;
                (
                    format!("justified  {}: {}", ex.name, short(&reasons.join(" / "))),
                    report_mode,
                )
            }
            Outcome::Differs(labels) => {
                differs += 1;
                failing.push(ex.name.clone());
                let distinct: BTreeSet<&String> = labels.iter().collect();
                for l in &distinct {
                    by_class
                        .entry((*l).clone())
                        .or_default()
                        .push(ex.name.clone());
                }
                (format!("DIFFERS    {} ({})", ex.name, ex.category), true)
            }
        };
        report.push_str(&line);
        report.push('\n');
        if show || report_mode && !c.detail.is_empty() {
            report.push_str(&c.detail);
        }
    }
    // Listed differences that no longer occur (only meaningful over the whole corpus).
    let stale: Vec<String> = if only.is_empty() {
        known
            .iter()
            .filter(|k| !used_known.contains(&(k.exchange.clone(), k.step)))
            .map(|k| format!("{} step {}", k.exchange, k.step))
            .collect()
    } else {
        Vec::new()
    };
    if !by_class.is_empty() {
        report.push_str("\nunjustified differences by class (exchanges):\n");
        for (class, names) in &by_class {
            report.push_str(&format!(
                "  {:3}  {class}: {}\n",
                names.len(),
                names.join(", ")
            ));
        }
    }
    for s in &stale {
        report.push_str(&format!(
            "STALE      known-differences entry {s}: the step no longer differs; remove the entry\n"
        ));
    }
    let summary = format!(
        "differential: {} exchanges, {same} same, {justified} justified differences, {differs} unjustified",
        exchanges.len()
    );
    report.push_str(&summary);
    report.push('\n');
    let path = Path::new(env!("CARGO_TARGET_TMPDIR")).join("differential-report.txt");
    let _ = std::fs::write(&path, &report);
    println!("{report}(report written to {})", path.display());
    drop((engine, relay));

    if report_mode {
        return;
    }
    let list = |v: &[String]| {
        if v.is_empty() {
            "none".to_owned()
        } else {
            v.join(", ")
        }
    };
    assert!(
        failing.is_empty() && stale.is_empty(),
        "{summary}; unjustified: {}; stale known-differences entries: {}. \
         Set RTPRELAY_DIFF_REPORT=1 to see every diff without failing.",
        list(&failing),
        list(&stale)
    );
}
