/* plugins/kubelet/probe.c — liveness, readiness and startup probes (exec,
 * httpGet, tcpSocket) for every container of every pod of this kubelet,
 * run by one prober thread, started when the first probe appears (hollow
 * nodes without probes never have it).
 *
 * A container's probes are armed by the worker that syncs it
 * (kl_probe_sync, for the attempt the runtime runs now: a restart re-arms
 * them) and read back by status (kl_probe_state) and by the container step
 * (kl_probe_kill: liveness or startup failed, restart it). The prober never
 * touches the pod table or the runtime's containers beyond exec_sync: a
 * change of result enqueues the pod and the worker acts.
 *
 * As Kubernetes: startup gates liveness and readiness; readiness starts
 * as failure, liveness as success; a result flips after successThreshold
 * (failureThreshold) probes in a row; defaults initialDelaySeconds 0,
 * periodSeconds 10, timeoutSeconds 1, successThreshold 1,
 * failureThreshold 3; httpGet succeeds on 200–399.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "kubelet.h"

enum {
	P_LIVENESS,
	P_READINESS,
	P_STARTUP
};
enum {
	H_NONE,
	H_EXEC,
	H_HTTP,
	H_TCP,
	H_UNSUPPORTED
};
enum {
	R_UNKNOWN,
	R_SUCCESS,
	R_FAILURE
};

static const char *const kind_name[] = { "Liveness", "Readiness", "Startup" };
static const char *const kind_field[] = { "livenessProbe", "readinessProbe",
	"startupProbe" };

struct probe {
	struct probe *next;
	int kind, type;
	char *key, *uid, *ctr;
	char id[KB_RT_ID_MAX];
	char **argv;                           /* exec */
	char *scheme, *host, *path, **headers; /* httpGet ("Name: value") */
	int port;                              /* httpGet, tcpSocket */
	char *unsupported;                     /* why, for H_UNSUPPORTED */
	int64_t initial_ms, period_ms, timeout_ms, grace_ms;
	int64_t success_thr, failure_thr;
	int result, ok_run, fail_run;
	int64_t next_at; /* monotonic */
	bool busy, dead, kill;
	char msg[KB_RT_MESSAGE_MAX];
};

struct kl_prober {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool started, stopping;
	struct probe *list;
	SSL_CTX *tls;
};

/* --- parsing the spec ------------------------------------------------------- */

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static void probe_free(struct probe *e)
{
	free(e->key);
	free(e->uid);
	free(e->ctr);
	strv_free(e->argv);
	free(e->scheme);
	free(e->host);
	free(e->path);
	strv_free(e->headers);
	free(e->unsupported);
	free(e);
}

static int64_t sec_field(const msgpack_object *pr, const char *k, int64_t dflt,
    int64_t min)
{
	int64_t v;
	if (!kb_mp_int(pr, k, &v) || v < min)
		return dflt;
	return v;
}

/* A port as a number or as the name of one of the container's ports. */
static int port_of(const msgpack_object *ctr, const msgpack_object *port)
{
	int64_t n;
	if (port == NULL)
		return -1;
	if (kb_mp_int(port, NULL, &n))
		return n > 0 && n < 65536 ? (int)n : -1;
	const char *s;
	size_t len;
	if (!kb_mp_str(port, NULL, &s, &len))
		return -1;
	const msgpack_object *ports = kb_mp_get(ctr, "ports");
	for (uint32_t i = 0; ports && ports->type == MSGPACK_OBJECT_ARRAY &&
	     i < ports->via.array.size;
	     i++) {
		const char *pn;
		size_t pl;
		if (kb_mp_str(&ports->via.array.ptr[i], "name", &pn, &pl) &&
		    pl == len && !memcmp(pn, s, len) &&
		    kb_mp_int(&ports->via.array.ptr[i], "containerPort", &n))
			return n > 0 && n < 65536 ? (int)n : -1;
	}
	/* A number written as a string ("8080") is a number. */
	char buf[16];
	if (len < sizeof(buf)) {
		snprintf(buf, sizeof(buf), "%.*s", (int)len, s);
		char *end;
		long v = strtol(buf, &end, 10);
		if (*buf && *end == '\0' && v > 0 && v < 65536)
			return (int)v;
	}
	return -1;
}

static struct probe *probe_parse(int kind, const msgpack_object *pr,
    const msgpack_object *ctr)
{
	struct probe *e = calloc(1, sizeof(*e));
	if (e == NULL)
		return NULL;
	e->kind = kind;
	e->initial_ms = sec_field(pr, "initialDelaySeconds", 0, 0) * 1000;
	e->period_ms = sec_field(pr, "periodSeconds", 10, 1) * 1000;
	e->timeout_ms = sec_field(pr, "timeoutSeconds", 1, 1) * 1000;
	e->success_thr = sec_field(pr, "successThreshold", 1, 1);
	e->failure_thr = sec_field(pr, "failureThreshold", 3, 1);
	/* Liveness and startup must have successThreshold 1. */
	if (kind != P_READINESS)
		e->success_thr = 1;
	e->grace_ms = -1;
	int64_t g;
	if (kb_mp_int(pr, "terminationGracePeriodSeconds", &g) && g >= 0)
		e->grace_ms = g * 1000;
	e->result = kind == P_LIVENESS ? R_SUCCESS :
	    kind == P_READINESS        ? R_FAILURE :
					 R_UNKNOWN;
	const msgpack_object *h;
	if ((h = kb_mp_get(pr, "exec")) != NULL) {
		const msgpack_object *cmd = kb_mp_get(h, "command");
		size_t n = cmd && cmd->type == MSGPACK_OBJECT_ARRAY ?
		    cmd->via.array.size :
		    0;
		e->type = H_EXEC;
		e->argv = calloc(n + 1, sizeof(char *));
		for (size_t i = 0; e->argv && i < n; i++)
			e->argv[i] = kb_mp_strdup(&cmd->via.array.ptr[i], NULL);
		if (n == 0 || e->argv == NULL || e->argv[0] == NULL) {
			e->type = H_UNSUPPORTED;
			e->unsupported = strdup("exec probe without a command");
		}
	} else if ((h = kb_mp_get(pr, "httpGet")) != NULL) {
		e->type = H_HTTP;
		e->port = port_of(ctr, kb_mp_get(h, "port"));
		e->host = kb_mp_strdup(h, "host");
		e->path = kb_mp_strdup(h, "path");
		e->scheme = kb_mp_strdup(h, "scheme");
		const msgpack_object *hs = kb_mp_get(h, "httpHeaders");
		size_t n = hs && hs->type == MSGPACK_OBJECT_ARRAY ?
		    hs->via.array.size :
		    0;
		e->headers = calloc(n + 1, sizeof(char *));
		for (size_t i = 0, k = 0; e->headers && i < n; i++) {
			const char *hn, *hv = "";
			size_t nl, vl = 0;
			if (!kb_mp_str(&hs->via.array.ptr[i], "name", &hn, &nl))
				continue;
			kb_mp_str(&hs->via.array.ptr[i], "value", &hv, &vl);
			/* No CR/LF smuggling into the request. */
			if (memchr(hn, '\r', nl) || memchr(hn, '\n', nl) ||
			    memchr(hv, '\r', vl) || memchr(hv, '\n', vl))
				continue;
			if (asprintf(&e->headers[k], "%.*s: %.*s", (int)nl, hn,
				(int)vl, hv) >= 0)
				k++;
			else
				e->headers[k] = NULL;
		}
		if (e->port < 0) {
			e->type = H_UNSUPPORTED;
			e->unsupported = strdup("httpGet probe: invalid port");
		}
	} else if ((h = kb_mp_get(pr, "tcpSocket")) != NULL) {
		e->type = H_TCP;
		e->port = port_of(ctr, kb_mp_get(h, "port"));
		e->host = kb_mp_strdup(h, "host");
		if (e->port < 0) {
			e->type = H_UNSUPPORTED;
			e->unsupported =
			    strdup("tcpSocket probe: invalid port");
		}
	} else {
		e->type = H_UNSUPPORTED;
		e->unsupported = strdup(kb_mp_get(pr, "grpc") ?
			"grpc probes are not supported by this kubelet" :
			"probe has no handler (exec, httpGet or tcpSocket)");
	}
	return e;
}

/* --- running one probe ----------------------------------------------------------- */

/* A message, cut to fit (vsnprintf: no truncation warnings for text that
 * is meant to be cut). */
static void msgf(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void msgf(char *buf, size_t len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
}

static int64_t left_ms(int64_t deadline)
{
	int64_t l = deadline - kl_mono_ms();
	return l > 0 ? l : 0;
}

/* Wait for fd to be ready for `events` until the deadline: 0, or ETIMEDOUT. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		int n = poll(&p, 1, (int)left_ms(deadline));
		if (n > 0)
			return 0;
		if (n == 0)
			return ETIMEDOUT;
		if (errno != EINTR)
			return errno;
	}
}

/* Connect to host:port before the deadline; the fd (blocking mode off), or
 * -1 with why. */
static int dial(const char *host, int port, int64_t deadline, char *why,
    size_t len)
{
	char ps[8];
	snprintf(ps, sizeof(ps), "%d", port);
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM },
			*ai = NULL;
	int rc = getaddrinfo(host, ps, &hints, &ai);
	if (rc) {
		msgf(why, len, "dial tcp: lookup %s: %s", host,
		    gai_strerror(rc));
		return -1;
	}
	int fd = socket(ai->ai_family,
	    SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int err = fd < 0 ? errno : 0;
	if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		err = errno;
		if (err == EINPROGRESS) {
			err = wait_fd(fd, POLLOUT, deadline);
			socklen_t sl = sizeof(err);
			if (err == 0 &&
			    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl) !=
				0)
				err = errno;
		}
	}
	freeaddrinfo(ai);
	if (err) {
		const char *hp = strchr(host, ':') ? "[%s]:%d" : "%s:%d";
		char where[300];
		snprintf(where, sizeof(where), hp, host, port);
		if (err == ETIMEDOUT)
			msgf(why, len, "dial tcp %s: i/o timeout", where);
		else
			msgf(why, len, "dial tcp %s: connect: %s", where,
			    strerror(err));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int run_tcp(const struct probe *e, const char *ip, char *why, size_t len)
{
	const char *host = e->host && *e->host ? e->host : ip;
	int fd = dial(host, e->port, kl_mono_ms() + e->timeout_ms, why, len);
	if (fd < 0)
		return R_FAILURE;
	close(fd);
	return R_SUCCESS;
}

struct conn {
	int fd;
	SSL *ssl;
};

static ssize_t conn_io(struct conn *c, bool wr, void *buf, size_t n,
    int64_t deadline)
{
	for (;;) {
		ssize_t r;
		short ev = wr ? POLLOUT : POLLIN;
		if (c->ssl) {
			int k = wr ? SSL_write(c->ssl, buf, (int)n) :
				     SSL_read(c->ssl, buf, (int)n);
			if (k > 0)
				return k;
			int se = SSL_get_error(c->ssl, k);
			if (se == SSL_ERROR_ZERO_RETURN)
				return 0;
			if (se == SSL_ERROR_WANT_READ)
				ev = POLLIN;
			else if (se == SSL_ERROR_WANT_WRITE)
				ev = POLLOUT;
			else
				return -1;
		} else {
			r = wr ? send(c->fd, buf, n, MSG_NOSIGNAL) :
				 recv(c->fd, buf, n, 0);
			if (r >= 0)
				return r;
			if (errno != EAGAIN && errno != EINTR)
				return -1;
		}
		if (wait_fd(c->fd, ev, deadline) != 0)
			return -2; /* timeout */
	}
}

static int tls_handshake(struct kl_prober *pr, struct conn *c, const char *host,
    int64_t deadline)
{
	if (pr->tls == NULL) {
		pr->tls = SSL_CTX_new(TLS_client_method());
		if (pr->tls == NULL)
			return -1;
		/* As Kubernetes: the certificate of an HTTPS probe is not
		 * verified. */
		SSL_CTX_set_verify(pr->tls, SSL_VERIFY_NONE, NULL);
	}
	c->ssl = SSL_new(pr->tls);
	if (c->ssl == NULL)
		return -1;
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_tlsext_host_name(c->ssl, host);
	for (;;) {
		int k = SSL_connect(c->ssl);
		if (k == 1)
			return 0;
		int se = SSL_get_error(c->ssl, k);
		short ev = se == SSL_ERROR_WANT_READ ? POLLIN :
		    se == SSL_ERROR_WANT_WRITE       ? POLLOUT :
						       0;
		if (ev == 0 || wait_fd(c->fd, ev, deadline) != 0)
			return -1;
	}
}

static int run_http(struct kl_prober *pr, const struct probe *e, const char *ip,
    char *why, size_t len)
{
	const char *host = e->host && *e->host ? e->host : ip;
	bool https = e->scheme && !strcasecmp(e->scheme, "HTTPS");
	const char *path = e->path && *e->path ? e->path : "/";
	char url[600];
	snprintf(url, sizeof(url),
	    strchr(host, ':') ? "%s://[%s]:%d%s%s" : "%s://%s:%d%s%s",
	    https ? "https" : "http", host, e->port, path[0] == '/' ? "" : "/",
	    path);
	int64_t deadline = kl_mono_ms() + e->timeout_ms;
	char dwhy[400];
	struct conn c = { .fd = dial(host, e->port, deadline, dwhy,
			      sizeof(dwhy)) };
	if (c.fd < 0) {
		msgf(why, len, "Get \"%.180s\": %s", url, dwhy);
		return R_FAILURE;
	}
	int res = R_FAILURE;
	if (https && tls_handshake(pr, &c, host, deadline) != 0) {
		msgf(why, len, "Get \"%.180s\": TLS handshake failed", url);
		goto out;
	}
	/* The request as the kubelet sends it. */
	char req[4096];
	int n = snprintf(req, sizeof(req),
	    "GET %s%s HTTP/1.1\r\nHost: %s:%d\r\n"
	    "User-Agent: kube-probe/" KUBUS_KUBE_MAJOR "." KUBUS_KUBE_MINOR
	    "\r\n"
	    "Accept: */*\r\nConnection: close\r\n",
	    path[0] == '/' ? "" : "/", path, host, e->port);
	for (size_t i = 0;
	     e->headers && e->headers[i] && n > 0 && (size_t)n < sizeof(req);
	     i++)
		n += snprintf(req + n, sizeof(req) - (size_t)n, "%s\r\n",
		    e->headers[i]);
	if (n < 0 || (size_t)n + 2 >= sizeof(req)) {
		msgf(why, len, "Get \"%.180s\": request headers too long", url);
		goto out;
	}
	memcpy(req + n, "\r\n", 2);
	n += 2;
	for (int off = 0; off < n;) {
		ssize_t w =
		    conn_io(&c, true, req + off, (size_t)(n - off), deadline);
		if (w <= 0) {
			msgf(why, len,
			    w == -2 ?
				"Get \"%.180s\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)" :
				"Get \"%.180s\": write: connection reset by peer",
			    url);
			goto out;
		}
		off += (int)w;
	}
	char buf[1024];
	size_t got = 0;
	while (got < sizeof(buf) - 1 && !memchr(buf, '\n', got)) {
		ssize_t r = conn_io(&c, false, buf + got, sizeof(buf) - 1 - got,
		    deadline);
		if (r <= 0) {
			msgf(why, len,
			    r == -2 ?
				"Get \"%.180s\": context deadline exceeded (Client.Timeout exceeded while awaiting headers)" :
				"Get \"%.180s\": EOF",
			    url);
			goto out;
		}
		got += (size_t)r;
	}
	buf[got] = '\0';
	int status = 0;
	if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1 &&
	    sscanf(buf, "HTTP/%*d %d", &status) != 1) {
		msgf(why, len, "Get \"%.180s\": malformed HTTP response", url);
		goto out;
	}
	if (status >= 200 && status < 400)
		res = R_SUCCESS;
	else
		msgf(why, len, "HTTP probe failed with statuscode: %d", status);
out:
	if (c.ssl) {
		SSL_shutdown(c.ssl);
		SSL_free(c.ssl);
	}
	close(c.fd);
	return res;
}

static int run_exec(struct kubelet *kl, const struct probe *e, char *why,
    size_t len)
{
	if (!KB_RT_HAS(kl->rt, exec_sync) || kl->rt->exec_sync == NULL) {
		msgf(why, len, "runtime %s cannot run exec probes",
		    kl->rt_info.name);
		return R_FAILURE;
	}
	char out[KB_RT_MESSAGE_MAX] = "";
	int code = -1;
	int rc = kl->rt->exec_sync(kl->rts, e->id, (const char *const *)e->argv,
	    e->timeout_ms, &code, out, sizeof(out));
	if (rc == KB_ETIMEOUT) {
		char cmd[200] = "";
		size_t off = 0;
		for (size_t i = 0; e->argv[i] && off < sizeof(cmd); i++)
			off += (size_t)snprintf(cmd + off, sizeof(cmd) - off,
			    "%s%s", i ? " " : "", e->argv[i]);
		msgf(why, len, "command \"%s\" timed out", cmd);
		return R_FAILURE;
	}
	if (rc) {
		msgf(why, len, "%s", out[0] ? out : kb_strerror(rc));
		return R_FAILURE;
	}
	if (code == 0)
		return R_SUCCESS;
	size_t l = strlen(out);
	while (l && (out[l - 1] == '\n' || out[l - 1] == '\r'))
		out[--l] = '\0';
	if (out[0])
		msgf(why, len, "%s", out);
	else
		msgf(why, len, "command %s exited with %d", e->argv[0], code);
	return R_FAILURE;
}

/* --- the prober thread -------------------------------------------------------------- */

/* Is the container this probe is for still the current attempt? Its pod
 * IP into ip. */
static bool still_there(struct kubelet *kl, const struct probe *e, char *ip,
    size_t iplen)
{
	bool ok = false;
	pthread_mutex_lock(&kl->mu);
	for (struct kl_pod *p = kl->pods; p && !ok; p = p->next) {
		if (strcmp(p->key, e->key) || strcmp(p->uid, e->uid))
			continue;
		for (size_t i = 0; i < p->nctrs && !ok; i++)
			ok = !strcmp(p->ctrs[i].name, e->ctr) &&
			    !strcmp(p->ctrs[i].id, e->id);
		snprintf(ip, iplen, "%s", p->ip);
	}
	pthread_mutex_unlock(&kl->mu);
	return ok;
}

/* Under mu: the startup probe of the same attempt, if any. */
static const struct probe *startup_of(struct kl_prober *pr,
    const struct probe *e)
{
	for (struct probe *s = pr->list; s; s = s->next)
		if (s->kind == P_STARTUP && !s->dead && !strcmp(s->id, e->id) &&
		    !strcmp(s->ctr, e->ctr) && !strcmp(s->uid, e->uid))
			return s;
	return NULL;
}

static void unlink_probe(struct kl_prober *pr, struct probe *e)
{
	for (struct probe **pp = &pr->list; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	probe_free(e);
}

/* Under mu: a result in, and what follows from it. True when the pod
 * must be synced again (readiness changed, or a kill is due). */
static bool apply(struct kubelet *kl, struct probe *e, int res, const char *why,
    char *event, size_t evlen)
{
	bool changed = false;
	event[0] = '\0';
	if (res == R_SUCCESS) {
		e->fail_run = 0;
		e->ok_run++;
		if (e->result != R_SUCCESS && e->ok_run >= e->success_thr) {
			e->result = R_SUCCESS;
			changed = true;
		}
		return changed;
	}
	e->ok_run = 0;
	e->fail_run++;
	snprintf(e->msg, sizeof(e->msg), "%s", why);
	snprintf(event, evlen, "%s probe failed: %s", kind_name[e->kind], why);
	if (e->fail_run < e->failure_thr)
		return false;
	if (e->kind == P_READINESS) {
		changed = e->result != R_FAILURE;
		e->result = R_FAILURE;
		return changed;
	}
	e->result = R_FAILURE;
	e->kill = true;
	(void)kl;
	return true;
}

/* An Unhealthy event about the container (as Kubernetes: one per failed
 * probe, aggregated into a count by events.c). */
static void unhealthy(struct kubelet *kl, const char *key, const char *uid,
    const char *ctr, const char *msg)
{
	char ns[256], fp[300];
	const char *slash = strchr(key, '/');
	if (slash == NULL || (size_t)(slash - key) >= sizeof(ns))
		return;
	snprintf(ns, sizeof(ns), "%.*s", (int)(slash - key), key);
	snprintf(fp, sizeof(fp), "spec.containers{%s}", ctr);
	kl_event_raw(kl, ns, slash + 1, uid, fp, true, "Unhealthy", msg);
}

static void *prober_main(void *arg)
{
	struct kubelet *kl = arg;
	pthread_setname_np(pthread_self(), "kubelet:probe");
	struct kl_prober *pr = kl->prober;
	pthread_mutex_lock(&pr->mu);
	while (!pr->stopping) {
		int64_t now = kl_mono_ms(), next = now + 1000;
		struct probe *due = NULL;
		for (struct probe *e = pr->list; e; e = e->next) {
			if (e->busy || e->dead || e->kill)
				continue;
			if (e->next_at <= now && due == NULL)
				due = e;
			if (e->next_at < next)
				next = e->next_at;
		}
		if (due == NULL) {
			struct timespec ts = { .tv_sec = next / 1000,
				.tv_nsec = (next % 1000) * 1000000 };
			pthread_cond_timedwait(&pr->cv, &pr->mu, &ts);
			continue;
		}
		due->next_at = now + due->period_ms;
		/* Startup gates the others. */
		if (due->kind != P_STARTUP) {
			const struct probe *s = startup_of(pr, due);
			if (s && s->result != R_SUCCESS)
				continue;
		}
		due->busy = true;
		pthread_mutex_unlock(&pr->mu);

		char ip[KB_RT_IP_MAX] = "", why[KB_RT_MESSAGE_MAX] = "";
		int res = R_FAILURE;
		bool there = still_there(kl, due, ip, sizeof(ip));
		if (!there)
			;
		else if (due->type == H_EXEC)
			res = run_exec(kl, due, why, sizeof(why));
		else if (due->type == H_HTTP)
			res = run_http(pr, due, ip, why, sizeof(why));
		else if (due->type == H_TCP)
			res = run_tcp(due, ip, why, sizeof(why));
		else
			snprintf(why, sizeof(why), "%s", due->unsupported);

		pthread_mutex_lock(&pr->mu);
		due->busy = false;
		if (!there || due->dead) {
			unlink_probe(pr, due);
			continue;
		}
		char event[KB_RT_MESSAGE_MAX + 40];
		bool changed = apply(kl, due, res, why, event, sizeof(event));
		char *key = strdup(due->key);
		char *uid = event[0] ? strdup(due->uid) : NULL;
		char *ctr = event[0] ? strdup(due->ctr) : NULL;
		pthread_mutex_unlock(&pr->mu);
		if (key && uid && ctr)
			unhealthy(kl, key, uid, ctr, event);
		if (key && changed && kl->queue)
			kb_workqueue_add(kl->queue, key);
		free(key);
		free(uid);
		free(ctr);
		pthread_mutex_lock(&pr->mu);
	}
	pthread_mutex_unlock(&pr->mu);
	return NULL;
}

/* --- what the kubelet's other files call ---------------------------------------- */

int kl_probe_init(struct kubelet *kl)
{
	struct kl_prober *pr = calloc(1, sizeof(*pr));
	if (pr == NULL)
		return KB_ENOMEM;
	pthread_mutex_init(&pr->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pr->cv, &ca);
	pthread_condattr_destroy(&ca);
	kl->prober = pr;
	return 0;
}

void kl_probe_stop(struct kubelet *kl)
{
	struct kl_prober *pr = kl->prober;
	if (pr == NULL)
		return;
	pthread_mutex_lock(&pr->mu);
	pr->stopping = true;
	bool started = pr->started;
	pr->started = false;
	pthread_cond_broadcast(&pr->cv);
	pthread_mutex_unlock(&pr->mu);
	if (started)
		pthread_join(pr->thread, NULL);
}

void kl_probe_free(struct kubelet *kl)
{
	struct kl_prober *pr = kl->prober;
	if (pr == NULL)
		return;
	kl_probe_stop(kl);
	while (pr->list) {
		struct probe *e = pr->list;
		pr->list = e->next;
		probe_free(e);
	}
	if (pr->tls)
		SSL_CTX_free(pr->tls);
	pthread_cond_destroy(&pr->cv);
	pthread_mutex_destroy(&pr->mu);
	free(pr);
	kl->prober = NULL;
}

/* Under mu: does any probe of this attempt exist? Probes of other
 * attempts of the same container are retired. */
static bool armed(struct kl_prober *pr, const struct kl_pod *p,
    const struct kl_ctr *c)
{
	bool have = false;
	for (struct probe **pp = &pr->list; *pp;) {
		struct probe *e = *pp;
		if (strcmp(e->uid, p->uid) || strcmp(e->ctr, c->name)) {
			pp = &e->next;
			continue;
		}
		if (!strcmp(e->id, c->id) && !e->dead) {
			have = true;
			pp = &e->next;
		} else if (e->busy) {
			e->dead = true; /* the prober frees it */
			pp = &e->next;
		} else {
			*pp = e->next;
			probe_free(e);
		}
	}
	return have;
}

void kl_probe_sync(struct kubelet *kl, const struct kl_pod *p,
    const struct kl_ctr *c, const msgpack_object *spec)
{
	struct kl_prober *pr = kl->prober;
	if (pr == NULL || !c->id[0] || c->init)
		return;
	pthread_mutex_lock(&pr->mu);
	if (armed(pr, p, c) || pr->stopping) {
		pthread_mutex_unlock(&pr->mu);
		return;
	}
	int64_t now = kl_mono_ms();
	bool added = false;
	for (int k = P_LIVENESS; k <= P_STARTUP; k++) {
		const msgpack_object *ps = kb_mp_get(spec, kind_field[k]);
		if (ps == NULL || ps->type != MSGPACK_OBJECT_MAP)
			continue;
		struct probe *e = probe_parse(k, ps, spec);
		if (e == NULL)
			continue;
		e->key = strdup(p->key);
		e->uid = strdup(p->uid);
		e->ctr = strdup(c->name);
		memcpy(e->id, c->id, sizeof(e->id));
		if (e->key == NULL || e->uid == NULL || e->ctr == NULL) {
			probe_free(e);
			continue;
		}
		e->next_at = now + e->initial_ms;
		e->next = pr->list;
		pr->list = e;
		added = true;
	}
	if (added && !pr->started) {
		if (pthread_create(&pr->thread, NULL, prober_main, kl) == 0)
			pr->started = true;
		else
			kb_warn(kl->ctx, "cannot start the prober thread",
			    NULL);
	}
	pthread_cond_broadcast(&pr->cv);
	pthread_mutex_unlock(&pr->mu);
}

void kl_probe_forget(struct kubelet *kl, const struct kl_pod *p,
    const struct kl_ctr *c)
{
	struct kl_prober *pr = kl->prober;
	if (pr == NULL)
		return;
	pthread_mutex_lock(&pr->mu);
	for (struct probe **pp = &pr->list; *pp;) {
		struct probe *e = *pp;
		if (strcmp(e->uid, p->uid) || strcmp(e->ctr, c->name)) {
			pp = &e->next;
		} else if (e->busy) {
			e->dead = true;
			pp = &e->next;
		} else {
			*pp = e->next;
			probe_free(e);
		}
	}
	pthread_mutex_unlock(&pr->mu);
}

void kl_probe_state(struct kubelet *kl, const struct kl_pod *p,
    const struct kl_ctr *c, bool *started, bool *ready)
{
	struct kl_prober *pr = kl->prober;
	*started = *ready = true;
	if (pr == NULL || !c->id[0])
		return;
	bool have_startup = false, startup_ok = false, have_ready = false,
	     ready_ok = false;
	pthread_mutex_lock(&pr->mu);
	for (struct probe *e = pr->list; e; e = e->next) {
		if (e->dead || strcmp(e->id, c->id) ||
		    strcmp(e->ctr, c->name) || strcmp(e->uid, p->uid))
			continue;
		if (e->kind == P_STARTUP) {
			have_startup = true;
			startup_ok = e->result == R_SUCCESS;
		} else if (e->kind == P_READINESS) {
			have_ready = true;
			ready_ok = e->result == R_SUCCESS;
		}
	}
	pthread_mutex_unlock(&pr->mu);
	*started = !have_startup || startup_ok;
	*ready = *started && (!have_ready || ready_ok);
}

bool kl_probe_kill(struct kubelet *kl, const struct kl_pod *p,
    const struct kl_ctr *c, char *why, size_t len, int64_t *grace_ms)
{
	struct kl_prober *pr = kl->prober;
	bool kill = false;
	if (pr == NULL || !c->id[0])
		return false;
	pthread_mutex_lock(&pr->mu);
	for (struct probe *e = pr->list; e && !kill; e = e->next) {
		if (!e->kill || e->dead || strcmp(e->id, c->id) ||
		    strcmp(e->ctr, c->name) || strcmp(e->uid, p->uid))
			continue;
		kill = true;
		*grace_ms = e->grace_ms;
		msgf(why, len, "%s",
		    e->kind == P_STARTUP ? "startup" : "liveness");
	}
	pthread_mutex_unlock(&pr->mu);
	return kill;
}
