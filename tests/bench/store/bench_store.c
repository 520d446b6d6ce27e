/* tests/bench/store/bench_store.c — the `store` service through the bus:
 * store-lmdb against store-etcd (one local etcd member, default durable
 * settings) and against raw LMDB group commit, all measured in this run.
 *
 *   raw LMDB:    one thread, 32 puts of 1 KiB per durable write txn,
 *                liblmdb only (no Kubus code) — the disk's fsync rate times
 *                the batch, the physical limit for a durable store here.
 *   store-lmdb:  a host with store-lmdb (sync: true), a frontend client
 *                doing put then get of 1 KiB values with 1 and 32 requests
 *                in flight.
 *   store-etcd:  the same against a host with store-etcd on a fresh
 *                single-member etcd (tests/store/etcd_proc.h).
 *
 *   bench-store [--seconds S] [--rounds N] [--no-etcd] [--watchers N]
 *
 * --watchers N: N watches (prev: true, as the API server's) on the
 * benchmark's prefix of each store, their events counted by the client.
 *
 * The three put-at-32 cases take turns, --rounds rounds of one --seconds
 * window each, so that a drifting disk affects them alike; the other cases
 * run once. See README.md beside this file.
 *
 * Last line:
 *   RESULT store lmdb_puts=N etcd_puts=N raw_lmdb_puts=N gets=N ratio=R
 * lmdb_puts and etcd_puts at 32 in flight, gets = store-lmdb gets/s at 32
 * in flight, ratio = lmdb_puts / etcd_puts.
 */
#include <lmdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "store/etcd_proc.h"

#define VALUE_SIZE 1024
#define KEYS 10000

static const char *const fe_groups[] = { "kubus:plugins",
	"kubus:kind:frontend" };

static double proc_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds of the threads named `name` between two snapshots. */
static double cpu_of(const struct kbt_cpu_groups *a,
    const struct kbt_cpu_groups *b, const char *name)
{
	double s = 0;
	for (int i = 0; i < b->n; i++)
		if (!strcmp(b->name[i], name))
			s += b->s[i];
	for (int i = 0; i < a->n; i++)
		if (!strcmp(a->name[i], name))
			s -= a->s[i];
	return s;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

struct result {
	double rps, p50_us, p99_us;
	unsigned long long errors;
	double cpu_proc_us, cpu_commit_us, cpu_ep_us; /* per op */
};

/* Figures gathered over several windows of one case. */
struct acc {
	double ops, secs;
	unsigned long long errors;
	/* CPU seconds while measuring: the process, the store's committer
	 * (lmdb:commit) and its bus dispatch thread (ep:store) */
	double cpu_proc, cpu_commit, cpu_ep;
	int64_t *lat;
	size_t nlat, cap;
};

static void acc_lat(struct acc *a, int64_t ns)
{
	if (a->nlat == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 1 << 16;
		int64_t *n = realloc(a->lat, cap * sizeof *n);
		if (!n)
			return;
		a->lat = n;
		a->cap = cap;
	}
	a->lat[a->nlat++] = ns;
}

static struct result acc_result(struct acc *a)
{
	struct result r = { 0 };
	qsort(a->lat, a->nlat, sizeof *a->lat, cmp64);
	r.rps = a->secs > 0 ? a->ops / a->secs : 0;
	r.p50_us = a->nlat ? a->lat[a->nlat / 2] / 1e3 : 0;
	r.p99_us = a->nlat ? a->lat[(size_t)((double)a->nlat * 0.99)] / 1e3 : 0;
	r.errors = a->errors;
	if (a->ops > 0) {
		r.cpu_proc_us = a->cpu_proc * 1e6 / a->ops;
		r.cpu_commit_us = a->cpu_commit * 1e6 / a->ops;
		r.cpu_ep_us = a->cpu_ep * 1e6 / a->ops;
	}
	return r;
}

/* --- raw LMDB group commit ------------------------------------------------ */

struct raw {
	char *dir;
	MDB_env *env;
	MDB_dbi dbi;
	unsigned seed;
	long commits;
};

static int raw_open(struct raw *r)
{
	MDB_txn *txn;
	r->dir = kbt_mkdtemp("raw-lmdb");
	r->seed = 1;
	/* the same durable defaults store-lmdb runs with */
	if (mdb_env_create(&r->env) ||
	    mdb_env_set_mapsize(r->env, 1ull << 30) ||
	    mdb_env_open(r->env, r->dir, 0, 0600) ||
	    mdb_txn_begin(r->env, NULL, 0, &txn) ||
	    mdb_dbi_open(txn, NULL, 0, &r->dbi) || mdb_txn_commit(txn)) {
		fprintf(stderr, "raw lmdb: cannot open %s\n", r->dir);
		return -1;
	}
	return 0;
}

static void raw_close(struct raw *r)
{
	mdb_env_close(r->env);
	kbt_rmrf(r->dir);
	free(r->dir);
}

/* One thread, `batch` puts of 1 KiB per durable commit, for `seconds`.
 * Latency is per commit (what each of the batch's writers would wait). */
static void raw_window(struct raw *r, double seconds, int batch, struct acc *a)
{
	unsigned char val[VALUE_SIZE];
	char key[32];
	MDB_txn *txn;
	int64_t t0 = now_ns(), end = t0 + (int64_t)(seconds * 1e9), t;
	long puts = 0;

	memset(val, 'r', sizeof val);
	while ((t = now_ns()) < end) {
		if (mdb_txn_begin(r->env, NULL, 0, &txn)) {
			a->errors++;
			break;
		}
		for (int i = 0; i < batch; i++) {
			int n = snprintf(key, sizeof key, "/bench/%05d",
			    (int)(rand_r(&r->seed) % KEYS));
			MDB_val k = { (size_t)n, key }, v = { sizeof val, val };
			if (mdb_put(txn, r->dbi, &k, &v, 0))
				a->errors++;
		}
		if (mdb_txn_commit(txn))
			a->errors++;
		acc_lat(a, now_ns() - t);
		r->commits++;
		puts += batch;
	}
	a->ops += (double)puts;
	a->secs += (double)(now_ns() - t0) / 1e9;
}

/* --- through the bus ------------------------------------------------------ */

struct run {
	kb_ctx *ctx;
	bool puts;
	atomic_int phase; /* 0 warm-up, 1 measure, 2 stop */
	atomic_int outstanding;
	atomic_ullong errors, n;
	int64_t *lat;
	size_t caplat;
	atomic_uint seq;
	unsigned char val[VALUE_SIZE];
};

struct slot {
	struct run *r;
	int64_t t0;
};

static kb_body *body(struct run *r)
{
	unsigned i = atomic_fetch_add(&r->seq, 1) * 2654435761u % KEYS;
	char key[32];
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int n = snprintf(key, sizeof key, "/bench/%05u", i);

	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, r->puts ? 2 : 1);
	msgpack_pack_str(&pk, 3);
	msgpack_pack_str_body(&pk, "key", 3);
	msgpack_pack_str(&pk, (size_t)n);
	msgpack_pack_str_body(&pk, key, (size_t)n);
	if (r->puts) {
		msgpack_pack_str(&pk, 5);
		msgpack_pack_str_body(&pk, "value", 5);
		msgpack_pack_bin(&pk, VALUE_SIZE);
		msgpack_pack_bin_body(&pk, r->val, VALUE_SIZE);
	}
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

static void issue(struct slot *s);

static void on_reply(void *arg, int rc, const kb_msg *rep)
{
	struct slot *s = arg;
	struct run *r = s->r;
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
		issue(s);
	else
		atomic_fetch_sub(&r->outstanding, 1);
}

static void issue(struct slot *s)
{
	struct run *r = s->r;
	kb_body *b = body(r);
	s->t0 = now_ns();
	if (!b ||
	    kb_request(r->ctx, KB_STORE_SERVICE, r->puts ? "put" : "get", b,
		30000, on_reply, s)) {
		if (b)
			kb_body_unref(b);
		atomic_fetch_add(&r->errors, 1);
		atomic_fetch_sub(&r->outstanding, 1);
	}
}

static void window(kb_ctx *ctx, bool puts, int inflight, double seconds,
    struct acc *a)
{
	struct run *r = calloc(1, sizeof *r);
	struct slot *slots = calloc((size_t)inflight, sizeof *slots);

	r->ctx = ctx;
	r->puts = puts;
	r->caplat = 8u << 20;
	r->lat = malloc(r->caplat * sizeof(int64_t));
	memset(r->val, 'v', sizeof r->val);
	atomic_store(&r->outstanding, inflight);
	for (int i = 0; i < inflight; i++) {
		slots[i].r = r;
		issue(&slots[i]);
	}
	static struct kbt_cpu_groups g0, g1;
	usleep(200000);
	kbt_cpu_by_thread(&g0);
	double c0 = proc_cpu();
	atomic_store(&r->phase, 1);
	int64_t t0 = now_ns();
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&r->phase, 2);
	int64_t t1 = now_ns();
	double c1 = proc_cpu();
	kbt_cpu_by_thread(&g1);
	a->cpu_proc += c1 - c0;
	a->cpu_commit += cpu_of(&g0, &g1, "lmdb:commit");
	a->cpu_ep += cpu_of(&g0, &g1, "ep:store");
	while (atomic_load(&r->outstanding) > 0)
		usleep(1000);
	unsigned long long n = atomic_load(&r->n);
	size_t m = n > r->caplat ? r->caplat : (size_t)n;
	for (size_t i = 0; i < m; i++)
		acc_lat(a, r->lat[i]);
	a->ops += (double)n;
	a->secs += (double)(t1 - t0) / 1e9;
	a->errors += atomic_load(&r->errors);
	free(slots);
	free(r->lat);
	free(r);
}

static void print(const char *what, const char *op, int inflight,
    struct result r)
{
	printf("%-11s %-4s clients=%-3d ops/s=%-8.0f p50_us=%-8.1f "
	       "p99_us=%-8.1f errors=%llu",
	    what, op, inflight, r.rps, r.p50_us, r.p99_us, r.errors);
	if (r.cpu_proc_us > 0)
		printf(" cpu_us/op: process=%.1f lmdb:commit=%.1f "
		       "ep:store=%.1f",
		    r.cpu_proc_us, r.cpu_commit_us, r.cpu_ep_us);
	printf("\n");
	fflush(stdout);
}

struct store {
	const char *name;
	struct kbt_host *h;
	kb_ctx *c;
	atomic_ullong events; /* delivered to its watchers */
};

static void on_events(void *arg, const kb_msg *m)
{
	struct store *st = arg;
	const msgpack_object *evs = kb_mp_get(kb_msg_body(m), "events");
	if (evs && evs->type == MSGPACK_OBJECT_ARRAY)
		atomic_fetch_add(&st->events, evs->via.array.size);
}

/* n watches on /bench/ from the next revision, with prev values. */
static int watch_start(struct store *st, int n)
{
	char pat[64], topic[64];
	snprintf(pat, sizeof pat, "bench/store/%s/*", st->name);
	if (kb_subscribe(st->c, pat, on_events, st))
		return -1;
	for (int i = 0; i < n; i++) {
		kb_msg *rep = NULL;
		snprintf(topic, sizeof topic, "bench/store/%s/%d", st->name, i);
		int rc = kb_call(st->c, KB_STORE_SERVICE, "watch",
		    kb_mp_body("{s:s, s:b, s:s}", "prefix", "/bench/", "prev",
			1, "topic", topic),
		    10000, &rep);
		kb_msg_free(rep);
		if (rc) {
			fprintf(stderr, "%s: watch: %s\n", st->name,
			    kb_strerror(rc));
			return -1;
		}
	}
	return 0;
}

static int store_start(struct store *st, const char *name, const char *yaml)
{
	char err[1024];
	st->name = name;
	if (!(st->h = kbt_host_start(yaml, err, sizeof err))) {
		fprintf(stderr, "%s: cannot start the host: %s\n", name, err);
		return -1;
	}
	st->c = kbt_client(st->h, "bench", "plugin:bench", fe_groups, 2);
	return 0;
}

static struct result one(struct store *st, bool puts, int inflight,
    double seconds)
{
	struct acc a = { 0 };
	struct result r;
	window(st->c, puts, inflight, seconds, &a);
	r = acc_result(&a);
	free(a.lat);
	print(st->name, puts ? "put" : "get", inflight, r);
	return r;
}

int main(int argc, char **argv)
{
	double seconds = 2;
	int rounds = 3;
	bool with_etcd = true;
	int watchers = 0;
	struct store lm = { 0 }, et = { 0 };
	struct etcd_cluster *ec = NULL;
	struct raw raw = { 0 };
	struct acc a_raw = { 0 }, a_lm = { 0 }, a_et = { 0 };
	struct result raw32, lm32, et32 = { 0 }, lmget32;
	char yaml[2048];

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = atof(argv[++i]);
		else if (!strcmp(argv[i], "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--no-etcd"))
			with_etcd = false;
		else if (!strcmp(argv[i], "--watchers") && i + 1 < argc)
			watchers = atoi(argv[++i]);
	}
	setenv("KUBUS_LOG_QUIET", "1", 0);

	if (raw_open(&raw))
		return 1;
	snprintf(yaml, sizeof yaml,
	    "host: {log_level: warn}\n"
	    "plugins:\n"
	    "  - name: store\n"
	    "    use: store-lmdb\n"
	    "    config: {sync: true}\n");
	if (store_start(&lm, "store-lmdb", yaml))
		return 1;
	if (with_etcd) {
		char err[512], eps[512] = "";
		if (!(ec = etcd_cluster_start(1, err, sizeof err))) {
			fprintf(stderr, "etcd: %s\n", err);
		} else {
			for (int i = 0; i < etcd_cluster_members(ec); i++)
				snprintf(eps + strlen(eps),
				    sizeof eps - strlen(eps), "%s\"%s\"",
				    i ? ", " : "",
				    etcd_cluster_member_endpoint(ec, i));
			snprintf(yaml, sizeof yaml,
			    "host: {log_level: warn}\n"
			    "plugins:\n"
			    "  - name: store\n"
			    "    use: store-etcd\n"
			    "    config: {endpoints: [%s]}\n",
			    eps);
			if (store_start(&et, "store-etcd", yaml))
				et.h = NULL;
		}
	}

	if (watchers > 0 && (watch_start(&lm, watchers) ||
				(et.h && watch_start(&et, watchers))))
		return 1;

	/* Puts at 32: the three take turns, window by window, so that all of
	 * them see the same disk (its fsync rate drifts a lot on a shared
	 * machine). */
	for (int i = 0; i < rounds; i++) {
		raw_window(&raw, seconds, 32, &a_raw);
		window(lm.c, true, 32, seconds, &a_lm);
		if (et.h)
			window(et.c, true, 32, seconds, &a_et);
		fprintf(stderr,
		    "round %d: raw %.0f, lmdb %.0f, etcd %.0f "
		    "puts/s so far\n",
		    i + 1, a_raw.ops / a_raw.secs, a_lm.ops / a_lm.secs,
		    et.h ? a_et.ops / a_et.secs : 0);
	}
	raw32 = acc_result(&a_raw);
	lm32 = acc_result(&a_lm);
	print("raw-lmdb", "put", 32, raw32);
	fprintf(stderr, "raw lmdb: %.0f durable commits/s of 32 puts\n",
	    raw32.rps / 32);
	print("store-lmdb", "put", 32, lm32);
	if (et.h) {
		et32 = acc_result(&a_et);
		print("store-etcd", "put", 32, et32);
	}
	one(&lm, true, 1, seconds);
	if (et.h)
		one(&et, true, 1, seconds);
	one(&lm, false, 1, seconds);
	lmget32 = one(&lm, false, 32, seconds);
	if (et.h) {
		one(&et, false, 1, seconds);
		one(&et, false, 32, seconds);
	}
	if (watchers > 0) {
		usleep(200000);
		fprintf(stderr, "watch events delivered: store-lmdb %llu%s",
		    (unsigned long long)atomic_load(&lm.events),
		    et.h ? "" : "\n");
		if (et.h)
			fprintf(stderr, ", store-etcd %llu\n",
			    (unsigned long long)atomic_load(&et.events));
	}
	if (et.h)
		kbt_host_stop(et.h);
	etcd_cluster_stop(ec);
	kbt_host_stop(lm.h);
	raw_close(&raw);
	free(a_raw.lat);
	free(a_lm.lat);
	free(a_et.lat);

	printf("store-lmdb put at 32 clients: %.1fx store-etcd, %.2fx raw "
	       "LMDB group commit (goals: >= 5x, >= 0.8x); gets %.0f/s "
	       "(goal >= 200k/s)\n",
	    et32.rps > 0 ? lm32.rps / et32.rps : 0,
	    raw32.rps > 0 ? lm32.rps / raw32.rps : 0, lmget32.rps);
	printf("RESULT store lmdb_puts=%.0f etcd_puts=%.0f raw_lmdb_puts=%.0f "
	       "gets=%.0f ratio=%.2f\n",
	    lm32.rps, et32.rps, raw32.rps, lmget32.rps,
	    et32.rps > 0 ? lm32.rps / et32.rps : 0);
	return 0;
}
