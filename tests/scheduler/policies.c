/* tests/scheduler/policies.c — each sched-* policy, loaded from its .so as
 * the scheduler loads it, against pods and nodes built by hand; and the
 * SDK's snapshot parsing, matching and cycle state (kubus/sched.h). The
 * cases follow kube-scheduler's tests of the same plugins. */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include <kubus/kubus.h>
#include <kubus/sched.h>

#include "sched_test.h"

/* --- a fake host for the policies' init --------------------------------------------- */

static char failed[1024];

static const char *f_instance(kb_ctx *c)
{
	return "scheduler/policy";
}
static int f_log_enabled(kb_ctx *c, int level)
{
	return level <= KB_LOG_WARN;
}
static void f_log(kb_ctx *c, int level, const char *msg, const char *kv)
{
}
static void f_fail(kb_ctx *c, const char *why)
{
	snprintf(failed, sizeof(failed), "%s", why);
}

static const struct kb_host_api fake_api = {
	.size = sizeof(struct kb_host_api),
	.abi_major = KB_ABI_MAJOR,
	.abi_minor = KB_ABI_MINOR,
	.instance = f_instance,
	.log = f_log,
	.log_enabled = f_log_enabled,
	.fail = f_fail,
};
static kb_ctx fake = { .api = &fake_api };

struct pol {
	void *dl;
	const struct kb_plugin *p;
	const struct kb_sched_policy_ops *ops;
	void *state;
};

static int load(struct pol *pl, const char *name, const char *yaml)
{
	char path[1024], err[512];
	const char *b = getenv("KUBUS_BUILD");
	snprintf(path, sizeof(path), "%s/plugins/kubus-%s.so", b ? b : "build",
	    name);
	memset(pl, 0, sizeof(*pl));
	pl->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (pl->dl == NULL)
		fail_msg("dlopen %s: %s", path, dlerror());
	kb_plugin_describe_fn fn =
	    (kb_plugin_describe_fn)dlsym(pl->dl, KB_PLUGIN_SYMBOL);
	assert_non_null(fn);
	pl->p = fn();
	assert_int_equal(pl->p->kind, KB_KIND_SCHED_POLICY);
	assert_string_equal(pl->p->name, name);
	pl->ops = pl->p->ops;
	assert_true(pl->ops->size >= sizeof(size_t));
	kb_conf *conf = yaml ? kb_conf_parse_yaml(yaml, strlen(yaml),
				   "test.yaml", err, sizeof(err)) :
			       NULL;
	if (yaml && conf == NULL)
		fail_msg("bad yaml: %s", err);
	failed[0] = '\0';
	int rc = pl->p->init ? pl->p->init(&fake, conf, &pl->state) : 0;
	kb_conf_free(conf);
	if (rc)
		dlclose(pl->dl);
	return rc;
}

static void unload(struct pol *pl)
{
	if (pl->p->fini)
		pl->p->fini(pl->state);
	dlclose(pl->dl);
}

static struct kb_sched_pod *pod(const char *json)
{
	kb_body *b = jbody(json);
	struct kb_sched_pod *p = kb_sched_pod_new(kb_body_obj(b));
	kb_body_unref(b);
	assert_non_null(p);
	return p;
}

static struct kb_sched_node *node(const char *json)
{
	kb_body *b = jbody(json);
	struct kb_sched_node *n = kb_sched_node_new(kb_body_obj(b));
	kb_body_unref(b);
	assert_non_null(n);
	return n;
}

static char reason[KB_SCHED_REASON_MAX * 4];

/* Run Filter (after PreFilter: SKIP counts as success); the reasons,
 * joined with "; ", land in `reason`. */
static int filter(struct pol *pl, const struct kb_sched_pod *p,
    const struct kb_sched_node *n)
{
	struct kb_sched_snapshot snap = { .size = sizeof(snap),
		.nodes = &n,
		.nnodes = 1 };
	struct kb_sched_cycle *cy = kb_sched_cycle_new(&snap);
	struct kb_sched_status *st = kb_sched_status_new();
	int rc = KB_SCHED_SUCCESS;
	reason[0] = '\0';
	if (KB_SCHED_HAS(pl->ops, pre_filter))
		rc = pl->ops->pre_filter(pl->state, cy, p, st);
	if (rc == KB_SCHED_SKIP)
		rc = KB_SCHED_SUCCESS;
	else if (rc == KB_SCHED_SUCCESS)
		rc = pl->ops->filter(pl->state, cy, p, n, st);
	for (size_t i = 0; i < kb_sched_status_nreasons(st); i++)
		snprintf(reason + strlen(reason),
		    sizeof(reason) - strlen(reason), "%s%s", i ? "; " : "",
		    kb_sched_status_reason(st, i));
	kb_sched_status_free(st);
	kb_sched_cycle_free(cy);
	return rc;
}

/* Score every node and normalize; scores into out[]. */
static void score(struct pol *pl, const struct kb_sched_pod *p,
    struct kb_sched_node **nodes, size_t n, int64_t *out)
{
	struct kb_sched_snapshot snap = { .size = sizeof(snap),
		.nodes = (const struct kb_sched_node *const *)nodes,
		.nnodes = n };
	struct kb_sched_cycle *cy = kb_sched_cycle_new(&snap);
	struct kb_sched_status *st = kb_sched_status_new();
	struct kb_sched_node_score sc[16];
	bool skip = KB_SCHED_HAS(pl->ops, pre_score) &&
	    pl->ops->pre_score(pl->state, cy, p, snap.nodes, n, st) ==
		KB_SCHED_SKIP;
	for (size_t i = 0; i < n; i++) {
		sc[i].node = nodes[i];
		sc[i].score = 0;
		if (!skip)
			assert_int_equal(pl->ops->score(pl->state, cy, p,
					     nodes[i], &sc[i].score, st),
			    0);
	}
	if (!skip && KB_SCHED_HAS(pl->ops, normalize_score))
		assert_int_equal(pl->ops->normalize_score(pl->state, cy, p, sc,
				     n, st),
		    0);
	for (size_t i = 0; i < n; i++)
		out[i] = sc[i].score;
	kb_sched_status_free(st);
	kb_sched_cycle_free(cy);
}

#define NODE(name, extra) "{\"metadata\": {\"name\": \"" name "\"" extra "}"

/* --- the SDK -------------------------------------------------------------------------- */

static void test_quantities(void **state)
{
	int64_t v;
	assert_true(kb_sched_quantity_milli("100m", 4, &v));
	assert_int_equal(v, 100);
	assert_true(kb_sched_quantity_milli("2", 1, &v));
	assert_int_equal(v, 2000);
	assert_true(kb_sched_quantity_milli("0.5", 3, &v));
	assert_int_equal(v, 500);
	assert_true(kb_sched_quantity("1Gi", 3, &v));
	assert_int_equal(v, 1073741824LL);
	assert_true(kb_sched_quantity("128Mi", 5, &v));
	assert_int_equal(v, 134217728LL);
	assert_true(kb_sched_quantity("1e3", 3, &v));
	assert_int_equal(v, 1000);
	assert_true(kb_sched_quantity("2k", 2, &v));
	assert_int_equal(v, 2000);
	assert_true(kb_sched_quantity("1.5G", 4, &v));
	assert_int_equal(v, 1500000000LL);
	assert_true(kb_sched_quantity_milli("1.0001", 6, &v)); /* rounded up */
	assert_int_equal(v, 1001);
	assert_false(kb_sched_quantity("", 0, &v));
	assert_false(kb_sched_quantity("Gi", 2, &v));
	assert_false(kb_sched_quantity("1Gb", 3, &v));
	assert_false(kb_sched_quantity("1e", 2, &v));
}

static void test_pod_parse(void **state)
{
	struct kb_sched_pod *p = pod(
	    "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\","
	    " \"labels\": {\"app\": \"web\"}, \"creationTimestamp\": \"2026-01-02T03:04:05Z\"},"
	    " \"spec\": {\"priority\": 7,"
	    "  \"containers\": [{\"name\": \"a\", \"resources\": {\"requests\": {\"cpu\": \"250m\", \"memory\": \"64Mi\"}},"
	    "                    \"ports\": [{\"containerPort\": 80, \"hostPort\": 8080}, {\"containerPort\": 81}]},"
	    "                   {\"name\": \"b\", \"resources\": {\"requests\": {\"cpu\": \"250m\"}}}],"
	    "  \"initContainers\": [{\"name\": \"i\", \"resources\": {\"requests\": {\"cpu\": \"1\", \"memory\": \"10Mi\"}}}],"
	    "  \"overhead\": {\"cpu\": \"10m\"},"
	    "  \"tolerations\": [{\"key\": \"k\", \"operator\": \"Exists\", \"effect\": \"NoExecute\", \"tolerationSeconds\": 30}]}}");
	assert_string_equal(p->ns, "ns");
	assert_string_equal(p->name, "p");
	assert_string_equal(p->node_name, "");
	assert_string_equal(p->scheduler_name, "default-scheduler");
	assert_int_equal(p->priority, 7);
	assert_int_equal(p->created_ms, 1767323045000LL);
	assert_string_equal(kb_sched_label(p->labels, p->nlabels, "app"),
	    "web");
	/* max(250m+250m, 1) + 10m; max(64Mi, 10Mi) */
	assert_int_equal(p->requests.milli_cpu, 1010);
	assert_int_equal(p->requests.memory, 64LL << 20);
	assert_int_equal(p->requests.pods, 1);
	/* b asks no memory: 200Mi counts for it when scoring */
	assert_int_equal(p->nonzero_requests.memory,
	    (64LL << 20) + KB_SCHED_DEFAULT_MEMORY);
	assert_int_equal(p->nhost_ports, 1);
	assert_int_equal(p->host_ports[0].port, 8080);
	assert_string_equal(p->host_ports[0].protocol, "TCP");
	assert_int_equal(p->ntolerations, 1);
	assert_true(p->tolerations[0].exists);
	assert_int_equal(p->tolerations[0].effect, KB_EFFECT_NO_EXECUTE);
	assert_int_equal(p->tolerations[0].seconds, 30);
	assert_false(p->has_required);

	/* A node accounts its pods; a replaced node keeps them. */
	struct kb_sched_node *n = node(NODE("n",
	    "") ", \"status\": {\"capacity\": {\"cpu\": \"4\", \"pods\": \"10\"},"
		" \"allocatable\": {\"cpu\": \"3500m\", \"memory\": \"1Gi\"}}}");
	assert_int_equal(n->allocatable.milli_cpu, 3500);
	assert_int_equal(n->allocatable.memory, 1LL << 30);
	assert_int_equal(n->allocatable.pods, 10);
	assert_int_equal(kb_sched_node_add_pod(n, p), 0);
	assert_int_equal(n->npods, 1);
	assert_int_equal(n->requested.milli_cpu, 1010);
	assert_int_equal(n->requested.pods, 1);
	struct kb_sched_node *n2 = node(NODE("n", "") "}");
	kb_sched_node_move_pods(n2, n);
	assert_int_equal(n->npods, 0);
	assert_int_equal(n2->npods, 1);
	assert_int_equal(n2->requested.milli_cpu, 1010);
	assert_int_equal(kb_sched_node_remove_pod(n2, "ns", "p"), 0);
	assert_int_equal(kb_sched_node_remove_pod(n2, "ns", "p"), KB_ENOTFOUND);
	assert_int_equal(n2->requested.milli_cpu, 0);
	kb_sched_node_free(n);
	kb_sched_node_free(n2);
	kb_sched_pod_unref(p);
}

/* The pod and node keep a copy of the object equal to it (a deep copy in
 * one block since the copy stopped packing and decoding the object); the
 * creation time (kb_time_parse: RFC 3339, fraction and offset counted)
 * equals timegm's for the same fields, on random and odd stamps, and is 0
 * for what is not RFC 3339. */
static void test_obj_copy_and_time(void **state)
{
	const char *json =
	    "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\","
	    " \"labels\": {\"app\": \"web\", \"e\": \"\"}, \"annotations\": {},"
	    " \"creationTimestamp\": \"2026-01-02T03:04:05Z\"},"
	    " \"spec\": {\"priority\": -3, \"x\": [1, 2.5, true, null, [], {}, \"\"],"
	    "  \"containers\": [{\"name\": \"a\", \"resources\": {\"requests\": {\"cpu\": \"250m\"}}}]}}";
	kb_body *b = jbody(json);
	struct kb_sched_pod *p = kb_sched_pod_new(kb_body_obj(b));
	assert_non_null(p);
	assert_true(msgpack_object_equal(*p->obj, *kb_body_obj(b)));
	struct kb_sched_node *n = kb_sched_node_new(kb_body_obj(b));
	assert_non_null(n);
	assert_true(msgpack_object_equal(*n->obj, *kb_body_obj(b)));
	kb_sched_node_free(n);
	kb_body_unref(b);
	kb_sched_pod_unref(p);

	uint64_t r = 12345;
	for (int i = 0; i < 200000; i++) {
		char ts[64];
		r = r * 6364136223846793005ULL + 1442695040888963407ULL;
		uint64_t x = r >> 11;
		int y = 1890 + (int)(x % 300), mo = (int)(x >> 9) % 14,
		    d = (int)(x >> 13) % 33, h = (int)(x >> 19) % 25,
		    mi = (int)(x >> 24) % 61, se = (int)(x >> 30) % 63;
		static const char *const tails[] = { "Z", ".123456Z",
			"+02:00", "", "Zjunk" };
		const char *tail = tails[(x >> 36) % 5];
		if ((x >> 40) % 50 == 0)
			snprintf(ts, sizeof(ts), "%d-%d-%dT%d:%d:%d%s", y, mo,
			    d, h, mi, se, tail);
		else if ((x >> 40) % 50 == 1)
			snprintf(ts, sizeof(ts), "%04d-%02d-%02d %02d:%02d:%02d%s",
			    y, mo, d, h, mi, se, tail);
		else
			snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d%s",
			    y, mo, d, h, mi, se, tail);
		/* RFC 3339 (kb_time_parse): the padded form, fields in
		 * range (a day past the month's end runs on, as timegm
		 * does), a zone; else 0 */
		int64_t want = 0;
		bool zoned = strcmp(tail, "") && strcmp(tail, "Zjunk");
		bool padded = strlen(ts) >= 19;
		for (int k = 0; k < 19 && padded; k++)
			padded = k == 4 || k == 7 ? ts[k] == '-' :
			    k == 10               ? ts[k] == 'T' :
			    k == 13 || k == 16    ? ts[k] == ':' :
						    ts[k] >= '0' && ts[k] <= '9';
		if (padded && zoned && mo >= 1 && mo <= 12 && d >= 1 &&
		    d <= 31 && h >= 0 && h <= 23 && mi >= 0 && mi <= 59 &&
		    se >= 0 && se <= 60) {
			struct tm tm = { .tm_year = y - 1900,
				.tm_mon = mo - 1,
				.tm_mday = d,
				.tm_hour = h,
				.tm_min = mi,
				.tm_sec = se };
			want = (int64_t)timegm(&tm) * 1000;
			if (!strcmp(tail, ".123456Z"))
				want += 123;
			else if (!strcmp(tail, "+02:00"))
				want -= 2 * 3600 * 1000;
		}
		char pj[256];
		snprintf(pj, sizeof(pj),
		    "{\"metadata\": {\"name\": \"p\", \"namespace\": \"ns\","
		    " \"creationTimestamp\": \"%s\"}}", ts);
		struct kb_sched_pod *q = pod(pj);
		if (q->created_ms != want)
			fail_msg("%s: %lld, timegm %lld", ts,
			    (long long)q->created_ms, (long long)want);
		kb_sched_pod_unref(q);
	}
}

static int freed;
static void count_free(void *p)
{
	freed++;
	free(p);
}

static void test_cycle_state(void **state)
{
	struct kb_sched_snapshot snap = { .size = sizeof(snap) };
	struct kb_sched_cycle *cy = kb_sched_cycle_new(&snap);
	freed = 0;
	assert_int_equal(kb_sched_cycle_write(cy, "a/x", strdup("one"),
			     count_free),
	    0);
	assert_string_equal(kb_sched_cycle_read(cy, "a/x"), "one");
	assert_int_equal(kb_sched_cycle_write(cy, "a/x", strdup("two"),
			     count_free),
	    0);
	assert_int_equal(freed, 1);
	assert_string_equal(kb_sched_cycle_read(cy, "a/x"), "two");
	assert_null(kb_sched_cycle_read(cy, "b"));
	assert_ptr_equal(kb_sched_cycle_snapshot(cy), &snap);
	kb_sched_cycle_free(cy);
	assert_int_equal(freed, 2);

	struct kb_sched_status *st = kb_sched_status_new();
	assert_int_equal(kb_sched_reject(st, KB_SCHED_UNSCHEDULABLE,
			     "Insufficient %s", "cpu"),
	    KB_SCHED_UNSCHEDULABLE);
	kb_sched_reject(st, KB_SCHED_UNRESOLVABLE, "x");
	kb_sched_reject(st, KB_SCHED_UNSCHEDULABLE, "y");
	assert_int_equal(kb_sched_status_code(st), KB_SCHED_UNRESOLVABLE);
	assert_int_equal(kb_sched_status_nreasons(st), 3);
	assert_string_equal(kb_sched_status_reason(st, 0), "Insufficient cpu");
	kb_sched_status_reset(st);
	assert_int_equal(kb_sched_status_nreasons(st), 0);
	kb_sched_status_free(st);
}

/* --- sched-nodename, sched-nodeunschedulable ------------------------------------------ */

static void test_nodename(void **state)
{
	struct pol pl;
	assert_int_equal(load(&pl, "sched-nodename", NULL), 0);
	struct kb_sched_pod *any =
	    pod("{\"metadata\": {\"name\": \"a\"}, \"spec\": {}}");
	struct kb_sched_pod *named = pod(
	    "{\"metadata\": {\"name\": \"b\"}, \"spec\": {\"nodeName\": \"n1\"}}");
	struct kb_sched_node *n1 = node(NODE("n1", "") "}"),
			     *n2 = node(NODE("n2", "") "}");
	assert_int_equal(filter(&pl, any, n1), KB_SCHED_SUCCESS);
	assert_int_equal(filter(&pl, named, n1), KB_SCHED_SUCCESS);
	assert_int_equal(filter(&pl, named, n2), KB_SCHED_UNRESOLVABLE);
	assert_string_equal(reason,
	    "node(s) didn't match the requested node name");
	kb_sched_node_free(n1);
	kb_sched_node_free(n2);
	kb_sched_pod_unref(any);
	kb_sched_pod_unref(named);
	unload(&pl);
}

static void test_nodeunschedulable(void **state)
{
	struct pol pl;
	assert_int_equal(load(&pl, "sched-nodeunschedulable", NULL), 0);
	struct kb_sched_pod *plain =
	    pod("{\"metadata\": {\"name\": \"a\"}, \"spec\": {}}");
	struct kb_sched_pod *tol = pod(
	    "{\"metadata\": {\"name\": \"b\"}, \"spec\": {\"tolerations\": "
	    "[{\"key\": \"node.kubernetes.io/unschedulable\", \"operator\": \"Exists\", \"effect\": \"NoSchedule\"}]}}");
	struct kb_sched_node *ok =
	    node(NODE("n1", "") ", \"spec\": {\"unschedulable\": false}}");
	struct kb_sched_node *cordoned =
	    node(NODE("n2", "") ", \"spec\": {\"unschedulable\": true}}");
	assert_int_equal(filter(&pl, plain, ok), KB_SCHED_SUCCESS);
	assert_int_equal(filter(&pl, plain, cordoned), KB_SCHED_UNRESOLVABLE);
	assert_string_equal(reason, "node(s) were unschedulable");
	assert_int_equal(filter(&pl, tol, cordoned), KB_SCHED_SUCCESS);
	kb_sched_node_free(ok);
	kb_sched_node_free(cordoned);
	kb_sched_pod_unref(plain);
	kb_sched_pod_unref(tol);
	unload(&pl);
}

/* --- sched-tainttoleration ------------------------------------------------------------------ */

static void test_taints_filter(void **state)
{
	struct pol pl;
	assert_int_equal(load(&pl, "sched-tainttoleration", NULL), 0);
	struct kb_sched_node *gpu = node(NODE("gpu",
	    "") ", \"spec\": {\"taints\": "
		"[{\"key\": \"dedicated\", \"value\": \"gpu\", \"effect\": \"NoSchedule\"}]}}");
	struct kb_sched_node *exec = node(
	    NODE("ex", "") ", \"spec\": {\"taints\": "
			   "[{\"key\": \"k\", \"effect\": \"NoExecute\"}]}}");
	struct kb_sched_node *soft = node(NODE("soft",
	    "") ", \"spec\": {\"taints\": "
		"[{\"key\": \"k\", \"value\": \"v\", \"effect\": \"PreferNoSchedule\"}]}}");
	static const struct {
		const char *tolerations;
		int gpu, exec, soft;
	} cases[] = {
		{ "[]", KB_SCHED_UNRESOLVABLE, KB_SCHED_UNRESOLVABLE,
		    KB_SCHED_SUCCESS },
		{ "[{\"key\": \"dedicated\", \"operator\": \"Equal\", \"value\": \"gpu\", \"effect\": \"NoSchedule\"}]",
		    KB_SCHED_SUCCESS, KB_SCHED_UNRESOLVABLE, KB_SCHED_SUCCESS },
		{ "[{\"key\": \"dedicated\", \"value\": \"gpu\"}]", /* no operator: Equal; no effect: all */
		    KB_SCHED_SUCCESS, KB_SCHED_UNRESOLVABLE, KB_SCHED_SUCCESS },
		{ "[{\"key\": \"dedicated\", \"operator\": \"Equal\", \"value\": \"cpu\"}]",
		    KB_SCHED_UNRESOLVABLE, KB_SCHED_UNRESOLVABLE,
		    KB_SCHED_SUCCESS },
		{ "[{\"key\": \"dedicated\", \"operator\": \"Exists\", \"effect\": \"NoExecute\"}]",
		    KB_SCHED_UNRESOLVABLE, KB_SCHED_UNRESOLVABLE,
		    KB_SCHED_SUCCESS },
		{ "[{\"operator\": \"Exists\"}]", KB_SCHED_SUCCESS,
		    KB_SCHED_SUCCESS, KB_SCHED_SUCCESS },
		{ "[{\"key\": \"k\", \"operator\": \"Exists\"}]",
		    KB_SCHED_UNRESOLVABLE, KB_SCHED_SUCCESS, KB_SCHED_SUCCESS },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char json[1024];
		snprintf(json, sizeof(json),
		    "{\"metadata\": {\"name\": \"p\"}, \"spec\": {\"tolerations\": %s}}",
		    cases[i].tolerations);
		struct kb_sched_pod *p = pod(json);
		assert_int_equal(filter(&pl, p, gpu), cases[i].gpu);
		if (cases[i].gpu)
			assert_string_equal(reason,
			    "node(s) had untolerated taint {dedicated: gpu}");
		assert_int_equal(filter(&pl, p, exec), cases[i].exec);
		if (cases[i].exec)
			assert_string_equal(reason,
			    "node(s) had untolerated taint {k: }");
		assert_int_equal(filter(&pl, p, soft), cases[i].soft);
		kb_sched_pod_unref(p);
	}
	kb_sched_node_free(gpu);
	kb_sched_node_free(exec);
	kb_sched_node_free(soft);
	unload(&pl);
}

static void test_taints_score(void **state)
{
	struct pol pl;
	assert_int_equal(load(&pl, "sched-tainttoleration", NULL), 0);
	struct kb_sched_node *n[3] = {
		node(NODE("none", "") "}"),
		node(NODE("one",
		    "") ", \"spec\": {\"taints\": [{\"key\": \"a\", \"effect\": \"PreferNoSchedule\"}]}}"),
		node(NODE("two",
		    "") ", \"spec\": {\"taints\": [{\"key\": \"a\", \"effect\": \"PreferNoSchedule\"},"
			" {\"key\": \"b\", \"effect\": \"PreferNoSchedule\"}, {\"key\": \"c\", \"effect\": \"NoSchedule\"}]}}"),
	};
	int64_t s[3];
	struct kb_sched_pod *p =
	    pod("{\"metadata\": {\"name\": \"p\"}, \"spec\": {}}");
	score(&pl, p, n, 3, s);
	assert_int_equal(s[0], 100);
	assert_int_equal(s[1], 50);
	assert_int_equal(s[2], 0);
	kb_sched_pod_unref(p);
	/* Tolerating `a` (PreferNoSchedule) leaves only `b` counted. */
	p = pod(
	    "{\"metadata\": {\"name\": \"p\"}, \"spec\": {\"tolerations\": "
	    "[{\"key\": \"a\", \"operator\": \"Exists\", \"effect\": \"PreferNoSchedule\"}]}}");
	score(&pl, p, n, 3, s);
	assert_int_equal(s[0], 100);
	assert_int_equal(s[1], 100);
	assert_int_equal(s[2], 0);
	kb_sched_pod_unref(p);
	for (int i = 0; i < 3; i++)
		kb_sched_node_free(n[i]);
	unload(&pl);
}

/* --- sched-nodeaffinity ------------------------------------------------------------------------ */

static void test_affinity_filter(void **state)
{
	struct pol pl;
	assert_int_equal(load(&pl, "sched-nodeaffinity", NULL), 0);
	struct kb_sched_node *n = node(NODE("n1",
	    ", \"labels\": {\"zone\": \"a\", \"disk\": \"ssd\", \"cores\": \"8\"}") "}");
	static const struct {
		const char *spec;
		int want;
	} cases[] = {
		{ "{}", KB_SCHED_SUCCESS },
		{ "{\"nodeSelector\": {\"disk\": \"ssd\"}}", KB_SCHED_SUCCESS },
		{ "{\"nodeSelector\": {\"disk\": \"ssd\", \"zone\": \"b\"}}",
		    KB_SCHED_UNRESOLVABLE },
		{ "{\"nodeSelector\": {\"gpu\": \"true\"}}",
		    KB_SCHED_UNRESOLVABLE },
#define REQ(terms)                                                                                \
	"{\"affinity\": {\"nodeAffinity\": {\"requiredDuringSchedulingIgnoredDuringExecution\": " \
	"{\"nodeSelectorTerms\": " terms "}}}}"
#define EXPR(k, op, vals)                                                      \
	"{\"matchExpressions\": [{\"key\": \"" k "\", \"operator\": \"" op     \
	"\", \"values\": " vals "}]}"
		{ REQ("[" EXPR("zone", "In", "[\"a\", \"b\"]") "]"),
		    KB_SCHED_SUCCESS },
		{ REQ("[" EXPR("zone", "In", "[\"b\"]") "]"),
		    KB_SCHED_UNRESOLVABLE },
		{ REQ("[" EXPR("zone", "NotIn", "[\"b\"]") "]"),
		    KB_SCHED_SUCCESS },
		{ REQ("[" EXPR("zone", "NotIn", "[\"a\"]") "]"),
		    KB_SCHED_UNRESOLVABLE },
		{ REQ("[" EXPR("rack", "NotIn", "[\"a\"]") "]"),
		    KB_SCHED_SUCCESS }, /* absent key */
		{ REQ("[" EXPR("disk", "Exists", "[]") "]"), KB_SCHED_SUCCESS },
		{ REQ("[" EXPR("gpu", "Exists", "[]") "]"),
		    KB_SCHED_UNRESOLVABLE },
		{ REQ("[" EXPR("gpu", "DoesNotExist", "[]") "]"),
		    KB_SCHED_SUCCESS },
		{ REQ("[" EXPR("disk", "DoesNotExist", "[]") "]"),
		    KB_SCHED_UNRESOLVABLE },
		{ REQ("[" EXPR("cores", "Gt", "[\"4\"]") "]"),
		    KB_SCHED_SUCCESS },
		{ REQ("[" EXPR("cores", "Gt", "[\"8\"]") "]"),
		    KB_SCHED_UNRESOLVABLE },
		{ REQ("[" EXPR("cores", "Lt", "[\"16\"]") "]"),
		    KB_SCHED_SUCCESS },
		{ REQ("[" EXPR("zone", "Lt", "[\"16\"]") "]"),
		    KB_SCHED_UNRESOLVABLE }, /* not a number */
		/* terms are ORed, expressions ANDed */
		{ REQ("[" EXPR("zone", "In", "[\"b\"]") ", " EXPR("disk", "In",
		      "[\"ssd\"]") "]"),
		    KB_SCHED_SUCCESS },
		{ REQ("[{\"matchExpressions\": [{\"key\": \"zone\", \"operator\": \"In\", \"values\": [\"a\"]},"
		      " {\"key\": \"disk\", \"operator\": \"In\", \"values\": [\"hdd\"]}]}]"),
		    KB_SCHED_UNRESOLVABLE },
		{ REQ("[{}]"),
		    KB_SCHED_UNRESOLVABLE }, /* an empty term matches nothing */
		{ REQ("[{\"matchFields\": [{\"key\": \"metadata.name\", \"operator\": \"In\", \"values\": [\"n1\"]}]}]"),
		    KB_SCHED_SUCCESS },
		{ REQ("[{\"matchFields\": [{\"key\": \"metadata.name\", \"operator\": \"NotIn\", \"values\": [\"n1\"]}]}]"),
		    KB_SCHED_UNRESOLVABLE },
		/* nodeSelector and affinity must both hold */
		{ "{\"nodeSelector\": {\"zone\": \"b\"}, \"affinity\": {\"nodeAffinity\": {\"requiredDuringSchedulingIgnoredDuringExecution\": "
		  "{\"nodeSelectorTerms\": [" EXPR("zone", "In",
		      "[\"a\"]") "]}}}}",
		    KB_SCHED_UNRESOLVABLE },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char json[2048];
		snprintf(json, sizeof(json),
		    "{\"metadata\": {\"name\": \"p\"}, \"spec\": %s}",
		    cases[i].spec);
		struct kb_sched_pod *p = pod(json);
		int got = filter(&pl, p, n);
		if (got != cases[i].want)
			fail_msg("case %zu (%s): got %d, want %d", i,
			    cases[i].spec, got, cases[i].want);
		if (got)
			assert_string_equal(reason,
			    "node(s) didn't match Pod's node affinity/selector");
		kb_sched_pod_unref(p);
	}
	kb_sched_node_free(n);
	unload(&pl);
}

static void test_affinity_score(void **state)
{
	struct pol pl;
	assert_int_equal(load(&pl, "sched-nodeaffinity", NULL), 0);
	struct kb_sched_node *n[3] = {
		node(NODE("a", ", \"labels\": {\"zone\": \"a\"}") "}"),
		node(NODE("b",
		    ", \"labels\": {\"zone\": \"b\", \"disk\": \"ssd\"}") "}"),
		node(NODE("c", "") "}"),
	};
	struct kb_sched_pod *p = pod(
	    "{\"metadata\": {\"name\": \"p\"}, \"spec\": {\"affinity\": {\"nodeAffinity\": "
	    "{\"preferredDuringSchedulingIgnoredDuringExecution\": ["
	    " {\"weight\": 20, \"preference\": " EXPR("zone", "In",
		"[\"a\"]") "},"
			   " {\"weight\": 30, \"preference\": " EXPR("zone",
			       "In",
			       "[\"b\"]") "},"
					  " {\"weight\": 10, \"preference\": " EXPR(
					      "disk", "Exists", "[]") "}]}}}}");
	int64_t s[3];
	score(&pl, p, n, 3, s);
	assert_int_equal(s[0], 50);  /* 20 of 40 */
	assert_int_equal(s[1], 100); /* 30 + 10 */
	assert_int_equal(s[2], 0);
	kb_sched_pod_unref(p);
	p = pod("{\"metadata\": {\"name\": \"p\"}, \"spec\": {}}");
	score(&pl, p, n, 3, s);
	assert_int_equal(s[0] + s[1] + s[2], 0);
	kb_sched_pod_unref(p);
	for (int i = 0; i < 3; i++)
		kb_sched_node_free(n[i]);
	unload(&pl);
}

/* --- sched-noderesources ------------------------------------------------------------------------ */

#define RNODE(name, cpu, mem, pods)                                            \
	"{\"metadata\": {\"name\": \"" name                                    \
	"\"}, \"status\": {\"allocatable\": "                                  \
	"{\"cpu\": \"" cpu "\", \"memory\": \"" mem "\", \"pods\": \"" pods    \
	"\"}}}"
#define RPOD(name, cpu, mem)                                                   \
	"{\"metadata\": {\"name\": \"" name                                    \
	"\", \"namespace\": \"d\"}, \"spec\": {\"containers\": "               \
	"[{\"name\": \"c\", \"resources\": {\"requests\": {\"cpu\": \"" cpu    \
	"\", \"memory\": \"" mem "\"}}}]}}"

static void test_resources_fit(void **state)
{
	struct pol pl;
	assert_int_equal(load(&pl, "sched-noderesources", NULL), 0);
	struct kb_sched_node *n = node(RNODE("n", "2", "4Gi", "2"));
	struct kb_sched_pod *small = pod(RPOD("small", "500m", "1Gi"));
	struct kb_sched_pod *big = pod(RPOD("big", "3", "8Gi"));
	struct kb_sched_pod *none = pod(
	    "{\"metadata\": {\"name\": \"none\", \"namespace\": \"d\"},"
	    " \"spec\": {\"containers\": [{\"name\": \"c\"}]}}");
	assert_int_equal(filter(&pl, small, n), KB_SCHED_SUCCESS);
	assert_int_equal(filter(&pl, big, n), KB_SCHED_UNSCHEDULABLE);
	assert_string_equal(reason, "Insufficient cpu; Insufficient memory");
	/* 1.5 cpu used: 500m still fits, 600m does not. */
	struct kb_sched_pod *used = pod(RPOD("used", "1500m", "1Gi"));
	assert_int_equal(kb_sched_node_add_pod(n, used), 0);
	assert_int_equal(filter(&pl, small, n), KB_SCHED_SUCCESS);
	struct kb_sched_pod *more = pod(RPOD("more", "600m", "1Mi"));
	assert_int_equal(filter(&pl, more, n), KB_SCHED_UNSCHEDULABLE);
	assert_string_equal(reason, "Insufficient cpu");
	/* The pod count: two allowed. */
	assert_int_equal(kb_sched_node_add_pod(n, none), 0);
	assert_int_equal(filter(&pl, none, n), KB_SCHED_UNSCHEDULABLE);
	assert_string_equal(reason, "Too many pods");
	kb_sched_node_free(n);
	kb_sched_pod_unref(small);
	kb_sched_pod_unref(big);
	kb_sched_pod_unref(none);
	kb_sched_pod_unref(used);
	kb_sched_pod_unref(more);
	unload(&pl);
}

static void test_resources_score(void **state)
{
	struct pol least, most, cpu_only;
	assert_int_equal(load(&least, "sched-noderesources", NULL), 0);
	assert_int_equal(load(&most, "sched-noderesources",
			     "scoringStrategy: {type: MostAllocated}\n"),
	    0);
	assert_int_equal(
	    load(&cpu_only, "sched-noderesources",
		"scoringStrategy:\n  resources: [{name: cpu, weight: 1}]\n"),
	    0);
	/* kube-scheduler's LeastAllocated case: node 4000m/10000, pod 3000m/5000
	 * on an empty node: cpu (4000-3000)*100/4000 = 25, mem 50: 37. */
	struct kb_sched_node *n[2] = { node(RNODE("n1", "4", "10000", "110")),
		node(RNODE("n2", "6", "10000", "110")) };
	struct kb_sched_pod *p = pod(RPOD("p", "3", "5000"));
	int64_t s[2];
	score(&least, p, n, 2, s);
	assert_int_equal(s[0], 37);
	assert_int_equal(s[1], 50); /* cpu (6000-3000)/6000, memory 50 */
	score(&most, p, n, 2, s);
	assert_int_equal(s[0], 62); /* (75 + 50) / 2 */
	assert_int_equal(s[1], 50); /* (50 + 50) / 2 */
	score(&cpu_only, p, n, 2, s);
	assert_int_equal(s[0], 25);
	assert_int_equal(s[1], 50);
	/* Requests left out count as 100m / 200Mi when scoring. */
	struct kb_sched_pod *zero = pod(
	    "{\"metadata\": {\"name\": \"z\"}, \"spec\": {\"containers\": [{\"name\": \"c\"}]}}");
	score(&cpu_only, zero, n, 1, s);
	assert_int_equal(s[0], 97); /* (4000-100)*100/4000 */
	kb_sched_pod_unref(zero);
	kb_sched_pod_unref(p);
	kb_sched_node_free(n[0]);
	kb_sched_node_free(n[1]);
	unload(&least);
	unload(&most);
	unload(&cpu_only);
}

static void test_resources_config(void **state)
{
	struct pol pl;
	assert_int_not_equal(load(&pl, "sched-noderesources",
				 "scoringStrategy: {type: Fancy}\n"),
	    0);
	assert_non_null(strstr(failed, "Fancy"));
	assert_int_not_equal(load(&pl, "sched-noderesources", "scoring: {}\n"),
	    0);
	assert_non_null(strstr(failed, "scoring"));
	assert_int_not_equal(
	    load(&pl, "sched-noderesources",
		"scoringStrategy: {resources: [{name: gpu, weight: 1}]}\n"),
	    0);
	assert_non_null(strstr(failed, "gpu"));
	assert_int_not_equal(
	    load(&pl, "sched-noderesources",
		"scoringStrategy: {resources: [{name: cpu, weight: 0}]}\n"),
	    0);
}

static void test_resources_ratio(void **state)
{
	struct pol least, most, vee;
	assert_int_equal(
	    load(&least, "sched-noderesources",
		"scoringStrategy:\n"
		"  type: RequestedToCapacityRatio\n"
		"  requestedToCapacityRatio:\n"
		"    shape: [{utilization: 0, score: 10}, {utilization: 100, score: 0}]\n"),
	    0);
	assert_int_equal(
	    load(&most, "sched-noderesources",
		"scoringStrategy:\n"
		"  type: RequestedToCapacityRatio\n"
		"  resources: [{name: cpu, weight: 1}, {name: memory, weight: 1}]\n"
		"  requestedToCapacityRatio:\n"
		"    shape: [{utilization: 0, score: 0}, {utilization: 100, score: 10}]\n"),
	    0);
	assert_int_equal(
	    load(&vee, "sched-noderesources",
		"scoringStrategy:\n"
		"  type: RequestedToCapacityRatio\n"
		"  resources: [{name: cpu, weight: 3}, {name: memory, weight: 1}]\n"
		"  requestedToCapacityRatio:\n"
		"    shape: [{utilization: 0, score: 0}, {utilization: 50, score: 10}, {utilization: 100, score: 0}]\n"),
	    0);
	struct kb_sched_node *n[2] = { node(RNODE("n1", "4", "10000", "110")),
		node(RNODE("n2", "6", "10000", "110")) };
	struct kb_sched_pod *p = pod(RPOD("p", "3", "5000"));
	int64_t s[2];
	/* n1: cpu 75% -> 25, memory 50% -> 50: round(37.5) = 38 (where
	 * LeastAllocated truncates to 37). n2: cpu 50%, memory 50%. */
	score(&least, p, n, 2, s);
	assert_int_equal(s[0], 38);
	assert_int_equal(s[1], 50);
	score(&most, p, n, 2, s);
	assert_int_equal(s[0], 63); /* round((75 + 50) / 2) */
	assert_int_equal(s[1], 50);
	/* Broken line peaking at 50%: n1 cpu 75% -> 50 (weight 3), memory
	 * 100: (150 + 100) / 4 = 62.5 -> 63; n2 all at the peak: 100. */
	score(&vee, p, n, 2, s);
	assert_int_equal(s[0], 63);
	assert_int_equal(s[1], 100);
	/* Over capacity: the score at 100% utilization. */
	struct kb_sched_pod *huge = pod(RPOD("h", "8", "20000"));
	score(&most, huge, n, 1, s);
	assert_int_equal(s[0], 100);
	kb_sched_pod_unref(huge);
	kb_sched_pod_unref(p);
	kb_sched_node_free(n[0]);
	kb_sched_node_free(n[1]);
	unload(&least);
	unload(&most);
	unload(&vee);

	struct pol bad;
	assert_int_not_equal(
	    load(&bad, "sched-noderesources",
		"scoringStrategy: {type: RequestedToCapacityRatio}\n"),
	    0);
	assert_non_null(strstr(failed, "shape"));
	assert_int_not_equal(
	    load(&bad, "sched-noderesources",
		"scoringStrategy:\n"
		"  type: RequestedToCapacityRatio\n"
		"  requestedToCapacityRatio: {shape: [{utilization: 50, score: 1}, {utilization: 40, score: 2}]}\n"),
	    0);
	assert_non_null(strstr(failed, "increasing"));
	assert_int_not_equal(
	    load(&bad, "sched-noderesources",
		"scoringStrategy:\n"
		"  type: RequestedToCapacityRatio\n"
		"  requestedToCapacityRatio: {shape: [{utilization: 0, score: 11}]}\n"),
	    0);
	assert_non_null(strstr(failed, "score must be within [0, 10]"));
	assert_int_not_equal(
	    load(&bad, "sched-noderesources",
		"scoringStrategy:\n"
		"  type: RequestedToCapacityRatio\n"
		"  requestedToCapacityRatio: {shape: [{utilization: 101, score: 1}]}\n"),
	    0);
	assert_non_null(strstr(failed, "utilization must be within [0, 100]"));
}

/* --- sched-balancedallocation ----------------------------------------------------------- */

static void test_balanced(void **state)
{
	struct pol pl, three;
	assert_int_equal(load(&pl, "sched-balancedallocation", NULL), 0);
	/* kube-scheduler's "resources requested, differently sized nodes":
	 * n1 cpu 3/4, memory 5000/10000: std (0.75 - 0.5) / 2 -> 87;
	 * n2 cpu 3/6 and memory 1/2: perfectly balanced, 100. */
	struct kb_sched_node *n[3] = { node(RNODE("n1", "4", "10000", "110")),
		node(RNODE("n2", "6", "10000", "110")),
		node(RNODE("n3", "4", "10000", "110")) };
	struct kb_sched_pod *p = pod(RPOD("p", "3", "5000"));
	int64_t s[3];
	score(&pl, p, n, 2, s);
	assert_int_equal(s[0], 87);
	assert_int_equal(s[1], 100);
	/* What is already there counts: n3 with 1 cpu and 0 memory used
	 * is at cpu 1.0 (capped), memory 0.5: 75. */
	struct kb_sched_pod *used = pod(RPOD("u", "1", "0"));
	assert_int_equal(kb_sched_node_add_pod(n[2], used), 0);
	score(&pl, p, n, 3, s);
	assert_int_equal(s[2], 75);
	/* A best-effort pod skips the policy (all 0 here). */
	struct kb_sched_pod *be = pod(
	    "{\"metadata\": {\"name\": \"be\"}, \"spec\": {\"containers\": [{\"name\": \"c\"}]}}");
	score(&pl, be, n, 3, s);
	assert_int_equal(s[0] + s[1] + s[2], 0);
	/* Three resources: the population std-dev. cpu .75, memory .5,
	 * storage 1.0: mean .75, std sqrt((0 + .0625 + .0625)/3) = .204 -> 79. */
	assert_int_equal(
	    load(&three, "sched-balancedallocation",
		"resources: [{name: cpu}, {name: memory}, {name: ephemeral-storage}]\n"),
	    0);
	struct kb_sched_node *e = node(
	    "{\"metadata\": {\"name\": \"e\"}, \"status\": {\"allocatable\": "
	    "{\"cpu\": \"4\", \"memory\": \"10000\", \"ephemeral-storage\": \"100\", \"pods\": \"10\"}}}");
	struct kb_sched_pod *ps = pod(
	    "{\"metadata\": {\"name\": \"ps\"}, \"spec\": {\"containers\": [{\"name\": \"c\", "
	    "\"resources\": {\"requests\": {\"cpu\": \"3\", \"memory\": \"5000\", \"ephemeral-storage\": \"100\"}}}]}}");
	score(&three, ps, &e, 1, s);
	assert_int_equal(s[0], 79);
	struct pol bad;
	assert_int_not_equal(load(&bad, "sched-balancedallocation",
				 "resources: [{name: gpu}]\n"),
	    0);
	assert_non_null(strstr(failed, "gpu"));
	kb_sched_node_free(e);
	kb_sched_pod_unref(ps);
	kb_sched_pod_unref(be);
	kb_sched_pod_unref(used);
	kb_sched_pod_unref(p);
	for (int i = 0; i < 3; i++)
		kb_sched_node_free(n[i]);
	unload(&pl);
	unload(&three);
}

/* --- policies that look at the whole snapshot ------------------------------------------- */

static char reasons[8][KB_SCHED_REASON_MAX * 2];

/* PreFilter with every node in the snapshot, then Filter on each: codes
 * into rc[], reasons into reasons[]. */
static void filter_all(struct pol *pl, const struct kb_sched_pod *p,
    struct kb_sched_node **nodes, size_t n, int *rc)
{
	struct kb_sched_snapshot snap = { .size = sizeof(snap),
		.nodes = (const struct kb_sched_node *const *)nodes,
		.nnodes = n };
	struct kb_sched_cycle *cy = kb_sched_cycle_new(&snap);
	struct kb_sched_status *st = kb_sched_status_new();
	int pre = pl->ops->pre_filter(pl->state, cy, p, st);
	assert_true(pre == KB_SCHED_SUCCESS || pre == KB_SCHED_SKIP);
	for (size_t i = 0; i < n; i++) {
		kb_sched_status_reset(st);
		reasons[i][0] = '\0';
		rc[i] = pre == KB_SCHED_SKIP ?
		    KB_SCHED_SUCCESS :
		    pl->ops->filter(pl->state, cy, p, nodes[i], st);
		if (kb_sched_status_nreasons(st))
			snprintf(reasons[i], sizeof(reasons[i]), "%s",
			    kb_sched_status_reason(st, 0));
	}
	kb_sched_status_free(st);
	kb_sched_cycle_free(cy);
}

#define TNODE(name, labels)                                                    \
	"{\"metadata\": {\"name\": \"" name "\", \"labels\": " labels "}, "    \
	"\"status\": {\"allocatable\": {\"cpu\": \"4\", \"memory\": \"8Gi\", " \
	"\"pods\": \"110\"}}}"
#define LPOD(name, ns, labels, spec)                                           \
	"{\"metadata\": {\"name\": \"" name "\", \"namespace\": \"" ns         \
	"\", \"labels\": " labels "}, \"spec\": {\"containers\": "             \
	"[{\"name\": \"c\"}]" spec "}}"

/* node-a, node-b in zone1; node-x, node-y in zone2. */
static void zone_nodes(struct kb_sched_node **n)
{
	n[0] = node(TNODE("node-a",
	    "{\"zone\": \"zone1\", \"kubernetes.io/hostname\": \"node-a\"}"));
	n[1] = node(TNODE("node-b",
	    "{\"zone\": \"zone1\", \"kubernetes.io/hostname\": \"node-b\"}"));
	n[2] = node(TNODE("node-x",
	    "{\"zone\": \"zone2\", \"kubernetes.io/hostname\": \"node-x\"}"));
	n[3] = node(TNODE("node-y",
	    "{\"zone\": \"zone2\", \"kubernetes.io/hostname\": \"node-y\"}"));
}

static void place(struct kb_sched_node *n, const char *json)
{
	struct kb_sched_pod *p = pod(json);
	assert_int_equal(kb_sched_node_add_pod(n, p), 0);
	kb_sched_pod_unref(p);
}

#define SPREAD(extra)                                                          \
	", \"topologySpreadConstraints\": [{\"maxSkew\": 1, \"topologyKey\": " \
	"\"zone\", \"labelSelector\": {\"matchExpressions\": [{\"key\": "      \
	"\"foo\", \"operator\": \"Exists\"}]}" extra "}]"

static void test_spread_filter(void **state)
{
	struct pol pl;
	assert_int_equal(load(&pl, "sched-podtopologyspread", NULL), 0);
	struct kb_sched_node *n[5];
	zone_nodes(n);
	/* zone1 has 2 matching pods, zone2 1; pods of another namespace and
	 * without the label do not count. */
	place(n[0], LPOD("p-a1", "default", "{\"foo\": \"\"}", ""));
	place(n[1], LPOD("p-b1", "default", "{\"foo\": \"\"}", ""));
	place(n[3], LPOD("p-y1", "default", "{\"foo\": \"\"}", ""));
	place(n[2], LPOD("p-x1", "other", "{\"foo\": \"\"}", ""));
	place(n[2], LPOD("p-x2", "default", "{\"bar\": \"\"}", ""));
	int rc[5];
	struct kb_sched_pod *p = pod(LPOD("p", "default", "{\"foo\": \"\"}",
	    SPREAD(", \"whenUnsatisfiable\": \"DoNotSchedule\"")));
	assert_int_equal(p->nspread, 1);
	filter_all(&pl, p, n, 4, rc);
	assert_int_equal(rc[0], KB_SCHED_UNSCHEDULABLE);
	assert_string_equal(reasons[0],
	    "node(s) didn't match pod topology spread constraints");
	assert_int_equal(rc[1], KB_SCHED_UNSCHEDULABLE);
	assert_int_equal(rc[2], KB_SCHED_SUCCESS);
	assert_int_equal(rc[3], KB_SCHED_SUCCESS);
	kb_sched_pod_unref(p);

	/* maxSkew 2 allows zone1 too. */
	p = pod(LPOD("p", "default", "{\"foo\": \"\"}",
	    ", \"topologySpreadConstraints\": [{\"maxSkew\": 2, \"topologyKey\": \"zone\","
	    " \"whenUnsatisfiable\": \"DoNotSchedule\", \"labelSelector\": {\"matchLabels\": {\"foo\": \"\"}}}]"));
	filter_all(&pl, p, n, 4, rc);
	assert_int_equal(rc[0], KB_SCHED_SUCCESS);
	assert_int_equal(rc[2], KB_SCHED_SUCCESS);
	kb_sched_pod_unref(p);

	/* A pod the selector does not match adds no skew: zone1 is 2 - 1. */
	p = pod(LPOD("p", "default", "{\"other\": \"\"}",
	    SPREAD(", \"whenUnsatisfiable\": \"DoNotSchedule\"")));
	filter_all(&pl, p, n, 4, rc);
	assert_int_equal(rc[0], KB_SCHED_SUCCESS);
	kb_sched_pod_unref(p);

	/* minDomains 3 with only 2 domains: the minimum counts as 0, so
	 * even zone2 (1 + 1 - 0 = 2) is too much. */
	p = pod(LPOD("p", "default", "{\"foo\": \"\"}",
	    SPREAD(", \"minDomains\": 3")));
	filter_all(&pl, p, n, 4, rc);
	for (int i = 0; i < 4; i++)
		assert_int_equal(rc[i], KB_SCHED_UNSCHEDULABLE);
	kb_sched_pod_unref(p);

	/* nodeAffinityPolicy: Honor (the default) counts only the zones the
	 * pod may go to: zone1 alone, min 2, so zone1 is fine; Ignore
	 * counts zone2 too. */
	p = pod(LPOD("p", "default", "{\"foo\": \"\"}",
	    ", \"nodeSelector\": {\"zone\": \"zone1\"}" SPREAD("")));
	filter_all(&pl, p, n, 4, rc);
	assert_int_equal(rc[0], KB_SCHED_SUCCESS);
	kb_sched_pod_unref(p);
	p = pod(LPOD("p", "default", "{\"foo\": \"\"}",
	    ", \"nodeSelector\": {\"zone\": \"zone1\"}" SPREAD(
		", \"nodeAffinityPolicy\": \"Ignore\"")));
	filter_all(&pl, p, n, 4, rc);
	assert_int_equal(rc[0], KB_SCHED_UNSCHEDULABLE);
	kb_sched_pod_unref(p);

	/* nodeTaintsPolicy: Honor leaves out the tainted zone2 nodes. */
	struct kb_sched_node *t[4];
	t[0] = node(TNODE("a", "{\"zone\": \"zone1\"}"));
	t[1] = node(
	    "{\"metadata\": {\"name\": \"x\", \"labels\": {\"zone\": \"zone2\"}},"
	    " \"spec\": {\"taints\": [{\"key\": \"k\", \"effect\": \"NoSchedule\"}]}}");
	place(t[0], LPOD("q1", "default", "{\"foo\": \"\"}", ""));
	p = pod(LPOD("p", "default", "{\"foo\": \"\"}",
	    SPREAD(", \"nodeTaintsPolicy\": \"Honor\"")));
	filter_all(&pl, p, t, 2, rc);
	assert_int_equal(rc[0], KB_SCHED_SUCCESS); /* 1 + 1 - 1 */
	kb_sched_pod_unref(p);
	p = pod(LPOD("p", "default", "{\"foo\": \"\"}", SPREAD("")));
	filter_all(&pl, p, t, 2, rc);
	assert_int_equal(rc[0], KB_SCHED_UNSCHEDULABLE); /* 1 + 1 - 0 */
	kb_sched_pod_unref(p);
	kb_sched_node_free(t[0]);
	kb_sched_node_free(t[1]);

	/* A node without the key cannot take it. */
	n[4] = node(TNODE("node-nolabel", "{}"));
	p = pod(LPOD("p", "default", "{\"foo\": \"\"}", SPREAD("")));
	filter_all(&pl, p, n, 5, rc);
	assert_int_equal(rc[4], KB_SCHED_UNRESOLVABLE);
	assert_string_equal(reasons[4],
	    "node(s) didn't match pod topology spread constraints (missing required label)");
	kb_sched_pod_unref(p);

	/* ScheduleAnyway does not filter; no constraint skips. */
	p = pod(LPOD("p", "default", "{\"foo\": \"\"}",
	    SPREAD(", \"whenUnsatisfiable\": \"ScheduleAnyway\"")));
	filter_all(&pl, p, n, 5, rc);
	for (int i = 0; i < 5; i++)
		assert_int_equal(rc[i], KB_SCHED_SUCCESS);
	kb_sched_pod_unref(p);
	for (int i = 0; i < 5; i++)
		kb_sched_node_free(n[i]);
	unload(&pl);
}

static void test_spread_score(void **state)
{
	struct pol pl;
	assert_int_equal(load(&pl, "sched-podtopologyspread", NULL), 0);
	struct kb_sched_node *n[5];
	zone_nodes(n);
	place(n[0], LPOD("p-a1", "default", "{\"foo\": \"\"}", ""));
	place(n[1], LPOD("p-b1", "default", "{\"foo\": \"\"}", ""));
	place(n[3], LPOD("p-y1", "default", "{\"foo\": \"\"}", ""));
	n[4] = node(TNODE("node-nolabel", "{}"));
	struct kb_sched_pod *p = pod(LPOD("p", "default", "{\"foo\": \"\"}",
	    SPREAD(", \"whenUnsatisfiable\": \"ScheduleAnyway\"")));
	int64_t s[5];
	/* 2 domains: weight log(4); zone1 2 * 1.386 -> 3, zone2 -> 1;
	 * normalized 100 * (3 + 1 - s) / 3; the node without the key 0. */
	score(&pl, p, n, 5, s);
	assert_int_equal(s[0], 33);
	assert_int_equal(s[1], 33);
	assert_int_equal(s[2], 100);
	assert_int_equal(s[3], 100);
	assert_int_equal(s[4], 0);
	kb_sched_pod_unref(p);
	/* Per hostname: each node its own count: 1 * log(4 + 2) = 1.79 ->
	 * 2 on a, b, y; 0 on x: x 100, the others 100 * (2 + 0 - 2) / 2. */
	p = pod(LPOD("p", "default", "{\"foo\": \"\"}",
	    ", \"topologySpreadConstraints\": [{\"maxSkew\": 1, \"topologyKey\": \"kubernetes.io/hostname\","
	    " \"whenUnsatisfiable\": \"ScheduleAnyway\", \"labelSelector\": {\"matchLabels\": {\"foo\": \"\"}}}]"));
	score(&pl, p, n, 4, s);
	assert_int_equal(s[0], 0);
	assert_int_equal(s[2], 100);
	kb_sched_pod_unref(p);
	/* DoNotSchedule only: scoring skipped. */
	p = pod(LPOD("p", "default", "{\"foo\": \"\"}", SPREAD("")));
	score(&pl, p, n, 4, s);
	assert_int_equal(s[0] + s[1] + s[2] + s[3], 0);
	kb_sched_pod_unref(p);
	for (int i = 0; i < 5; i++)
		kb_sched_node_free(n[i]);
	unload(&pl);
}

/* --- sched-interpodaffinity ---------------------------------------------------------- */

#define AFF(kind, sel, key)                                                    \
	", \"affinity\": {\"" kind                                             \
	"\": {\"requiredDuringSchedulingIgnoredDuringExecution\": "            \
	"[{\"labelSelector\": " sel ", \"topologyKey\": \"" key "\"}]}}"

static void test_ipa_filter(void **state)
{
	struct pol pl;
	assert_int_equal(load(&pl, "sched-interpodaffinity", NULL), 0);
	struct kb_sched_node *n[4];
	zone_nodes(n);
	place(n[0], LPOD("db", "default", "{\"app\": \"db\"}", ""));
	int rc[4];

	/* Required affinity to app=db by zone: zone1 only. */
	struct kb_sched_pod *p = pod(LPOD("p", "default", "{\"app\": \"web\"}",
	    AFF("podAffinity", "{\"matchLabels\": {\"app\": \"db\"}}",
		"zone")));
	assert_int_equal(p->naffinity, 1);
	filter_all(&pl, p, n, 4, rc);
	assert_int_equal(rc[0], KB_SCHED_SUCCESS);
	assert_int_equal(rc[1], KB_SCHED_SUCCESS);
	assert_int_equal(rc[2], KB_SCHED_UNRESOLVABLE);
	assert_string_equal(reasons[2],
	    "node(s) didn't match pod affinity rules");
	kb_sched_pod_unref(p);

	/* Namespaces: the db pod is in `default`; a pod elsewhere does not
	 * see it, unless it names the namespace or selects all of them. */
	p = pod(LPOD("p", "other", "{\"app\": \"web\"}",
	    AFF("podAffinity", "{\"matchLabels\": {\"app\": \"db\"}}",
		"zone")));
	filter_all(&pl, p, n, 4, rc);
	assert_int_equal(rc[0], KB_SCHED_UNRESOLVABLE);
	kb_sched_pod_unref(p);
	p = pod(LPOD("p", "other", "{\"app\": \"web\"}",
	    ", \"affinity\": {\"podAffinity\": {\"requiredDuringSchedulingIgnoredDuringExecution\": "
	    "[{\"labelSelector\": {\"matchLabels\": {\"app\": \"db\"}}, \"topologyKey\": \"zone\", "
	    "\"namespaceSelector\": {}}]}}"));
	filter_all(&pl, p, n, 4, rc);
	assert_int_equal(rc[0], KB_SCHED_SUCCESS);
	assert_int_equal(rc[2], KB_SCHED_UNRESOLVABLE);
	kb_sched_pod_unref(p);
	p = pod(LPOD("p", "other", "{\"app\": \"web\"}",
	    ", \"affinity\": {\"podAffinity\": {\"requiredDuringSchedulingIgnoredDuringExecution\": "
	    "[{\"labelSelector\": {\"matchLabels\": {\"app\": \"db\"}}, \"topologyKey\": \"zone\", "
	    "\"namespaces\": [\"default\"]}]}}"));
	filter_all(&pl, p, n, 4, rc);
	assert_int_equal(rc[1], KB_SCHED_SUCCESS);
	kb_sched_pod_unref(p);

	/* Affinity to pods that exist nowhere: only the first of a group
	 * (a pod matching its own terms) passes. */
	p = pod(LPOD("p", "default", "{\"app\": \"web\"}",
	    AFF("podAffinity", "{\"matchLabels\": {\"app\": \"cache\"}}",
		"zone")));
	filter_all(&pl, p, n, 4, rc);
	assert_int_equal(rc[0], KB_SCHED_UNRESOLVABLE);
	kb_sched_pod_unref(p);
	p = pod(LPOD("p", "default", "{\"app\": \"cache\"}",
	    AFF("podAffinity", "{\"matchLabels\": {\"app\": \"cache\"}}",
		"zone")));
	filter_all(&pl, p, n, 4, rc);
	for (int i = 0; i < 4; i++)
		assert_int_equal(rc[i], KB_SCHED_SUCCESS);
	kb_sched_pod_unref(p);

	/* Required anti-affinity per host: not next to the db. */
	p = pod(LPOD("p", "default", "{\"app\": \"web\"}",
	    AFF("podAntiAffinity",
		"{\"matchExpressions\": [{\"key\": \"app\", \"operator\": \"In\", \"values\": [\"db\"]}]}",
		"kubernetes.io/hostname")));
	filter_all(&pl, p, n, 4, rc);
	assert_int_equal(rc[0], KB_SCHED_UNSCHEDULABLE);
	assert_string_equal(reasons[0],
	    "node(s) didn't match pod anti-affinity rules");
	assert_int_equal(rc[1], KB_SCHED_SUCCESS);
	assert_int_equal(rc[2], KB_SCHED_SUCCESS);
	kb_sched_pod_unref(p);

	/* Symmetry: an existing pod's anti-affinity keeps web pods out of
	 * its zone, though they say nothing themselves. */
	place(n[2],
	    LPOD("guard", "default", "{\"app\": \"guard\"}",
		AFF("podAntiAffinity", "{\"matchLabels\": {\"app\": \"web\"}}",
		    "zone")));
	assert_int_equal(n[2]->nanti_pods, 1);
	assert_int_equal(n[0]->nanti_pods, 0);
	p = pod(LPOD("p", "default", "{\"app\": \"web\"}", ""));
	filter_all(&pl, p, n, 4, rc);
	assert_int_equal(rc[0], KB_SCHED_SUCCESS);
	assert_int_equal(rc[2], KB_SCHED_UNSCHEDULABLE);
	assert_string_equal(reasons[2],
	    "node(s) didn't satisfy existing pods anti-affinity rules");
	assert_int_equal(rc[3], KB_SCHED_UNSCHEDULABLE);
	kb_sched_pod_unref(p);
	/* …only for pods of its namespace. */
	p = pod(LPOD("p", "other", "{\"app\": \"web\"}", ""));
	filter_all(&pl, p, n, 4, rc);
	assert_int_equal(rc[2], KB_SCHED_SUCCESS);
	kb_sched_pod_unref(p);
	for (int i = 0; i < 4; i++)
		kb_sched_node_free(n[i]);
	unload(&pl);
}

static void test_ipa_score(void **state)
{
	struct pol pl, hard0;
	assert_int_equal(load(&pl, "sched-interpodaffinity", NULL), 0);
	assert_int_equal(load(&hard0, "sched-interpodaffinity",
			     "hardPodAffinityWeight: 0\n"),
	    0);
	struct kb_sched_node *n[4];
	zone_nodes(n);
	place(n[0], LPOD("db", "default", "{\"app\": \"db\"}", ""));
	int64_t s[4];
	/* Preferred: affinity 5 to the db's zone, anti 3 to its host:
	 * node-a 2, node-b 5, zone2 0 -> 40, 100, 0. */
	struct kb_sched_pod *p = pod(LPOD("p", "default", "{\"app\": \"web\"}",
	    ", \"affinity\": {"
	    "\"podAffinity\": {\"preferredDuringSchedulingIgnoredDuringExecution\": [{\"weight\": 5, "
	    "  \"podAffinityTerm\": {\"labelSelector\": {\"matchLabels\": {\"app\": \"db\"}}, \"topologyKey\": \"zone\"}}]},"
	    "\"podAntiAffinity\": {\"preferredDuringSchedulingIgnoredDuringExecution\": [{\"weight\": 3, "
	    "  \"podAffinityTerm\": {\"labelSelector\": {\"matchLabels\": {\"app\": \"db\"}}, \"topologyKey\": \"kubernetes.io/hostname\"}}]}}"));
	score(&pl, p, n, 4, s);
	assert_int_equal(s[0], 40);
	assert_int_equal(s[1], 100);
	assert_int_equal(s[2], 0);
	assert_int_equal(s[3], 0);
	kb_sched_pod_unref(p);
	/* Existing pods' terms: a cache on node-x requires web pods in its
	 * zone (hardPodAffinityWeight 1) and prefers them off its host
	 * (anti, weight 10): zone2 +1, node-x -10. */
	place(n[2],
	    LPOD("cache", "default", "{\"app\": \"cache\"}",
		", \"affinity\": {"
		"\"podAffinity\": {\"requiredDuringSchedulingIgnoredDuringExecution\": "
		"  [{\"labelSelector\": {\"matchLabels\": {\"app\": \"web\"}}, \"topologyKey\": \"zone\"}]},"
		"\"podAntiAffinity\": {\"preferredDuringSchedulingIgnoredDuringExecution\": [{\"weight\": 10, "
		"  \"podAffinityTerm\": {\"labelSelector\": {\"matchLabels\": {\"app\": \"web\"}}, \"topologyKey\": \"kubernetes.io/hostname\"}}]}}"));
	assert_int_equal(n[2]->naffinity_pods, 1);
	p = pod(LPOD("p", "default", "{\"app\": \"web\"}", ""));
	/* raw: a 0, b 0, x 1 - 10 = -9, y 1: min -9, max 1 ->
	 * 90, 90, 0, 100. */
	score(&pl, p, n, 4, s);
	assert_int_equal(s[0], 90);
	assert_int_equal(s[1], 90);
	assert_int_equal(s[2], 0);
	assert_int_equal(s[3], 100);
	/* hardPodAffinityWeight 0: raw 0, 0, -10, 0. */
	score(&hard0, p, n, 4, s);
	assert_int_equal(s[0], 100);
	assert_int_equal(s[2], 0);
	assert_int_equal(s[3], 100);
	kb_sched_pod_unref(p);
	/* Nothing refers to this pod: skipped. */
	p = pod(LPOD("p", "default", "{\"app\": \"other\"}", ""));
	score(&pl, p, n, 4, s);
	assert_int_equal(s[0] + s[1] + s[2] + s[3], 0);
	kb_sched_pod_unref(p);
	struct pol bad;
	assert_int_not_equal(load(&bad, "sched-interpodaffinity",
				 "hardPodAffinityWeight: 101\n"),
	    0);
	assert_non_null(strstr(failed, "hardPodAffinityWeight"));
	for (int i = 0; i < 4; i++)
		kb_sched_node_free(n[i]);
	unload(&hard0);
	unload(&pl);
}

/* --- sched-nodeports ----------------------------------------------------------------- */

#define PPOD(name, ports)                                                      \
	"{\"metadata\": {\"name\": \"" name "\", \"namespace\": \"d\"}, "      \
	"\"spec\": {\"containers\": [{\"name\": \"c\", \"ports\": " ports      \
	"}]}}"

static void test_nodeports(void **state)
{
	struct pol pl;
	assert_int_equal(load(&pl, "sched-nodeports", NULL), 0);
	struct kb_sched_node *n = node(NODE("n", "") "}");
	struct kb_sched_pod *holder = pod(PPOD("holder",
	    "[{\"containerPort\": 80, \"hostPort\": 8080, \"hostIP\": \"10.0.0.1\"},"
	    " {\"containerPort\": 53, \"hostPort\": 53, \"protocol\": \"UDP\"}]"));
	assert_int_equal(kb_sched_node_add_pod(n, holder), 0);
	static const struct {
		const char *ports;
		int want;
	} cases[] = {
		{ "[]", KB_SCHED_SUCCESS },
		{ "[{\"containerPort\": 80}]",
		    KB_SCHED_SUCCESS }, /* no host port */
		{ "[{\"containerPort\": 80, \"hostPort\": 8080}]",
		    KB_SCHED_UNSCHEDULABLE },
		{ "[{\"containerPort\": 80, \"hostPort\": 8080, \"hostIP\": \"0.0.0.0\"}]",
		    KB_SCHED_UNSCHEDULABLE },
		{ "[{\"containerPort\": 80, \"hostPort\": 8080, \"hostIP\": \"10.0.0.1\"}]",
		    KB_SCHED_UNSCHEDULABLE },
		{ "[{\"containerPort\": 80, \"hostPort\": 8080, \"hostIP\": \"10.0.0.2\"}]",
		    KB_SCHED_SUCCESS },
		{ "[{\"containerPort\": 80, \"hostPort\": 8080, \"protocol\": \"UDP\"}]",
		    KB_SCHED_SUCCESS },
		{ "[{\"containerPort\": 53, \"hostPort\": 53}]",
		    KB_SCHED_SUCCESS }, /* TCP */
		{ "[{\"containerPort\": 53, \"hostPort\": 53, \"protocol\": \"UDP\"}]",
		    KB_SCHED_UNSCHEDULABLE },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char json[1024];
		snprintf(json, sizeof(json),
		    "{\"metadata\": {\"name\": \"p\"}, \"spec\": {\"containers\": "
		    "[{\"name\": \"c\", \"ports\": %s}]}}",
		    cases[i].ports);
		struct kb_sched_pod *p = pod(json);
		int got = filter(&pl, p, n);
		if (got != cases[i].want)
			fail_msg("case %zu (%s): got %d, want %d", i,
			    cases[i].ports, got, cases[i].want);
		if (got)
			assert_string_equal(reason,
			    "node(s) didn't have free ports for the requested pod ports");
		kb_sched_pod_unref(p);
	}
	kb_sched_node_free(n);
	kb_sched_pod_unref(holder);
	unload(&pl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_quantities),
		cmocka_unit_test(test_pod_parse),
		cmocka_unit_test(test_obj_copy_and_time),
		cmocka_unit_test(test_cycle_state),
		cmocka_unit_test(test_nodename),
		cmocka_unit_test(test_nodeunschedulable),
		cmocka_unit_test(test_taints_filter),
		cmocka_unit_test(test_taints_score),
		cmocka_unit_test(test_affinity_filter),
		cmocka_unit_test(test_affinity_score),
		cmocka_unit_test(test_resources_fit),
		cmocka_unit_test(test_resources_score),
		cmocka_unit_test(test_resources_config),
		cmocka_unit_test(test_nodeports),
		cmocka_unit_test(test_resources_ratio),
		cmocka_unit_test(test_balanced),
		cmocka_unit_test(test_spread_filter),
		cmocka_unit_test(test_spread_score),
		cmocka_unit_test(test_ipa_filter),
		cmocka_unit_test(test_ipa_score),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
