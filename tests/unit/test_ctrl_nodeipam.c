/* tests/unit/test_ctrl_nodeipam.c — the node IPAM controller through a
 * real host: three nodes get three distinct /24s of the cluster CIDR
 * (spec.podCIDR and podCIDRs); after a restart of the controller (the
 * whole host, same data dir) a new node gets a block no other node has; a
 * deleted node's block is free again; a full range leaves a node without
 * one, with an event; a bad cluster_cidr is refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "ctrl_util.h"

static bool start(struct ct *t, const char *dir, const char *ipam_conf)
{
	char yaml[2048], err[1024];
	snprintf(yaml, sizeof(yaml),
	    "host: {log_level: warn, data_dir: \"%s\"}\n"
	    "bus: {listen: []}\n"
	    "plugins:\n"
	    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
	    "  - name: apiserver\n"
	    "    use: apiserver\n"
	    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n"
	    "  - name: ctrl-nodeipam\n"
	    "    use: ctrl-nodeipam\n"
	    "    config: %s\n",
	    dir, ipam_conf);
	t->h = kbt_host_start(yaml, err, sizeof(err));
	if (t->h == NULL) {
		fprintf(stderr, "host: %s\n", err);
		return false;
	}
	const char *groups[] = { "kubus:plugins" };
	t->c = kbt_client(t->h, "tester", "plugin:tester", groups, 1);
	return t->c != NULL;
}

static void add_node(struct ct *t, const char *name)
{
	kb_msg *m = ct_create(t, &KB_GVR_NODES, NULL,
	    kb_mp_body("{s:s, s:s, s:{s:s}, s:{}}", "apiVersion", "v1", "kind",
		"Node", "metadata", "name", name, "spec"));
	assert_non_null(m);
	kb_msg_free(m);
}

/* The node's podCIDR into buf; false when it has none (yet). podCIDRs
 * must say the same. */
static bool cidr_of(struct ct *t, const char *node, char *buf, size_t len)
{
	kb_msg *m = NULL;
	const char *s;
	size_t sl;
	bool ok = kb_api_get(t->c, &KB_GVR_NODES, NULL, node, &m) == 0 &&
	    kb_mp_str(kb_msg_body(m), "spec.podCIDR", &s, &sl) && sl < len;
	if (ok) {
		snprintf(buf, len, "%.*s", (int)sl, s);
		ok = kb_mp_streq(kb_msg_body(m), "spec.podCIDRs[0]", buf) &&
		    kb_mp_get(kb_msg_body(m), "spec.podCIDRs[1]") == NULL;
	}
	kb_msg_free(m);
	return ok;
}

static bool in_cluster_24(const char *cidr)
{
	unsigned a, b, c, d, p;
	return sscanf(cidr, "%u.%u.%u.%u/%u", &a, &b, &c, &d, &p) == 5 &&
	    a == 10 && b == 244 && c < 256 && d == 0 && p == 24;
}

struct ev {
	int n;
};

static void count_full(void *arg, const msgpack_object *e)
{
	struct ev *v = arg;
	if (kb_mp_streq(e, "reason", "CIDRNotAvailable") &&
	    kb_mp_streq(e, "involvedObject.name", "tiny-c"))
		v->n++;
}

static void test_nodeipam(void **state)
{
	char *dir = kbt_mkdtemp("ipam");
	assert_non_null(dir);
	struct ct t = { 0 };
	assert_true(start(&t, dir, "{resync: 2s}"));
	const char *names[] = { "n1", "n2", "n3" };
	char cidr[4][32];
	for (int i = 0; i < 3; i++)
		add_node(&t, names[i]);
	for (int i = 0; i < 3; i++)
		assert_true(CT_WAIT(10000,
		    cidr_of(&t, names[i], cidr[i], sizeof(cidr[i]))));
	for (int i = 0; i < 3; i++) {
		assert_true(in_cluster_24(cidr[i]));
		for (int k = 0; k < i; k++)
			assert_string_not_equal(cidr[i], cidr[k]);
	}
	ct_stop(&t);

	/* a restart: the blocks on the nodes are remembered */
	assert_true(start(&t, dir, "{resync: 2s}"));
	add_node(&t, "n4");
	assert_true(
	    CT_WAIT(10000, cidr_of(&t, "n4", cidr[3], sizeof(cidr[3]))));
	assert_true(in_cluster_24(cidr[3]));
	for (int k = 0; k < 3; k++) {
		char again[32];
		assert_string_not_equal(cidr[3], cidr[k]);
		assert_true(cidr_of(&t, names[k], again, sizeof(again)));
		assert_string_equal(again, cidr[k]); /* never re-assigned */
	}
	ct_stop(&t);
	kbt_rmrf(dir);
	free(dir);
}

static void test_range_full(void **state)
{
	struct ct t = { 0 };
	char *dir = kbt_mkdtemp("ipam");
	assert_non_null(dir);
	/* a /30 cut into /31s: room for two nodes */
	assert_true(start(&t, dir,
	    "{cluster_cidr: 10.9.0.0/30, node_cidr_mask_size: 31}"));
	char a[32], b[32], c[32];
	add_node(&t, "tiny-a");
	add_node(&t, "tiny-b");
	assert_true(CT_WAIT(10000, cidr_of(&t, "tiny-a", a, sizeof(a))));
	assert_true(CT_WAIT(10000, cidr_of(&t, "tiny-b", b, sizeof(b))));
	assert_string_not_equal(a, b);
	assert_true(!strcmp(a, "10.9.0.0/31") || !strcmp(a, "10.9.0.2/31"));
	assert_true(!strcmp(b, "10.9.0.0/31") || !strcmp(b, "10.9.0.2/31"));
	add_node(&t, "tiny-c");
	struct ev v = { 0 };
	assert_true(CT_WAIT(10000, ({
		v.n = 0;
		ct_list(&t, &KB_GVR_EVENTS, "default", NULL, count_full, &v);
		v.n > 0;
	})));
	assert_false(cidr_of(&t, "tiny-c", c, sizeof(c)));
	/* a node goes: its block is free for the one left without */
	assert_int_equal(kb_api_delete(t.c, &KB_GVR_NODES, NULL, "tiny-a", NULL,
			     NULL),
	    0);
	/* the retry comes with the next event or resync of tiny-c: nudge it */
	kb_body *p =
	    kb_mp_body("{s:{s:{s:s}}}", "metadata", "labels", "x", "y");
	assert_int_equal(kb_api_patch(t.c, &KB_GVR_NODES, NULL, "tiny-c", NULL,
			     "merge", p, NULL),
	    0);
	assert_true(CT_WAIT(10000, cidr_of(&t, "tiny-c", c, sizeof(c))));
	assert_string_equal(c, a);
	ct_stop(&t);
	kbt_rmrf(dir);
	free(dir);

	/* bad config: a clear error, no host */
	const char *bad[] = { "{cluster_cidr: 10.0.0.0}",
		"{cluster_cidr: \"fd00::/48\"}",
		"{cluster_cidr: 10.0.0.0/24, node_cidr_mask_size: 16}" };
	const char *why[] = { "no /prefix", "IPv6", "must be between" };
	for (int i = 0; i < 3; i++) {
		char yaml[1024], err[1024];
		snprintf(yaml, sizeof(yaml),
		    "plugins:\n"
		    "  - {name: store, use: store-lmdb, config: {sync: false}}\n"
		    "  - name: apiserver\n"
		    "    use: apiserver\n"
		    "    config: {listen: \"127.0.0.1:0\", kubeconfig: false}\n"
		    "  - {name: ipam, use: ctrl-nodeipam, config: %s}\n",
		    bad[i]);
		struct kbt_host *h = kbt_host_start(yaml, err, sizeof(err));
		if (h)
			kbt_host_stop(h);
		assert_null(h);
		if (strstr(err, why[i]) == NULL)
			fprintf(stderr, "unexpected error: %s\n", err);
		assert_non_null(strstr(err, why[i]));
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nodeipam),
		cmocka_unit_test(test_range_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
