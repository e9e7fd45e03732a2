/*
 * Preload helper for running the upstream NG test suite against rtprelay.
 *
 * The suite's own preload library turns AF_INET/AF_INET6 sockets into
 * AF_UNIX sockets and translates addresses in recvmsg()/sendmsg(), but it
 * does not wrap the batched recvmmsg()/sendmmsg() calls, so a batched data
 * plane would see raw AF_UNIX peer addresses.  Loaded ahead of it
 * (LD_PRELOAD="mmsg-shim.so tests-preload.so"), this library implements the
 * batched calls as loops over the next recvmsg()/sendmsg() in the lookup
 * chain, which are the translating ones.
 *
 * Semantics kept from the kernel calls:
 *  - recvmmsg: with MSG_WAITFORONE, only the first receive may block; later
 *    ones are non-blocking.  MSG_DONTWAIT applies to every receive.  The
 *    timeout is checked after each datagram, as the kernel does.
 *  - an error after at least one datagram ends the batch and returns the
 *    count so far; an error on the first one returns -1 with errno set.
 *
 * Test-harness code only; never linked into rtprelay.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>
#include <time.h>

typedef ssize_t (*recvmsg_fn)(int, struct msghdr *, int);
typedef ssize_t (*sendmsg_fn)(int, const struct msghdr *, int);

static recvmsg_fn next_recvmsg(void)
{
	static recvmsg_fn fn;
	if (!fn)
		fn = (recvmsg_fn) dlsym(RTLD_NEXT, "recvmsg");
	return fn;
}

static sendmsg_fn next_sendmsg(void)
{
	static sendmsg_fn fn;
	if (!fn)
		fn = (sendmsg_fn) dlsym(RTLD_NEXT, "sendmsg");
	return fn;
}

static int deadline_passed(const struct timespec *deadline)
{
	struct timespec now;
	if (clock_gettime(CLOCK_MONOTONIC, &now) != 0)
		return 0;
	if (now.tv_sec != deadline->tv_sec)
		return now.tv_sec > deadline->tv_sec;
	return now.tv_nsec >= deadline->tv_nsec;
}

int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags,
		struct timespec *timeout)
{
	recvmsg_fn rcv = next_recvmsg();
	if (!rcv) {
		errno = ENOSYS;
		return -1;
	}

	struct timespec deadline = {0, 0};
	int have_deadline = 0;
	if (timeout && clock_gettime(CLOCK_MONOTONIC, &deadline) == 0) {
		deadline.tv_sec += timeout->tv_sec;
		deadline.tv_nsec += timeout->tv_nsec;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec += 1;
			deadline.tv_nsec -= 1000000000L;
		}
		have_deadline = 1;
	}

	int base = flags & ~MSG_WAITFORONE;
	unsigned int got = 0;
	while (got < vlen) {
		int f = base;
		if (got > 0 && (flags & MSG_WAITFORONE))
			f |= MSG_DONTWAIT;
		ssize_t n = rcv(fd, &vec[got].msg_hdr, f);
		if (n < 0) {
			if (got > 0)
				break;
			return -1;
		}
		vec[got].msg_len = (unsigned int) n;
		got++;
		if (have_deadline && deadline_passed(&deadline))
			break;
	}
	return (int) got;
}

int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	sendmsg_fn snd = next_sendmsg();
	if (!snd) {
		errno = ENOSYS;
		return -1;
	}

	unsigned int sent = 0;
	while (sent < vlen) {
		ssize_t n = snd(fd, &vec[sent].msg_hdr, flags);
		if (n < 0) {
			if (sent > 0)
				break;
			return -1;
		}
		vec[sent].msg_len = (unsigned int) n;
		sent++;
	}
	return (int) sent;
}
