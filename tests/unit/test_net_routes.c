/* tests/unit/test_net_routes.c — the net-routes plugin in two network
 * namespaces made here ("hosts" a and b joined by a veth pair, no other
 * route): routes to other nodes' pod CIDRs appear, move and disappear as
 * Node objects are created, changed and deleted through the api; a route
 * of another protocol is never touched; all of ours go at stop. Needs root
 * and `ip netns` (skipped otherwise, saying why). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <signal.h>

#include <cmocka.h>

#include <kubus/client.h>

#include "harness.h"

#define WAIT_MS 10000

static char ns_a[64], ns_b[64];

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	char *out = NULL;
	int rc = kbt_run(cmd, &out);
	if (rc != 0)
		printf("`%s`: %d %s", cmd, rc, out ? out : "");
	free(out);
	return rc;
}

static char *routes(void)
{
	char cmd[256], *out = NULL;
	snprintf(cmd, sizeof(cmd), "ip -n %s -4 route show", ns_a);
	kbt_run(cmd, &out);
	return out;
}

/* Wait until `ip route` in a does (or does not) contain `needle`. */
static bool wait_route(const char *needle, bool present)
{
	for (int w = 0; w < WAIT_MS; w += 100) {
		char *r = routes();
		bool has = r && strstr(r, needle);
		free(r);
		if (has == present)
			return true;
		sleep_ms(100);
	}
	char *r = routes();
	printf("routes in %s:\n%s", ns_a, r ? r : "");
	free(r);
	return false;
}

/* Namespaces of earlier runs whose process is gone. */
static void clean_stale(void)
{
	char *out = NULL;
	kbt_run("ip netns list", &out);
	for (char *line = out ? strtok(out, "\n") : NULL; line; line = strtok(NULL, "\n")) {
		int pid;
		char side;
		if (sscanf(line, "kbt-nr-%d-%c", &pid, &side) == 2 && kill(pid, 0) != 0) {
			char name[64];
			sscanf(line, "%63s", name);
			sh("ip netns del %s", name);
		}
	}
	free(out);
}

static void cleanup(void)
{
	sh("ip netns del %s 2>/dev/null || true", ns_a);
	sh("ip netns del %s 2>/dev/null || true", ns_b);
}

static int setup(void **state)
{
	(void)state;
	snprintf(ns_a, sizeof(ns_a), "kbt-nr-%d-a", (int)getpid());
	snprintf(ns_b, sizeof(ns_b), "kbt-nr-%d-b", (int)getpid());
	if (geteuid() != 0) {
		printf("skipped: net-routes programs routes and makes network namespaces; needs root\n");
		return 0;
	}
	clean_stale();
	cleanup();
	if (sh("ip netns add %s", ns_a) || sh("ip netns add %s", ns_b)) {
		printf("skipped: cannot make network namespaces here\n");
		cleanup();
		return 0;
	}
	if (sh("ip -n %s link add va type veth peer name vb netns %s", ns_a, ns_b) ||
	    sh("ip -n %s addr add 192.168.77.1/24 dev va", ns_a) ||
	    sh("ip -n %s addr add 192.168.77.2/24 dev vb", ns_b) ||
	    sh("ip -n %s link set va up", ns_a) || sh("ip -n %s link set vb up", ns_b) ||
	    sh("ip -n %s link set lo up", ns_a) || sh("ip -n %s link set lo up", ns_b) ||
	    /* someone else's route, which must survive */
	    sh("ip -n %s route add 10.99.0.0/24 via 192.168.77.2 proto static", ns_a)) {
		cleanup();
		fail_msg("setting up the namespaces failed");
	}
	*state = ns_a;
	return 0;
}

static int teardown(void **state)
{
	if (*state)
		cleanup();
	return 0;
}

/* 0, or the API's refusal (bad input may be stopped there already). */
static int try_node(kb_ctx *c, const char *name, const char *cidr, const char *ip)
{
	kb_body *b = kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", "v1", "kind", "Node",
	    "metadata", "name", name, "spec", "podCIDR", cidr);
	int rc = kb_api_create(c, &KB_GVR_NODES, NULL, b, NULL);
	if (rc == 0)
		rc = kb_api_patch(c, &KB_GVR_NODES, NULL, name, "status", "merge",
		    kb_mp_body("{s:{s:[{s:s, s:s}]}}", "status", "addresses", "type", "InternalIP",
		        "address", ip),
		    NULL);
	printf("node %s (%s via %s): %s\n", name, cidr, ip, kb_strerror(rc));
	return rc;
}

static void make_node(kb_ctx *c, const char *name, const char *cidr, const char *ip)
{
	kb_body *b = kb_mp_body("{s:s, s:s, s:{s:s}, s:{s:s}}", "apiVersion", "v1", "kind", "Node",
	    "metadata", "name", name, "spec", "podCIDR", cidr);
	kb_msg *rep = NULL;
	int rc = kb_api_create(c, &KB_GVR_NODES, NULL, b, &rep);
	const char *m = "";
	if (rc && rep)
		kb_msg_err(rep, &m);
	if (rc)
		fail_msg("create node %s: %s %s", name, kb_strerror(rc), m);
	kb_msg_free(rep);
	rep = NULL;
	rc = kb_api_patch(c, &KB_GVR_NODES, NULL, name, "status", "merge",
	    kb_mp_body("{s:{s:[{s:s, s:s}]}}", "status", "addresses", "type", "InternalIP", "address", ip),
	    &rep);
	if (rc && rep)
		kb_msg_err(rep, &m);
	if (rc)
		fail_msg("node %s status: %s %s", name, kb_strerror(rc), m);
	kb_msg_free(rep);
}

static void test_routes_follow_nodes(void **state)
{
	if (*state == NULL)
		skip();
	char yaml[2048], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "host: {name: a}\n"
	    "bus: {listen: []}\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - {name: apiserver, use: apiserver, config: {listen: \"127.0.0.1:0\", kubeconfig: false}}\n"
	    "  - name: net-routes\n"
	    "    use: net-routes\n"
	    "    config: {node_name: a, netns: %s, resync: 1s}\n",
	    ns_a);
	struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
	if (h == NULL)
		fail_msg("host: %s", err);
	const char *groups[] = { "kubus:plugins" };
	kb_ctx *c = kbt_client(h, "tester", "plugin:tester", groups, 1);

	make_node(c, "a", "10.244.0.0/24", "192.168.77.1"); /* itself: no route */
	make_node(c, "b", "10.244.1.0/24", "192.168.77.2");
	assert_true(wait_route("10.244.1.0/24 via 192.168.77.2 dev va proto 75", true));
	/* a node with a bad address or CIDR is left out, not obeyed */
	try_node(c, "evil", "10.244.9.0/24; reboot", "192.168.77.9");
	try_node(c, "evil2", "10.244.8.0/24", "192.168.77.8\nroute flush all");
	try_node(c, "evil3", "10.244.7.0/33", "192.168.77.7");
	make_node(c, "c", "10.244.2.0/24", "192.168.77.3");
	assert_true(wait_route("10.244.2.0/24 via 192.168.77.3", true));
	char *r = routes();
	assert_null(strstr(r, "10.244.0.0/24"));
	assert_null(strstr(r, "10.244.9."));
	assert_null(strstr(r, "10.244.8."));
	assert_null(strstr(r, "10.244.7."));
	assert_non_null(strstr(r, "10.99.0.0/24"));
	free(r);

	/* b moves to another address: its route follows */
	assert_int_equal(kb_api_patch(c, &KB_GVR_NODES, NULL, "b", "status", "merge",
	                     kb_mp_body("{s:{s:[{s:s, s:s}]}}", "status", "addresses", "type",
	                         "InternalIP", "address", "192.168.77.4"),
	                     NULL),
	    0);
	assert_true(wait_route("10.244.1.0/24 via 192.168.77.4", true));
	assert_true(wait_route("10.244.1.0/24 via 192.168.77.2", false));

	/* a route of ours removed by hand comes back at the next sync */
	assert_int_equal(sh("ip -n %s route del 10.244.2.0/24", ns_a), 0);
	assert_true(wait_route("10.244.2.0/24 via 192.168.77.3", true));

	/* c goes away: so does its route */
	assert_int_equal(kb_api_delete(c, &KB_GVR_NODES, NULL, "c", NULL, NULL), 0);
	assert_true(wait_route("10.244.2.0/24", false));
	assert_true(wait_route("10.244.1.0/24 via 192.168.77.4", true));

	/* stop: all of ours go, the other route stays */
	kbt_host_stop(h);
	r = routes();
	printf("after stop:\n%s", r);
	assert_null(strstr(r, "proto 75"));
	assert_null(strstr(r, "10.244."));
	assert_non_null(strstr(r, "10.99.0.0/24 via 192.168.77.2 dev va proto static"));
	free(r);
}

/* Bad config: clear refusals at start. */
static void test_bad_config(void **state)
{
	(void)state;
	const char *bad[] = {
		"{netns: \"x;rm\"}",
		"{proto: 2}",
		"{ip: /nonexistent/ip}",
		"{colour: blue}",
	};
	for (size_t i = 0; i < 4; i++) {
		char yaml[1024], err[1024] = "";
		snprintf(yaml, sizeof(yaml),
		    "bus: {listen: []}\nplugins:\n  - {name: nr, use: net-routes, config: %s}\n", bad[i]);
		struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
		if (h)
			kbt_host_stop(h);
		assert_null(h);
		printf("refused: %s\n", err);
		assert_non_null(strstr(err, "init failed"));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test_setup_teardown(test_routes_follow_nodes, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
