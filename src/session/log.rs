//! The tracing span every log line about a call runs in: its call-id (and from-tag when the
//! command names one), so text and JSON logs tie each line to its call.

/// The span for work on `call_id` (on behalf of `from_tag`, if known).
pub fn call_span(call_id: &str, from_tag: Option<&str>) -> tracing::Span {
    match from_tag {
        Some(tag) => tracing::info_span!("call", call_id = %call_id, from_tag = %tag),
        None => tracing::info_span!("call", call_id = %call_id),
    }
}
