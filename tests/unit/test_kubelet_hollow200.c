/* tests/unit/test_kubelet_hollow200.c — 200 hollow nodes, as kubemark: 200
 * kubelet instances (kubelet-1 … kubelet-200, nodes hollow-1 …) with
 * runtime-fake in one host process. Every Node becomes Ready, every Lease
 * is renewed (its renewTime moves on), a pod bound to each node runs there,
 * and the process stays sane: the
 * test prints threads per kubelet and the resident memory, and fails when
 * a kubelet costs more than 6 threads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <kubus/client.h>

#include "harness.h"

#define NODES 200
#define WAIT_MS 45000

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A field of /proc/self/status ("Threads", "VmRSS"), as a number. */
static long proc_status(const char *field)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	size_t n = strlen(field);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, field, n) && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	if (f)
		fclose(f);
	return v;
}

static char *config(void)
{
	size_t cap = 4096 + NODES * 400, len = 0;
	char *y = malloc(cap);
	len += (size_t)snprintf(y + len, cap - len,
	    "host: {log_level: warn}\n"
	    "bus: {listen: []}\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n");
	for (int i = 1; i <= NODES; i++)
		len += (size_t)snprintf(y + len, cap - len,
		    "  - name: kubelet-%d\n"
		    "    use: kubelet\n"
		    "    config:\n"
		    "      node_name: hollow-%d\n"
		    "      address: 10.%d.%d.1\n"
		    "      cpu: \"4\"\n"
		    "      memory: 8Gi\n"
		    "      runtime: runtime-fake\n"
		    "      runtime_config: {ip_prefix: \"10.%d\"}\n"
		    "      lease_interval: 2s\n"
		    "      status_interval: 20s\n"
		    "      sync_period: 10s\n"
		    "      workers: 1\n",
		    i, i, 200 + i / 250, i % 250, 100 + i % 100);
	return y;
}

/* renewTime of every hollow node's Lease, by name index; 0 when absent. */
static int leases(kb_ctx *c, char (*renew)[40])
{
	kb_msg *rep = NULL;
	int n = 0;
	for (int i = 0; i <= NODES; i++)
		renew[i][0] = '\0';
	if (kb_api_list(c, &KB_GVR_LEASES, "kube-node-lease", NULL, NULL,
		&rep) != 0) {
		kb_msg_free(rep);
		return 0;
	}
	const msgpack_object *items = kb_mp_get(kb_msg_body(rep), "items");
	for (uint32_t i = 0; items && items->type == MSGPACK_OBJECT_ARRAY &&
	     i < items->via.array.size;
	     i++) {
		const msgpack_object *l = &items->via.array.ptr[i];
		const char *name, *t;
		size_t nl, tl;
		if (!kb_mp_str(l, "metadata.name", &name, &nl) || nl < 8 ||
		    memcmp(name, "hollow-", 7) ||
		    !kb_mp_str(l, "spec.renewTime", &t, &tl) || tl >= 40)
			continue;
		int k = atoi(name + 7);
		if (k < 1 || k > NODES)
			continue;
		memcpy(renew[k], t, tl);
		renew[k][tl] = '\0';
		n++;
	}
	kb_msg_free(rep);
	return n;
}

static void test_hollow_200(void **state)
{
	(void)state;
	long threads0 = proc_status("Threads");
	char err[1024];
	char *yaml = config();
	int64_t t0 = mono_ms();
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
	free(yaml);
	if (h == NULL)
		fail_msg("host: %s", err);
	int64_t started = mono_ms() - t0;
	const char *groups[] = { "kubus:plugins" };
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", groups, 1);

	int ready = 0;
	while (mono_ms() - t0 < WAIT_MS && (ready = kbt_count_ready_nodes(c)) < NODES)
		sleep_ms(250);
	int64_t all_ready = mono_ms() - t0;
	assert_int_equal(ready, NODES);

	/* Every Lease is there and moves on. renewTime has microseconds:
	 * a later renewal is a different string. */
	static char before[NODES + 1][40], after[NODES + 1][40];
	int have = 0;
	while (mono_ms() - t0 < WAIT_MS && (have = leases(c, before)) < NODES)
		sleep_ms(250);
	assert_int_equal(have, NODES);
	int renewed = 0;
	int64_t t1 = mono_ms();
	while (mono_ms() - t1 < 15000 && renewed < NODES) {
		sleep_ms(500);
		leases(c, after);
		renewed = 0;
		for (int i = 1; i <= NODES; i++)
			renewed += after[i][0] &&
			    strcmp(after[i], before[i]) > 0;
	}
	if (renewed < NODES)
		for (int i = 1; i <= NODES; i++)
			if (!after[i][0] || strcmp(after[i], before[i]) <= 0)
				fprintf(stderr, "hollow-%d: lease %s -> %s\n",
				    i, before[i], after[i]);
	assert_int_equal(renewed, NODES);

	/* A pod on every node: each kubelet runs its own (field selector). */
	int64_t t2 = mono_ms();
	for (int i = 1; i <= NODES; i++) {
		char name[32], node[32];
		snprintf(name, sizeof(name), "p-%d", i);
		snprintf(node, sizeof(node), "hollow-%d", i);
		kb_body *b =
		    kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:s, s:[{s:s, s:s}]}}",
			"apiVersion", "v1", "kind", "Pod", "metadata", "name",
			name, "spec", "nodeName", node, "containers", "name",
			"c", "image", "pause");
		assert_int_equal(kb_api_create(c, &KB_GVR_PODS, "default", b,
				     NULL),
		    0);
	}
	int running = 0;
	while (mono_ms() - t2 < WAIT_MS && running < NODES) {
		sleep_ms(250);
		kb_msg *rep = NULL;
		running = 0;
		if (kb_api_list(c, &KB_GVR_PODS, "default", NULL, NULL, &rep) ==
		    0) {
			const msgpack_object *items =
			    kb_mp_get(kb_msg_body(rep), "items");
			for (uint32_t i = 0;
			     items && items->type == MSGPACK_OBJECT_ARRAY &&
			     i < items->via.array.size;
			     i++)
				running += kb_mp_streq(&items->via.array.ptr[i],
					       "status.phase", "Running") &&
				    kb_mp_get(&items->via.array.ptr[i],
					"status.podIP") != NULL;
		}
		kb_msg_free(rep);
	}
	if (running < NODES) {
		/* Which, and how they look, for the failure message. */
		kb_msg *rep = NULL;
		if (kb_api_list(c, &KB_GVR_PODS, "default", NULL, NULL, &rep) ==
		    0) {
			const msgpack_object *items =
			    kb_mp_get(kb_msg_body(rep), "items");
			for (uint32_t i = 0;
			     items && items->type == MSGPACK_OBJECT_ARRAY &&
			     i < items->via.array.size;
			     i++) {
				const msgpack_object *o =
				    &items->via.array.ptr[i];
				if (kb_mp_streq(o, "status.phase", "Running"))
					continue;
				char buf[2048];
				fprintf(stderr, "not running: %s\n",
				    kb_mp_repr(o, buf, sizeof(buf)));
			}
		}
		kb_msg_free(rep);
	}
	assert_int_equal(running, NODES);
	int64_t pods_ms = mono_ms() - t2;

	long threads = proc_status("Threads") - threads0;
	long rss = proc_status("VmRSS");
	printf("hollow: %d nodes Ready in %.1f s (host start %.1f s); "
	       "leases renewed; %d pods Running in %.1f s; threads %ld "
	       "(%.2f per kubelet); VmRSS %ld MiB\n",
	    NODES, (double)all_ready / 1000, (double)started / 1000, NODES,
	    (double)pods_ms / 1000, threads, (double)threads / NODES,
	    rss / 1024);
	/* The bus endpoint, the pod informer, one worker, the heartbeat:
	 * four per hollow kubelet (no prober without probes). */
	assert_true(threads <= 6 * NODES);
	int64_t t3 = mono_ms();
	kbt_host_stop(h);
	printf("hollow: renewals seen after %.1f s; host stop %.1f s\n",
	    (double)(t2 - t1) / 1000, (double)(mono_ms() - t3) / 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hollow_200),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
