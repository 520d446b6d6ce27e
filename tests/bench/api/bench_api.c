/* tests/bench/api/bench_api.c — the Kubernetes API over HTTPS against the
 * raw `store` put rate through the bus, measured in one run on one store.
 *
 * One process: an in-process host (tests/harness.h) with store-lmdb
 * (sync: true, the shipped setting) and the apiserver on 127.0.0.1:0; its
 * URL and admin token come from DATA_DIR/admin.kubeconfig, TLS is verified
 * against DATA_DIR/apiserver/ca.crt.
 *
 * The creates, pods and gets have --clients keep-alive connections, each
 * with one request in flight, opened before the first window. By default
 * (--client lean, lean.h) they are plain OpenSSL connections driven by
 * --client-threads epoll threads (one per CPU): on a 2-core machine a
 * thread per libcurl client costs more CPU per request than the server
 * does, so the benchmark would measure its own client. --client curl
 * gives each a thread and a libcurl easy handle, as older figures did;
 * the output names the client used. The rest (setup, lists, watch events)
 * uses one libcurl handle.
 *
 *   store puts   a frontend bus client keeps --clients `put`s in flight,
 *                new keys with if_mod_rev 0 (what an API create asks of
 *                the store), values as long as a created ConfigMap's JSON.
 *   creates      --clients clients POST small ConfigMaps. The two take
 *                turns, --rounds windows of --seconds each, so a drifting
 *                disk affects them alike.
 *   pods         --clients clients create --list-pods small Pods.
 *   gets         --clients clients GET random ConfigMaps made above.
 *   list         GET the --list-pods pods, from the store and with
 *                resourceVersion=0 (the watch cache), --list-reps times each.
 *   watch        --watchers HTTP watch streams on one namespace's
 *                ConfigMaps (curl's socket API on epoll, --watch-threads
 *                threads); then
 *                --events ConfigMaps are created there, one every
 *                --event-ms, each carrying its send time in an annotation;
 *                every watcher timestamps every event it reads.
 *
 *   bench-api [--seconds S] [--rounds N] [--clients N] [--watchers N]
 *             [--watch-threads N] [--events N] [--event-ms MS]
 *             [--list-pods N] [--list-reps N] [--no-sync] [--smoke]
 *             [--only create|get|list|watch]   (one part, for profiling)
 *             [--client lean|curl] [--client-threads N]
 *
 * Last line:
 *   RESULT api creates=N store_puts=N p99_create_ms=N gets=N
 *       watch_p99_ms=N ratio=<creates/store_puts>
 * Exit status 1 when anything failed (an error reply, a missed event).
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#include "harness.h"
#include "lean.h"
#include <kubus/store.h>

#define ANNOT "bench.kubus.io/sent"
#define MAX_CLIENTS 256
#define MAX_WATCH_THREADS 16
#define LINE_MAX_KEEP 16384

static const char *const fe_groups[] = { "kubus:plugins",
	"kubus:kind:frontend" };

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
	if (ns <= 0)
		return;
	struct timespec ts = { .tv_sec = ns / 1000000000,
		.tv_nsec = ns % 1000000000 };
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

/* --- samples -------------------------------------------------------------- */

struct lat {
	int64_t *v;
	size_t n, cap;
};

static void lat_push(struct lat *l, int64_t ns)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		int64_t *v = realloc(l->v, cap * sizeof *v);
		if (v == NULL)
			return;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = ns;
}

static void lat_merge(struct lat *into, struct lat *from)
{
	for (size_t i = 0; i < from->n; i++)
		lat_push(into, from->v[i]);
	free(from->v);
	memset(from, 0, sizeof *from);
}

/* Nearest rank, in ms; lat sorted by the first call. */
static double lat_ms(struct lat *l, double q)
{
	if (l->n == 0)
		return 0;
	qsort(l->v, l->n, sizeof *l->v, cmp64);
	size_t i = (size_t)((double)l->n * q);
	if (i >= l->n)
		i = l->n - 1;
	return (double)l->v[i] / 1e6;
}

static double lat_mean_ms(const struct lat *l)
{
	double s = 0;
	for (size_t i = 0; i < l->n; i++)
		s += (double)l->v[i];
	return l->n ? s / (double)l->n / 1e6 : 0;
}

/* Figures gathered over several windows of one case. */
struct acc {
	double ops, secs;
	double cpu;     /* process CPU seconds (server and clients) */
	double cli_cpu; /* of that, the HTTP client threads' (libcurl, TLS) */
	unsigned long long errors;
	struct lat lat;
};

/* CPU seconds this process has used, every thread. */
static double cpu_now(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* CPU seconds the calling thread has used. */
static double thread_cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double acc_rate(const struct acc *a)
{
	return a->secs > 0 ? a->ops / a->secs : 0;
}

static void print_case(const char *what, const char *op, int clients,
    struct acc *a)
{
	printf("%-6s %-14s clients=%-3d ops/s=%-8.0f p50_ms=%-7.2f "
	       "p99_ms=%-7.2f n=%-7zu cpu_us/op=%-6.0f server_us/op=%-6.0f "
	       "errors=%llu\n",
	    what, op, clients, acc_rate(a), lat_ms(&a->lat, 0.5),
	    lat_ms(&a->lat, 0.99), a->lat.n,
	    a->ops > 0 ? a->cpu / a->ops * 1e6 : 0,
	    a->ops > 0 ? (a->cpu - a->cli_cpu) / a->ops * 1e6 : 0, a->errors);
	fflush(stdout);
}

/* --- the server ----------------------------------------------------------- */

static struct {
	char *url; /* https://127.0.0.1:PORT */
	char *token;
	char *ca; /* DATA_DIR/apiserver/ca.crt */
	struct curl_slist *get_hdr, *post_hdr;
	char *get_lines, *post_lines; /* the same, as HTTP lines (lean) */
} S;

static atomic_ullong first_errors; /* how many error bodies were printed */

static void note_error(const char *what, long code, const char *body)
{
	if (atomic_fetch_add(&first_errors, 1) < 5)
		fprintf(stderr, "bench-api: %s: HTTP %ld: %.300s\n", what, code,
		    body ? body : "");
}

/* The value after `key` on its line. */
static char *value_after(const char *text, const char *key)
{
	const char *p = text ? strstr(text, key) : NULL;
	if (p == NULL)
		return NULL;
	p += strlen(key);
	return strndup(p, strcspn(p, " \t\r\n\""));
}

/* curl's header list as HTTP lines, so that both clients send the same
 * headers. An entry "Name:" with nothing after it only tells curl to leave
 * out a header of its own (Expect), so it is no header. */
static char *hdr_lines(const struct curl_slist *h)
{
	size_t n = 1;
	for (const struct curl_slist *p = h; p; p = p->next)
		n += strlen(p->data) + 2;
	char *s = malloc(n), *e = s;
	for (const struct curl_slist *p = h; s && p; p = p->next) {
		size_t len = strlen(p->data);
		if (len && p->data[len - 1] != ':')
			e += sprintf(e, "%s\r\n", p->data);
	}
	if (s)
		*e = '\0';
	return s;
}

static int server_find(struct kbt_host *h)
{
	const char *dd = kbt_host_data_dir(h);
	char path[4200];
	snprintf(path, sizeof path, "%s/admin.kubeconfig", dd);
	char *kc = kbt_slurp(path);
	S.url = value_after(kc, "server: ");
	S.token = value_after(kc, "token: ");
	free(kc);
	if (asprintf(&S.ca, "%s/apiserver/ca.crt", dd) < 0)
		S.ca = NULL;
	if (S.url == NULL || S.token == NULL || S.ca == NULL ||
	    strncmp(S.url, "https://127.0.0.1:", 18)) {
		fprintf(stderr, "bench-api: no server URL or token in %s\n",
		    path);
		return -1;
	}
	char auth[1200];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", S.token);
	S.get_hdr = curl_slist_append(NULL, auth);
	S.get_hdr = curl_slist_append(S.get_hdr, "Accept: application/json");
	S.post_hdr = curl_slist_append(NULL, auth);
	S.post_hdr = curl_slist_append(S.post_hdr, "Accept: application/json");
	S.post_hdr =
	    curl_slist_append(S.post_hdr, "Content-Type: application/json");
	S.post_hdr = curl_slist_append(S.post_hdr, "Expect:");
	S.get_lines = hdr_lines(S.get_hdr);
	S.post_lines = hdr_lines(S.post_hdr);
	return S.get_lines && S.post_lines ? 0 : -1;
}

/* --- one HTTP client: an easy handle kept for the whole run --------------- */

struct client {
	CURL *c;
	char *buf;
	size_t len, cap;
};

static size_t on_body(char *d, size_t sz, size_t n, void *arg)
{
	struct client *cl = arg;
	size_t add = sz * n;
	if (cl->len + add + 1 > cl->cap) {
		size_t cap = cl->cap ? cl->cap : 4096;
		while (cap < cl->len + add + 1)
			cap *= 2;
		char *b = realloc(cl->buf, cap);
		if (b == NULL)
			return 0;
		cl->buf = b;
		cl->cap = cap;
	}
	memcpy(cl->buf + cl->len, d, add);
	cl->len += add;
	cl->buf[cl->len] = '\0';
	return add;
}

static int client_init(struct client *cl)
{
	memset(cl, 0, sizeof *cl);
	if ((cl->c = curl_easy_init()) == NULL)
		return -1;
	curl_easy_setopt(cl->c, CURLOPT_CAINFO, S.ca);
	curl_easy_setopt(cl->c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(cl->c, CURLOPT_WRITEDATA, cl);
	curl_easy_setopt(cl->c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(cl->c, CURLOPT_TIMEOUT_MS, 60000L);
	curl_easy_setopt(cl->c, CURLOPT_TCP_NODELAY, 1L);
	return 0;
}

static void client_free(struct client *cl)
{
	if (cl->c)
		curl_easy_cleanup(cl->c);
	free(cl->buf);
	memset(cl, 0, sizeof *cl);
}

/* GET (body NULL) or POST path: the HTTP status, or -1 without one. The
 * reply is in cl->buf. */
static long http(struct client *cl, const char *path, const char *body)
{
	char url[1024];
	snprintf(url, sizeof url, "%s%s", S.url, path);
	cl->len = 0;
	if (cl->buf)
		cl->buf[0] = '\0';
	curl_easy_setopt(cl->c, CURLOPT_URL, url);
	if (body) {
		curl_easy_setopt(cl->c, CURLOPT_HTTPHEADER, S.post_hdr);
		curl_easy_setopt(cl->c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(cl->c, CURLOPT_POSTFIELDSIZE,
		    (long)strlen(body));
	} else {
		curl_easy_setopt(cl->c, CURLOPT_HTTPHEADER, S.get_hdr);
		curl_easy_setopt(cl->c, CURLOPT_HTTPGET, 1L);
	}
	CURLcode rc = curl_easy_perform(cl->c);
	long code = -1;
	if (rc == CURLE_OK)
		curl_easy_getinfo(cl->c, CURLINFO_RESPONSE_CODE, &code);
	else if (atomic_load(&first_errors) < 5)
		fprintf(stderr, "bench-api: %s: %s\n", path,
		    curl_easy_strerror(rc));
	return code;
}

static struct client clients[MAX_CLIENTS];

/* The HTTP windows' client: the lean one, or NULL for --client curl. */
static struct lean *lean;

/* --- request bodies ------------------------------------------------------- */

static const char payload[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

static void cm_body(char *buf, size_t len, const char *name, int64_t sent)
{
	char annot[96] = "";
	if (sent)
		snprintf(annot, sizeof annot,
		    ",\"annotations\":{\"" ANNOT "\":\"%" PRId64 "\"}", sent);
	snprintf(buf, len,
	    "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":"
	    "{\"name\":\"%s\",\"labels\":{\"app\":\"bench\"}%s},"
	    "\"data\":{\"key\":\"%s\"}}",
	    name, annot, payload);
}

static void pod_body(char *buf, size_t len, const char *name)
{
	snprintf(buf, len,
	    "{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":"
	    "{\"name\":\"%s\",\"labels\":{\"app\":\"bench\"}},"
	    "\"spec\":{\"containers\":[{\"name\":\"c\",\"image\":"
	    "\"busybox:1.36\",\"command\":[\"sleep\",\"3600\"]}]}}",
	    name);
}

/* --- HTTP windows: --clients threads, each its own client ----------------- */

enum op {
	OP_CREATE_CM,
	OP_CREATE_POD,
	OP_GET_CM
};

struct hwin {
	enum op op;
	atomic_int phase;   /* 0 warm-up, 1 measure, 2 stop */
	atomic_uint *next;  /* name counter */
	unsigned limit;     /* count-bounded: names below this, then stop */
	unsigned get_range; /* OP_GET_CM: names cm-0 … cm-(range-1) */
	int64_t deadline;   /* a count-bounded window ends by then anyway */
};

/* One client thread's share of a window: a curl client thread, or a lean
 * epoll thread with its connections. */
struct hthread {
	pthread_t th;
	struct hwin *w;
	struct client *cl; /* curl only */
	bool started;      /* curl: th runs */
	struct lat lat;
	unsigned long long ok, errors;
	unsigned seed;
	bool measuring;
	double cpu0, cpu1; /* this thread's CPU when measuring began, ended */
};

/* Thread t's next request (a POST when rq->body is not empty), or false
 * when the window is over for it. */
static bool hnext(struct hthread *t, struct lean_req *rq)
{
	struct hwin *w = t->w;
	char name[64];
	int phase = atomic_load(&w->phase);
	if (phase == 1 && !t->measuring) {
		t->measuring = true;
		t->cpu0 = thread_cpu_now();
	}
	if (phase == 2 || (w->deadline && now_ns() > w->deadline))
		return false;
	rq->body[0] = '\0';
	if (w->op == OP_GET_CM) {
		unsigned i = (unsigned)rand_r(&t->seed) % w->get_range;
		snprintf(rq->path, sizeof rq->path,
		    "/api/v1/namespaces/bench/configmaps/cm-%u", i);
		return true;
	}
	unsigned i = atomic_fetch_add(w->next, 1);
	if (w->limit && i >= w->limit)
		return false;
	if (w->op == OP_CREATE_CM) {
		snprintf(name, sizeof name, "cm-%u", i);
		cm_body(rq->body, sizeof rq->body, name, 0);
		snprintf(rq->path, sizeof rq->path,
		    "/api/v1/namespaces/bench/configmaps");
	} else {
		snprintf(name, sizeof name, "p-%u", i);
		pod_body(rq->body, sizeof rq->body, name);
		snprintf(rq->path, sizeof rq->path,
		    "/api/v1/namespaces/bench-list/pods");
	}
	return true;
}

/* rq's answer, `ns` after it was sent: counted only while measuring. */
static void hdone(struct hthread *t, const struct lean_req *rq, long code,
    const char *body, int64_t ns)
{
	long want = t->w->op == OP_GET_CM ? 200 : 201;
	if (code != want) {
		t->errors++;
		note_error(rq->path, code, body);
	} else if (atomic_load(&t->w->phase) == 1) {
		t->ok++;
		lat_push(&t->lat, ns);
	}
}

static void hend(struct hthread *t)
{
	t->cpu1 = t->measuring ? thread_cpu_now() : t->cpu0;
}

static void *hthread_main(void *arg)
{
	struct hthread *t = arg;
	struct lean_req rq;
	while (hnext(t, &rq)) {
		int64_t t0 = now_ns();
		long code = http(t->cl, rq.path, rq.body[0] ? rq.body : NULL);
		hdone(t, &rq, code, t->cl->buf, now_ns() - t0);
	}
	hend(t);
	return NULL;
}

/* The lean client calls these on its epoll threads; arg is the window's
 * struct hthread array, one per thread. */
static bool lean_next(void *arg, int k, struct lean_req *rq)
{
	return hnext((struct hthread *)arg + k, rq);
}

static void lean_done(void *arg, int k, const struct lean_req *rq, long code,
    const char *body, int64_t ns)
{
	hdone((struct hthread *)arg + k, rq, code, body, ns);
}

static void lean_end(void *arg, int k)
{
	hend((struct hthread *)arg + k);
}

static const struct lean_ops lean_hops = { .next = lean_next,
	.done = lean_done,
	.end = lean_end };

/* Start the window's client threads: the number that did not start. */
static int hstart(struct hthread *ts, int n)
{
	if (lean)
		return lean_start(lean, &lean_hops, ts);
	int failed = 0;
	for (int i = 0; i < n; i++) {
		ts[i].started =
		    pthread_create(&ts[i].th, NULL, hthread_main, &ts[i]) == 0;
		failed += !ts[i].started;
	}
	return failed;
}

static void hjoin(struct hthread *ts, int n)
{
	if (lean) {
		lean_wait(lean);
		return;
	}
	for (int i = 0; i < n; i++)
		if (ts[i].started)
			pthread_join(ts[i].th, NULL);
}

/* Run one window: warm-up then `seconds` measured (time-bounded), or
 * until `limit` names are used (count-bounded, all measured). */
static void hwindow(enum op op, int nclients, double seconds, atomic_uint *next,
    unsigned limit, unsigned get_range, struct acc *a)
{
	struct hwin w = { .op = op,
		.next = next,
		.limit = limit,
		.get_range = get_range ? get_range : 1 };
	int n = lean ? lean_threads(lean) : nclients;
	struct hthread *ts = calloc((size_t)n, sizeof *ts);
	for (int i = 0; i < n; i++) {
		ts[i].w = &w;
		ts[i].cl = lean ? NULL : &clients[i];
		ts[i].seed = (unsigned)(i * 7919 + 17);
	}
	if (lean) /* any handshake now, not in the window */
		lean_ready(lean);
	if (limit) {
		atomic_store(&w.phase, 1);
		w.deadline = now_ns() + 300 * 1000000000LL;
	}
	int64_t t0 = now_ns();
	double c0 = cpu_now(), c1;
	/* A thread that did not start leaves its share of clients idle. */
	a->errors += (unsigned long long)hstart(ts, n);
	int64_t t1;
	if (limit) {
		hjoin(ts, n);
		t1 = now_ns();
		c1 = cpu_now();
		/* Each client took one name past the end: give them back. */
		if (atomic_load(next) > limit)
			atomic_store(next, limit);
	} else {
		usleep(200000);
		atomic_store(&w.phase, 1);
		t0 = now_ns();
		c0 = cpu_now();
		sleep_ns((int64_t)(seconds * 1e9));
		atomic_store(&w.phase, 2);
		t1 = now_ns();
		c1 = cpu_now();
		hjoin(ts, n);
	}
	for (int i = 0; i < n; i++) {
		a->ops += (double)ts[i].ok;
		a->cli_cpu += ts[i].cpu1 - ts[i].cpu0;
		a->errors += ts[i].errors;
		lat_merge(&a->lat, &ts[i].lat);
	}
	a->secs += (double)(t1 - t0) / 1e9;
	a->cpu += c1 - c0;
	free(ts);
}

/* --- raw store puts through the bus --------------------------------------- */

struct srun {
	kb_ctx *ctx;
	size_t vsize;
	atomic_int phase; /* 0 warm-up, 1 measure, 2 stop */
	atomic_int outstanding;
	atomic_ullong errors, n;
	int64_t *lat;
	size_t caplat;
	atomic_uint *next;
	unsigned char *val;
};

struct sslot {
	struct srun *r;
	int64_t t0;
};

/* A create as the API server asks for one: a new key, if_mod_rev 0. */
static kb_body *put_body(struct srun *r)
{
	unsigned i = atomic_fetch_add(r->next, 1);
	char key[64];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int n = snprintf(key, sizeof key, "/bench/raw/%010u", i);
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "key", 3);
	msgpack_pack_str(&pk, (size_t)n);
	msgpack_pack_str_body(&pk, key, (size_t)n);
	msgpack_pack_str(&pk, 5);
	msgpack_pack_str_body(&pk, "value", 5);
	msgpack_pack_bin(&pk, r->vsize);
	msgpack_pack_bin_body(&pk, r->val, r->vsize);
	msgpack_pack_str(&pk, 10);
	msgpack_pack_str_body(&pk, "if_mod_rev", 10);
	msgpack_pack_int64(&pk, 0);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

static void sissue(struct sslot *s);

static void on_put(void *arg, int rc, const kb_msg *rep)
{
	struct sslot *s = arg;
	struct srun *r = s->r;
	int64_t t = now_ns();
	(void)rep;
	if (rc != 0) {
		atomic_fetch_add(&r->errors, 1);
	} else if (atomic_load(&r->phase) == 1) {
		unsigned long long i = atomic_fetch_add(&r->n, 1);
		if (i < r->caplat)
			r->lat[i] = t - s->t0;
	}
	if (atomic_load(&r->phase) < 2)
		sissue(s);
	else
		atomic_fetch_sub(&r->outstanding, 1);
}

static void sissue(struct sslot *s)
{
	struct srun *r = s->r;
	kb_body *b = put_body(r);
	s->t0 = now_ns();
	if (!b ||
	    kb_request(r->ctx, KB_STORE_SERVICE, "put", b, 30000, on_put, s)) {
		if (b)
			kb_body_unref(b);
		atomic_fetch_add(&r->errors, 1);
		atomic_fetch_sub(&r->outstanding, 1);
	}
}

static void swindow(kb_ctx *ctx, int inflight, double seconds, size_t vsize,
    atomic_uint *next, struct acc *a)
{
	struct srun *r = calloc(1, sizeof *r);
	struct sslot *slots = calloc((size_t)inflight, sizeof *slots);
	r->ctx = ctx;
	r->vsize = vsize;
	r->next = next;
	r->caplat = 4u << 20;
	r->lat = malloc(r->caplat * sizeof(int64_t));
	r->val = malloc(vsize);
	memset(r->val, 'v', vsize);
	atomic_store(&r->outstanding, inflight);
	for (int i = 0; i < inflight; i++) {
		slots[i].r = r;
		sissue(&slots[i]);
	}
	usleep(200000);
	atomic_store(&r->phase, 1);
	int64_t t0 = now_ns();
	double c0 = cpu_now();
	sleep_ns((int64_t)(seconds * 1e9));
	atomic_store(&r->phase, 2);
	int64_t t1 = now_ns();
	a->cpu += cpu_now() - c0;
	for (int i = 0; i < 60000 && atomic_load(&r->outstanding) > 0; i++)
		usleep(1000);
	unsigned long long n = atomic_load(&r->n);
	size_t m = n > r->caplat ? r->caplat : (size_t)n;
	for (size_t i = 0; i < m; i++)
		lat_push(&a->lat, r->lat[i]);
	a->ops += (double)n;
	a->secs += (double)(t1 - t0) / 1e9;
	a->errors += atomic_load(&r->errors);
	if (atomic_load(&r->outstanding) > 0) {
		/* Replies still owed after a minute: leak rather than race. */
		a->errors++;
		return;
	}
	free(slots);
	free(r->lat);
	free(r->val);
	free(r);
}

/* --- watchers ------------------------------------------------------------- */

struct wthread;

struct watcher {
	CURL *c;
	struct wthread *t;
	char *line; /* a partial line */
	size_t ll;
	bool ok;   /* got "HTTP/1.1 200" */
	bool done; /* the stream ended */
	int seen;
};

/* One thread drives its share of the streams through curl's socket API
 * and epoll, so an event costs it the sockets that have data, not a walk
 * over every stream. */
struct wthread {
	pthread_t th;
	CURLM *m;
	int ep;          /* epoll fd */
	long timeout_ms; /* curl's timer: -1 none */
	struct watcher *ws;
	int n;
	struct lat lat;
	unsigned long long bad_lines;
};

static atomic_int w_stop;
static atomic_ullong w_seen, w_ok, w_ended;

static void watch_line(struct watcher *w, const char *line, size_t len,
    int64_t at)
{
	static const char key[] = "\"" ANNOT "\":\"";
	const char *p = memmem(line, len, key, sizeof key - 1);
	if (p == NULL) {
		w->t->bad_lines++;
		return;
	}
	int64_t sent = strtoll(p + sizeof key - 1, NULL, 10);
	lat_push(&w->t->lat, at - sent);
	w->seen++;
	atomic_fetch_add(&w_seen, 1);
}

static size_t on_watch_data(char *d, size_t sz, size_t n, void *arg)
{
	struct watcher *w = arg;
	size_t len = sz * n;
	int64_t at = now_ns();
	const char *p = d, *end = d + len;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t take = (size_t)((nl ? nl : end) - p);
		if (w->ll + take > LINE_MAX_KEEP)
			take = w->ll < LINE_MAX_KEEP ? LINE_MAX_KEEP - w->ll :
						       0;
		memcpy(w->line + w->ll, p, take);
		w->ll += take;
		if (nl == NULL)
			break;
		watch_line(w, w->line, w->ll, at);
		w->ll = 0;
		p = nl + 1;
	}
	return len;
}

static size_t on_watch_header(char *d, size_t sz, size_t n, void *arg)
{
	struct watcher *w = arg;
	size_t len = sz * n;
	if (!w->ok && len > 12 && !strncmp(d, "HTTP/", 5) &&
	    !strncmp(d + 8, " 200", 4)) {
		w->ok = true;
		atomic_fetch_add(&w_ok, 1);
	}
	return len;
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *arg,
    void *sockp)
{
	struct wthread *t = arg;
	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(t->ep, EPOLL_CTL_DEL, fd, NULL);
		curl_multi_assign(t->m, fd, NULL);
		return 0;
	}
	struct epoll_event ev = { .data.fd = fd };
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	if (sockp == NULL) {
		epoll_ctl(t->ep, EPOLL_CTL_ADD, fd, &ev);
		curl_multi_assign(t->m, fd, t); /* known from now on */
	} else {
		epoll_ctl(t->ep, EPOLL_CTL_MOD, fd, &ev);
	}
	return 0;
}

static int on_timer(CURLM *m, long timeout_ms, void *arg)
{
	struct wthread *t = arg;
	(void)m;
	t->timeout_ms = timeout_ms;
	return 0;
}

static void reap_done(struct wthread *t)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(t->m, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct watcher *w = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&w);
		if (w && !w->done) {
			w->done = true;
			atomic_fetch_add(&w_ended, 1);
			if (atomic_load(&first_errors) < 5)
				fprintf(stderr,
				    "bench-api: a watch ended: %s\n",
				    curl_easy_strerror(msg->data.result));
		}
	}
}

static void *wthread_main(void *arg)
{
	struct wthread *t = arg;
	struct epoll_event evs[256];
	int64_t give_up = now_ns() + 900 * 1000000000LL;
	int running = 0;
	curl_multi_socket_action(t->m, CURL_SOCKET_TIMEOUT, 0, &running);
	while (!atomic_load(&w_stop) && now_ns() < give_up) {
		long wait = t->timeout_ms < 0 || t->timeout_ms > 100 ?
		    100 :
		    t->timeout_ms;
		int n = epoll_wait(t->ep, evs, 256, (int)wait);
		for (int i = 0; i < n; i++) {
			int flags = 0;
			if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
				flags |= CURL_CSELECT_IN;
			if (evs[i].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (evs[i].events & EPOLLERR)
				flags |= CURL_CSELECT_ERR;
			curl_multi_socket_action(t->m, evs[i].data.fd, flags,
			    &running);
		}
		if (n <= 0 || t->timeout_ms == 0)
			curl_multi_socket_action(t->m, CURL_SOCKET_TIMEOUT, 0,
			    &running);
		reap_done(t);
	}
	return NULL;
}

static int watchers_start(struct wthread *wt, int nthreads, int nwatchers,
    const char *rv)
{
	char url[1024];
	snprintf(url, sizeof url,
	    "%s/api/v1/namespaces/bench-watch/configmaps?watch=1"
	    "&resourceVersion=%s&timeoutSeconds=1200",
	    S.url, rv);
	for (int k = 0; k < nthreads; k++) {
		struct wthread *t = &wt[k];
		t->n = nwatchers / nthreads + (k < nwatchers % nthreads);
		t->ws = calloc((size_t)t->n, sizeof *t->ws);
		t->timeout_ms = -1;
		t->ep = epoll_create1(EPOLL_CLOEXEC);
		if ((t->m = curl_multi_init()) == NULL || t->ws == NULL ||
		    t->ep < 0)
			return -1;
		curl_multi_setopt(t->m, CURLMOPT_SOCKETFUNCTION, on_socket);
		curl_multi_setopt(t->m, CURLMOPT_SOCKETDATA, t);
		curl_multi_setopt(t->m, CURLMOPT_TIMERFUNCTION, on_timer);
		curl_multi_setopt(t->m, CURLMOPT_TIMERDATA, t);
		for (int i = 0; i < t->n; i++) {
			struct watcher *w = &t->ws[i];
			w->t = t;
			w->line = malloc(LINE_MAX_KEEP);
			if ((w->c = curl_easy_init()) == NULL || !w->line)
				return -1;
			curl_easy_setopt(w->c, CURLOPT_URL, url);
			curl_easy_setopt(w->c, CURLOPT_CAINFO, S.ca);
			curl_easy_setopt(w->c, CURLOPT_HTTPHEADER, S.get_hdr);
			curl_easy_setopt(w->c, CURLOPT_WRITEFUNCTION,
			    on_watch_data);
			curl_easy_setopt(w->c, CURLOPT_WRITEDATA, w);
			curl_easy_setopt(w->c, CURLOPT_HEADERFUNCTION,
			    on_watch_header);
			curl_easy_setopt(w->c, CURLOPT_HEADERDATA, w);
			curl_easy_setopt(w->c, CURLOPT_PRIVATE, w);
			curl_easy_setopt(w->c, CURLOPT_NOSIGNAL, 1L);
			curl_easy_setopt(w->c, CURLOPT_CONNECTTIMEOUT, 60L);
			curl_easy_setopt(w->c, CURLOPT_TCP_NODELAY, 1L);
			curl_multi_add_handle(t->m, w->c);
		}
		if (pthread_create(&t->th, NULL, wthread_main, t))
			return -1;
	}
	return 0;
}

static void watchers_stop(struct wthread *wt, int nthreads)
{
	atomic_store(&w_stop, 1);
	for (int k = 0; k < nthreads; k++) {
		struct wthread *t = &wt[k];
		if (t->th)
			pthread_join(t->th, NULL);
		for (int i = 0; t->ws && i < t->n; i++) {
			if (t->ws[i].c) {
				curl_multi_remove_handle(t->m, t->ws[i].c);
				curl_easy_cleanup(t->ws[i].c);
			}
			free(t->ws[i].line);
		}
		if (t->m)
			curl_multi_cleanup(t->m);
		if (t->ep > 0)
			close(t->ep);
		free(t->ws);
	}
}

/* apiserver_registered_watchers from /metrics, or -1. */
static long registered_watchers(struct client *cl)
{
	if (http(cl, "/metrics", NULL) != 200)
		return -1;
	const char *p = strstr(cl->buf, "\napiserver_registered_watchers ");
	return p ? strtol(p + 31, NULL, 10) : -1;
}

struct watch_result {
	struct lat lat;
	struct acc create;
	unsigned long long expected, seen, ended, bad_lines;
	double setup_s;
	double
	    cpu; /* process CPU seconds from the first event to the last seen */
};

static int watch_case(int nwatchers, int nthreads, int events, int event_ms,
    struct watch_result *res)
{
	struct client *cl = &clients[0];
	struct wthread wt[MAX_WATCH_THREADS];
	memset(wt, 0, sizeof wt);
	memset(res, 0, sizeof *res);
	/* List, then watch from the list's resourceVersion, as clients do. */
	if (http(cl, "/api/v1/namespaces/bench-watch/configmaps", NULL) != 200)
		return -1;
	json_t *j = json_loads(cl->buf, 0, NULL);
	json_t *md = json_object_get(j, "metadata");
	const char *lrv =
	    json_string_value(json_object_get(md, "resourceVersion"));
	char *rv = strdup(lrv ? lrv : "0");
	json_decref(j);
	int64_t t0 = now_ns();
	int rc = watchers_start(wt, nthreads, nwatchers, rv);
	free(rv);
	/* Every stream registered on the server and answered 200. */
	long reg = 0;
	int64_t until = now_ns() + 120 * 1000000000LL;
	while (rc == 0 && now_ns() < until) {
		reg = registered_watchers(cl);
		if (reg >= nwatchers &&
		    atomic_load(&w_ok) >= (unsigned long long)nwatchers)
			break;
		usleep(50000);
	}
	res->setup_s = (double)(now_ns() - t0) / 1e9;
	fprintf(stderr,
	    "watch: %ld registered, %llu answered 200 after %.1f s\n", reg,
	    atomic_load(&w_ok), res->setup_s);
	if (rc || reg < nwatchers ||
	    atomic_load(&w_ok) < (unsigned long long)nwatchers) {
		fprintf(stderr, "bench-api: the watchers did not all start\n");
		watchers_stop(wt, nthreads);
		return -1;
	}
	usleep(200000);
	/* The events: one ConfigMap every event_ms, its send time inside. */
	char path[] = "/api/v1/namespaces/bench-watch/configmaps";
	char name[64], body[1024];
	int64_t start = now_ns();
	double c0 = cpu_now();
	for (int i = 0; i < events; i++) {
		sleep_ns(start + (int64_t)i * event_ms * 1000000 - now_ns());
		snprintf(name, sizeof name, "ev-%d", i);
		int64_t sent = now_ns();
		cm_body(body, sizeof body, name, sent);
		long code = http(cl, path, body);
		int64_t done = now_ns();
		if (code != 201) {
			res->create.errors++;
			note_error(path, code, cl->buf);
		} else {
			lat_push(&res->create.lat, done - sent);
		}
	}
	res->expected = (unsigned long long)nwatchers *
	    (unsigned long long)(events - (int)res->create.errors);
	until = now_ns() + 20 * 1000000000LL;
	while (atomic_load(&w_seen) < res->expected && now_ns() < until)
		usleep(1000);
	res->cpu = cpu_now() - c0;
	watchers_stop(wt, nthreads);
	res->seen = atomic_load(&w_seen);
	res->ended = atomic_load(&w_ended);
	for (int k = 0; k < nthreads; k++) {
		res->bad_lines += wt[k].bad_lines;
		lat_merge(&res->lat, &wt[k].lat);
	}
	return 0;
}

/* --- list ----------------------------------------------------------------- */

static int list_case(const char *query, int reps, size_t want, struct lat *lat)
{
	char path[256];
	snprintf(path, sizeof path, "/api/v1/namespaces/bench-list/pods%s",
	    query);
	for (int i = 0; i < reps; i++) {
		int64_t t0 = now_ns();
		long code = http(&clients[0], path, NULL);
		int64_t t1 = now_ns();
		if (code != 200) {
			note_error(path, code, clients[0].buf);
			return -1;
		}
		lat_push(lat, t1 - t0);
		if (i == 0) {
			json_t *j = json_loads(clients[0].buf, 0, NULL);
			size_t n = json_array_size(json_object_get(j, "items"));
			json_decref(j);
			if (n != want) {
				fprintf(stderr,
				    "bench-api: %s listed %zu pods, not %zu\n",
				    path, n, want);
				return -1;
			}
		}
	}
	return 0;
}

/* --- setup ---------------------------------------------------------------- */

static struct kbt_host *host_start(bool sync)
{
	char yaml[1024], err[1024];
	snprintf(yaml, sizeof yaml,
	    "host: {log_level: warn}\n"
	    "bus:\n"
	    "  listen: []\n"
	    "plugins:\n"
	    "  - name: store\n"
	    "    use: store-lmdb\n"
	    "    config: {sync: %s, map_size: 4Gi}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\"}\n",
	    sync ? "true" : "false");
	/* The apiserver prints `export KUBECONFIG=…` on stdout: keep it off
	 * ours, which carries the figures. */
	fflush(stdout);
	int saved = dup(1);
	dup2(2, 1);
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof err);
	fflush(stdout);
	if (saved >= 0) {
		dup2(saved, 1);
		close(saved);
	}
	if (h == NULL)
		fprintf(stderr, "bench-api: cannot start the host: %s\n", err);
	return h;
}

static int make_namespace(const char *name)
{
	char body[256];
	snprintf(body, sizeof body,
	    "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\","
	    "\"metadata\":{\"name\":\"%s\"}}",
	    name);
	long code = http(&clients[0], "/api/v1/namespaces", body);
	if (code != 201) {
		note_error("create namespace", code, clients[0].buf);
		return -1;
	}
	return 0;
}

/* The size of a ConfigMap as the server keeps it: the raw puts use it. */
static size_t sample_size(void)
{
	char body[1024];
	cm_body(body, sizeof body, "sample", 0);
	if (http(&clients[0], "/api/v1/namespaces/bench-watch/configmaps",
		body) != 201)
		return 0;
	return clients[0].len;
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

struct opts {
	double seconds;
	int rounds, clients, watchers, watch_threads, events, event_ms;
	int list_pods, list_reps;
	bool sync;
	bool curl;          /* --client curl: the HTTP windows use libcurl */
	int client_threads; /* the lean client's epoll threads */
	const char *only; /* for profiling: "create", "get", "list", "watch" */
};

static bool runs(const struct opts *o, const char *phase)
{
	return o->only == NULL || !strcmp(o->only, phase);
}

static void usage(void)
{
	fprintf(stderr,
	    "usage: bench-api [--seconds S] [--rounds N] [--clients N] "
	    "[--watchers N]\n"
	    "                 [--events N] [--event-ms MS] [--list-pods N] "
	    "[--list-reps N] [--no-sync] [--smoke]\n"
	    "                 [--watch-threads N] [--only create|get|list|watch]\n"
	    "                 [--client lean|curl] [--client-threads N]\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
	*o = (struct opts){ .seconds = 2,
		.rounds = 3,
		.clients = 32,
		.watchers = 1000,
		.watch_threads = 4,
		.events = 100,
		.event_ms = 50,
		.list_pods = 1000,
		.list_reps = 10,
		.sync = true,
		.client_threads = (int)sysconf(_SC_NPROCESSORS_ONLN) };
	if (o->client_threads < 1) /* the CPUs are unknown */
		o->client_threads = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--smoke")) {
			o->seconds = 0.3;
			o->rounds = 1;
			o->clients = 4;
			o->watchers = 20;
			o->watch_threads = 2;
			o->events = 5;
			o->event_ms = 20;
			o->list_pods = 50;
			o->list_reps = 2;
		} else if (v && !strcmp(a, "--only")) {
			o->only = v, i++;
		} else if (!strcmp(a, "--no-sync")) {
			o->sync = false;
		} else if (v && !strcmp(a, "--seconds")) {
			o->seconds = atof(v), i++;
		} else if (v && !strcmp(a, "--rounds")) {
			o->rounds = atoi(v), i++;
		} else if (v && !strcmp(a, "--clients")) {
			o->clients = atoi(v), i++;
		} else if (v && !strcmp(a, "--watchers")) {
			o->watchers = atoi(v), i++;
		} else if (v && !strcmp(a, "--events")) {
			o->events = atoi(v), i++;
		} else if (v && !strcmp(a, "--event-ms")) {
			o->event_ms = atoi(v), i++;
		} else if (v && !strcmp(a, "--watch-threads")) {
			o->watch_threads = atoi(v), i++;
		} else if (v && !strcmp(a, "--list-reps")) {
			o->list_reps = atoi(v), i++;
		} else if (v && !strcmp(a, "--list-pods")) {
			o->list_pods = atoi(v), i++;
		} else if (v && !strcmp(a, "--client") &&
		    (!strcmp(v, "lean") || !strcmp(v, "curl"))) {
			o->curl = !strcmp(v, "curl"), i++;
		} else if (v && !strcmp(a, "--client-threads")) {
			o->client_threads = atoi(v), i++;
		} else {
			usage();
			return -1;
		}
	}
	if (o->seconds <= 0 || o->seconds > 60 || o->rounds < 1 ||
	    o->rounds > 20 || o->clients < 1 || o->clients > MAX_CLIENTS ||
	    o->watchers < 1 || o->watchers > 5000 || o->events < 1 ||
	    o->events > 10000 || o->event_ms < 0 || o->event_ms > 10000 ||
	    o->list_pods < 1 || o->list_pods > 100000 || o->list_reps < 1 ||
	    o->list_reps > 1000 || o->watch_threads < 1 ||
	    o->watch_threads > MAX_WATCH_THREADS || o->client_threads < 1 ||
	    o->client_threads > MAX_CLIENTS) {
		usage();
		return -1;
	}
	if (o->client_threads > o->clients)
		o->client_threads = o->clients;
	if (o->watch_threads > o->watchers)
		o->watch_threads = o->watchers;
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o;
	if (parse_opts(argc, argv, &o))
		return 2;
	setenv("KUBUS_LOG_QUIET", "1", 0);
	raise_nofile();
	/* OpenSSL writes the lean client's sockets with write(2): a connection
	 * the server closed must fail that write, not end the process. */
	signal(SIGPIPE, SIG_IGN);
	if (curl_global_init(CURL_GLOBAL_DEFAULT))
		return 1;
	struct kbt_host *h = host_start(o.sync);
	if (h == NULL || server_find(h))
		return 1;
	kb_ctx *bus = kbt_client(h, "bench", "plugin:bench", fe_groups, 2);
	/* With the lean client, curl still makes the namespaces, lists and
	 * watch events, on clients[0]. */
	for (int i = 0; i < (o.curl ? o.clients : 1); i++)
		if (client_init(&clients[i]))
			return 1;
	if (!o.curl &&
	    (lean = lean_open(S.url, S.ca, S.get_lines, S.post_lines, o.clients,
		 o.client_threads)) == NULL)
		return 1;
	fprintf(stderr, "bench-api: server %s, store-lmdb sync: %s\n", S.url,
	    o.sync ? "true" : "false");
	if (make_namespace("bench") || make_namespace("bench-list") ||
	    make_namespace("bench-watch"))
		return 1;
	size_t vsize = sample_size();
	if (vsize == 0) {
		fprintf(stderr, "bench-api: cannot create a ConfigMap\n");
		return 1;
	}
	printf("value: a ConfigMap as the server returns it is %zu bytes of "
	       "JSON; raw store puts use values of that size\n",
	    vsize);
	if (lean)
		printf("client: lean (%d epoll thread%s, %d connections)\n",
		    lean_threads(lean), lean_threads(lean) == 1 ? "" : "s",
		    o.clients);
	else
		printf("client: curl (%d threads, an easy handle each)\n",
		    o.clients);

	/* Creates against raw store puts, taking turns. */
	atomic_uint cm_next = 0, raw_next = 0, pod_next = 0;
	struct acc a_put = { 0 }, a_cm = { 0 }, a_pod = { 0 }, a_get = { 0 };
	struct lat l_store = { 0 }, l_cache = { 0 };
	struct watch_result wr = { 0 };
	int lrc = 0, wrc = 0;
	if (runs(&o, "create")) {
		for (int i = 0; i < o.rounds; i++) {
			swindow(bus, o.clients, o.seconds, vsize, &raw_next,
			    &a_put);
			hwindow(OP_CREATE_CM, o.clients, o.seconds, &cm_next, 0,
			    0, &a_cm);
			fprintf(stderr,
			    "round %d: store %.0f puts/s, api %.0f creates/s "
			    "so far\n",
			    i + 1, acc_rate(&a_put), acc_rate(&a_cm));
		}
		print_case("store", "put", o.clients, &a_put);
		print_case("api", "create cm", o.clients, &a_cm);
	}
	if (runs(&o, "create") || runs(&o, "list")) {
		hwindow(OP_CREATE_POD, o.clients, 0, &pod_next,
		    (unsigned)o.list_pods, 0, &a_pod);
		print_case("api", "create pod", o.clients, &a_pod);
	}
	if (runs(&o, "get")) {
		if (atomic_load(&cm_next) ==
		    0) /* --only get: something to get */
			hwindow(OP_CREATE_CM, o.clients, 0, &cm_next, 2000, 0,
			    &a_cm);
		hwindow(OP_GET_CM, o.clients, o.seconds, NULL, 0,
		    atomic_load(&cm_next), &a_get);
		print_case("api", "get cm", o.clients, &a_get);
	}
	if (runs(&o, "list")) {
		lrc = list_case("", o.list_reps, (size_t)o.list_pods, &l_store);
		if (lrc == 0)
			lrc = list_case("?resourceVersion=0", o.list_reps,
			    (size_t)o.list_pods, &l_cache);
		printf("api    list %d pods      from the store: mean_ms=%.1f "
		       "p50_ms=%.1f max_ms=%.1f; resourceVersion=0 (cache): "
		       "mean_ms=%.1f p50_ms=%.1f max_ms=%.1f (%d each)\n",
		    o.list_pods, lat_mean_ms(&l_store), lat_ms(&l_store, 0.5),
		    lat_ms(&l_store, 1), lat_mean_ms(&l_cache),
		    lat_ms(&l_cache, 0.5), lat_ms(&l_cache, 1), o.list_reps);
	}
	if (runs(&o, "watch")) {
		wrc = watch_case(o.watchers, o.watch_threads, o.events,
		    o.event_ms, &wr);
		if (wrc == 0 && wr.expected == 0)
			wrc = -1;
		printf("api    watch watchers=%d events=%d every %d ms: "
		       "deliveries=%llu/%llu p50_ms=%.2f p99_ms=%.2f "
		       "max_ms=%.2f (the event's create p50_ms=%.2f "
		       "p99_ms=%.2f); cpu_us/delivery=%.1f; streams ended "
		       "early=%llu, set up in %.1f s\n",
		    o.watchers, o.events, o.event_ms, wr.seen, wr.expected,
		    lat_ms(&wr.lat, 0.5), lat_ms(&wr.lat, 0.99),
		    lat_ms(&wr.lat, 1), lat_ms(&wr.create.lat, 0.5),
		    lat_ms(&wr.create.lat, 0.99),
		    wr.seen ? wr.cpu / (double)wr.seen * 1e6 : 0, wr.ended,
		    wr.setup_s);
	}
	double w_p99 = lat_ms(&wr.lat, 0.99);

	for (int i = 0; i < o.clients; i++)
		client_free(&clients[i]);
	if (lean)
		lean_close(lean);
	kbt_host_stop(h);

	double creates = acc_rate(&a_cm), puts = acc_rate(&a_put);
	double ratio = puts > 0 ? creates / puts : 0;
	double p99c = lat_ms(&a_cm.lat, 0.99), gets = acc_rate(&a_get);
	unsigned long long errors = a_put.errors + a_cm.errors + a_pod.errors +
	    a_get.errors + wr.create.errors + wr.ended + wr.bad_lines;
	bool failed = errors || lrc || wrc || wr.seen < wr.expected;
	double load[3] = { 0 };
	getloadavg(load, 3);
	bool ran_c = runs(&o, "create"), ran_g = runs(&o, "get"),
	     ran_w = runs(&o, "watch");
	printf("goals: creates %.2fx store puts (>= 0.5) %s; p99 create "
	       "%.2f ms (<= 10) %s; gets %.0f/s (>= 20000) %s; watch p99 "
	       "%.2f ms at %d watchers (<= 50) %s\n",
	    ratio,
	    !ran_c           ? "not run" :
		ratio >= 0.5 ? "met" :
			       "MISSED",
	    p99c,
	    !ran_c         ? "not run" :
		p99c <= 10 ? "met" :
			     "MISSED",
	    gets,
	    !ran_g            ? "not run" :
		gets >= 20000 ? "met" :
				"MISSED",
	    w_p99, o.watchers,
	    !ran_w                  ? "not run" :
		w_p99 <= 50 && !wrc ? "met" :
				      "MISSED");
	printf("machine: nproc=%ld loadavg=%.2f %.2f %.2f; errors=%llu%s\n",
	    sysconf(_SC_NPROCESSORS_ONLN), load[0], load[1], load[2], errors,
	    failed ? " (FAILED)" : "");
	printf("RESULT api creates=%.0f store_puts=%.0f p99_create_ms=%.2f "
	       "gets=%.0f watch_p99_ms=%.2f ratio=%.2f\n",
	    creates, puts, p99c, gets, w_p99, ratio);
	free(a_put.lat.v);
	free(a_cm.lat.v);
	free(a_pod.lat.v);
	free(a_get.lat.v);
	free(l_store.v);
	free(l_cache.v);
	free(wr.lat.v);
	free(wr.create.lat.v);
	curl_slist_free_all(S.get_hdr);
	curl_slist_free_all(S.post_hdr);
	free(S.get_lines);
	free(S.post_lines);
	free(S.url);
	free(S.token);
	free(S.ca);
	curl_global_cleanup();
	return failed ? 1 : 0;
}
