/* tests/bench/bus/nng_ref.c — the reference half of the bus benchmark.
 *
 * Raw nng req/rep with no Kubus code at all: N requests in flight on one
 * req0 socket (one context and aio each), answered by a rep0 socket with N
 * contexts that echo every request back. The Kubus half runs the same
 * message size, concurrency and transport through the core, in the same
 * run, and divides.
 *
 *     bench-nng-ref [--transport inproc|ipc|tcp] [--inflight N]
 *                   [--seconds S] [--warmup S] [--size BYTES]
 *                   [--mode aio|sync]
 *
 * --mode aio (the default) chains every step in nng's aio callbacks, the way
 * a tuned nng program does. --mode sync gives each request in flight (and
 * each rep context) a thread that blocks on every send and receive: the
 * naive one-blocking-hop-per-message design, for comparison.
 *
 * inproc runs both sockets in this process; ipc and tcp (loopback) fork a
 * child for the rep side first, so the round trip crosses processes as the
 * Kubus ipc case does. The one output line is key=value pairs:
 *
 *     bench=nng-ref mode=aio transport=inproc inflight=64 size=256
 *     seconds=5.0 n=… errors=0 rps=… mean_us=… p50_us=… p90_us=… p99_us=…
 *     max_us=…
 *
 * Latencies are exact (every round trip is kept, then sorted), measured from
 * just before nng_ctx_send to the reply's callback; requests completed in
 * the warm-up are not counted. Exit status 0 unless nng failed, nothing
 * completed or a reply differed from its request.
 */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/util/platform.h>

enum phase {
	PH_WARMUP,
	PH_MEASURE,
	PH_STOP
};
enum state {
	ST_SEND,
	ST_RECV
};

struct opts {
	const char *transport;
	bool sync;
	int inflight;
	double seconds;
	double warmup;
	size_t size;
};

/* Round-trip times in ns of one client context; only its callback writes. */
struct lat {
	uint32_t *v;
	size_t n;
	size_t cap;
	bool oom;
};

struct client {
	nng_ctx ctx;
	nng_aio *aio;
	nng_thread *thr; /* --mode sync */
	enum state state;
	uint64_t t_send;
	struct lat lat;
	uint64_t errors;
	int fail; /* the nng error that ended this context, if any */
	bool done;
};

struct server {
	nng_ctx ctx;
	nng_aio *aio;
	nng_thread *thr; /* --mode sync */
	enum state state;
};

static _Atomic int phase = PH_WARMUP;
static atomic_bool stopping;
static bool sync_mode;
static size_t msg_size;
static unsigned char *payload;

static nng_mtx *done_mtx;
static nng_cv *done_cv;
static int clients_done;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s };

	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void lat_add(struct lat *l, uint64_t ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 65536;
		uint32_t *v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = ns > UINT32_MAX ? UINT32_MAX : (uint32_t)ns;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return (x > y) - (x < y);
}

/* --- rep side: N contexts, each echoing what it receives ------------- */

static void server_cb(void *arg)
{
	struct server *s = arg;
	int rv = nng_aio_result(s->aio);

	if (s->state == ST_RECV) {
		if (rv != 0)
			return; /* closed or stopped */
		if (atomic_load(&stopping)) {
			nng_msg_free(nng_aio_get_msg(s->aio));
			return;
		}
		/* The received message goes straight back: an echo. */
		s->state = ST_SEND;
		nng_ctx_send(s->ctx, s->aio);
		return;
	}
	if (rv != 0) {
		/* On failure the message is still ours. */
		nng_msg_free(nng_aio_get_msg(s->aio));
		if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
			return;
	}
	if (atomic_load(&stopping))
		return;
	s->state = ST_RECV;
	nng_ctx_recv(s->ctx, s->aio);
}

/* --mode sync: receive, block; send it back, block; until stopped. */
static void server_thread(void *arg)
{
	struct server *s = arg;
	int rv;

	for (;;) {
		nng_ctx_recv(s->ctx, s->aio);
		nng_aio_wait(s->aio);
		if (nng_aio_result(s->aio) != 0)
			return;
		nng_ctx_send(s->ctx, s->aio);
		nng_aio_wait(s->aio);
		if ((rv = nng_aio_result(s->aio)) != 0) {
			nng_msg_free(nng_aio_get_msg(s->aio));
			if (rv == NNG_ECLOSED || rv == NNG_ECANCELED)
				return;
		}
	}
}

static int server_start(nng_socket sock, struct server *srv, int n)
{
	int rv;

	for (int i = 0; i < n; i++) {
		if ((rv = nng_ctx_open(&srv[i].ctx, sock)) != 0 ||
		    (rv = nng_aio_alloc(&srv[i].aio,
			 sync_mode ? NULL : server_cb, &srv[i])) != 0)
			return rv;
		if (sync_mode) {
			rv = nng_thread_create(&srv[i].thr, server_thread,
			    &srv[i]);
			if (rv != 0)
				return rv;
			continue;
		}
		srv[i].state = ST_RECV;
		nng_ctx_recv(srv[i].ctx, srv[i].aio);
	}
	return 0;
}

static void server_stop(struct server *srv, int n)
{
	atomic_store(&stopping, true);
	for (int i = 0; i < n; i++)
		nng_aio_stop(srv[i].aio);
	for (int i = 0; i < n; i++) {
		if (srv[i].thr != NULL)
			nng_thread_destroy(srv[i].thr); /* joins */
		nng_ctx_close(srv[i].ctx);
		nng_aio_free(srv[i].aio);
	}
}

static int rep_open(nng_socket *sock, const char *url, char *bound,
    size_t boundlen)
{
	nng_listener l;
	int rv, port;

	if ((rv = nng_rep0_open(sock)) != 0)
		return rv;
	if ((rv = nng_socket_set_size(*sock, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
	    (rv = nng_listener_create(&l, *sock, url)) != 0 ||
	    (rv = nng_listener_start(l, 0)) != 0)
		return rv;
	snprintf(bound, boundlen, "%s", url);
	if (strncmp(url, "tcp://", 6) == 0) {
		/* Port 0 was asked for: tell the client which one we got. */
		if ((rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT,
			 &port)) != 0)
			return rv;
		snprintf(bound, boundlen, "tcp://127.0.0.1:%d", port);
	}
	return 0;
}

/* --- req side: N contexts, each a loop of send, receive, record ------ */

static void client_finish(struct client *c, int rv)
{
	c->fail = rv;
	c->done = true;
	nng_mtx_lock(done_mtx);
	clients_done++;
	nng_cv_wake(done_cv);
	nng_mtx_unlock(done_mtx);
}

static void client_send(struct client *c)
{
	nng_msg *m;
	int rv;

	if ((rv = nng_msg_alloc(&m, msg_size)) != 0) {
		client_finish(c, rv);
		return;
	}
	memcpy(nng_msg_body(m), payload, msg_size);
	nng_aio_set_msg(c->aio, m);
	c->state = ST_SEND;
	c->t_send = now_ns();
	nng_ctx_send(c->ctx, c->aio);
}

static void client_cb(void *arg)
{
	struct client *c = arg;
	int rv = nng_aio_result(c->aio);
	nng_msg *m;
	uint64_t t;

	if (c->done)
		return; /* a late cancellation after we stopped */
	if (c->state == ST_SEND) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(c->aio));
			client_finish(c, atomic_load(&stopping) ? 0 : rv);
			return;
		}
		c->state = ST_RECV;
		nng_ctx_recv(c->ctx, c->aio);
		return;
	}
	if (rv != 0) {
		client_finish(c, atomic_load(&stopping) ? 0 : rv);
		return;
	}
	t = now_ns();
	m = nng_aio_get_msg(c->aio);
	if (nng_msg_len(m) != msg_size ||
	    memcmp(nng_msg_body(m), payload, msg_size) != 0)
		c->errors++;
	nng_msg_free(m);
	switch (atomic_load(&phase)) {
	case PH_WARMUP:
		break;
	case PH_MEASURE:
		lat_add(&c->lat, t - c->t_send);
		break;
	default:
		client_finish(c, 0);
		return;
	}
	client_send(c);
}

/* --mode sync: one blocking round trip after the other. */
static void client_thread(void *arg)
{
	struct client *c = arg;
	nng_msg *m;
	uint64_t t;
	int rv;

	for (;;) {
		if (atomic_load(&phase) == PH_STOP) {
			client_finish(c, 0);
			return;
		}
		if ((rv = nng_msg_alloc(&m, msg_size)) != 0)
			goto out_fail;
		memcpy(nng_msg_body(m), payload, msg_size);
		nng_aio_set_msg(c->aio, m);
		c->t_send = now_ns();
		nng_ctx_send(c->ctx, c->aio);
		nng_aio_wait(c->aio);
		if ((rv = nng_aio_result(c->aio)) != 0) {
			nng_msg_free(m);
			goto out_fail;
		}
		nng_ctx_recv(c->ctx, c->aio);
		nng_aio_wait(c->aio);
		if ((rv = nng_aio_result(c->aio)) != 0)
			goto out_fail;
		t = now_ns();
		m = nng_aio_get_msg(c->aio);
		if (nng_msg_len(m) != msg_size ||
		    memcmp(nng_msg_body(m), payload, msg_size) != 0)
			c->errors++;
		nng_msg_free(m);
		if (atomic_load(&phase) == PH_MEASURE)
			lat_add(&c->lat, t - c->t_send);
	}
out_fail:
	client_finish(c, atomic_load(&stopping) ? 0 : rv);
}

/* --- the run ---------------------------------------------------------- */

/* Fork the rep side for ipc and tcp; returns its pid and the URL to dial. */
static pid_t fork_server(const struct opts *o, const char *url, char *bound,
    size_t boundlen)
{
	int fds[2];
	pid_t pid;
	ssize_t got;

	if (pipe(fds) != 0) {
		perror("pipe");
		return -1;
	}
	/* nng has not started any thread in this process yet: fork is safe. */
	if ((pid = fork()) < 0) {
		perror("fork");
		return -1;
	}
	if (pid == 0) {
		struct server *srv = calloc((size_t)o->inflight, sizeof(*srv));
		nng_socket sock;
		char b[256];
		int rv;

		close(fds[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (srv == NULL)
			_exit(1);
		if ((rv = rep_open(&sock, url, b, sizeof(b))) != 0 ||
		    (rv = server_start(sock, srv, o->inflight)) != 0) {
			fprintf(stderr, "nng-ref: server %s: %s\n", url,
			    nng_strerror(rv));
			_exit(1);
		}
		if (write(fds[1], b, strlen(b) + 1) < 0)
			_exit(1);
		close(fds[1]);
		for (;;)
			pause(); /* until the parent's SIGTERM */
	}
	close(fds[1]);
	got = read(fds[0], bound, boundlen - 1);
	close(fds[0]);
	if (got <= 0) {
		fprintf(stderr, "nng-ref: the server process did not start\n");
		return -1;
	}
	bound[got] = '\0';
	return pid;
}

/* Merge every context's samples and print the one result line. Returns 0
 * when there was something to report. */
static int report(const struct opts *o, struct client *cl, double secs)
{
	uint64_t n = 0, errors = 0;
	uint32_t *all;
	double sum = 0;
	size_t k = 0;

	for (int i = 0; i < o->inflight; i++) {
		if (cl[i].lat.oom) {
			fprintf(stderr, "nng-ref: out of memory for samples\n");
			return -1;
		}
		n += cl[i].lat.n;
		errors += cl[i].errors;
	}
	if (n == 0) {
		fprintf(stderr, "nng-ref: no round trip completed\n");
		return -1;
	}
	if ((all = malloc(n * sizeof(*all))) == NULL)
		return -1;
	for (int i = 0; i < o->inflight; i++) {
		memcpy(all + k, cl[i].lat.v, cl[i].lat.n * sizeof(*all));
		k += cl[i].lat.n;
	}
	for (size_t i = 0; i < n; i++)
		sum += all[i];
	qsort(all, n, sizeof(*all), cmp_u32);
#define PCT(p) (all[(size_t)((double)(n - 1) * (p))] / 1e3)
	printf("bench=nng-ref mode=%s transport=%s inflight=%d size=%zu "
	       "seconds=%.1f n=%llu errors=%llu rps=%.0f mean_us=%.1f "
	       "p50_us=%.1f p90_us=%.1f p99_us=%.1f max_us=%.1f\n",
	    o->sync ? "sync" : "aio", o->transport, o->inflight, o->size, secs,
	    (unsigned long long)n, (unsigned long long)errors, (double)n / secs,
	    sum / (double)n / 1e3, PCT(0.50), PCT(0.90), PCT(0.99),
	    all[n - 1] / 1e3);
#undef PCT
	fflush(stdout);
	free(all);
	if (errors != 0)
		fprintf(stderr,
		    "nng-ref: %llu replies differed from their "
		    "request\n",
		    (unsigned long long)errors);
	return errors != 0;
}

static int run(const struct opts *o)
{
	struct client *cl = calloc((size_t)o->inflight, sizeof(*cl));
	struct server *srv = NULL;
	nng_socket rep = NNG_SOCKET_INITIALIZER, req = NNG_SOCKET_INITIALIZER;
	bool inproc = strcmp(o->transport, "inproc") == 0;
	char url[256], bound[256];
	pid_t child = -1;
	uint64_t t0, t1;
	nng_time until;
	int rv = 0, ret = 1;

	if (cl == NULL)
		return 1;
	if (inproc)
		snprintf(url, sizeof(url), "inproc://nng-ref-%d",
		    (int)getpid());
	else if (strcmp(o->transport, "ipc") == 0)
		snprintf(url, sizeof(url), "ipc:///tmp/kubus-nng-ref-%d.ipc",
		    (int)getpid());
	else
		snprintf(url, sizeof(url), "tcp://127.0.0.1:0");

	if (inproc) {
		if ((srv = calloc((size_t)o->inflight, sizeof(*srv))) == NULL)
			goto out_free;
		if ((rv = rep_open(&rep, url, bound, sizeof(bound))) != 0 ||
		    (rv = server_start(rep, srv, o->inflight)) != 0) {
			fprintf(stderr, "nng-ref: server %s: %s\n", url,
			    nng_strerror(rv));
			goto out_close_rep;
		}
	} else if ((child = fork_server(o, url, bound, sizeof(bound))) < 0) {
		goto out_free;
	}

	if ((rv = nng_mtx_alloc(&done_mtx)) != 0 ||
	    (rv = nng_cv_alloc(&done_cv, done_mtx)) != 0 ||
	    (rv = nng_req0_open(&req)) != 0 ||
	    (rv = nng_socket_set_size(req, NNG_OPT_RECVMAXSZ, 0)) != 0 ||
	    /* A resend would count one round trip twice. */
	    (rv = nng_socket_set_ms(req, NNG_OPT_REQ_RESENDTIME,
		 NNG_DURATION_INFINITE)) != 0 ||
	    (rv = nng_dial(req, bound, NULL, 0)) != 0) {
		fprintf(stderr, "nng-ref: client %s: %s\n", bound,
		    nng_strerror(rv));
		goto out_close_req;
	}
	for (int i = 0; i < o->inflight; i++) {
		if ((rv = nng_ctx_open(&cl[i].ctx, req)) != 0 ||
		    (rv = nng_aio_alloc(&cl[i].aio, o->sync ? NULL : client_cb,
			 &cl[i])) != 0) {
			fprintf(stderr, "nng-ref: client context: %s\n",
			    nng_strerror(rv));
			goto out_close_req;
		}
	}
	for (int i = 0; i < o->inflight; i++) {
		if (!o->sync) {
			client_send(&cl[i]);
		} else if ((rv = nng_thread_create(&cl[i].thr, client_thread,
				&cl[i])) != 0) {
			fprintf(stderr, "nng-ref: thread: %s\n",
			    nng_strerror(rv));
			goto out_close_req;
		}
	}

	sleep_s(o->warmup);
	atomic_store(&phase, PH_MEASURE);
	t0 = now_ns();
	sleep_s(o->seconds);
	atomic_store(&phase, PH_STOP);
	t1 = now_ns();

	/* Let every context finish the round trip it is in (at most 5 s). */
	until = nng_clock() + 5000;
	nng_mtx_lock(done_mtx);
	while (clients_done < o->inflight)
		if (nng_cv_until(done_cv, until) == NNG_ETIMEDOUT)
			break;
	nng_mtx_unlock(done_mtx);
	atomic_store(&stopping, true);
	for (int i = 0; i < o->inflight; i++)
		nng_aio_stop(cl[i].aio);
	for (int i = 0; i < o->inflight; i++) {
		if (cl[i].fail != 0 && rv == 0) {
			rv = cl[i].fail;
			fprintf(stderr, "nng-ref: request failed: %s\n",
			    nng_strerror(rv));
		}
	}
	ret = report(o, cl, (double)(t1 - t0) / 1e9) != 0 || rv != 0;

out_close_req:
	atomic_store(&stopping, true);
	for (int i = 0; i < o->inflight; i++) {
		if (cl[i].aio == NULL)
			continue;
		nng_aio_stop(cl[i].aio);
		if (cl[i].thr != NULL)
			nng_thread_destroy(cl[i].thr); /* joins */
		nng_ctx_close(cl[i].ctx);
		nng_aio_free(cl[i].aio);
	}
	nng_close(req);
out_close_rep:
	if (srv != NULL) {
		server_stop(srv, o->inflight);
		nng_close(rep);
	}
	if (child > 0) {
		kill(child, SIGTERM);
		waitpid(child, NULL, 0);
		if (strcmp(o->transport, "ipc") == 0)
			unlink(url + strlen("ipc://"));
	}
out_free:
	for (int i = 0; i < o->inflight; i++)
		free(cl[i].lat.v);
	free(cl);
	free(srv);
	if (done_cv != NULL)
		nng_cv_free(done_cv);
	if (done_mtx != NULL)
		nng_mtx_free(done_mtx);
	return ret;
}

static void usage(FILE *f)
{
	fprintf(f,
	    "usage: bench-nng-ref [--transport inproc|ipc|tcp] [--inflight N]\n"
	    "                     [--seconds S] [--warmup S] [--size BYTES]\n"
	    "                     [--mode aio|sync]\n"
	    "defaults: inproc, 1 in flight, 5 s (+1 s warm-up), 256 bytes, aio\n");
}

/* "--key value" or "--key=value"; advances *i past what it used. */
static const char *arg_value(int argc, char **argv, int *i, const char *key)
{
	size_t kl = strlen(key);

	if (strncmp(argv[*i], key, kl) != 0)
		return NULL;
	if (argv[*i][kl] == '=')
		return argv[*i] + kl + 1;
	if (argv[*i][kl] != '\0')
		return NULL;
	if (*i + 1 >= argc) {
		fprintf(stderr, "nng-ref: %s needs a value\n", key);
		exit(2);
	}
	return argv[++*i];
}

static double parse_num(const char *key, const char *s, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr,
		    "nng-ref: %s: expected a number in [%g, %g], "
		    "got \"%s\"\n",
		    key, min, max, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	struct opts o = {
		.transport = "inproc",
		.inflight = 1,
		.seconds = 5,
		.warmup = 1,
		.size = 256,
	};
	const char *v;

	for (int i = 1; i < argc; i++) {
		if ((v = arg_value(argc, argv, &i, "--transport")) != NULL) {
			if (strcmp(v, "inproc") != 0 && strcmp(v, "ipc") != 0 &&
			    strcmp(v, "tcp") != 0) {
				fprintf(stderr,
				    "nng-ref: --transport: expected "
				    "inproc, ipc or tcp, got \"%s\"\n",
				    v);
				return 2;
			}
			o.transport = v;
		} else if ((v = arg_value(argc, argv, &i, "--mode")) != NULL) {
			if (strcmp(v, "aio") != 0 && strcmp(v, "sync") != 0) {
				fprintf(stderr,
				    "nng-ref: --mode: expected aio "
				    "or sync, got \"%s\"\n",
				    v);
				return 2;
			}
			o.sync = strcmp(v, "sync") == 0;
		} else if ((v = arg_value(argc, argv, &i, "--inflight"))) {
			o.inflight = (int)parse_num("--inflight", v, 1, 4096);
		} else if ((v = arg_value(argc, argv, &i, "--seconds"))) {
			o.seconds = parse_num("--seconds", v, 0.01, 3600);
		} else if ((v = arg_value(argc, argv, &i, "--warmup"))) {
			o.warmup = parse_num("--warmup", v, 0, 600);
		} else if ((v = arg_value(argc, argv, &i, "--size"))) {
			o.size = (size_t)parse_num("--size", v, 0, 64 << 20);
		} else if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "nng-ref: unknown argument \"%s\"\n",
			    argv[i]);
			usage(stderr);
			return 2;
		}
	}

	msg_size = o.size;
	sync_mode = o.sync;
	if ((payload = malloc(o.size ? o.size : 1)) == NULL)
		return 1;
	for (size_t i = 0; i < o.size; i++)
		payload[i] = (unsigned char)(i * 31 + 7);
	int ret = run(&o);
	free(payload);
	return ret;
}
