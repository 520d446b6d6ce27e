/* plugins/proxy-userspace/us.c — the userspace backend (kind
 * proxy-backend): no netfilter at all. Each ClusterIP is an address on a
 * device of its own, `kubus-svc0` (a dummy; a veth with its peer down
 * where the kernel has no dummy driver), and each ClusterIP:port with
 * endpoints (TCP) gets a listening socket; NodePorts listen on every
 * address. An epoll thread accepts and forwards both ways with splice()
 * through a pipe per direction, round robin over the ready endpoints
 * (with ClientIP affinity: the same endpoint for a client while its last
 * connection is younger than the timeout).
 *
 * Rejects without netfilter: a port without endpoints has no listener
 * (the kernel answers RST); the rest of the service CIDR gets an
 * `unreachable` route tagged proto 250, ahead of the proxy's own route
 * (metric 100 < 1000), so a client fails at once. UDP and SCTP are not
 * proxied. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <kubus/kubus.h>
#include <kubus/proxy.h>
#include <kubus/strmap.h>

#include "../proxy/pxbuf.h"
#include "../proxy/pxrun.h"

#define DEV "kubus-svc0"
#define RT_PROTO "250"
#define PIPE_SZ 65536

struct ep {
	struct sockaddr_in sa;
};

struct aff {
	uint32_t client;
	size_t ep;
	int64_t at_ms;
};

struct listener {
	int fd;
	bool dead;
	char id[96]; /* "ip:port" or "*:nodeport" */
	struct ep *eps;
	size_t neps, rr;
	uint32_t aff_s; /* 0: no affinity */
	struct aff *affs;
	size_t naffs;
	struct listener *next_dead;
};

/* One direction of a connection: from -> pipe -> to. */
struct half {
	int pipe[2];
	size_t inpipe;
	bool eof, shut;
};

struct conn {
	int fd[2];        /* client, endpoint */
	struct half h[2]; /* 0: client -> endpoint, 1: back */
	bool connected, dead;
	uint32_t ev[2];
	struct conn *next_dead;
	struct conn *prev, *next; /* live connections */
};

/* epoll data: a tagged pointer, low bit set for a connection's endpoint
 * side; listeners are looked up by id so a freed one is never touched. */
struct usbe {
	kb_ctx *ctx;
	pthread_mutex_t mu;
	int ep, evfd;
	pthread_t thread;
	bool running, stop;
	struct kb_strmap listeners; /* id -> struct listener */
	struct listener *dead;
	struct conn *dead_conns; /* freed after the epoll batch */
	struct conn *conns;      /* live */
	struct kb_strmap addrs;  /* cluster IPs on the device */
	char *route;             /* the unreachable route's CIDR */
	size_t nconns;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- forwarding ------------------------------------------------------------ */

/* Close now, free after the batch: the other side's event may be in it. */
static void conn_free(struct usbe *b, struct conn *c)
{
	for (int i = 0; i < 2; i++) {
		if (c->fd[i] >= 0) {
			epoll_ctl(b->ep, EPOLL_CTL_DEL, c->fd[i], NULL);
			close(c->fd[i]);
			c->fd[i] = -1;
		}
		if (c->h[i].pipe[0] >= 0)
			close(c->h[i].pipe[0]);
		if (c->h[i].pipe[1] >= 0)
			close(c->h[i].pipe[1]);
		c->h[i].pipe[0] = c->h[i].pipe[1] = -1;
	}
	b->nconns--;
	if (c->prev)
		c->prev->next = c->next;
	else
		b->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->dead = true;
	c->next_dead = b->dead_conns;
	b->dead_conns = c;
}

static void conn_arm(struct usbe *b, struct conn *c)
{
	for (int s = 0; s < 2; s++) {
		uint32_t ev = 0;
		if (s == 1 && !c->connected) {
			ev = EPOLLOUT;
		} else {
			/* read side s feeds half s when its pipe has room */
			struct half *in = &c->h[s];
			if (!in->eof && in->inpipe < PIPE_SZ)
				ev |= EPOLLIN;
			/* write side s drains half 1-s */
			if (c->h[1 - s].inpipe)
				ev |= EPOLLOUT;
		}
		if (ev != c->ev[s]) {
			struct epoll_event e = { .events = ev,
				.data.u64 = (uint64_t)(uintptr_t)c |
				    (uint64_t)s };
			epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd[s], &e);
			c->ev[s] = ev;
		}
	}
}

/* Move what can move; false when the connection is over. */
static bool conn_pump(struct conn *c)
{
	for (int d = 0; d < 2; d++) {
		struct half *h = &c->h[d];
		int from = c->fd[d], to = c->fd[1 - d];
		for (;;) {
			bool progress = false;
			if (!h->eof && h->inpipe < PIPE_SZ) {
				ssize_t n = splice(from, NULL, h->pipe[1], NULL,
				    PIPE_SZ - h->inpipe,
				    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
				if (n > 0) {
					h->inpipe += (size_t)n;
					progress = true;
				} else if (n == 0) {
					h->eof = true;
				} else if (errno != EAGAIN && errno != EINTR) {
					return false;
				}
			}
			if (h->inpipe) {
				ssize_t n = splice(h->pipe[0], NULL, to, NULL,
				    h->inpipe,
				    SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
				if (n > 0) {
					h->inpipe -= (size_t)n;
					progress = true;
				} else if (n < 0 && errno != EAGAIN &&
				    errno != EINTR) {
					return false;
				}
			}
			if (!progress)
				break;
		}
		if (h->eof && h->inpipe == 0 && !h->shut) {
			shutdown(to, SHUT_WR);
			h->shut = true;
		}
	}
	return !(c->h[0].shut && c->h[1].shut);
}

static size_t pick(struct listener *l, uint32_t client)
{
	if (l->aff_s) {
		int64_t now = now_ms();
		for (size_t i = 0; i < l->naffs; i++) {
			struct aff *a = &l->affs[i];
			if (a->client == client &&
			    now - a->at_ms < (int64_t)l->aff_s * 1000 &&
			    a->ep < l->neps) {
				a->at_ms = now;
				return a->ep;
			}
		}
	}
	size_t k = l->rr++ % l->neps;
	if (l->aff_s) {
		struct aff *v = realloc(l->affs, (l->naffs + 1) * sizeof(*v));
		if (v) {
			/* expired entries go as new ones come */
			int64_t now = now_ms();
			size_t w = 0;
			for (size_t i = 0; i < l->naffs; i++)
				if (now - v[i].at_ms < (int64_t)l->aff_s * 1000)
					v[w++] = v[i];
			v[w++] = (struct aff){ client, k, now };
			l->affs = v;
			l->naffs = w;
		}
	}
	return k;
}

static void on_accept(struct usbe *b, struct listener *l)
{
	for (;;) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		int fd = accept4(l->fd, (struct sockaddr *)&peer, &plen,
		    SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (l->neps == 0) {
			close(fd);
			continue;
		}
		struct ep *e = &l->eps[pick(l, peer.sin_addr.s_addr)];
		struct conn *c = calloc(1, sizeof(*c));
		int up = socket(AF_INET,
		    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (c == NULL || up < 0) {
			free(c);
			close(fd);
			if (up >= 0)
				close(up);
			continue;
		}
		c->fd[0] = fd;
		c->fd[1] = up;
		c->next = b->conns;
		if (b->conns)
			b->conns->prev = c;
		b->conns = c;
		for (int i = 0; i < 2; i++) {
			c->h[i].pipe[0] = c->h[i].pipe[1] = -1;
			if (pipe2(c->h[i].pipe, O_NONBLOCK | O_CLOEXEC) == 0)
				fcntl(c->h[i].pipe[1], F_SETPIPE_SZ, PIPE_SZ);
		}
		b->nconns++;
		if (c->h[0].pipe[0] < 0 || c->h[1].pipe[0] < 0 ||
		    (connect(up, (struct sockaddr *)&e->sa, sizeof(e->sa)) !=
			    0 &&
			errno != EINPROGRESS)) {
			conn_free(b, c);
			continue;
		}
		for (int s = 0; s < 2; s++) {
			struct epoll_event ev = { .events = 0,
				.data.u64 = (uint64_t)(uintptr_t)c |
				    (uint64_t)s };
			epoll_ctl(b->ep, EPOLL_CTL_ADD, c->fd[s], &ev);
		}
		conn_arm(b, c);
	}
}

static void on_conn(struct usbe *b, struct conn *c, int side, uint32_t ev)
{
	if (c->dead)
		return;
	if (side == 1 && !c->connected) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd[1], SOL_SOCKET, SO_ERROR, &err, &len);
		if (err || (ev & (EPOLLERR | EPOLLHUP))) {
			conn_free(b, c);
			return;
		}
		c->connected = true;
	}
	if (!c->connected) {
		conn_arm(b, c);
		return;
	}
	if (!conn_pump(c)) {
		conn_free(b, c);
		return;
	}
	conn_arm(b, c);
}

struct lookup {
	int fd;
	struct listener *found;
};

static void find_fd(void *arg, const char *key, void *val)
{
	struct lookup *lk = arg;
	struct listener *l = val;
	(void)key;
	if (l->fd == lk->fd)
		lk->found = l;
}

static void free_listener(struct listener *l)
{
	free(l->eps);
	free(l->affs);
	free(l);
}

static void *loop(void *arg)
{
	struct usbe *b = arg;
	struct epoll_event evs[64];
	for (;;) {
		pthread_mutex_lock(&b->mu);
		while (b->dead) {
			struct listener *l = b->dead;
			b->dead = l->next_dead;
			free_listener(l);
		}
		bool stop = b->stop;
		pthread_mutex_unlock(&b->mu);
		if (stop)
			break;
		int n = epoll_wait(b->ep, evs, 64, 1000);
		pthread_mutex_lock(&b->mu);
		for (int i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;
			if (d == 0) { /* the eventfd */
				uint64_t x;
				if (read(b->evfd, &x, sizeof(x)) < 0) {
				}
				continue;
			}
			if (d & 2) { /* a listener: data is its fd << 2 | 2 */
				struct lookup lk = { (int)(d >> 2), NULL };
				kb_strmap_each(&b->listeners, find_fd, &lk);
				if (lk.found && !lk.found->dead)
					on_accept(b, lk.found);
				continue;
			}
			on_conn(b, (struct conn *)(uintptr_t)(d & ~(uint64_t)3),
			    (int)(d & 1), evs[i].events);
		}
		while (b->dead_conns) {
			struct conn *c = b->dead_conns;
			b->dead_conns = c->next_dead;
			free(c);
		}
		pthread_mutex_unlock(&b->mu);
	}
	return NULL;
}

/* --- sync ------------------------------------------------------------------ */

static int listen_on(struct usbe *b, const char *ip, uint16_t port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* the address may not be on the device yet in the same sync */
	setsockopt(fd, IPPROTO_IP, IP_FREEBIND, &one, sizeof(one));
	struct sockaddr_in sa = { .sin_family = AF_INET,
		.sin_port = htons(port) };
	if (ip)
		inet_pton(AF_INET, ip, &sa.sin_addr);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(fd, 512) != 0) {
		kb_warn(b->ctx, "cannot listen", "addr=%s:%u err=\"%s\"",
		    ip ? ip : "*", port, strerror(errno));
		close(fd);
		return -1;
	}
	struct epoll_event ev = { .events = EPOLLIN,
		.data.u64 = ((uint64_t)fd << 2) | 2 };
	epoll_ctl(b->ep, EPOLL_CTL_ADD, fd, &ev);
	return fd;
}

static void kill_listener(struct usbe *b, struct listener *l)
{
	if (l->fd >= 0) {
		epoll_ctl(b->ep, EPOLL_CTL_DEL, l->fd, NULL);
		close(l->fd);
		l->fd = -1;
	}
	l->dead = true;
	l->next_dead = b->dead;
	b->dead = l;
}

/* Listeners wanted by this state, keyed like struct listener.id. */
static int want(struct usbe *b, struct kb_strmap *now,
    const struct kb_px_service *s, const struct kb_px_port *p, bool node)
{
	const struct kb_px_endpoint *eps = node ? p->node_eps : p->eps;
	size_t n = node ? p->nnode_eps : p->neps;
	if (p->proto != KB_PX_TCP || n == 0)
		return 0;
	char id[96];
	if (node)
		snprintf(id, sizeof(id), "*:%u", p->node_port);
	else
		snprintf(id, sizeof(id), "%s:%u", s->cluster_ip, p->port);
	struct listener *l = kb_strmap_get(&b->listeners, id);
	if (l == NULL) {
		l = calloc(1, sizeof(*l));
		if (l == NULL)
			return KB_ENOMEM;
		snprintf(l->id, sizeof(l->id), "%s", id);
		l->fd = listen_on(b, node ? NULL : s->cluster_ip,
		    node ? p->node_port : p->port);
		if (l->fd < 0) {
			free(l);
			return KB_ESYS;
		}
		if (kb_strmap_put(&b->listeners, id, l, NULL)) {
			close(l->fd);
			free(l);
			return KB_ENOMEM;
		}
	}
	struct ep *v = calloc(n, sizeof(*v));
	if (v == NULL)
		return KB_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		v[i].sa.sin_family = AF_INET;
		v[i].sa.sin_port = htons(eps[i].port);
		inet_pton(AF_INET, eps[i].ip, &v[i].sa.sin_addr);
	}
	free(l->eps);
	l->eps = v;
	l->neps = n;
	l->aff_s = s->affinity ? s->affinity_timeout_s : 0;
	return kb_strmap_put(now, id, l, NULL);
}

struct sweep {
	struct usbe *b;
	struct kb_strmap *keep;
	struct pxbuf *cmds;
	const char **gone;
	size_t ngone;
};

static void sweep_listeners(void *arg, const char *key, void *val)
{
	struct sweep *s = arg;
	if (kb_strmap_get(s->keep, key) == NULL)
		s->gone[s->ngone++] = ((struct listener *)val)->id;
}

static void sweep_addrs(void *arg, const char *key, void *val)
{
	struct sweep *s = arg;
	(void)val;
	if (kb_strmap_get(s->keep, key) == NULL) {
		pxbuf_add(s->cmds, "address del %s/32 dev " DEV "\n", key);
		s->gone[s->ngone++] = key;
	}
}

static int ip_batch(struct usbe *b, struct pxbuf *cmds)
{
	if (cmds->oom)
		return KB_ENOMEM;
	if (cmds->n == 0)
		return 0;
	char *argv[] = { "ip", "-force", "-batch", "-", NULL };
	char err[512] = "";
	if (px_run_io(argv, cmds->p, cmds->n, NULL, err, sizeof(err)) != 0) {
		kb_error(b->ctx, "ip -batch failed", "err=\"%s\"", err);
		return KB_ESYS;
	}
	return 0;
}

static int ensure_dev(struct usbe *b, const char *cidr)
{
	char *show[] = { "ip", "link", "show", DEV, NULL };
	char *dummy[] = { "ip", "link", "add", DEV, "type", "dummy", NULL };
	char *veth[] = { "ip", "link", "add", DEV, "type", "veth", "peer",
		"name", DEV "p", NULL };
	char *up[] = { "ip", "link", "set", DEV, "up", NULL };
	char *rt[] = { "ip", "route", "replace", "unreachable", (char *)cidr,
		"metric", "100", "proto", RT_PROTO, NULL };
	char err[512] = "";
	if (px_run_io(show, NULL, 0, NULL, err, sizeof(err)) != 0 &&
	    px_run_io(dummy, NULL, 0, NULL, err, sizeof(err)) != 0 &&
	    px_run_io(veth, NULL, 0, NULL, err, sizeof(err)) != 0)
		return kb_fail(b->ctx, KB_ESYS, "cannot make %s: %s", DEV, err);
	if (px_run_io(up, NULL, 0, NULL, err, sizeof(err)) != 0)
		return kb_fail(b->ctx, KB_ESYS, "cannot bring up %s: %s", DEV,
		    err);
	if (b->route == NULL || strcmp(b->route, cidr)) {
		if (px_run_io(rt, NULL, 0, NULL, err, sizeof(err)) != 0)
			return kb_fail(b->ctx, KB_ESYS,
			    "cannot add the unreachable route for %s: %s", cidr,
			    err);
		free(b->route);
		b->route = strdup(cidr);
	}
	return 0;
}

static void drop(void *v)
{
	(void)v;
}

static int us_sync(void *state, const struct kb_px_state *st)
{
	struct usbe *b = state;
	int rc = ensure_dev(b, st->service_cidr);
	if (rc)
		return rc;
	/* Every sync looks at every service: what this backend changes
	 * (sockets, addresses) is cheap next to the traffic it carries. */
	struct kb_strmap keep_l = { 0 }, keep_a = { 0 };
	struct pxbuf cmds = { 0 };
	for (size_t i = 0; i < st->nsvcs; i++) {
		const struct kb_px_service *s = &st->svcs[i];
		if (kb_strmap_get(&keep_a, s->cluster_ip) == NULL) {
			kb_strmap_put(&keep_a, s->cluster_ip, (void *)1, NULL);
			if (kb_strmap_get(&b->addrs, s->cluster_ip) == NULL)
				pxbuf_add(&cmds,
				    "address add %s/32 dev " DEV "\n",
				    s->cluster_ip);
		}
	}
	size_t cap = b->addrs.n + b->listeners.n + 1;
	const char **gone = calloc(cap, sizeof(*gone));
	if (gone == NULL) {
		rc = KB_ENOMEM;
		goto out;
	}
	struct sweep sw = { b, &keep_a, &cmds, gone, 0 };
	kb_strmap_each(&b->addrs, sweep_addrs, &sw);
	if ((rc = ip_batch(b, &cmds)) != 0)
		goto out;
	for (size_t i = 0; i < sw.ngone; i++)
		kb_strmap_del(&b->addrs, gone[i]);
	kb_strmap_clear(&b->addrs, drop);
	b->addrs = keep_a;
	memset(&keep_a, 0, sizeof(keep_a));

	pthread_mutex_lock(&b->mu);
	for (size_t i = 0; rc == 0 && i < st->nsvcs; i++) {
		const struct kb_px_service *s = &st->svcs[i];
		for (size_t k = 0; rc == 0 && k < s->nports; k++) {
			rc = want(b, &keep_l, s, &s->ports[k], false);
			if (rc == 0 && s->ports[k].node_port)
				rc = want(b, &keep_l, s, &s->ports[k], true);
		}
	}
	sw.keep = &keep_l;
	sw.ngone = 0;
	kb_strmap_each(&b->listeners, sweep_listeners, &sw);
	for (size_t i = 0; i < sw.ngone; i++) {
		struct listener *l = kb_strmap_del(&b->listeners, gone[i]);
		if (l)
			kill_listener(b, l);
	}
	pthread_mutex_unlock(&b->mu);
out:
	free(gone);
	kb_strmap_clear(&keep_l, drop);
	kb_strmap_clear(&keep_a, drop);
	pxbuf_free(&cmds);
	return rc;
}

static void kill_one(void *arg, const char *key, void *val)
{
	(void)key;
	kill_listener(arg, val);
}

static int us_cleanup(void *state)
{
	struct usbe *b = state;
	pthread_mutex_lock(&b->mu);
	kb_strmap_each(&b->listeners, kill_one, b);
	kb_strmap_clear(&b->listeners, drop);
	pthread_mutex_unlock(&b->mu);
	kb_strmap_clear(&b->addrs, drop);
	free(b->route);
	b->route = NULL;
	char *show[] = { "ip", "link", "show", DEV, NULL };
	char *del[] = { "ip", "link", "del", DEV, NULL };
	char *flush[] = { "ip", "route", "flush", "proto", RT_PROTO, NULL };
	char err[512] = "";
	int rc = 0;
	if (px_run_io(show, NULL, 0, NULL, err, sizeof(err)) == 0 &&
	    px_run_io(del, NULL, 0, NULL, err, sizeof(err)) != 0) {
		kb_error(b->ctx, "cannot delete " DEV, "err=\"%s\"", err);
		rc = KB_ESYS;
	}
	px_run_io(flush, NULL, 0, NULL, err, sizeof(err));
	return rc;
}

static const struct kb_proxy_ops us_ops = {
	.size = sizeof(struct kb_proxy_ops),
	.sync = us_sync,
	.cleanup = us_cleanup,
};

static void usbe_fini(void *state);

static int usbe_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	static const struct kb_opt opts[] = { KB_OPT_END };
	char err[512];
	struct {
		int unused;
	} none;
	if (kb_conf_opts(conf, opts, &none, "proxy-userspace", err,
		sizeof(err)) != 0)
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	struct usbe *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	b->ctx = ctx;
	pthread_mutex_init(&b->mu, NULL);
	b->ep = epoll_create1(EPOLL_CLOEXEC);
	b->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0 };
	if (b->ep < 0 || b->evfd < 0 ||
	    epoll_ctl(b->ep, EPOLL_CTL_ADD, b->evfd, &ev) != 0 ||
	    pthread_create(&b->thread, NULL, loop, b) != 0) {
		usbe_fini(b);
		return kb_fail(ctx, KB_ESYS, "cannot start the forwarder: %s",
		    strerror(errno));
	}
	b->running = true;
	*state = b;
	return 0;
}

static void usbe_fini(void *state)
{
	struct usbe *b = state;
	if (b == NULL)
		return;
	if (b->running) {
		pthread_mutex_lock(&b->mu);
		b->stop = true;
		pthread_mutex_unlock(&b->mu);
		uint64_t one = 1;
		if (write(b->evfd, &one, sizeof(one)) < 0) {
		}
		pthread_join(b->thread, NULL);
	}
	kb_strmap_each(&b->listeners, kill_one, b);
	kb_strmap_clear(&b->listeners, drop);
	while (b->conns)
		conn_free(b, b->conns);
	while (b->dead_conns) {
		struct conn *c = b->dead_conns;
		b->dead_conns = c->next_dead;
		free(c);
	}
	while (b->dead) {
		struct listener *l = b->dead;
		b->dead = l->next_dead;
		free_listener(l);
	}
	kb_strmap_clear(&b->addrs, drop);
	free(b->route);
	if (b->ep >= 0)
		close(b->ep);
	if (b->evfd >= 0)
		close(b->evfd);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "proxy-userspace",
		.version = "0.1.0",
		.description =
		    "service proxy backend: listeners on the ClusterIPs, epoll and splice, round robin",
		.kind = KB_KIND_PROXY_BACKEND,
		.init = usbe_init,
		.fini = usbe_fini,
		.ops = &us_ops,
	};
	return &p;
}
