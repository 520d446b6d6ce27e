/* tests/bench/bus/bench_bus.c — request/reply through the Kubus core,
 * against raw nng req/rep measured in the same run.
 *
 *   in-process: a client endpoint and the echo plugin in one host.
 *   ipc:        the echo plugin in a `kubus run` process; this process runs
 *               a second host joined to it over ipc, and its client calls
 *               echo through both cores.
 * Each at 1 and 64 requests in flight, 256-byte bodies (--size), for
 * --seconds each. The reference is bench-nng-ref (same size, concurrency,
 * transport). Last line:
 *   RESULT bus inproc_rps=N inproc_p99_us=N ipc_rps=N nng_ipc_rps=N ratio=R
 * inproc_rps and ipc_rps are at 64 in flight; inproc_p99_us is the p99
 * round trip of a blocking kb_call, one at a time (at 64 in flight the p99 is bounded below by
 * 64 / rps, Little's law, and is printed on its own line).
 */
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static const char *const groups[] = { "kubus:plugins", "kubus:kind:service" };

struct run {
	kb_ctx *ctx;
	int inflight;
	size_t size;
	atomic_int phase;       /* 0 warm-up, 1 measure, 2 stop */
	atomic_int outstanding;
	atomic_ullong errors;
	int64_t *lat;           /* ns, measured phase only */
	atomic_ullong nlat;
	size_t caplat;
	uint8_t *payload;
};

struct slot {
	struct run *r;
	int64_t t0;
};

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static kb_body *make_body(struct run *r)
{
	/* A fresh body per request, as a plugin would encode one. */
	size_t n = r->size;
	uint8_t *buf = malloc(n + 5);
	buf[0] = 0xc6;
	buf[1] = (uint8_t)(n >> 24);
	buf[2] = (uint8_t)(n >> 16);
	buf[3] = (uint8_t)(n >> 8);
	buf[4] = (uint8_t)n;
	memcpy(buf + 5, r->payload, n);
	return kb_body_take(buf, n + 5);
}

static void issue(struct slot *s);

static void on_reply(void *arg, int rc, const kb_msg *rep)
{
	struct slot *s = arg;
	struct run *r = s->r;
	int64_t t = now_ns();
	if (rc != 0)
		atomic_fetch_add(&r->errors, 1);
	else if (atomic_load(&r->phase) == 1) {
		unsigned long long i = atomic_fetch_add(&r->nlat, 1);
		if (i < r->caplat)
			r->lat[i] = t - s->t0;
	}
	if (atomic_load(&r->phase) < 2)
		issue(s);
	else
		atomic_fetch_sub(&r->outstanding, 1);
}

static void issue(struct slot *s)
{
	struct run *r = s->r;
	kb_body *b = make_body(r);
	s->t0 = now_ns();
	if (kb_request(r->ctx, "echo", "echo", b, 10000, on_reply, s) != 0) {
		kb_body_unref(b);
		atomic_fetch_add(&r->errors, 1);
		atomic_fetch_sub(&r->outstanding, 1);
	}
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

struct result {
	double rps, p50_us, p99_us;
	unsigned long long errors;
};

static struct result measure(kb_ctx *ctx, int inflight, size_t size, double seconds)
{
	struct run r = { .ctx = ctx, .inflight = inflight, .size = size };
	r.caplat = 40u << 20;
	r.lat = malloc(r.caplat * sizeof(int64_t));
	r.payload = malloc(size);
	for (size_t i = 0; i < size; i++)
		r.payload[i] = (uint8_t)i;
	struct slot *slots = calloc((size_t)inflight, sizeof(*slots));
	atomic_store(&r.outstanding, inflight);
	for (int i = 0; i < inflight; i++) {
		slots[i].r = &r;
		issue(&slots[i]);
	}
	usleep(300000); /* warm-up */
	atomic_store(&r.phase, 1);
	int64_t t0 = now_ns();
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&r.phase, 2);
	int64_t t1 = now_ns();
	while (atomic_load(&r.outstanding) > 0)
		usleep(1000);
	unsigned long long n = atomic_load(&r.nlat);
	if (n > r.caplat)
		n = r.caplat;
	qsort(r.lat, n, sizeof(int64_t), cmp64);
	struct result res = {
		.rps = (double)atomic_load(&r.nlat) / ((double)(t1 - t0) / 1e9),
		.p50_us = n ? r.lat[n / 2] / 1e3 : 0,
		.p99_us = n ? r.lat[(size_t)((double)n * 0.99)] / 1e3 : 0,
		.errors = atomic_load(&r.errors),
	};
	free(slots);
	free(r.payload);
	free(r.lat);
	return res;
}

/* One thread blocking on each round trip (kb_call): what a plugin that
 * calls a service synchronously sees. */
static struct result measure_sync(kb_ctx *ctx, size_t size, double seconds)
{
	struct run r = { .ctx = ctx, .size = size };
	r.caplat = 40u << 20;
	r.lat = malloc(r.caplat * sizeof(int64_t));
	r.payload = calloc(1, size);
	size_t n = 0;
	unsigned long long errors = 0;
	int64_t warm = now_ns() + 300000000, t0 = 0, end = 0;
	for (;;) {
		int64_t a = now_ns();
		if (t0 == 0 && a >= warm) {
			t0 = a;
			end = a + (int64_t)(seconds * 1e9);
		}
		if (t0 && a >= end)
			break;
		kb_msg *rep = NULL;
		if (kb_call(ctx, "echo", "echo", make_body(&r), 10000, &rep) != 0)
			errors++;
		kb_msg_free(rep);
		if (t0 && n < r.caplat)
			r.lat[n++] = now_ns() - a;
	}
	qsort(r.lat, n, sizeof(int64_t), cmp64);
	struct result res = {
		.rps = (double)n / seconds,
		.p50_us = n ? r.lat[n / 2] / 1e3 : 0,
		.p99_us = n ? r.lat[(size_t)((double)n * 0.99)] / 1e3 : 0,
		.errors = errors,
	};
	free(r.payload);
	free(r.lat);
	return res;
}

/* Run bench-nng-ref and pick rps and p99_us from its line. */
static struct result nng_ref(const char *mode, const char *transport, int inflight,
    size_t size, double seconds)
{
	char cmd[1024], *out = NULL;
	snprintf(cmd, sizeof(cmd),
	    "%s/tests/bench/bench-nng-ref --mode %s --transport %s --inflight %d --size %zu --seconds %.1f --warmup 0.3",
	    kbt_build_dir(), mode, transport, inflight, size, seconds);
	struct result res = { 0 };
	if (kbt_run(cmd, &out) == 0 && out) {
		char *p;
		if ((p = strstr(out, " rps=")))
			res.rps = atof(p + 5);
		if ((p = strstr(out, " p50_us=")))
			res.p50_us = atof(p + 8);
		if ((p = strstr(out, " p99_us=")))
			res.p99_us = atof(p + 8);
	} else {
		fprintf(stderr, "bench-nng-ref failed: %s\n", out ? out : "");
	}
	free(out);
	return res;
}

static void print(const char *what, int inflight, struct result r)
{
	printf("%-18s inflight=%-3d rps=%.0f p50_us=%.1f p99_us=%.1f errors=%llu\n", what,
	    inflight, r.rps, r.p50_us, r.p99_us, r.errors);
	fflush(stdout);
}

int main(int argc, char **argv)
{
	double seconds = 3;
	size_t size = 256;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--size") && i + 1 < argc)
			size = (size_t)atol(argv[++i]);
	}
	setenv("KUBUS_LOG_QUIET", "1", 0);
	char err[1024];

	/* --- in-process ------------------------------------------------------- */
	struct kbt_host *h = kbt_host_start("host: {log_level: warn}\n"
					    "plugins:\n  - {name: echo, use: echo}\n",
	    err, sizeof(err));
	if (h == NULL) {
		fprintf(stderr, "host: %s\n", err);
		return 1;
	}
	kb_ctx *c = kbt_client(h, "bench", "plugin:bench", groups, 2);
	struct result in1 = measure_sync(c, size, seconds);
	print("kubus inproc sync", 1, in1);
	struct result in1a = measure(c, 1, size, seconds);
	print("kubus inproc async", 1, in1a);
	struct result in64 = measure(c, 64, size, seconds);
	print("kubus inproc", 64, in64);
	kbt_host_stop(h);

	/* --- across processes over ipc ------------------------------------------ */
	char *dir = kbt_mkdtemp("benchbus");
	char path[1024], cfg[2048];
	snprintf(path, sizeof(path), "%s/tokens.csv", dir);
	FILE *f = fopen(path, "w");
	fprintf(f, "bench-token-0123456789abcdef,bench,1,\"kubus:plugins\"\n");
	fclose(f);
	chmod(path, 0600);
	snprintf(path, sizeof(path), "%s/server.yaml", dir);
	f = fopen(path, "w");
	fprintf(f, "host: {name: server, data_dir: %s, log_level: warn}\n"
		   "bus: {listen: [ipc://kubus.sock]}\n"
		   "plugins:\n  - {name: echo, use: echo}\n", dir);
	fclose(f);
	char kubus[1024], ppath[1024];
	snprintf(kubus, sizeof(kubus), "%s/kubus", kbt_build_dir());
	snprintf(ppath, sizeof(ppath), "%s/tests/plugins", kbt_build_dir());
	pid_t srv = fork();
	if (srv == 0) {
		execl(kubus, kubus, "run", "-c", path, "--plugin-path", ppath, (char *)NULL);
		_exit(127);
	}
	char sock[1100];
	snprintf(sock, sizeof(sock), "%s/kubus.sock", dir);
	for (int i = 0; i < 500 && access(sock, F_OK) != 0; i++)
		usleep(10000);
	snprintf(cfg, sizeof(cfg),
	    "host: {name: client, log_level: warn}\n"
	    "bus: {join: \"ipc://%s\", join_token: bench-token-0123456789abcdef, listen: []}\n",
	    sock);
	struct kbt_host *ch = kbt_host_start(cfg, err, sizeof(err));
	struct result ip1 = { 0 }, ip64 = { 0 };
	if (ch == NULL) {
		fprintf(stderr, "client host: %s\n", err);
	} else {
		kb_ctx *cc = kbt_client(ch, "bench", "plugin:bench", groups, 2);
		ip1 = measure_sync(cc, size, seconds);
		print("kubus ipc sync", 1, ip1);
		ip64 = measure(cc, 64, size, seconds);
		print("kubus ipc", 64, ip64);
		kbt_host_stop(ch);
	}
	kill(srv, SIGTERM);
	waitpid(srv, NULL, 0);
	kbt_rmrf(dir);
	free(dir);

	/* --- raw nng, same sizes and concurrency ----------------------------------- */
	struct result n1 = nng_ref("sync", "inproc", 1, size, seconds);
	print("nng inproc sync", 1, n1);
	struct result n1a = nng_ref("aio", "inproc", 1, size, seconds);
	print("nng inproc async", 1, n1a);
	struct result n64 = nng_ref("aio", "inproc", 64, size, seconds);
	print("nng inproc", 64, n64);
	struct result ni1 = nng_ref("sync", "ipc", 1, size, seconds);
	print("nng ipc sync", 1, ni1);
	struct result ni64 = nng_ref("aio", "ipc", 64, size, seconds);
	print("nng ipc", 64, ni64);

	printf("ratios (kubus/nng, rps): inproc sync1 %.2f, inproc async1 %.2f, inproc 64 %.2f, "
	       "ipc sync1 %.2f, ipc 64 %.2f\n",
	    n1.rps ? in1.rps / n1.rps : 0, n1a.rps ? in1a.rps / n1a.rps : 0,
	    n64.rps ? in64.rps / n64.rps : 0, ni1.rps ? ip1.rps / ni1.rps : 0,
	    ni64.rps ? ip64.rps / ni64.rps : 0);
	printf("RESULT bus inproc_rps=%.0f inproc_p99_us=%.1f ipc_rps=%.0f nng_ipc_rps=%.0f ratio=%.2f\n",
	    in64.rps, in1.p99_us, ip64.rps, ni64.rps, ni64.rps ? ip64.rps / ni64.rps : 0);
	return (in64.errors || ip64.errors || ch == NULL) ? 1 : 0;
}
