//! A two-party call across a namespace topology: the caller and the callee each bind RTP (and RTCP on
//! port+1) on their own veth address, the caller offers and the callee answers through the relay's NG
//! port, and the relay ports each side must send to are read back from the rewritten SDPs. A re-INVITE
//! (offer again, answer from a new callee port) moves the callee.

use std::net::{IpAddr, SocketAddr};

use super::bencode::{dict, get_str, str_list};
use super::media::MediaEndpoint;
use super::netns::{in_ns, Family, Role, Topology};
use super::ng::{expect_ok, random_cookie, NgClient};
use super::sdp::sdp_media_endpoint;

/// The caller's RTP port (RTCP on the next).
pub const CALLER_PORT: u16 = 40000;
/// The callee's RTP port (RTCP on the next).
pub const CALLEE_PORT: u16 = 40002;

/// An SDP with one PCMU audio stream at `addr:port` (RTCP implied on port+1).
pub fn sdp_at(session: u32, addr: IpAddr, port: u16) -> String {
    let fam = if addr.is_ipv4() { "IP4" } else { "IP6" };
    format!(
        "v=0\r\no=- {session} 1 IN {fam} {addr}\r\ns=rtprelay-test\r\nc=IN {fam} {addr}\r\nt=0 0\r\n\
         m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
}

/// One side of the call, in its namespace.
pub struct NsParty {
    pub rtp: MediaEndpoint,
    pub rtcp: MediaEndpoint,
    pub tag: String,
}

impl NsParty {
    pub fn bind(topo: &Topology, role: Role, family: Family, port: u16, tag: &str) -> NsParty {
        NsParty {
            rtp: topo.media(role, family, port),
            rtcp: topo.media(role, family, port + 1),
            tag: tag.to_owned(),
        }
    }

    /// A party on `addr` (RTP on `port`, RTCP on the next) inside namespace `ns`.
    pub fn bind_in(ns: &str, addr: IpAddr, port: u16, tag: &str) -> NsParty {
        let bind = |port: u16| {
            let at = SocketAddr::new(addr, port);
            in_ns(ns, move || MediaEndpoint::bind(at))
                .and_then(|r| r)
                .unwrap_or_else(|e| panic!("bind {at} in {ns}: {e}"))
        };
        NsParty {
            rtp: bind(port),
            rtcp: bind(port + 1),
            tag: tag.to_owned(),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.rtp.local_addr()
    }
}

/// An answered call: the caller sends to `caller_to` (from the answer's SDP), the callee to `callee_to`
/// (from the offer's SDP); RTCP goes to the port after each.
pub struct NsCall {
    pub id: String,
    pub family: Family,
    pub caller: NsParty,
    pub callee: NsParty,
    pub caller_to: SocketAddr,
    pub callee_to: SocketAddr,
}

impl NsCall {
    /// Offer from the caller, answer from the callee, over `family`, with NG `flags`.
    pub fn setup(ng: &NgClient, topo: &Topology, family: Family, flags: &[&str]) -> NsCall {
        let id = format!("xdp-{}", random_cookie());
        NsCall::setup_with(ng, topo, family, flags, &id, CALLER_PORT, CALLEE_PORT)
    }

    /// As [`NsCall::setup`], with call-id `id` and the parties' RTP on `caller_port` and
    /// `callee_port` (RTCP on the port after each), so that several calls can run at once.
    pub fn setup_with(
        ng: &NgClient,
        topo: &Topology,
        family: Family,
        flags: &[&str],
        id: &str,
        caller_port: u16,
        callee_port: u16,
    ) -> NsCall {
        let caller = NsParty::bind(topo, Role::Caller, family, caller_port, "tag-caller");
        let callee = NsParty::bind(topo, Role::Callee, family, callee_port, "tag-callee");
        NsCall::between(ng, caller, callee, family, flags, id)
    }

    /// A call from `caller` to `callee`, bound already (anywhere), with call-id `id`.
    pub fn between(
        ng: &NgClient,
        caller: NsParty,
        callee: NsParty,
        family: Family,
        flags: &[&str],
        id: &str,
    ) -> NsCall {
        let mut call = NsCall {
            id: id.to_owned(),
            family,
            caller_to: caller.addr(),
            callee_to: callee.addr(),
            caller,
            callee,
        };
        call.negotiate(ng, flags, false);
        call
    }

    /// Offer then answer with the parties as they are now; records where each must send.
    fn negotiate(&mut self, ng: &NgClient, flags: &[&str], reinvite: bool) {
        let (a, b) = (self.caller.addr(), self.callee.addr());
        let mut offer = dict([
            ("command", "offer".into()),
            ("call-id", self.id.as_str().into()),
            ("from-tag", self.caller.tag.as_str().into()),
            ("sdp", sdp_at(1001, a.ip(), a.port()).into()),
            ("flags", str_list(flags)),
        ]);
        // An in-dialog offer (re-INVITE) carries the to-tag, as Kamailio sends it.
        if reinvite {
            offer.insert(b"to-tag".to_vec(), self.callee.tag.as_str().into());
        }
        let o = expect_ok(ng.request(offer), "offer");
        let offer_sdp = get_str(&o, "sdp").expect("offer reply has sdp");
        self.callee_to = sdp_media_endpoint(offer_sdp).expect("endpoint in offer reply");
        let r = expect_ok(
            ng.answer(
                &self.id,
                &self.caller.tag,
                &self.callee.tag,
                &sdp_at(2002, b.ip(), b.port()),
                flags,
            ),
            "answer",
        );
        let answer_sdp = get_str(&r, "sdp").expect("answer reply has sdp");
        self.caller_to = sdp_media_endpoint(answer_sdp).expect("endpoint in answer reply");
    }

    /// A re-INVITE: the caller offers again (in-dialog, with the to-tag) and the callee answers from new
    /// sockets on `port`/`port+1`. As in rtpengine, the side facing a moved endpoint may get a new relay
    /// port: `caller_to`/`callee_to` are updated from the new SDPs. Returns the callee's old sockets.
    pub fn reanswer_from(&mut self, ng: &NgClient, topo: &Topology, port: u16) -> NsParty {
        let new = NsParty::bind(topo, Role::Callee, self.family, port, &self.callee.tag);
        let old = std::mem::replace(&mut self.callee, new);
        self.negotiate(ng, &[], true);
        old
    }

    /// `query` for this call.
    pub fn query(&self, ng: &NgClient) -> super::bencode::Value {
        super::bencode::Value::Dict(expect_ok(ng.query(&self.id), "query"))
    }

    pub fn delete(&self, ng: &NgClient) {
        expect_ok(ng.delete(&self.id, &self.caller.tag), "delete");
    }
}

/// The RTCP address beside an RTP address.
pub fn rtcp_of(rtp: SocketAddr) -> SocketAddr {
    SocketAddr::new(rtp.ip(), rtp.port() + 1)
}
