//! Names the kind of a difference, to group the report (a hint for whoever reads it, never used to pass or
//! fail): the `result`/`error-reason` when they differ, else per SDP attribute whether rtprelay's output lacks a
//! line rtpengine writes ("missing"), has one more ("extra") or writes it otherwise ("differs"), with a few
//! well-known cases named: line endings, a channel count `/1`, the telephone-event `fmtp`, line order.

use std::collections::BTreeSet;

/// Labels for one step's changed lines (`-` rtpengine, `+` rtprelay).
pub fn classify(changes: &[String]) -> Vec<String> {
    let removed: Vec<&str> = changes.iter().filter_map(|c| c.strip_prefix('-')).collect();
    let added: Vec<&str> = changes.iter().filter_map(|c| c.strip_prefix('+')).collect();
    let value = |lines: &[&str], key: &str| {
        lines
            .iter()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .map(str::to_owned)
    };
    let mut labels = BTreeSet::new();
    if removed
        .iter()
        .chain(&added)
        .any(|l| l.starts_with("(no reply)"))
    {
        labels.insert("no reply from one relay".to_owned());
        return labels.into_iter().collect();
    }
    let (r_res, a_res) = (value(&removed, "result:"), value(&added, "result:"));
    let (r_err, a_err) = (
        value(&removed, "error-reason:"),
        value(&added, "error-reason:"),
    );
    if r_res.is_some() || a_res.is_some() {
        let side = |res: Option<String>, err: Option<String>| match (res, err) {
            (Some(r), Some(e)) => format!("{r} ({e})"),
            (Some(r), None) => r,
            (None, _) => "same result".to_owned(),
        };
        labels.insert(format!(
            "result: rtpengine {} / rtprelay {}",
            side(r_res, r_err),
            side(a_res, a_err)
        ));
        return labels.into_iter().collect();
    }
    if r_err.is_some() || a_err.is_some() {
        labels.insert(format!(
            "error-reason: rtpengine {:?} / rtprelay {:?}",
            r_err.unwrap_or_default(),
            a_err.unwrap_or_default()
        ));
    }
    // Pair lines that are the same apart from their terminator.
    let strip = |l: &str| {
        l.trim_end_matches("<LF>")
            .trim_end_matches("<NOEOL>")
            .trim_end_matches("<CR>")
            .to_owned()
    };
    let mut rest_r: Vec<String> = removed.iter().map(|l| l.to_string()).collect();
    let mut rest_a: Vec<String> = added.iter().map(|l| l.to_string()).collect();
    let mut i = 0;
    while i < rest_r.len() {
        let bare = strip(&rest_r[i]);
        if let Some(j) = rest_a.iter().position(|a| strip(a) == bare) {
            if rest_a[j] == rest_r[i] {
                labels.insert("line order".to_owned());
            } else {
                labels.insert("line endings".to_owned());
            }
            rest_a.remove(j);
            rest_r.remove(i);
        } else {
            i += 1;
        }
    }
    let key = |l: &str| -> String {
        let l = strip(l).replace("<SP>", " ");
        if let Some(a) = l.strip_prefix("a=") {
            let name: String = a.chars().take_while(|c| *c != ':').collect();
            format!("a={}", name.trim_end())
        } else {
            l.chars().take(2).collect()
        }
    };
    // Named cases.
    for r in rest_r.clone() {
        for a in rest_a.clone() {
            let (rb, ab) = (strip(&r), strip(&a));
            if rb.starts_with("a=rtpmap:") && (ab == format!("{rb}/1") || rb == format!("{ab}/1")) {
                labels.insert("channel count /1".to_owned());
                rest_r.retain(|x| *x != r);
                rest_a.retain(|x| *x != a);
            }
        }
    }
    let is_dtmf_fmtp = |l: &str| {
        strip(l).strip_prefix("a=fmtp:").is_some_and(|f| {
            f.split_once(' ').is_some_and(|(_, v)| {
                v.chars()
                    .all(|c| c.is_ascii_digit() || c == '-' || c == ',')
            })
        })
    };
    if rest_r.iter().chain(&rest_a).any(|l| is_dtmf_fmtp(l)) {
        labels.insert("telephone-event fmtp".to_owned());
        rest_r.retain(|l| !is_dtmf_fmtp(l));
        rest_a.retain(|l| !is_dtmf_fmtp(l));
    }
    let keys_r: BTreeSet<String> = rest_r.iter().map(|l| key(l)).collect();
    let keys_a: BTreeSet<String> = rest_a.iter().map(|l| key(l)).collect();
    for k in keys_r.union(&keys_a) {
        let label = match (keys_r.contains(k), keys_a.contains(k)) {
            (true, true) => format!("{k} differs"),
            (true, false) => format!("{k} missing in rtprelay"),
            _ => format!("{k} extra in rtprelay"),
        };
        labels.insert(label);
    }
    labels.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(lines: &[&str]) -> Vec<String> {
        classify(&lines.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn names_the_usual_classes() {
        assert_eq!(
            c(&[
                "-result: ok",
                "+result: error",
                "+error-reason: Unknown interface 'x'"
            ]),
            vec!["result: rtpengine ok / rtprelay error (Unknown interface 'x')"]
        );
        assert_eq!(c(&["-a=ptime:20"]), vec!["a=ptime missing in rtprelay"]);
        assert_eq!(c(&["-v=0<LF>", "+v=0"]), vec!["line endings"]);
        assert_eq!(
            c(&["-a=rtpmap:96 AMR-WB/16000", "+a=rtpmap:96 AMR-WB/16000/1"]),
            vec!["channel count /1"]
        );
        assert_eq!(
            c(&["-a=fmtp:101 0-15", "+a=fmtp:101 0-16"]),
            vec!["telephone-event fmtp"]
        );
        assert_eq!(
            c(&["-a=sendrecv", "+a=sendonly", "+a=x"]),
            vec![
                "a=sendonly extra in rtprelay",
                "a=sendrecv missing in rtprelay",
                "a=x extra in rtprelay"
            ]
        );
        assert_eq!(c(&["-(no reply)"]), vec!["no reply from one relay"]);
    }
}
