//! A message body with one or more SDP sessions (several `v=` lines), as some gateways send.
//! Media sections are numbered across all sessions, in order; everything else is per session.

use std::fmt;
use std::net::SocketAddr;

use crate::sdp::family::Family;
use crate::sdp::model::{Attribute, Media, SessionDescription};
use crate::sdp::parse::body_len;
use crate::sdp::rewrite::{rewrite, RewritePlan};
use crate::sdp::{parse, SdpError};

/// More sessions than this in one body is refused.
pub const MAX_SESSIONS: usize = 16;

/// One or more sessions.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub sessions: Vec<SessionDescription>,
}

impl Body {
    /// Parses a body; each `v=` line starts a new session. The SDP ends at the first empty
    /// line ([`body_len`]).
    pub fn parse(input: &[u8]) -> Result<Body, SdpError> {
        let input = input.get(..body_len(input)).unwrap_or(input);
        let mut starts = Vec::new();
        let mut at = 0;
        for line in input.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b"v=") {
                starts.push(at);
            }
            at += line.len();
        }
        if starts.len() <= 1 {
            return Ok(Body {
                sessions: vec![parse(input)?],
            });
        }
        if starts.len() > MAX_SESSIONS {
            return Err(SdpError::TooManySessions);
        }
        // Anything before the first v= belongs to the first chunk (and fails there as usual).
        starts[0] = 0;
        let mut sessions = Vec::with_capacity(starts.len());
        for (k, &start) in starts.iter().enumerate() {
            let end = starts.get(k + 1).copied().unwrap_or(input.len());
            let chunk = input.get(start..end).ok_or(SdpError::Empty)?;
            sessions.push(parse(chunk)?);
        }
        Ok(Body { sessions })
    }

    /// Media sections over all sessions.
    pub fn media_count(&self) -> usize {
        self.sessions.iter().map(|s| s.media.len()).sum()
    }

    /// (session, index within it) of media section `i`.
    fn locate(&self, mut i: usize) -> Option<(usize, usize)> {
        for (k, s) in self.sessions.iter().enumerate() {
            if i < s.media.len() {
                return Some((k, i));
            }
            i -= s.media.len();
        }
        None
    }

    /// All media sections in order.
    pub fn medias(&self) -> impl Iterator<Item = &Media> {
        self.sessions.iter().flat_map(|s| s.media.iter())
    }

    /// All media sections in order, mutable.
    pub fn medias_mut(&mut self) -> impl Iterator<Item = &mut Media> {
        self.sessions.iter_mut().flat_map(|s| s.media.iter_mut())
    }

    /// The session media section `i` belongs to (its session-level attributes apply to it).
    pub fn session_of(&self, i: usize) -> Option<&SessionDescription> {
        let (k, _) = self.locate(i)?;
        self.sessions.get(k)
    }

    pub fn media(&self, i: usize) -> Option<&Media> {
        let (k, j) = self.locate(i)?;
        self.sessions.get(k)?.media.get(j)
    }

    fn with<T>(&self, i: usize, f: impl FnOnce(&SessionDescription, usize) -> T) -> Option<T> {
        let (k, j) = self.locate(i)?;
        Some(f(self.sessions.get(k)?, j))
    }

    pub fn rtp_endpoint(&self, i: usize) -> Option<SocketAddr> {
        self.with(i, |s, j| s.rtp_endpoint(j)).flatten()
    }

    pub fn rtcp_endpoint(&self, i: usize) -> Option<SocketAddr> {
        self.with(i, |s, j| s.rtcp_endpoint(j)).flatten()
    }

    pub fn is_null_address(&self, i: usize) -> bool {
        self.with(i, |s, j| s.is_null_address(j)).unwrap_or(false)
    }

    pub fn is_trickle_ice(&self, i: usize) -> bool {
        self.with(i, |s, j| s.is_trickle_ice(j)).unwrap_or(false)
    }

    pub fn media_family(&self, i: usize) -> Option<Family> {
        self.with(i, |s, j| s.media_family(j)).flatten()
    }

    /// Session-level attributes of every session.
    pub fn session_attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.sessions.iter().flat_map(|s| s.attributes())
    }

    /// The o= version text of every session (`None` without o=), replaced by `version`;
    /// returns the old ones.
    pub fn replace_versions(&mut self, version: &str) -> Vec<Option<String>> {
        self.sessions
            .iter_mut()
            .map(|s| {
                let o = s.origin.as_mut()?;
                Some(std::mem::replace(&mut o.version, version.to_owned()))
            })
            .collect()
    }

    /// Puts back the versions `replace_versions` returned.
    pub fn restore_versions(&mut self, versions: Vec<Option<String>>) {
        for (s, v) in self.sessions.iter_mut().zip(versions) {
            if let (Some(o), Some(v)) = (s.origin.as_mut(), v) {
                o.version = v;
            }
        }
    }

    /// The o= version of the first session.
    pub fn first_version(&self) -> Option<&str> {
        let o = self.sessions.first()?.origin.as_ref()?;
        Some(o.version.as_str())
    }

    /// Rewrites every session; `plan.media` is numbered across sessions like the media.
    pub fn rewrite(&mut self, plan: &RewritePlan) {
        let mut rest = plan.media.as_slice();
        for s in &mut self.sessions {
            let n = s.media.len().min(rest.len());
            let (mine, tail) = rest.split_at(n);
            rest = tail;
            let part = RewritePlan {
                media: mine.to_vec(),
                ..plan.clone()
            };
            rewrite(s, &part);
        }
    }

    /// Why rtpengine would refuse the media of this body with "Incomplete SDP specification",
    /// if it would: a media section with no `c=` (its own or its session's; rejected ones too),
    /// or an RTP media section listing a format that is not a payload type (a number up to 127;
    /// rtpengine reads its leading digits).
    pub fn incomplete(&self) -> Option<&'static str> {
        for s in &self.sessions {
            for m in &s.media {
                if m.connection.is_none() && s.connection.is_none() {
                    return Some("a media section has no c= line");
                }
                let bad_pt = |f: &String| {
                    let digits: String = f.chars().take_while(char::is_ascii_digit).collect();
                    !f.is_empty() && digits.parse::<u32>().map_or(true, |n| n > 127)
                };
                if m.is_rtp() && m.formats.iter().any(bad_pt) {
                    return Some("an RTP format is not a payload type");
                }
            }
        }
        None
    }

    /// rtpengine cannot write back a body whose last session has no media ("Error rewriting
    /// SDP"): a body with no m= line at all, typically.
    pub fn has_unwritable_session(&self) -> bool {
        self.sessions.last().is_some_and(|s| s.media.is_empty())
    }

    /// The first session, where session-wide marks (loop protection) go.
    pub fn first_mut(&mut self) -> Option<&mut SessionDescription> {
        self.sessions.first_mut()
    }
}

impl fmt::Display for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.sessions {
            write!(f, "{s}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO: &str = "v=0\r\no=- 1 999 IN IP4 192.0.2.1\r\ns=a\r\nt=0 0\r\nm=audio 2002 RTP/AVP 0\r\nc=IN IP4 192.0.2.1\r\nv=0\r\no=- 1 1000 IN IP4 192.0.2.1\r\ns=b\r\nt=0 0\r\nm=audio 2004 RTP/AVP 8\r\nc=IN IP4 192.0.2.2\r\n";

    #[test]
    fn media_are_numbered_across_sessions() {
        let b = Body::parse(TWO.as_bytes()).unwrap();
        assert_eq!(b.sessions.len(), 2);
        assert_eq!(b.media_count(), 2);
        assert_eq!(b.rtp_endpoint(1), Some("192.0.2.2:2004".parse().unwrap()));
        assert_eq!(b.media(1).unwrap().formats, vec!["8"]);
        assert!(b.media(2).is_none());
        assert_eq!(b.to_string(), TWO, "renders back unchanged");
    }

    #[test]
    fn a_single_session_is_the_usual_parse() {
        let one = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
        let b = Body::parse(one.as_bytes()).unwrap();
        assert_eq!(b.sessions.len(), 1);
        assert!(Body::parse(b"garbage").is_err());
    }

    #[test]
    fn too_many_sessions_are_refused() {
        let many = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\n".repeat(MAX_SESSIONS + 1);
        assert_eq!(Body::parse(many.as_bytes()), Err(SdpError::TooManySessions));
    }
}
