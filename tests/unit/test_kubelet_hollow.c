/* tests/unit/test_kubelet_hollow.c — many kubelets with runtime-fake in one
 * host, as kubemark's hollow nodes: every Node Ready with its Lease, and
 * each kubelet runs only the pod bound to it (its field selector). */
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

#define NODES 20
#define WAIT_MS 30000

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static char *config(void)
{
	size_t cap = 4096 + NODES * 512, len = 0;
	char *y = malloc(cap);
	len += (size_t)snprintf(y + len, cap - len,
	    "host: {log_level: warn}\n"
	    "bus: {listen: []}\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n");
	for (int i = 0; i < NODES; i++)
		len += (size_t)snprintf(y + len, cap - len,
		    "  - name: kubelet-%d\n"
		    "    use: kubelet\n"
		    "    config:\n"
		    "      node_name: hollow-%d\n"
		    "      runtime: runtime-fake\n"
		    "      runtime_config: {ip_prefix: \"10.%d\"}\n"
		    "      lease_interval: 1s\n"
		    "      sync_period: 200ms\n"
		    "      workers: 1\n",
		    i, i, 100 + i);
	return y;
}

static bool ready(kb_ctx *c, int i)
{
	char name[32];
	snprintf(name, sizeof(name), "hollow-%d", i);
	kb_msg *node = NULL, *lease = NULL;
	bool ok = kb_api_get(c, &KB_GVR_NODES, NULL, name, &node) == 0 &&
	    kb_mp_streq(kb_msg_body(node), "status.conditions[3].type",
		"Ready") &&
	    kb_mp_streq(kb_msg_body(node), "status.conditions[3].status",
		"True") &&
	    kb_api_get(c, &KB_GVR_LEASES, "kube-node-lease", name, &lease) ==
		0 &&
	    kb_mp_streq(kb_msg_body(lease), "spec.holderIdentity", name);
	kb_msg_free(node);
	kb_msg_free(lease);
	return ok;
}

static bool running_on(kb_ctx *c, int i)
{
	char name[32], prefix[32];
	snprintf(name, sizeof(name), "p-%d", i);
	snprintf(prefix, sizeof(prefix), "10.%d.", 100 + i);
	kb_msg *rep = NULL;
	const char *ip;
	size_t n;
	bool ok = kb_api_get(c, &KB_GVR_PODS, "default", name, &rep) == 0 &&
	    kb_mp_streq(kb_msg_body(rep), "status.phase", "Running") &&
	    kb_mp_str(kb_msg_body(rep), "status.podIP", &ip, &n) &&
	    n > strlen(prefix) && !memcmp(ip, prefix, strlen(prefix));
	kb_msg_free(rep);
	return ok;
}

static void test_hollow_nodes(void **state)
{
	char err[1024];
	char *yaml = config();
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
	free(yaml);
	if (h == NULL)
		fail_msg("host: %s", err);
	const char *groups[] = { "kubus:plugins" };
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", groups, 1);

	int waited = 0, i = 0;
	for (; i < NODES && waited < WAIT_MS; waited += 50) {
		if (ready(c, i))
			i++;
		else
			sleep_ms(50);
	}
	assert_int_equal(i, NODES);

	for (i = 0; i < NODES; i++) {
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
	for (i = 0, waited = 0; i < NODES && waited < WAIT_MS; waited += 50) {
		if (running_on(c, i))
			i++;
		else
			sleep_ms(50);
	}
	assert_int_equal(i, NODES);
	kbt_host_stop(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hollow_nodes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
