//! `replace: username` and `replace: session-name`: a side's o= user name and s= text stay what
//! its first SDP said, whatever its later SDPs (re-INVITEs from another stack, a B2BUA that
//! changes them) say, as rtpengine keeps them.

use crate::sdp::{Body, SessionLine};

/// The o= user name and the s= text of the first session of `sd`.
pub(crate) fn names(sd: &Body) -> (Option<String>, Option<String>) {
    let Some(s) = sd.sessions.first() else {
        return (None, None);
    };
    let user = s.origin.as_ref().map(|o| o.username.clone());
    let session = s.lines.iter().find_map(|l| match l {
        SessionLine::Other(line) if line.kind == 's' => Some(line.value.clone()),
        _ => None,
    });
    (user, session)
}
