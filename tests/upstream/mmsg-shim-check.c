/*
 * Self-check for mmsg-shim.so, run by run.sh under
 * LD_PRELOAD="mmsg-shim.so tests-preload.so" with TEST_SOCKET_PATH set.
 *
 * A "relay" socket on 203.0.113.1:5000 receives three datagrams from a
 * "peer" socket on 198.51.100.1:4000 with one recvmmsg(MSG_WAITFORONE) call
 * and answers each with sendmmsg().  Passes when the relay sees AF_INET peer
 * addresses (the suite's shim translated them), the batch stops without
 * blocking once the queue is empty, and the peer gets the replies from
 * 203.0.113.1:5000.  Exit 0 on success.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int bound(const char *addr, int port)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	inet_pton(AF_INET, addr, &sin.sin_addr);
	if (bind(fd, (struct sockaddr *) &sin, sizeof(sin)) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int fail(const char *what)
{
	fprintf(stderr, "mmsg-shim check failed: %s\n", what);
	return 1;
}

int main(void)
{
	int relay = bound("203.0.113.1", 5000);
	int peer = bound("198.51.100.1", 4000);
	if (relay < 0 || peer < 0)
		return fail("socket/bind");

	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(5000) };
	inet_pton(AF_INET, "203.0.113.1", &to.sin_addr);
	for (int i = 0; i < 3; i++) {
		char b = (char) ('a' + i);
		if (sendto(peer, &b, 1, 0, (struct sockaddr *) &to, sizeof(to)) != 1)
			return fail("sendto");
	}

	enum { VLEN = 8 };
	struct mmsghdr vec[VLEN];
	struct sockaddr_in from[VLEN];
	char buf[VLEN][16];
	struct iovec iov[VLEN];
	memset(vec, 0, sizeof(vec));
	for (int i = 0; i < VLEN; i++) {
		iov[i] = (struct iovec) { .iov_base = buf[i], .iov_len = sizeof(buf[i]) };
		vec[i].msg_hdr.msg_iov = &iov[i];
		vec[i].msg_hdr.msg_iovlen = 1;
		vec[i].msg_hdr.msg_name = &from[i];
		vec[i].msg_hdr.msg_namelen = sizeof(from[i]);
	}
	int n = recvmmsg(relay, vec, VLEN, MSG_WAITFORONE, NULL);
	if (n != 3)
		return fail("recvmmsg did not return the 3 queued datagrams");
	for (int i = 0; i < n; i++) {
		if (from[i].sin_family != AF_INET || ntohs(from[i].sin_port) != 4000)
			return fail("peer address not translated to AF_INET 198.51.100.1:4000");
		if (vec[i].msg_len != 1 || buf[i][0] != 'a' + i)
			return fail("payload or msg_len");
		iov[i].iov_len = vec[i].msg_len;
	}

	if (sendmmsg(relay, vec, (unsigned int) n, 0) != n)
		return fail("sendmmsg");
	for (int i = 0; i < n; i++) {
		char b = 0;
		struct sockaddr_in src;
		struct iovec riov = { .iov_base = &b, .iov_len = 1 };
		struct msghdr mh = { .msg_name = &src, .msg_namelen = sizeof(src),
			.msg_iov = &riov, .msg_iovlen = 1 };
		if (recvmsg(peer, &mh, MSG_DONTWAIT) != 1 || b != 'a' + i)
			return fail("reply not received");
		if (src.sin_family != AF_INET || ntohs(src.sin_port) != 5000)
			return fail("reply source not 203.0.113.1:5000");
	}
	close(relay);
	close(peer);
	puts("mmsg shim: ok");
	return 0;
}
