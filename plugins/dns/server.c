/* plugins/dns/server.c — sockets and threads.
 *
 * UDP: for each listen address, `udp_workers` sockets bound with
 * SO_REUSEPORT (the kernel spreads clients over them), one thread each,
 * blocking in recvmmsg until at least one datagram is there, taking up to
 * 32 at once, and answering them with one sendmmsg: two system calls per
 * batch. Stopping sets a flag and shuts the UDP sockets down, which wakes
 * their threads out of recvmmsg.
 * TCP: one thread polls the listeners and up to tcp_max_conns connections;
 * each message is length-prefixed (RFC 1035 4.2.2), at most 64 KiB; a
 * connection idle for tcp_idle_ms, or sending garbage framing, is closed.
 * Stopping writes to an eventfd the TCP thread polls.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dns.h"

#define BATCH 32
#define UDP_MAX 4096
#define TCP_MAX 65535

struct udp_worker {
	struct dns_server *s;
	int fd;
	pthread_t th;
	bool started;
};

struct tcp_conn {
	int fd;
	uint8_t *buf; /* TCP_MAX + 2 */
	size_t have;
	int64_t last_ms;
};

struct dns_server {
	struct dns_zone *z;
	const struct dns_upstream *up;
	int stopfd;
	bool stopping; /* atomic: set before the UDP sockets are shut down */
	struct udp_worker *udp;
	size_t nudp;
	int *tcp_fds;
	size_t ntcp;
	pthread_t tcp_th;
	bool tcp_started;
	int tcp_idle_ms, tcp_max;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int parse_addr(const char *text, struct sockaddr_in *sa)
{
	char host[64];
	if (snprintf(host, sizeof(host), "%s", text) >= (int)sizeof(host))
		return -1;
	char *colon = strrchr(host, ':');
	if (colon == NULL)
		return -1;
	*colon = '\0';
	char *end;
	long port = strtol(colon + 1, &end, 10);
	if (*end != '\0' || port < 0 || port > 65535)
		return -1;
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

/* UDP sockets (reuseport) block: their threads sleep in recvmmsg. */
static int bind_sock(const struct sockaddr_in *sa, int type, bool reuseport)
{
	int fd = socket(AF_INET, type | SOCK_CLOEXEC |
	    (reuseport ? 0 : SOCK_NONBLOCK), 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0 ||
	    (type == SOCK_STREAM && listen(fd, 128) != 0)) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

static void *udp_main(void *arg)
{
	struct udp_worker *w = arg;
	uint8_t(*in)[UDP_MAX] = malloc(2 * BATCH * UDP_MAX);
	if (in == NULL)
		return NULL;
	uint8_t(*out)[UDP_MAX] = in + BATCH;
	struct dns_cache *cache = dns_cache_new(); /* NULL: no cache */
	struct mmsghdr rm[BATCH], sm[BATCH];
	struct iovec riov[BATCH], siov[BATCH];
	struct sockaddr_storage from[BATCH];
	while (!__atomic_load_n(&w->s->stopping, __ATOMIC_ACQUIRE)) {
		for (int i = 0; i < BATCH; i++) {
			riov[i] = (struct iovec){ in[i], UDP_MAX };
			rm[i].msg_hdr = (struct msghdr){
				.msg_name = &from[i],
				.msg_namelen = sizeof(from[i]),
				.msg_iov = &riov[i],
				.msg_iovlen = 1,
			};
		}
		/* Sleeps for the first datagram, then takes what is there. */
		int n = recvmmsg(w->fd, rm, BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0) {
			if (n < 0 && errno != EINTR && errno != EAGAIN &&
			    errno != ENOMEM && errno != ENOBUFS)
				break; /* the socket is gone */
			continue;
		}
		int k = 0;
		for (int i = 0; i < n; i++) {
			if (rm[i].msg_hdr.msg_flags & MSG_TRUNC)
				continue; /* oversized: dropped */
			size_t len = dns_answer(w->s->z, w->s->up, cache,
			    in[i], rm[i].msg_len, out[k], UDP_MAX, false);
			if (len == 0)
				continue; /* also a shut-down socket's 0 bytes */
			siov[k] = (struct iovec){ out[k], len };
			sm[k].msg_hdr = (struct msghdr){
				.msg_name = &from[i],
				.msg_namelen = rm[i].msg_hdr.msg_namelen,
				.msg_iov = &siov[k],
				.msg_iovlen = 1,
			};
			k++;
		}
		for (int off = 0; off < k;) {
			int sent = sendmmsg(w->fd, sm + off,
			    (unsigned)(k - off), MSG_DONTWAIT | MSG_NOSIGNAL);
			if (sent > 0) {
				off += sent;
				continue;
			}
			if (sent < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != ENOBUFS && errno != EINTR) {
				off++; /* that one's address: skip it */
				continue;
			}
			break; /* a full socket buffer drops */
		}
	}
	dns_cache_free(cache);
	free(in);
	return NULL;
}

static void conn_close(struct tcp_conn *c)
{
	close(c->fd);
	free(c->buf);
	c->fd = -1;
	c->buf = NULL;
}

/* Answer every whole message in c->buf; false to close the connection. */
static bool conn_serve(struct dns_server *s, struct tcp_conn *c,
    uint8_t *out)
{
	while (c->have >= 2) {
		size_t len = (size_t)c->buf[0] << 8 | c->buf[1];
		if (len < 12)
			return false; /* not even a header: garbage framing */
		if (c->have < len + 2)
			return true;
		size_t n = dns_answer(s->z, s->up, NULL, c->buf + 2, len, out + 2,
		    TCP_MAX, true);
		if (n > 0) {
			out[0] = (uint8_t)(n >> 8);
			out[1] = (uint8_t)n;
			size_t off = 0;
			while (off < n + 2) {
				struct pollfd pf = { .fd = c->fd,
					.events = POLLOUT };
				ssize_t w = send(c->fd, out + off, n + 2 - off,
				    MSG_NOSIGNAL | MSG_DONTWAIT);
				if (w > 0) {
					off += (size_t)w;
					continue;
				}
				if (w < 0 && errno != EAGAIN &&
				    errno != EWOULDBLOCK)
					return false;
				if (poll(&pf, 1, 1000) != 1)
					return false; /* a reader that stalls */
			}
		}
		memmove(c->buf, c->buf + len + 2, c->have - len - 2);
		c->have -= len + 2;
	}
	return true;
}

static void *tcp_main(void *arg)
{
	struct dns_server *s = arg;
	size_t cap = s->ntcp + 1 + (size_t)s->tcp_max;
	struct pollfd *pf = calloc(cap, sizeof(*pf));
	struct tcp_conn *conns = calloc((size_t)s->tcp_max, sizeof(*conns));
	uint8_t *out = malloc(TCP_MAX + 2);
	if (pf == NULL || conns == NULL || out == NULL)
		goto out;
	for (int i = 0; i < s->tcp_max; i++)
		conns[i].fd = -1;
	for (;;) {
		size_t n = 0;
		pf[n++] = (struct pollfd){ .fd = s->stopfd, .events = POLLIN };
		for (size_t i = 0; i < s->ntcp; i++)
			pf[n++] = (struct pollfd){ .fd = s->tcp_fds[i],
				.events = POLLIN };
		for (int i = 0; i < s->tcp_max; i++)
			pf[n++] = (struct pollfd){ .fd = conns[i].fd,
				.events = POLLIN };
		if (poll(pf, (nfds_t)n, 1000) < 0 && errno != EINTR)
			break;
		if (pf[0].revents)
			break;
		int64_t now = now_ms();
		for (size_t i = 0; i < s->ntcp; i++) {
			if (!(pf[1 + i].revents & POLLIN))
				continue;
			int fd = accept4(s->tcp_fds[i], NULL, NULL,
			    SOCK_CLOEXEC | SOCK_NONBLOCK);
			if (fd < 0)
				continue;
			int slot = -1;
			for (int k = 0; k < s->tcp_max && slot < 0; k++)
				if (conns[k].fd < 0)
					slot = k;
			uint8_t *buf = slot < 0 ? NULL : malloc(TCP_MAX + 2);
			if (buf == NULL) {
				close(fd); /* too many connections */
				continue;
			}
			conns[slot] = (struct tcp_conn){ .fd = fd, .buf = buf,
				.last_ms = now };
		}
		for (int k = 0; k < s->tcp_max; k++) {
			struct tcp_conn *c = &conns[k];
			short re = pf[1 + s->ntcp + (size_t)k].revents;
			if (c->fd < 0)
				continue;
			if (re & (POLLIN | POLLHUP | POLLERR)) {
				ssize_t r = recv(c->fd, c->buf + c->have,
				    TCP_MAX + 2 - c->have, 0);
				if (r <= 0 && !(r < 0 && errno == EAGAIN)) {
					conn_close(c);
					continue;
				}
				if (r > 0) {
					c->have += (size_t)r;
					c->last_ms = now;
				}
				if (!conn_serve(s, c, out))
					conn_close(c);
			} else if (now - c->last_ms > s->tcp_idle_ms) {
				conn_close(c);
			}
		}
	}
out:
	if (conns != NULL)
		for (int k = 0; k < s->tcp_max; k++)
			if (conns[k].fd >= 0)
				conn_close(&conns[k]);
	free(conns);
	free(pf);
	free(out);
	return NULL;
}

void dns_server_stop(struct dns_server *s)
{
	if (s == NULL)
		return;
	uint64_t one = 1;
	if (s->stopfd >= 0 && write(s->stopfd, &one, sizeof(one)) < 0) {
		/* nothing better to do: threads also see closed sockets */
	}
	/* A UDP thread checks the flag before each recvmmsg; shutdown wakes
	 * one asleep in it (and makes later calls return at once). */
	__atomic_store_n(&s->stopping, true, __ATOMIC_RELEASE);
	for (size_t i = 0; i < s->nudp; i++)
		if (s->udp[i].fd >= 0)
			shutdown(s->udp[i].fd, SHUT_RD);
	for (size_t i = 0; i < s->nudp; i++) {
		if (s->udp[i].started)
			pthread_join(s->udp[i].th, NULL);
		if (s->udp[i].fd >= 0)
			close(s->udp[i].fd);
	}
	if (s->tcp_started)
		pthread_join(s->tcp_th, NULL);
	for (size_t i = 0; i < s->ntcp; i++)
		close(s->tcp_fds[i]);
	if (s->stopfd >= 0)
		close(s->stopfd);
	free(s->udp);
	free(s->tcp_fds);
	free(s);
}

int dns_server_start(struct dns_zone *z, const struct dns_upstream *up,
    const struct dns_server_opts *o, struct dns_server **out, char *err,
    size_t errlen)
{
	size_t naddr = 0;
	while (o->listen != NULL && o->listen[naddr] != NULL)
		naddr++;
	if (naddr == 0) {
		snprintf(err, errlen, "no listen address");
		return -1;
	}
	struct dns_server *s = calloc(1, sizeof(*s));
	if (s == NULL)
		goto nomem;
	s->z = z;
	s->up = up;
	s->tcp_idle_ms = o->tcp_idle_ms;
	s->tcp_max = o->tcp_max_conns;
	s->stopfd = eventfd(0, EFD_CLOEXEC);
	size_t nw = (size_t)(o->udp_workers > 0 ? o->udp_workers : 1);
	s->udp = calloc(naddr * nw, sizeof(*s->udp));
	s->tcp_fds = calloc(naddr, sizeof(*s->tcp_fds));
	if (s->stopfd < 0 || s->udp == NULL || s->tcp_fds == NULL) {
		dns_server_stop(s);
		goto nomem;
	}
	for (size_t a = 0; a < naddr; a++) {
		struct sockaddr_in sa;
		if (parse_addr(o->listen[a], &sa) != 0) {
			snprintf(err, errlen, "listen address `%s`: want IPv4:PORT",
			    o->listen[a]);
			dns_server_stop(s);
			return -1;
		}
		int fd = bind_sock(&sa, SOCK_STREAM, false);
		if (fd < 0) {
			snprintf(err, errlen, "tcp %s: %s", o->listen[a],
			    strerror(errno));
			dns_server_stop(s);
			return -1;
		}
		s->tcp_fds[s->ntcp++] = fd;
		/* Port 0: the UDP sockets take the port TCP got. */
		if (sa.sin_port == 0) {
			socklen_t sl = sizeof(sa);
			getsockname(fd, (struct sockaddr *)&sa, &sl);
		}
		for (size_t i = 0; i < nw; i++) {
			struct udp_worker *w = &s->udp[s->nudp];
			w->s = s;
			w->fd = bind_sock(&sa, SOCK_DGRAM, true);
			if (w->fd < 0) {
				snprintf(err, errlen, "udp %s: %s",
				    o->listen[a], strerror(errno));
				dns_server_stop(s);
				return -1;
			}
			s->nudp++;
		}
	}
	for (size_t i = 0; i < s->nudp; i++) {
		if (pthread_create(&s->udp[i].th, NULL, udp_main, &s->udp[i])) {
			dns_server_stop(s);
			goto nomem;
		}
		s->udp[i].started = true;
	}
	if (pthread_create(&s->tcp_th, NULL, tcp_main, s)) {
		dns_server_stop(s);
		goto nomem;
	}
	s->tcp_started = true;
	*out = s;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -1;
}
