/* etcd_fault.c — store-etcd through member failures.
 *
 * A 3-member local etcd cluster, store-etcd configured with all three
 * endpoints, writers creating keys and updating a chain key with
 * compare-and-swap as fast as they can, and a watcher on the whole prefix.
 * During the writes the test kills the leader, which the plugin is talking
 * to (SIGKILL, as a crash), lets the cluster elect another, restarts it,
 * then stops (SIGTERM) the member the plugin moved to. Afterwards:
 *   - every acknowledged write is in etcd with the acknowledged revision
 *     and value (nothing acknowledged is lost);
 *   - the writers kept being acknowledged while a member was down;
 *   - the watch saw every acknowledged write once, in revision order,
 *     across the broken streams (resumed from the last seen revision).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <kubus/kubus.h>

#include "../harness.h"
#include "etcd_proc.h"

#define WRITERS 4
#define MAXN 20000

static struct etcd_cluster *etcd;
static struct kbt_host *host;
static kb_ctx *C;
static char P[64]; /* key prefix of this run */
static int first;  /* the member listed first in the plugin's config */

struct writer {
	int id;
	pthread_t thr;
	kb_ctx *ctx;
	int n;                 /* creates attempted */
	int64_t rev[MAXN];     /* acknowledged revision per create, 0 = not */
	int acked, failed;
	atomic_int acked_during_fault; /* read by the test while it runs */
	int64_t chain_rev;     /* last acknowledged revision of the chain key */
	char chain_val[32];
	int chain_acked, chain_failed, chain_resync;
};

static struct writer W[WRITERS];
static atomic_bool stop_writers;
static atomic_bool in_fault;

/* --- the watcher ----------------------------------------------------------- */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int64_t *revs;
	size_t n, cap;
	int64_t last;
	int dup_or_back;
	int errors;
} WS = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void on_pub(void *arg, const kb_msg *m)
{
	(void)arg;
	const msgpack_object *b = kb_msg_body(m);
	const msgpack_object *evs = kb_mp_get(b, "events");
	pthread_mutex_lock(&WS.mu);
	if (kb_mp_get(b, "error"))
		WS.errors++;
	if (evs && evs->type == MSGPACK_OBJECT_ARRAY) {
		for (uint32_t i = 0; i < evs->via.array.size; i++) {
			int64_t r = 0;
			kb_mp_int(&evs->via.array.ptr[i], "kv.mod_rev", &r);
			if (r <= WS.last)
				WS.dup_or_back++;
			WS.last = r > WS.last ? r : WS.last;
			if (WS.n == WS.cap) {
				WS.cap = WS.cap ? WS.cap * 2 : 1024;
				WS.revs = realloc(WS.revs, WS.cap * sizeof *WS.revs);
			}
			WS.revs[WS.n++] = r;
		}
	}
	pthread_cond_broadcast(&WS.cv);
	pthread_mutex_unlock(&WS.mu);
}

static bool watch_has(int64_t r)
{
	size_t lo = 0, hi = WS.n; /* revs are increasing */
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (WS.revs[mid] < r)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < WS.n && WS.revs[lo] == r;
}

/* --- calls ------------------------------------------------------------------ */

static int call(kb_ctx *c, const char *op, kb_body *b, kb_msg **rep)
{
	*rep = NULL;
	return kb_call(c, "store", op, b, 30000, rep);
}

static int64_t iget(const kb_msg *m, const char *path)
{
	int64_t v = -1;
	kb_mp_int(kb_msg_body(m), path, &v);
	return v;
}

static kb_body *b_put(const char *k, const char *v, int64_t cond)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	kb_mp_pack_cstr(&pk, "key");
	kb_mp_pack_cstr(&pk, k);
	kb_mp_pack_cstr(&pk, "value");
	msgpack_pack_bin(&pk, strlen(v));
	msgpack_pack_bin_body(&pk, v, strlen(v));
	kb_mp_pack_cstr(&pk, "if_mod_rev");
	msgpack_pack_int64(&pk, cond);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	char key[128], val[32], chain[128];
	snprintf(chain, sizeof chain, "%sc%d", P, w->id);
	while (!atomic_load(&stop_writers) && w->n < MAXN) {
		int i = w->n++;
		snprintf(key, sizeof key, "%sw%d/%06d", P, w->id, i);
		snprintf(val, sizeof val, "w%d-%d", w->id, i);
		kb_msg *rep;
		int rc = call(w->ctx, "put", b_put(key, val, 0), &rep);
		if (rc == 0) {
			w->rev[i] = iget(rep, "rev");
			w->acked++;
			if (atomic_load(&in_fault))
				w->acked_during_fault++;
		} else {
			w->failed++;
		}
		kb_msg_free(rep);
		if (i % 4 != 3)
			continue;
		/* The chain: compare-and-swap on the last acknowledged rev. */
		snprintf(val, sizeof val, "c%d-%d", w->id, i);
		rc = call(w->ctx, "put", b_put(chain, val, w->chain_rev), &rep);
		if (rc == 0) {
			w->chain_rev = iget(rep, "rev");
			snprintf(w->chain_val, sizeof w->chain_val, "%s", val);
			w->chain_acked++;
		} else if (rc == KB_ECONFLICT && rep) {
			/* Only after an unacknowledged attempt that did
			 * apply: take the current state and go on. */
			w->chain_rev = iget(rep, "kv.mod_rev");
			w->chain_val[0] = '\0';
			w->chain_resync++;
		} else {
			w->chain_failed++;
		}
		kb_msg_free(rep);
	}
	return NULL;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Acknowledged writes while a fault was on, all writers. */
static int acked_in_fault(void)
{
	int n = 0;
	for (int i = 0; i < WRITERS; i++)
		n += atomic_load(&W[i].acked_during_fault);
	return n;
}

/* Keeps a fault on for at least min_ms and until `want` more writes are
 * acknowledged, or max_ms: a loaded machine may take seconds to elect a
 * leader, and the test asks that writes go on, not how soon. */
static void fault_window(int min_ms, int max_ms, int want)
{
	int from = acked_in_fault();
	sleep_ms(min_ms);
	for (int t = min_ms; t < max_ms && acked_in_fault() - from < want;
	    t += 50)
		sleep_ms(50);
}

static int total_acked(void)
{
	int n = 0;
	for (int i = 0; i < WRITERS; i++)
		n += W[i].acked;
	return n;
}

/* --- the test ----------------------------------------------------------- */

static void t_member_failures(void **state)
{
	(void)state;
	kb_msg *rep;
	assert_int_equal(call(C, "revision", NULL, &rep), 0);
	int64_t r0 = iget(rep, "rev");
	kb_msg_free(rep);

	char topic[64];
	snprintf(topic, sizeof topic, "store/fault/%d", (int)getpid());
	assert_int_equal(kb_subscribe(C, topic, on_pub, NULL), 0);
	assert_int_equal(call(C, "watch", kb_mp_body("{s:s, s:I, s:b, s:s}",
	    "prefix", P, "rev", r0 + 1, "prev", 0, "topic", topic), &rep), 0);
	int64_t wid = iget(rep, "watch_id");
	kb_msg_free(rep);

	const char *fe[] = {"kubus:plugins", "kubus:kind:frontend"};
	for (int i = 0; i < WRITERS; i++) {
		char name[32];
		W[i].id = i;
		snprintf(name, sizeof name, "writer%d", i);
		W[i].ctx = kbt_client(host, name, "plugin:writer", fe, 2);
		assert_non_null(W[i].ctx);
	}
	for (int i = 0; i < WRITERS; i++)
		assert_int_equal(pthread_create(&W[i].thr, NULL, writer_main,
		    &W[i]), 0);

	sleep_ms(1500);
	int leader = etcd_cluster_leader(etcd);
	assert_true(leader >= 0);
	if (leader != first)
		printf("leadership moved from member %d to %d\n", first, leader);
	int before = total_acked();
	atomic_store(&in_fault, true);
	etcd_cluster_kill_member(etcd, leader);
	fault_window(3000, 15000, 20);
	atomic_store(&in_fault, false);
	int during = acked_in_fault();
	assert_int_equal(etcd_cluster_restart_member(etcd, leader), 0);
	sleep_ms(1000);
	int other = (first + 1) % etcd_cluster_members(etcd);
	if (other == leader)
		other = (other + 1) % etcd_cluster_members(etcd);
	atomic_store(&in_fault, true);
	etcd_cluster_stop_member(etcd, other);
	fault_window(2000, 15000, 20);
	atomic_store(&in_fault, false);
	atomic_store(&stop_writers, true);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(W[i].thr, NULL);
	int after_all = acked_in_fault(), failed = 0, resync = 0;
	for (int i = 0; i < WRITERS; i++) {
		failed += W[i].failed;
		resync += W[i].chain_resync;
	}
	printf("acked %d (before the fault %d, while the leader was down %d, "
	    "while a member was down %d), failed %d, chain resyncs %d\n",
	    total_acked(), before, during, after_all, failed, resync);
	assert_true(before > 0);
	assert_true(during >= 20);
	assert_true(after_all - during >= 20);

	/* Nothing acknowledged is lost: each create is there, as acked. */
	int64_t max_rev = 0;
	for (int i = 0; i < WRITERS; i++) {
		struct writer *w = &W[i];
		for (int n = 0; n < w->n; n++) {
			if (!w->rev[n])
				continue;
			char key[128], val[32];
			snprintf(key, sizeof key, "%sw%d/%06d", P, i, n);
			snprintf(val, sizeof val, "w%d-%d", i, n);
			assert_int_equal(call(C, "get", kb_mp_body("{s:s}",
			    "key", key), &rep), 0);
			const msgpack_object *v = kb_mp_get(kb_msg_body(rep),
			    "kv.value");
			if (!v || v->type != MSGPACK_OBJECT_BIN ||
			    v->via.bin.size != strlen(val) ||
			    memcmp(v->via.bin.ptr, val, strlen(val)))
				fail_msg("acknowledged %s (rev %lld) is lost",
				    key, (long long)w->rev[n]);
			assert_int_equal(iget(rep, "kv.mod_rev"), w->rev[n]);
			assert_int_equal(iget(rep, "kv.create_rev"), w->rev[n]);
			kb_msg_free(rep);
			if (w->rev[n] > max_rev)
				max_rev = w->rev[n];
		}
		char chain[128];
		snprintf(chain, sizeof chain, "%sc%d", P, i);
		assert_int_equal(call(C, "get", kb_mp_body("{s:s}", "key",
		    chain), &rep), 0);
		int64_t mod = iget(rep, "kv.mod_rev");
		assert_true(mod >= w->chain_rev);
		/* Every CAS acknowledged once, none applied twice by a retry:
		 * one version per acknowledged update. */
		if (!w->chain_failed && !w->chain_resync)
			assert_int_equal(iget(rep, "kv.version"), w->chain_acked);
		if (mod == w->chain_rev && w->chain_val[0]) {
			const msgpack_object *v = kb_mp_get(kb_msg_body(rep),
			    "kv.value");
			assert_non_null(v);
			assert_int_equal(v->via.bin.size, strlen(w->chain_val));
			assert_memory_equal(v->via.bin.ptr, w->chain_val,
			    strlen(w->chain_val));
		}
		kb_msg_free(rep);
	}

	/* The watch saw every acknowledged write, once, in order. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 20;
	pthread_mutex_lock(&WS.mu);
	while (WS.last < max_rev &&
	    pthread_cond_timedwait(&WS.cv, &WS.mu, &ts) == 0)
		;
	printf("watch: %zu events up to rev %lld, %d out of order, %d "
	    "errors\n", WS.n, (long long)WS.last, WS.dup_or_back, WS.errors);
	assert_true(WS.last >= max_rev);
	assert_int_equal(WS.dup_or_back, 0);
	assert_int_equal(WS.errors, 0);
	for (int i = 0; i < WRITERS; i++)
		for (int n = 0; n < W[i].n; n++)
			if (W[i].rev[n] && !watch_has(W[i].rev[n]))
				fail_msg("the watch missed rev %lld",
				    (long long)W[i].rev[n]);
	pthread_mutex_unlock(&WS.mu);
	assert_int_equal(call(C, "unwatch", kb_mp_body("{s:I}", "watch_id",
	    wid), &rep), 0);
	kb_msg_free(rep);
	kb_unsubscribe(C, topic);
	sleep_ms(20);
}

static int suite_setup(void **state)
{
	(void)state;
	char err[1024], yaml[2048], eps[1024] = "";
	etcd = etcd_cluster_start(3, err, sizeof err);
	if (!etcd) {
		fprintf(stderr, "cannot start etcd: %s\n", err);
		return -1;
	}
	/* The leader first: store-etcd starts on the first endpoint, so the
	 * leader's death also breaks the plugin's connections and streams;
	 * the member after it is where the plugin moves, and the test stops
	 * that one next. */
	int n = etcd_cluster_members(etcd);
	first = etcd_cluster_leader(etcd);
	if (first < 0)
		first = 0;
	for (int i = 0; i < n; i++)
		snprintf(eps + strlen(eps), sizeof eps - strlen(eps),
		    "%s\"%s\"", i ? ", " : "",
		    etcd_cluster_member_endpoint(etcd, (first + i) % n));
	snprintf(yaml, sizeof yaml,
	    "plugins:\n"
	    "  - name: store\n"
	    "    use: store-etcd\n"
	    "    config:\n"
	    "      endpoints: [%s]\n"
	    "      dial_timeout: 500ms\n"
	    "      request_timeout: 2s\n"
	    "      retry_timeout: 20s\n", eps);
	host = kbt_host_start(yaml, err, sizeof err);
	if (!host) {
		fprintf(stderr, "cannot start the host: %s\n", err);
		etcd_cluster_stop(etcd);
		return -1;
	}
	const char *fe[] = {"kubus:plugins", "kubus:kind:frontend"};
	C = kbt_client(host, "tester", "plugin:tester", fe, 2);
	snprintf(P, sizeof P, "/fault/%d/", (int)getpid());
	return C ? 0 : -1;
}

static int suite_teardown(void **state)
{
	(void)state;
	kbt_host_stop(host);
	etcd_cluster_stop(etcd);
	free(WS.revs);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_member_failures),
	};
	return cmocka_run_group_tests_name("store-etcd-fault", tests,
	    suite_setup, suite_teardown);
}
