/* tests/unit/test_api_buspool.c — the `api` bus service's worker pool
 * grows while requests wait: with bus_workers 2 and bus_workers_max 8, a
 * burst of creates and then patches on a store that fsyncs each commit
 * gets more than two threads (a patch waits for its store read) and never
 * more than eight, and every call is answered. Threads are counted by
 * name in /proc/self/task, as the host runs in this process.
 *
 * A create's put is answered when the store replies, not by a waiting
 * worker: stopping the API server while hundreds are on their way still
 * answers every one, and leaves nothing behind (the ASan run checks). */
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "harness.h"

#define BURST 200

static const char *const groups[] = { "kubus:plugins", "kubus:kind:frontend" };

struct burst {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, failed;
};

static void on_reply(void *arg, int rc, const kb_msg *rep)
{
	struct burst *b = arg;
	(void)rep;
	pthread_mutex_lock(&b->mu);
	b->done++;
	b->failed += rc != 0;
	pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

static int workers(void)
{
	DIR *d = opendir("/proc/self/task");
	assert_non_null(d);
	struct dirent *e;
	int n = 0;
	while ((e = readdir(d)) != NULL) {
		char path[300], comm[64] = "";
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm",
		    e->d_name);
		FILE *f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f))
			n += !strncmp(comm, "api:worker", 10);
		fclose(f);
	}
	closedir(d);
	return n;
}

/* The workers once they have named themselves (each does so when it
 * starts, which may be just after the host has started), waiting up to
 * a second for `want`. */
static int workers_settled(int want)
{
	int n = workers();
	for (int i = 0; i < 100 && n != want; i++) {
		struct timespec ts = { 0, 10 * 1000000 };
		nanosleep(&ts, NULL);
		n = workers();
	}
	return n;
}

#define BURST_INIT { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER }

/* The host (bus_workers 2..8, a store that fsyncs) and a client on it. */
static struct kbt_host *pool_host(kb_ctx **c)
{
	char err[512];
	struct kbt_host *h = kbt_host_start("host:\n"
					    "  name: pool\n"
					    "  log_level: warn\n"
					    "plugins:\n"
					    "  - name: store\n"
					    "    use: store-lmdb\n"
					    "    config: {sync: true}\n"
					    "  - name: apiserver\n"
					    "    use: apiserver\n"
					    "    config: {listen: \"127.0.0.1:0\", "
					    "kubeconfig: false, bus_workers: 2, "
					    "bus_workers_max: 8}\n",
	    err, sizeof(err));
	if (h == NULL)
		fail_msg("host: %s", err);
	*c = kbt_client(h, "pool", "admin", groups, 2);
	assert_non_null(*c);
	return h;
}

/* n ConfigMaps cm-<from>… created (op "create") or labelled ("patch")
 * without waiting for the answers, which count in b. */
static void send_range(kb_ctx *c, const char *op, int from, int n, struct burst *b)
{
	for (int i = from; i < from + n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "cm-%d", i);
		kb_body *req = !strcmp(op, "create")
		    ? kb_mp_body("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:{s:s}}}", "group", "",
			  "version", "v1", "resource", "configmaps", "namespace", "default",
			  "object", "apiVersion", "v1", "kind", "ConfigMap", "metadata", "name",
			  name)
		    : kb_mp_body("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:{s:{s:s}}}}", "group", "",
			  "version", "v1", "resource", "configmaps", "namespace", "default",
			  "name", name, "patchType", "merge", "patch", "metadata", "labels",
			  "burst", "yes");
		assert_int_equal(kb_request(c, "api", op, req, 30000, on_reply, b), 0);
	}
}

static void send_burst(kb_ctx *c, const char *op, int n, struct burst *b)
{
	send_range(c, op, 0, n, b);
}

static void wait_burst(struct burst *b, int n)
{
	pthread_mutex_lock(&b->mu);
	while (b->done < n)
		pthread_cond_wait(&b->cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
}

static void test_pool_grows_within_max(void **state)
{
	(void)state;
	kb_ctx *c;
	struct kbt_host *h = pool_host(&c);
	assert_int_equal(workers_settled(2), 2);

	struct burst b = BURST_INIT;
	send_burst(c, "create", BURST, &b);
	wait_burst(&b, BURST);
	assert_int_equal(b.failed, 0);
	send_burst(c, "patch", BURST, &b);
	wait_burst(&b, 2 * BURST);
	assert_int_equal(b.failed, 0);
	int n = workers();
	print_message("api:worker threads after %d creates and patches: %d\n", BURST, n);
	assert_true(n > 2);
	assert_true(n <= 8);
	kbt_host_stop(h);
}

/* Creates (which do not hold a worker) and patches (which wait for a
 * store read) queued together, round after round: the two running
 * workers and the blocked ones hand the queue on, and nothing is left
 * waiting in it. */
static void test_mixed_burst(void **state)
{
	(void)state;
	kb_ctx *c;
	struct kbt_host *h = pool_host(&c);
	struct burst b = BURST_INIT;
	int sent = 0;
	for (int round = 0; round < 6; round++) {
		/* this round's ConfigMaps, and labels on the last round's */
		send_range(c, "create", round * 50, 50, &b);
		if (round)
			send_range(c, "patch", (round - 1) * 50, 50, &b);
		sent += round ? 100 : 50;
		wait_burst(&b, sent);
	}
	print_message("%d creates and patches answered, %d refused\n", sent, b.failed);
	assert_int_equal(b.failed, 0);
	kbt_host_stop(h);
}

/* Stopped with creates on their way: each one is answered (created, or
 * refused as the server stops) before the host is gone. */
static void test_stop_answers_all(void **state)
{
	(void)state;
	kb_ctx *c;
	struct kbt_host *h = pool_host(&c);
	struct burst b = BURST_INIT;
	send_burst(c, "create", 2 * BURST, &b);
	pthread_mutex_lock(&b.mu);
	int before = b.done;
	pthread_mutex_unlock(&b.mu);
	kbt_host_stop(h);
	print_message("answered before the stop began: %d of %d, refused: %d\n", before,
	    2 * BURST, b.failed);
	assert_int_equal(b.done, 2 * BURST);
	assert_true(before < 2 * BURST);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pool_grows_within_max),
		cmocka_unit_test(test_mixed_burst),
		cmocka_unit_test(test_stop_answers_all),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
