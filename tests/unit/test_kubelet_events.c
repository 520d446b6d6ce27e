/* tests/unit/test_kubelet_events.c — the kubelet's own Event rate limit
 * delays Events instead of dropping them, as Kubernetes' kubelet does with
 * eventRecordQPS and eventBurst: with a burst of 10 and 20 a second, the
 * 60 Events of 20 started pods (Pulled, Created, Started) never run ahead
 * of the limit, and all 60 are there in the end; a kubelet stopped with
 * Events held drops them cleanly. Before the pods, the six Events a
 * kubelet records about its Node are all there. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <kubus/client.h>

#include "harness.h"

#define PODS 20
#define EVENTS (3 * PODS)
#define BURST 10
#define QPS 20
#define WAIT_MS 60000

/* store, API server and one hollow kubelet with this Event limit */
static struct kbt_host *start(int qps, int burst, kb_ctx **c)
{
	char kubelet[512], err[1024];
	snprintf(kubelet, sizeof(kubelet),
	    "  - name: kubelet\n"
	    "    use: kubelet\n"
	    "    config:\n"
	    "      node_name: ev-node\n"
	    "      runtime: runtime-fake\n"
	    "      runtime_config: {ip_prefix: \"10.77\"}\n"
	    "      event_qps: %d\n"
	    "      event_burst: %d\n",
	    qps, burst);
	struct kbt_host *h = kbt_api_host_start_with(NULL,
	    "listen: \"127.0.0.1:0\", kubeconfig: false", kubelet, err,
	    sizeof(err));
	if (h == NULL)
		fail_msg("host: %s", err);
	const char *groups[] = { "kubus:plugins" };
	*c = kbt_client(h, "tester", "plugin:tester", groups, 1);
	return h;
}

/* The Events in default about objects of `kind`, -1 when the list
 * fails. */
static int events_about(kb_ctx *c, const char *kind)
{
	kb_msg *rep = NULL;
	int n = -1;
	if (kb_api_list(c, &KB_GVR_EVENTS, "default", NULL, NULL, &rep) == 0) {
		const msgpack_object *items =
		    kb_mp_get(kb_msg_body(rep), "items");
		n = 0;
		for (uint32_t i = 0; items && items->type == MSGPACK_OBJECT_ARRAY &&
		     i < items->via.array.size;
		     i++)
			n += kb_mp_streq(&items->via.array.ptr[i],
			    "involvedObject.kind", kind);
	}
	kb_msg_free(rep);
	return n;
}

static int events(kb_ctx *c)
{
	return events_about(c, "Pod");
}

/* The kubelet's Events about its Node (Starting, NodeHasSufficientMemory,
 * NodeHasNoDiskPressure, NodeHasSufficientPID, NodeAllocatableEnforced,
 * NodeReady), which share the limit with the pods': all posted before a
 * test's clock starts. */
#define NODE_EVENTS 6

static void wait_node_events(kb_ctx *c)
{
	for (int waited = 0;
	     events_about(c, "Node") < NODE_EVENTS && waited < WAIT_MS;
	     waited += 50)
		kbt_sleep_ms(50);
	assert_int_equal(events_about(c, "Node"), NODE_EVENTS);
}

static bool node_ready(kb_ctx *c)
{
	kb_msg *node = NULL;
	bool ok = kb_api_get(c, &KB_GVR_NODES, NULL, "ev-node", &node) == 0;
	kb_msg_free(node);
	return ok;
}

static void wait_node(kb_ctx *c)
{
	int waited = 0;
	while (!node_ready(c) && waited < WAIT_MS) {
		kbt_sleep_ms(50);
		waited += 50;
	}
	assert_true(node_ready(c));
	assert_int_equal(events(c), 0);
	wait_node_events(c);
}

static void create_pods(kb_ctx *c, int n)
{
	for (int i = 0; i < n; i++) {
		char name[32];
		snprintf(name, sizeof(name), "ev-%d", i);
		kb_body *b =
		    kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:s, s:[{s:s, s:s}]}}",
			"apiVersion", "v1", "kind", "Pod", "metadata", "name",
			name, "spec", "nodeName", "ev-node", "containers",
			"name", "c", "image", "pause");
		assert_int_equal(kb_api_create(c, &KB_GVR_PODS, "default", b,
				     NULL),
		    0);
	}
}

static bool running(kb_ctx *c, int i)
{
	char name[32];
	snprintf(name, sizeof(name), "ev-%d", i);
	kb_msg *rep = NULL;
	bool ok = kb_api_get(c, &KB_GVR_PODS, "default", name, &rep) == 0 &&
	    kb_mp_streq(kb_msg_body(rep), "status.phase", "Running");
	kb_msg_free(rep);
	return ok;
}

static void test_events_wait_their_turn(void **state)
{
	(void)state;
	kb_ctx *c;
	struct kbt_host *h = start(QPS, BURST, &c);
	wait_node(c);
	int64_t t0 = kbt_now_ms(); /* no Event of these pods before this */
	create_pods(c, PODS);
	/* Never more than the burst and the tokens since t0 (one more for
	 * the clocks' rounding); the 60 take (60 - 10) / 20 = 2.5 s at
	 * least, so the count is seen below 60 while the pods start. */
	int n = 0, below = 0, samples = 0;
	while (n != EVENTS && kbt_now_ms() - t0 < WAIT_MS) {
		n = events(c);
		int64_t t = kbt_now_ms();
		assert_true(n >= 0);
		int64_t bound = BURST + ((t - t0) * QPS + 999) / 1000 + 1;
		if (n > bound)
			fail_msg("%d Events after %lld ms: the limit allows %lld",
			    n, (long long)(t - t0), (long long)bound);
		if (n < EVENTS)
			below++;
		samples++;
		kbt_sleep_ms(25);
	}
	print_message("%d Events in %lld ms (%d samples, %d below %d)\n", n,
	    (long long)(kbt_now_ms() - t0), samples, below, EVENTS);
	/* Held back, not dropped: every one of them arrives. */
	assert_int_equal(n, EVENTS);
	assert_true(below > 0);
	/* and no more than that: each Event was posted once */
	kbt_sleep_ms(300);
	assert_int_equal(events(c), EVENTS);
	kbt_host_stop(h);
}

/* Stopped with Events still held: they go with the kubelet (no crash, and
 * nothing leaks: the sanitizer build checks), and none was posted early. */
static void test_stop_while_held(void **state)
{
	(void)state;
	kb_ctx *c;
	struct kbt_host *h = start(1, 2, &c);
	wait_node(c);
	kbt_sleep_ms(2100); /* the burst back after the Node's Events */
	int64_t t0 = kbt_now_ms();
	create_pods(c, 10);
	for (int i = 0, waited = 0; i < 10 && waited < WAIT_MS;) {
		if (running(c, i)) {
			i++;
		} else {
			kbt_sleep_ms(20);
			waited += 20;
		}
	}
	int n = events(c);
	int64_t bound = 2 + (kbt_now_ms() - t0 + 999) / 1000 + 1;
	print_message("%d of 30 Events posted after %lld ms, the rest held\n",
	    n, (long long)(kbt_now_ms() - t0));
	assert_true(n >= 1 && n <= bound && n < 30);
	kbt_host_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_wait_their_turn),
		cmocka_unit_test(test_stop_while_held),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
