/* tests/unit/test_api_table.c — meta.k8s.io/v1 Tables
 * (plugins/apiserver/table.c): the JSON itself, ages, every printer's
 * cells, and what real kubectl prints from them, compared with what
 * kubectl prints against Kubernetes for the same objects.
 *
 * Fixture timestamps are written "@N": N seconds before the test runs.
 * The ages chosen stay the same for a minute or more, so a slow kubectl
 * does not change the expected text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "api_kubectl.h"


    /* --- fixtures ------------------------------------------------------------------------ */

    static void ago(long secs, char *buf, size_t len)
{
	time_t t = time(NULL) - secs;
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Replace every "@N" string with the time N seconds ago, in place. */
static void stamp(json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;
	char buf[32];
	if (json_is_object(j)) {
		json_object_foreach(j, k, v) {
			const char *s = json_string_value(v);
			if (s && s[0] == '@') {
				ago(atol(s + 1), buf, sizeof(buf));
				json_string_set(v, buf);
			}
			stamp(v);
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			stamp(v);
	}
}

static json_t *load(const char *text)
{
	json_error_t err;
	json_t *j = json_loads(text, 0, &err);
	if (j == NULL)
		fail_msg("fixture: %s at line %d: %s", err.text, err.line,
		    text);
	stamp(j);
	return j;
}

#define MD(name, ns, created)                                                  \
	"\"metadata\": {\"name\": \"" name "\", "                              \
	"\"namespace\": \"" ns "\", \"creationTimestamp\": \"" created         \
	"\", \"uid\": \"u-" name "\", \"resourceVersion\": \"7\", "            \
	"\"labels\": {\"app\": \"" name "\"}}"
#define CMD(name, created)                                                     \
	"\"metadata\": {\"name\": \"" name "\", "                              \
	"\"creationTimestamp\": \"" created "\"}"

static const char pods_json[] =
    "["
    /* running and ready */
    "{\"metadata\": {\"name\": \"web-1\", \"namespace\": \"default\", "
    "\"creationTimestamp\": \"@910\", \"resourceVersion\": \"7\", "
    "\"labels\": {\"app\": \"web\"}}, \"spec\": {\"nodeName\": "
    "\"node-1\", \"containers\": [{\"name\": \"c\"}]}, \"status\": {"
    "\"phase\": \"Running\", \"podIP\": \"10.244.0.5\", \"podIPs\": [{"
    "\"ip\": \"10.244.0.5\"}], \"conditions\": [{\"type\": \"Ready\", "
    "\"status\": \"True\"}], \"containerStatuses\": [{\"name\": \"c\", "
    "\"ready\": true, \"restartCount\": 0, \"state\": {\"running\": {}}}]}},"
    /* crash looping, restarted twice, last 15 minutes ago */
    "{" MD("crash", "default",
	"@7270") ", \"spec\": {\"nodeName\": "
		 "\"node-1\", \"containers\": [{\"name\": \"c\"}]}, \"status\": {"
		 "\"phase\": \"Running\", \"podIP\": \"10.244.0.6\", "
		 "\"containerStatuses\": [{\"name\": \"c\", \"ready\": false, "
		 "\"restartCount\": 2, \"state\": {\"waiting\": {\"reason\": "
		 "\"CrashLoopBackOff\"}}, \"lastState\": {\"terminated\": {"
		 "\"exitCode\": 1, \"finishedAt\": \"@910\"}}}]}},"
		 /* not scheduled yet, nominated by preemption */
		 "{" MD("pending", "default",
		     "@19810") ", \"spec\": {\"containers\": "
			       "[{\"name\": \"c\"}]}, \"status\": {\"phase\": \"Pending\", "
			       "\"nominatedNodeName\": \"node-3\"}},"
			       /* two containers being created */
			       "{" MD("creating", "default",
				   "@36010") ", \"spec\": {\"nodeName\": "
					     "\"node-1\", \"containers\": [{\"name\": \"a\"}, {\"name\": \"b\"}]}, "
					     "\"status\": {\"phase\": \"Pending\", \"containerStatuses\": ["
					     "{\"name\": \"a\", \"state\": {\"waiting\": {\"reason\": "
					     "\"ContainerCreating\"}}}, {\"name\": \"b\", \"state\": {\"waiting\": "
					     "{\"reason\": \"ContainerCreating\"}}}]}},"
					     /* ran to completion */
					     "{" MD("done", "default",
						 "@183610") ", \"spec\": {\"nodeName\": "
							    "\"node-2\", \"containers\": [{\"name\": \"c\"}]}, \"status\": {"
							    "\"phase\": \"Succeeded\", \"podIPs\": [{\"ip\": \"10.244.0.7\"}], "
							    "\"containerStatuses\": [{\"name\": \"c\", \"ready\": false, "
							    "\"state\": {\"terminated\": {\"exitCode\": 0, \"reason\": "
							    "\"Completed\"}}}]}},"
							    /* being deleted */
							    "{\"metadata\": {\"name\": \"term\", \"namespace\": \"default\", "
							    "\"creationTimestamp\": \"@910\", \"deletionTimestamp\": \"@10\"}, "
							    "\"spec\": {\"nodeName\": \"node-2\", \"containers\": [{\"name\": "
							    "\"c\"}]}, \"status\": {\"phase\": \"Running\", \"podIP\": "
							    "\"10.244.0.8\", \"containerStatuses\": [{\"name\": \"c\", \"ready\": "
							    "true, \"state\": {\"running\": {}}}]}},"
							    /* killed, no reason given */
							    "{" MD("failed",
								"default",
								"@864010") ", \"spec\": {\"nodeName\": "
									   "\"node-2\", \"containers\": [{\"name\": \"c\"}]}, \"status\": {"
									   "\"phase\": \"Failed\", \"containerStatuses\": [{\"name\": \"c\", "
									   "\"state\": {\"terminated\": {\"exitCode\": 137}}}]}},"
									   /* second of two init containers running; one readiness gate */
									   "{" MD("init",
									       "default",
									       "@95040010") ", \"spec\": {\"nodeName\": "
											    "\"node-1\", \"initContainers\": [{\"name\": \"i1\"}, {\"name\": "
											    "\"i2\"}], \"containers\": [{\"name\": \"c\"}], \"readinessGates\": "
											    "[{\"conditionType\": \"example.com/ready\"}]}, \"status\": {"
											    "\"phase\": \"Pending\", \"podIPs\": [{\"ip\": \"10.244.0.9\"}], "
											    "\"conditions\": [{\"type\": \"example.com/ready\", \"status\": "
											    "\"True\"}], \"initContainerStatuses\": [{\"name\": \"i1\", \"state\": "
											    "{\"terminated\": {\"exitCode\": 0}}}, {\"name\": \"i2\", \"state\": "
											    "{\"running\": {}}}], \"containerStatuses\": [{\"name\": \"c\", "
											    "\"state\": {\"waiting\": {\"reason\": \"PodInitializing\"}}}]}},"
											    /* elsewhere */
											    "{" MD("coredns",
												"kube-system",
												"@864010") ", \"spec\": {\"nodeName\": "
													   "\"node-1\", \"containers\": [{\"name\": \"c\"}]}, \"status\": {"
													   "\"phase\": \"Running\", \"podIPs\": [{\"ip\": \"10.244.0.2\"}], "
													   "\"containerStatuses\": [{\"name\": \"c\", \"ready\": true, "
													   "\"restartCount\": 1, \"state\": {\"running\": {}}}]}}"
													   "]";

static const char deployments_json[] =
    "["
    "{" MD("web", "default",
	"@910") ", \"spec\": {\"replicas\": 3, "
		"\"selector\": {\"matchLabels\": {\"app\": \"web\"}}, \"template\": {"
		"\"spec\": {\"containers\": [{\"name\": \"app\", \"image\": "
		"\"nginx:1.27\"}, {\"name\": \"sidecar\", \"image\": \"busybox\"}]}}}, "
		"\"status\": {\"replicas\": 3, \"readyReplicas\": 3, "
		"\"updatedReplicas\": 3, \"availableReplicas\": 3}},"
		"{" MD("api", "default",
		    "@7270") ", \"spec\": {\"replicas\": 2, "
			     "\"selector\": {\"matchLabels\": {\"tier\": \"backend\", \"app\": "
			     "\"api\"}, \"matchExpressions\": [{\"key\": \"env\", \"operator\": "
			     "\"In\", \"values\": [\"prod\", \"dev\"]}, {\"key\": \"canary\", "
			     "\"operator\": \"DoesNotExist\"}]}, \"template\": {\"spec\": {"
			     "\"containers\": [{\"name\": \"api\", \"image\": \"api:2\"}]}}}, "
			     "\"status\": {\"replicas\": 1, \"updatedReplicas\": 1}}"
			     "]";

static const char replicasets_json[] =
    "["
    "{" MD("web-5d8f", "default",
	"@910") ", \"spec\": {\"replicas\": 3, "
		"\"selector\": {\"matchLabels\": {\"app\": \"web\", "
		"\"pod-template-hash\": \"5d8f\"}}, \"template\": {\"spec\": {"
		"\"containers\": [{\"name\": \"app\", \"image\": \"nginx:1.27\"}]}}}, "
		"\"status\": {\"replicas\": 3, \"readyReplicas\": 2}}"
		"]";

static const char services_json[] =
    "["
    "{" MD("kubernetes", "default",
	"@864010") ", \"spec\": {\"type\": "
		   "\"ClusterIP\", \"clusterIP\": \"10.96.0.1\", \"clusterIPs\": ["
		   "\"10.96.0.1\"], \"ports\": [{\"port\": 443, \"protocol\": \"TCP\"}]}},"
		   "{" MD("web", "default",
		       "@910") ", \"spec\": {\"type\": \"NodePort\", "
			       "\"clusterIP\": \"10.96.12.34\", \"ports\": [{\"port\": 80, "
			       "\"nodePort\": 30080, \"protocol\": \"TCP\"}, {\"port\": 443, "
			       "\"nodePort\": 30443, \"protocol\": \"TCP\"}], \"selector\": {"
			       "\"tier\": \"front\", \"app\": \"web\"}}},"
			       "{" MD("lb", "default",
				   "@910") ", \"spec\": {\"type\": "
					   "\"LoadBalancer\", \"clusterIPs\": [\"10.96.7.7\"], \"ports\": [{"
					   "\"port\": 8080, \"nodePort\": 31000, \"protocol\": \"UDP\"}]}, "
					   "\"status\": {\"loadBalancer\": {\"ingress\": [{\"ip\": "
					   "\"203.0.113.9\"}]}}},"
					   "{" MD("pend", "default",
					       "@910") ", \"spec\": {\"type\": "
						       "\"LoadBalancer\", \"clusterIPs\": [\"10.96.7.8\"], \"ports\": [{"
						       "\"port\": 80, \"protocol\": \"TCP\"}]}},"
						       "{" MD("ext", "default",
							   "@910") ", \"spec\": {\"type\": "
								   "\"ExternalName\", \"externalName\": \"example.com\"}},"
								   "{" MD("headless",
								       "default",
								       "@910") ", \"spec\": {\"type\": "
									       "\"ClusterIP\", \"clusterIP\": \"None\", \"clusterIPs\": [\"None\"], "
									       "\"externalIPs\": [\"198.51.100.1\"], \"ports\": [{\"port\": 53, "
									       "\"protocol\": \"UDP\"}], \"selector\": {\"app\": \"dns\"}}}"
									       "]";

static const char nodes_json[] =
    "["
    "{\"metadata\": {\"name\": \"node-1\", \"creationTimestamp\": "
    "\"@864010\", \"labels\": {\"node-role.kubernetes.io/control-plane\": "
    "\"\", \"kubernetes.io/hostname\": \"node-1\"}}, \"status\": {"
    "\"conditions\": [{\"type\": \"MemoryPressure\", \"status\": "
    "\"False\"}, {\"type\": \"Ready\", \"status\": \"True\"}], "
    "\"addresses\": [{\"type\": \"InternalIP\", \"address\": "
    "\"192.168.1.10\"}, {\"type\": \"Hostname\", \"address\": "
    "\"node-1\"}], \"nodeInfo\": {\"kubeletVersion\": "
    "\"v1.32.0-kubus.1\", \"osImage\": \"Debian GNU/Linux 12 (bookworm)\", "
    "\"kernelVersion\": \"6.1.0-18-amd64\", \"containerRuntimeVersion\": "
    "\"runc://1.1.5\"}}},"
    "{\"metadata\": {\"name\": \"node-2\", \"creationTimestamp\": "
    "\"@19810\"}, \"spec\": {\"unschedulable\": true}, \"status\": {"
    "\"conditions\": [{\"type\": \"Ready\", \"status\": \"Unknown\"}], "
    "\"addresses\": [{\"type\": \"ExternalIP\", \"address\": "
    "\"203.0.113.2\"}, {\"type\": \"InternalIP\", \"address\": "
    "\"192.168.1.11\"}], \"nodeInfo\": {\"kubeletVersion\": "
    "\"v1.32.0-kubus.1\"}}},"
    "{\"metadata\": {\"name\": \"node-3\", \"creationTimestamp\": \"@910\", "
    "\"labels\": {\"kubernetes.io/role\": \"worker\", "
    "\"node-role.kubernetes.io/edge\": \"\"}}, \"status\": {}}"
    "]";

static const char namespaces_json[] =
    "["
    "{" CMD("default",
	"@864010") ", \"status\": {\"phase\": \"Active\"}},"
		   "{" CMD("kube-system",
		       "@864010") ", \"status\": {\"phase\": "
				  "\"Active\"}},"
				  "{" CMD("old",
				      "@910") ", \"status\": {\"phase\": \"Terminating\"}}"
					      "]";

static const char configmaps_json[] =
    "["
    "{" MD("kube-root-ca.crt", "default",
	"@864010") ", \"data\": {"
		   "\"ca.crt\": \"x\"}},"
		   "{" MD("app-config", "default",
		       "@910") ", \"data\": {\"a\": \"1\", "
			       "\"b\": \"2\"}, \"binaryData\": {\"c\": \"AA==\"}},"
			       "{" MD("empty", "default", "@910") "}"
								  "]";

static const char secrets_json[] =
    "["
    "{" MD("tls", "default",
	"@910") ", \"type\": \"kubernetes.io/tls\", "
		"\"data\": {\"tls.crt\": \"AA==\", \"tls.key\": \"AA==\"}},"
		"{" MD("opaque", "default", "@7270") ", \"type\": \"Opaque\"}"
						     "]";

static const char serviceaccounts_json[] =
    "["
    "{" MD("default", "default",
	"@864010") "},"
		   "{" MD("builder", "default",
		       "@910") ", \"secrets\": [{\"name\": "
			       "\"builder-token\"}]}"
			       "]";

static const char endpoints_json[] =
    "["
    "{" MD("kubernetes", "default",
	"@864010") ", \"subsets\": [{"
		   "\"addresses\": [{\"ip\": \"192.168.1.10\"}], \"ports\": [{\"port\": "
		   "6443}]}]},"
		   "{" MD("web", "default",
		       "@910") ", \"subsets\": [{\"addresses\": ["
			       "{\"ip\": \"10.244.0.5\"}, {\"ip\": \"10.244.0.6\"}], \"ports\": [{"
			       "\"name\": \"http\", \"port\": 80}, {\"name\": \"https\", \"port\": "
			       "443}]}]},"
			       "{" MD("none", "default",
				   "@910") "},"
					   "{" MD("headless", "default",
					       "@910") ", \"subsets\": [{\"addresses\": "
						       "[{\"ip\": \"10.244.0.9\"}]}]}"
						       "]";

static const char endpointslices_json[] =
    "["
    "{" MD("web-abc", "default",
	"@910") ", \"addressType\": \"IPv4\", "
		"\"ports\": [{\"name\": \"http\", \"port\": 80}, {\"name\": "
		"\"metrics\"}, {}], \"endpoints\": [{\"addresses\": [\"10.244.0.5\"]}, "
		"{\"addresses\": [\"10.244.0.6\"]}]},"
		"{" MD("big-xyz", "default",
		    "@910") ", \"addressType\": \"IPv4\", "
			    "\"ports\": [{\"port\": 1}, {\"port\": 2}, {\"port\": 3}, {\"port\": "
			    "4}, {\"port\": 5}], \"endpoints\": [{\"addresses\": [\"10.0.0.1\", "
			    "\"10.0.0.2\", \"10.0.0.3\", \"10.0.0.4\"]}]},"
			    "{" MD("empty-q", "default",
				"@910") ", \"addressType\": \"IPv6\"}"
					"]";

static const char events_json[] =
    "["
    "{" MD("web-1.17a", "default",
	"@7270") ", \"type\": \"Normal\", "
		 "\"reason\": \"Scheduled\", \"involvedObject\": {\"kind\": \"Pod\", "
		 "\"name\": \"web-1\", \"namespace\": \"default\"}, \"message\": "
		 "\"Successfully assigned default/web-1 to node-1\", \"source\": {"
		 "\"component\": \"default-scheduler\"}, \"firstTimestamp\": "
		 "\"@7270\", \"lastTimestamp\": \"@7270\", \"count\": 1},"
		 "{" MD("crash.17b", "default",
		     "@7270") ", \"type\": \"Warning\", "
			      "\"reason\": \"BackOff\", \"involvedObject\": {\"kind\": \"Pod\", "
			      "\"name\": \"crash\", \"fieldPath\": \"spec.containers{c}\"}, "
			      "\"message\": \"Back-off restarting failed container c\\n\", "
			      "\"source\": {\"component\": \"kubelet\", \"host\": \"node-1\"}, "
			      "\"firstTimestamp\": \"@7270\", \"lastTimestamp\": \"@910\", "
			      "\"count\": 7},"
			      "{" MD("node-1.17c", "default",
				  "@36010") ", \"type\": \"Normal\", "
					    "\"reason\": \"RegisteredNode\", \"involvedObject\": {\"kind\": "
					    "\"Node\", \"name\": \"node-1\"}, \"message\": \"Node node-1 event\", "
					    "\"eventTime\": \"@36010\", \"reportingComponent\": "
					    "\"node-controller\", \"reportingInstance\": \"cp-1\"},"
					    "{" MD("web.17d", "default",
						"@19810") ", \"type\": \"Normal\", "
							  "\"reason\": \"ScalingReplicaSet\", \"involvedObject\": {\"kind\": "
							  "\"Deployment\", \"name\": \"web\"}, \"message\": \"Scaled up\", "
							  "\"firstTimestamp\": \"@36010\", \"series\": {\"count\": 4, "
							  "\"lastObservedTime\": \"@19810\"}}"
							  "]";

static const char leases_json[] =
    "["
    "{" MD("node-1", "kube-node-lease",
	"@864010") ", \"spec\": {"
		   "\"holderIdentity\": \"node-1\"}},"
		   "{" MD("kube-scheduler", "kube-system",
		       "@7270") ", \"spec\": {}}"
				"]";

/* plural -> its fixtures */
static json_t *fixtures;

static void load_fixtures(void)
{
	static const struct {
		const char *plural, *text;
	} all[] = {
		{ "pods", pods_json },
		{ "deployments", deployments_json },
		{ "replicasets", replicasets_json },
		{ "services", services_json },
		{ "nodes", nodes_json },
		{ "namespaces", namespaces_json },
		{ "configmaps", configmaps_json },
		{ "secrets", secrets_json },
		{ "serviceaccounts", serviceaccounts_json },
		{ "endpoints", endpoints_json },
		{ "endpointslices", endpointslices_json },
		{ "events", events_json },
		{ "leases", leases_json },
	};
	fixtures = json_object();
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		json_object_set_new(fixtures, all[i].plural, load(all[i].text));
}

static const struct api_resource *res(const char *group, const char *plural)
{
	const struct api_resource *r = api_resource_find(group, "v1", plural);
	assert_non_null(r);
	return r;
}

/* The fixture called `name` of a resource (borrowed). */
static json_t *fixture(const char *plural, const char *name)
{
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(fixtures, plural), i, o) {
		const char *n = json_string_value(
		    json_object_get(json_object_get(o, "metadata"), "name"));
		if (!strcmp(n, name))
			return o;
	}
	fail_msg("no fixture %s/%s", plural, name);
	return NULL;
}

/* The cells of one object's row (caller frees). */
static json_t *cells_of(const char *group, const char *plural, const char *name)
{
	json_t *row = api_table_row(res(group, plural), fixture(plural, name));
	json_t *cells = json_incref(json_object_get(row, "cells"));
	json_decref(row);
	assert_int_equal(json_array_size(cells), res(group, plural)->ncolumns);
	return cells;
}

static const char *cell(const json_t *cells, size_t i)
{
	const char *s = json_string_value(json_array_get(cells, i));
	if (s == NULL)
		fail_msg("cell %zu is not a string", i);
	return s;
}

static json_int_t icell(const json_t *cells, size_t i)
{
	json_t *v = json_array_get(cells, i);
	if (!json_is_integer(v))
		fail_msg("cell %zu is not an integer", i);
	return json_integer_value(v);
}

/* --- ages ------------------------------------------------------------------------------- */

static void check_age(long secs, const char *want)
{
	char ts[32], got[32];
	ago(secs, ts, sizeof(ts));
	api_age(ts, got, sizeof(got));
	if (strcmp(got, want))
		fail_msg("%ld seconds: got %s, want %s", secs, got, want);
}

static void test_age(void **state)
{
	(void)state;
	/* each value well inside its bracket, so a slow run cannot move it */
	check_age(5, "5s");
	check_age(100, "100s");
	check_age(150, "2m30s");
	check_age(300 + 20, "5m20s");
	check_age(900 + 10, "15m");
	check_age(2 * 3600 + 30, "120m");
	check_age(3 * 3600 + 10, "3h");
	check_age(3 * 3600 + 1810, "3h30m");
	check_age(10 * 3600 + 10, "10h");
	check_age(47 * 3600 + 10, "47h");
	check_age(2 * 86400 + 10, "2d");
	check_age(2 * 86400 + 5 * 3600 + 10, "2d5h");
	check_age(30 * 86400 + 10, "30d");
	check_age(800 * 86400L + 10, "2y70d");
	check_age(3 * 365 * 86400L + 10, "3y");
	check_age(9 * 365 * 86400L + 10, "9y");
	/* a clock a little behind is "0s"; far behind is invalid */
	check_age(-1, "0s");
	check_age(-30, "<invalid>");
	char buf[32];
	api_age(NULL, buf, sizeof(buf));
	assert_string_equal(buf, "<unknown>");
	api_age("yesterday", buf, sizeof(buf));
	assert_string_equal(buf, "<unknown>");
	api_age("2024-01-01T00:00:00", buf, sizeof(buf));
	assert_string_equal(buf, "<unknown>");
	/* offsets and fractions */
	time_t t = time(NULL) - 3 * 86400 - 100;
	struct tm tm;
	char z[40], off[40], frac[40], got[32];
	gmtime_r(&t, &tm);
	strftime(z, sizeof(z), "%Y-%m-%dT%H:%M:%SZ", &tm);
	api_age(z, buf, sizeof(buf));
	time_t t2 = t + 2 * 3600;
	gmtime_r(&t2, &tm);
	strftime(off, sizeof(off), "%Y-%m-%dT%H:%M:%S+02:00", &tm);
	api_age(off, got, sizeof(got));
	assert_string_equal(got, buf);
	gmtime_r(&t, &tm);
	strftime(frac, sizeof(frac), "%Y-%m-%dT%H:%M:%S.123456Z", &tm);
	api_age(frac, got, sizeof(got));
	assert_string_equal(got, buf);
}

/* --- the Table JSON ------------------------------------------------------------------------ */

static void test_table_json(void **state)
{
	(void)state;
	const struct api_resource *pods = res("", "pods");
	json_t *items = json_object_get(fixtures, "pods");
	json_t *t = api_table(pods, items, "1234", "next-page", false);
	assert_string_equal(json_string_value(json_object_get(t, "kind")),
	    "Table");
	assert_string_equal(json_string_value(json_object_get(t, "apiVersion")),
	    "meta.k8s.io/v1");
	json_t *md = json_object_get(t, "metadata");
	assert_string_equal(json_string_value(
				json_object_get(md, "resourceVersion")),
	    "1234");
	assert_string_equal(json_string_value(json_object_get(md, "continue")),
	    "next-page");
	json_t *cols = json_object_get(t, "columnDefinitions");
	assert_int_equal(json_array_size(cols), 9);
	json_t *c0 = json_array_get(cols, 0), *c5 = json_array_get(cols, 5);
	assert_string_equal(json_string_value(json_object_get(c0, "name")),
	    "Name");
	assert_string_equal(json_string_value(json_object_get(c0, "format")),
	    "name");
	assert_int_equal(json_integer_value(json_object_get(c0, "priority")),
	    0);
	assert_non_null(json_object_get(c0, "description"));
	assert_string_equal(json_string_value(json_object_get(c5, "name")),
	    "IP");
	assert_int_equal(json_integer_value(json_object_get(c5, "priority")),
	    1);
	json_t *rows = json_object_get(t, "rows");
	assert_int_equal(json_array_size(rows), json_array_size(items));
	json_t *r0 = json_array_get(rows, 0);
	json_t *obj = json_object_get(r0, "object");
	assert_string_equal(json_string_value(json_object_get(obj, "kind")),
	    "PartialObjectMetadata");
	assert_string_equal(json_string_value(
				json_object_get(obj, "apiVersion")),
	    "meta.k8s.io/v1");
	/* all of the metadata, nothing else */
	assert_true(json_equal(json_object_get(obj, "metadata"),
	    json_object_get(json_array_get(items, 0), "metadata")));
	assert_null(json_object_get(obj, "spec"));
	assert_null(json_object_get(r0, "conditions"));
	/* a finished pod's row says so */
	json_t *done = json_array_get(rows, 4);
	json_t *cond = json_array_get(json_object_get(done, "conditions"), 0);
	assert_string_equal(json_string_value(json_object_get(cond, "type")),
	    "Completed");
	assert_string_equal(json_string_value(json_object_get(cond, "reason")),
	    "Succeeded");
	json_decref(t);

	/* no continue, full objects, an empty list */
	t = api_table(pods, items, "9", NULL, true);
	assert_null(
	    json_object_get(json_object_get(t, "metadata"), "continue"));
	obj = json_object_get(json_array_get(json_object_get(t, "rows"), 0),
	    "object");
	assert_true(json_equal(obj, json_array_get(items, 0)));
	json_decref(t);
	json_t *empty = json_array();
	t = api_table(pods, empty, "9", NULL, false);
	assert_int_equal(json_array_size(json_object_get(t, "rows")), 0);
	assert_int_equal(json_array_size(
			     json_object_get(t, "columnDefinitions")),
	    9);
	json_decref(t);
	json_decref(empty);

	/* one object: its own resourceVersion */
	t = api_table(pods, json_array_get(items, 0), NULL, NULL, false);
	assert_string_equal(json_string_value(
				json_object_get(json_object_get(t, "metadata"),
				    "resourceVersion")),
	    "7");
	assert_int_equal(json_array_size(json_object_get(t, "rows")), 1);
	json_decref(t);

	/* no printer: Name and Age */
	const struct api_resource *ssar =
	    res("authorization.k8s.io", "selfsubjectaccessreviews");
	t = api_table(ssar, json_array_get(items, 0), "1", NULL, false);
	cols = json_object_get(t, "columnDefinitions");
	assert_int_equal(json_array_size(cols), 2);
	json_t *cells =
	    json_object_get(json_array_get(json_object_get(t, "rows"), 0),
		"cells");
	assert_string_equal(json_string_value(json_array_get(cells, 0)),
	    "web-1");
	assert_string_equal(json_string_value(json_array_get(cells, 1)), "15m");
	json_decref(t);
}

/* Any object, however odd, gets one cell per column. */
static void test_rows_total(void **state)
{
	(void)state;
	static const char *const odd[] = { "{}", "[]", "null", "7",
		"{\"metadata\": 5, \"spec\": \"x\", \"status\": []}",
		"{\"spec\": {\"containers\": 1, \"ports\": {}, \"selector\": "
		"[], \"template\": 3}, \"status\": {\"conditions\": {}, "
		"\"containerStatuses\": [1, null, {\"state\": 2}], "
		"\"initContainerStatuses\": [\"x\"]}, \"subsets\": [{"
		"\"ports\": [1], \"addresses\": [2]}], \"endpoints\": [3], "
		"\"series\": {}, \"involvedObject\": 4}",
		"{\"metadata\": {\"name\": \"\\u00e9\", \"labels\": "
		"{\"node-role.kubernetes.io/\": \"\"}}, \"data\": [1, 2]}" };
	for (size_t i = 0; i < api_nresources; i++) {
		const struct api_resource *r = &api_resources[i];
		for (size_t j = 0; j < sizeof(odd) / sizeof(odd[0]); j++) {
			json_t *o = json_loads(odd[j], JSON_DECODE_ANY, NULL);
			assert_non_null(o);
			json_t *row = api_table_row(r, o);
			size_t want = r->columns ? r->ncolumns : 2;
			json_t *cells = json_object_get(row, "cells");
			if (json_array_size(cells) != want)
				fail_msg("%s with %s: %zu cells, want %zu",
				    r->plural, odd[j], json_array_size(cells),
				    want);
			json_decref(row);
			json_decref(o);
		}
	}
}

/* --- the printers' cells ------------------------------------------------------------------- */

static void check_pod(const char *name, const char *ready, const char *status,
    const char *restarts, const char *ip, const char *node,
    const char *nominated, const char *gates)
{
	json_t *c = cells_of("", "pods", name);
	assert_string_equal(cell(c, 0), name);
	assert_string_equal(cell(c, 1), ready);
	assert_string_equal(cell(c, 2), status);
	assert_string_equal(cell(c, 3), restarts);
	assert_string_equal(cell(c, 5), ip);
	assert_string_equal(cell(c, 6), node);
	assert_string_equal(cell(c, 7), nominated);
	assert_string_equal(cell(c, 8), gates);
	json_decref(c);
}

static void test_pod_cells(void **state)
{
	(void)state;
	check_pod("web-1", "1/1", "Running", "0", "10.244.0.5", "node-1",
	    "<none>", "<none>");
	check_pod("crash", "0/1", "CrashLoopBackOff", "2 (15m ago)",
	    "10.244.0.6", "node-1", "<none>", "<none>");
	check_pod("pending", "0/1", "Pending", "0", "<none>", "<none>",
	    "node-3", "<none>");
	check_pod("creating", "0/2", "ContainerCreating", "0", "<none>",
	    "node-1", "<none>", "<none>");
	check_pod("done", "0/1", "Completed", "0", "10.244.0.7", "node-2",
	    "<none>", "<none>");
	check_pod("term", "1/1", "Terminating", "0", "10.244.0.8", "node-2",
	    "<none>", "<none>");
	check_pod("failed", "0/1", "ExitCode:137", "0", "<none>", "node-2",
	    "<none>", "<none>");
	check_pod("init", "0/1", "Init:1/2", "0", "10.244.0.9", "node-1",
	    "<none>", "1/1");
}

/* Statuses that need their own pod. */
static void check_status(const char *pod_json, const char *want_ready,
    const char *want_status)
{
	json_t *pod = load(pod_json);
	json_t *row = api_table_row(res("", "pods"), pod);
	json_t *c = json_object_get(row, "cells");
	assert_string_equal(cell(c, 1), want_ready);
	assert_string_equal(cell(c, 2), want_status);
	json_decref(row);
	json_decref(pod);
}

static void test_pod_statuses(void **state)
{
	(void)state;
	/* failed init container, with and without a reason */
	check_status(
	    "{\"spec\": {\"initContainers\": [{\"name\": \"i\"}], "
	    "\"containers\": [{}]}, \"status\": {\"phase\": \"Pending\", "
	    "\"initContainerStatuses\": [{\"name\": \"i\", \"state\": {"
	    "\"terminated\": {\"exitCode\": 1, \"reason\": \"Error\"}}}]}}",
	    "0/1", "Init:Error");
	check_status("{\"spec\": {\"initContainers\": [{\"name\": \"i\"}], "
		     "\"containers\": [{}]}, \"status\": {\"phase\": \"Pending\", "
		     "\"initContainerStatuses\": [{\"name\": \"i\", \"state\": {"
		     "\"terminated\": {\"exitCode\": 2, \"signal\": 9}}}]}}",
	    "0/1", "Init:Signal:9");
	check_status("{\"spec\": {\"initContainers\": [{\"name\": \"i\"}], "
		     "\"containers\": [{}]}, \"status\": {\"phase\": \"Pending\", "
		     "\"initContainerStatuses\": [{\"name\": \"i\", \"state\": {"
		     "\"waiting\": {\"reason\": \"ImagePullBackOff\"}}}]}}",
	    "0/1", "Init:ImagePullBackOff");
	/* a running sidecar (restartable init container) counts as ready */
	check_status(
	    "{\"spec\": {\"initContainers\": [{\"name\": \"s\", "
	    "\"restartPolicy\": \"Always\"}], \"containers\": [{\"name\": "
	    "\"c\"}]}, \"status\": {\"phase\": \"Running\", \"conditions\": "
	    "[{\"type\": \"Initialized\", \"status\": \"True\"}], "
	    "\"initContainerStatuses\": [{\"name\": \"s\", \"started\": true, "
	    "\"ready\": true, \"state\": {\"running\": {}}}], "
	    "\"containerStatuses\": [{\"name\": \"c\", \"ready\": true, "
	    "\"state\": {\"running\": {}}}]}}",
	    "2/2", "Running");
	/* the last container completed, another still runs */
	check_status(
	    "{\"spec\": {\"containers\": [{}, {}]}, \"status\": {"
	    "\"phase\": \"Running\", \"conditions\": [{\"type\": \"Ready\", "
	    "\"status\": \"False\"}], \"containerStatuses\": [{\"ready\": true, "
	    "\"state\": {\"running\": {}}}, {\"state\": {\"terminated\": {"
	    "\"exitCode\": 0, \"reason\": \"Completed\"}}}]}}",
	    "1/2", "NotReady");
	/* scheduling gates; the pod's own reason; lost node */
	check_status("{\"spec\": {\"containers\": [{}]}, \"status\": {"
		     "\"phase\": \"Pending\", \"conditions\": [{\"type\": "
		     "\"PodScheduled\", \"status\": \"False\", \"reason\": "
		     "\"SchedulingGated\"}]}}",
	    "0/1", "SchedulingGated");
	check_status("{\"spec\": {\"containers\": [{}]}, \"status\": {"
		     "\"phase\": \"Failed\", \"reason\": \"Evicted\"}}",
	    "0/1", "Evicted");
	check_status(
	    "{\"metadata\": {\"deletionTimestamp\": "
	    "\"2024-01-01T00:00:00Z\"}, \"spec\": {\"containers\": [{}]}, "
	    "\"status\": {\"phase\": \"Running\", \"reason\": \"NodeLost\"}}",
	    "0/1", "Unknown");
	/* a finished pod being deleted is not "Terminating" */
	check_status("{\"metadata\": {\"deletionTimestamp\": "
		     "\"2024-01-01T00:00:00Z\"}, \"spec\": {\"containers\": [{}]}, "
		     "\"status\": {\"phase\": \"Succeeded\"}}",
	    "0/1", "Succeeded");
	check_status("{\"spec\": {\"containers\": [{}]}, \"status\": {"
		     "\"containerStatuses\": [{\"state\": {\"terminated\": {"
		     "\"exitCode\": 0, \"signal\": 15}}}]}}",
	    "0/1", "Signal:15");
}

static void test_workload_cells(void **state)
{
	(void)state;
	json_t *c = cells_of("apps", "deployments", "web");
	assert_string_equal(cell(c, 1), "3/3");
	assert_int_equal(icell(c, 2), 3);
	assert_int_equal(icell(c, 3), 3);
	assert_string_equal(cell(c, 5), "app,sidecar");
	assert_string_equal(cell(c, 6), "nginx:1.27,busybox");
	assert_string_equal(cell(c, 7), "app=web");
	json_decref(c);
	c = cells_of("apps", "deployments", "api");
	assert_string_equal(cell(c, 1), "0/2");
	assert_int_equal(icell(c, 2), 1);
	assert_int_equal(icell(c, 3), 0);
	/* sorted by key, whatever the operator */
	assert_string_equal(cell(c, 7),
	    "app=api,!canary,env in (dev,prod),tier=backend");
	json_decref(c);
	c = cells_of("apps", "replicasets", "web-5d8f");
	assert_int_equal(icell(c, 1), 3);
	assert_int_equal(icell(c, 2), 3);
	assert_int_equal(icell(c, 3), 2);
	assert_string_equal(cell(c, 7), "app=web,pod-template-hash=5d8f");
	json_decref(c);
	/* no selector: empty for deployments, <none> for replica sets */
	json_t *bare = load("{\"spec\": {}}");
	json_t *row = api_table_row(res("apps", "replicasets"), bare);
	assert_string_equal(cell(json_object_get(row, "cells"), 7), "<none>");
	assert_int_equal(icell(json_object_get(row, "cells"), 1), 1);
	json_decref(row);
	row = api_table_row(res("apps", "deployments"), bare);
	assert_string_equal(cell(json_object_get(row, "cells"), 7), "");
	assert_string_equal(cell(json_object_get(row, "cells"), 1), "0/1");
	json_decref(row);
	json_decref(bare);
	bare = load("{\"spec\": {\"selector\": {\"matchExpressions\": [{"
		    "\"key\": \"a\", \"operator\": \"Bogus\"}]}}}");
	row = api_table_row(res("apps", "deployments"), bare);
	assert_string_equal(cell(json_object_get(row, "cells"), 7),
	    "<invalid>");
	json_decref(row);
	json_decref(bare);
}

static void check_service(const char *name, const char *type, const char *cip,
    const char *eip, const char *ports, const char *sel)
{
	json_t *c = cells_of("", "services", name);
	assert_string_equal(cell(c, 1), type);
	assert_string_equal(cell(c, 2), cip);
	assert_string_equal(cell(c, 3), eip);
	assert_string_equal(cell(c, 4), ports);
	assert_string_equal(cell(c, 6), sel);
	json_decref(c);
}

static void test_service_cells(void **state)
{
	(void)state;
	check_service("kubernetes", "ClusterIP", "10.96.0.1", "<none>",
	    "443/TCP", "<none>");
	check_service("web", "NodePort", "10.96.12.34", "<none>",
	    "80:30080/TCP,443:30443/TCP", "app=web,tier=front");
	check_service("lb", "LoadBalancer", "10.96.7.7", "203.0.113.9",
	    "8080:31000/UDP", "<none>");
	check_service("pend", "LoadBalancer", "10.96.7.8", "<pending>",
	    "80/TCP", "<none>");
	check_service("ext", "ExternalName", "<none>", "example.com", "<none>",
	    "<none>");
	check_service("headless", "ClusterIP", "None", "198.51.100.1", "53/UDP",
	    "app=dns");
}

static void test_node_cells(void **state)
{
	(void)state;
	json_t *c = cells_of("", "nodes", "node-1");
	assert_string_equal(cell(c, 1), "Ready");
	assert_string_equal(cell(c, 2), "control-plane");
	assert_string_equal(cell(c, 3), "10d");
	assert_string_equal(cell(c, 4), "v1.32.0-kubus.1");
	assert_string_equal(cell(c, 5), "192.168.1.10");
	assert_string_equal(cell(c, 6), "<none>");
	assert_string_equal(cell(c, 7), "Debian GNU/Linux 12 (bookworm)");
	assert_string_equal(cell(c, 8), "6.1.0-18-amd64");
	assert_string_equal(cell(c, 9), "runc://1.1.5");
	json_decref(c);
	c = cells_of("", "nodes", "node-2");
	assert_string_equal(cell(c, 1), "NotReady,SchedulingDisabled");
	assert_string_equal(cell(c, 2), "<none>");
	assert_string_equal(cell(c, 5), "192.168.1.11");
	assert_string_equal(cell(c, 6), "203.0.113.2");
	assert_string_equal(cell(c, 7), "<unknown>");
	json_decref(c);
	c = cells_of("", "nodes", "node-3");
	assert_string_equal(cell(c, 1), "Unknown");
	assert_string_equal(cell(c, 2), "edge,worker");
	assert_string_equal(cell(c, 4), "");
	json_decref(c);
}

static void test_small_cells(void **state)
{
	(void)state;
	json_t *c = cells_of("", "namespaces", "old");
	assert_string_equal(cell(c, 1), "Terminating");
	json_decref(c);
	c = cells_of("", "configmaps", "app-config");
	assert_int_equal(icell(c, 1), 3);
	json_decref(c);
	c = cells_of("", "configmaps", "empty");
	assert_int_equal(icell(c, 1), 0);
	json_decref(c);
	c = cells_of("", "secrets", "tls");
	assert_string_equal(cell(c, 1), "kubernetes.io/tls");
	assert_int_equal(icell(c, 2), 2);
	json_decref(c);
	c = cells_of("", "serviceaccounts", "builder");
	assert_int_equal(icell(c, 1), 1);
	json_decref(c);
	c = cells_of("coordination.k8s.io", "leases", "node-1");
	assert_string_equal(cell(c, 1), "node-1");
	json_decref(c);
	c = cells_of("coordination.k8s.io", "leases", "kube-scheduler");
	assert_string_equal(cell(c, 1), "");
	json_decref(c);
}

static void test_endpoint_cells(void **state)
{
	(void)state;
	json_t *c = cells_of("", "endpoints", "kubernetes");
	assert_string_equal(cell(c, 1), "192.168.1.10:6443");
	json_decref(c);
	c = cells_of("", "endpoints", "web");
	assert_string_equal(cell(c, 1),
	    "10.244.0.5:80,10.244.0.6:80,10.244.0.5:443 + 1 more...");
	json_decref(c);
	c = cells_of("", "endpoints", "none");
	assert_string_equal(cell(c, 1), "<none>");
	json_decref(c);
	c = cells_of("", "endpoints", "headless");
	assert_string_equal(cell(c, 1), "10.244.0.9");
	json_decref(c);
	c = cells_of("discovery.k8s.io", "endpointslices", "web-abc");
	assert_string_equal(cell(c, 1), "IPv4");
	assert_string_equal(cell(c, 2), "80,metrics,*");
	assert_string_equal(cell(c, 3), "10.244.0.5,10.244.0.6");
	json_decref(c);
	c = cells_of("discovery.k8s.io", "endpointslices", "big-xyz");
	assert_string_equal(cell(c, 2), "1,2,3 + 2 more...");
	assert_string_equal(cell(c, 3),
	    "10.0.0.1,10.0.0.2,10.0.0.3 + 1 more...");
	json_decref(c);
	c = cells_of("discovery.k8s.io", "endpointslices", "empty-q");
	assert_string_equal(cell(c, 2), "<unset>");
	assert_string_equal(cell(c, 3), "<unset>");
	json_decref(c);
}

static void test_event_cells(void **state)
{
	(void)state;
	json_t *c = cells_of("", "events", "crash.17b");
	assert_string_equal(cell(c, 0), "15m");
	assert_string_equal(cell(c, 1), "Warning");
	assert_string_equal(cell(c, 2), "BackOff");
	assert_string_equal(cell(c, 3), "pod/crash");
	assert_string_equal(cell(c, 4), "spec.containers{c}");
	assert_string_equal(cell(c, 5), "kubelet, node-1");
	assert_string_equal(cell(c, 6),
	    "Back-off restarting failed container c");
	assert_string_equal(cell(c, 7), "121m");
	assert_int_equal(icell(c, 8), 7);
	assert_string_equal(cell(c, 9), "crash.17b");
	json_decref(c);
	/* only eventTime, no count: a singleton from the new API */
	c = cells_of("", "events", "node-1.17c");
	assert_string_equal(cell(c, 0), "10h");
	assert_string_equal(cell(c, 3), "node/node-1");
	assert_string_equal(cell(c, 5), "node-controller, cp-1");
	assert_string_equal(cell(c, 7), "10h");
	assert_int_equal(icell(c, 8), 1);
	json_decref(c);
	/* a series has the last word */
	c = cells_of("", "events", "web.17d");
	assert_string_equal(cell(c, 0), "5h30m");
	assert_string_equal(cell(c, 7), "10h");
	assert_int_equal(icell(c, 8), 4);
	json_decref(c);
	/* events.k8s.io names the same things differently */
	json_t *ev = load(
	    "{\"metadata\": {\"name\": \"n\"}, \"type\": "
	    "\"Normal\", \"reason\": \"R\", \"regarding\": {\"kind\": "
	    "\"ReplicaSet\", \"name\": \"rs\"}, \"note\": \" hi \", "
	    "\"reportingController\": \"ctl\", \"eventTime\": \"@7270\", "
	    "\"deprecatedCount\": 3}");
	json_t *row = api_table_row(res("events.k8s.io", "events"), ev);
	c = json_object_get(row, "cells");
	assert_string_equal(cell(c, 0), "121m");
	assert_string_equal(cell(c, 3), "replicaset/rs");
	assert_string_equal(cell(c, 5), "ctl");
	assert_string_equal(cell(c, 6), "hi");
	assert_int_equal(icell(c, 8), 3);
	json_decref(row);
	json_decref(ev);
}

/* --- real kubectl ---------------------------------------------------------------------------- */

/* "/api/v1/namespaces/default/pods" -> group "", plural "pods", ns
 * "default", name NULL. */
static bool parse_path(const char *path, char *group, char *plural, char *ns,
    char *name)
{
	char seg[6][128];
	int n;
	group[0] = ns[0] = name[0] = '\0';
	if (!strncmp(path, "/api/v1/", 8)) {
		n = sscanf(path + 8, "%127[^/]/%127[^/]/%127[^/]/%127[^/]",
		    seg[0], seg[1], seg[2], seg[3]);
	} else if (sscanf(path,
		       "/apis/%127[^/]/v1/%127[^/]/%127[^/]/%127[^/]/"
		       "%127[^/]",
		       group, seg[0], seg[1], seg[2], seg[3]) >= 2) {
		n = sscanf(strstr(path, "/v1/") + 4,
		    "%127[^/]/%127[^/]/%127[^/]/%127[^/]", seg[0], seg[1],
		    seg[2], seg[3]);
	} else {
		return false;
	}
	if (n >= 3 && !strcmp(seg[0], "namespaces")) {
		strcpy(ns, seg[1]);
		strcpy(plural, seg[2]);
		if (n == 4)
			strcpy(name, seg[3]);
	} else if (n >= 1) {
		strcpy(plural, seg[0]);
		if (n == 2)
			strcpy(name, seg[1]);
	}
	return n >= 1;
}

/* labelSelector "a=b,c=d" from the query: does obj match? */
static bool labels_match(const json_t *obj, const char *query)
{
	const char *sel = strstr(query, "labelSelector=");
	if (sel == NULL)
		return true;
	char buf[256];
	snprintf(buf, sizeof(buf), "%.*s", (int)strcspn(sel + 14, "&"),
	    sel + 14);
	json_t *labels =
	    json_object_get(json_object_get(obj, "metadata"), "labels");
	char *save = NULL;
	for (char *t = strtok_r(buf, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(t, '=');
		if (eq == NULL)
			return false;
		*eq = '\0';
		const char *v = json_string_value(json_object_get(labels, t));
		if (v == NULL || strcmp(v, eq + 1))
			return false;
	}
	return true;
}

static json_t *pick(const char *plural, const char *ns, const char *name,
    const char *query)
{
	json_t *out = json_array();
	size_t i;
	json_t *o;
	json_array_foreach(json_object_get(fixtures, plural), i, o) {
		json_t *md = json_object_get(o, "metadata");
		const char *ons =
		    json_string_value(json_object_get(md, "namespace"));
		const char *on = json_string_value(json_object_get(md, "name"));
		if (*ns && (ons == NULL || strcmp(ons, ns)))
			continue;
		if ((*name && strcmp(on, name)) || !labels_match(o, query))
			continue;
		json_array_append(out, o);
	}
	return out;
}

static json_t *route(const char *method, const char *path, const char *query,
    const char *accept, const json_t *body, int *code)
{
	char group[128], plural[128], ns[128], name[128];
	(void)body;
	(void)code;
	if (strcmp(method, "GET") || !parse_path(path, group, plural, ns, name))
		return NULL;
	const struct api_resource *r = api_resource_find(group, "v1", plural);
	if (r == NULL || (group[0] && strcmp(plural, "events") == 0))
		return NULL;
	json_t *items = pick(plural, ns, name, query);
	if (*name && json_array_size(items) == 0) {
		json_decref(items);
		return NULL;
	}
	json_t *out;
	if (accept && strstr(accept, "as=Table")) {
		out = api_table(r, items, "100", NULL, false);
	} else if (*name) {
		out = json_incref(json_array_get(items, 0));
	} else {
		char gv[64];
		out = json_pack("{s:s, s:s, s:{s:s}, s:O}", "kind",
		    r->list_kind, "apiVersion",
		    api_group_version(r, gv, sizeof(gv)), "metadata",
		    "resourceVersion", "100", "items", items);
	}
	json_decref(items);
	return out;
}

static int setup_kubectl(void **state)
{
	if (!kt_have_kubectl())
		return 0;
	*state = kt_start(route);
	return *state ? 0 : -1;
}

static int teardown_kubectl(void **state)
{
	kt_stop(*state);
	return 0;
}

#define NEED_KUBECTL(s)                                                        \
	do {                                                                   \
		if ((s) == NULL)                                               \
			skip();                                                \
	} while (0)

/* kubectl's output for args must be exactly `want`. */
static void expect(struct kt_server *s, const char *args, const char *want)
{
	int st = -1;
	char *out = kt_kubectl(s, args, &st);
	assert_non_null(out);
	if (st != 0 || strcmp(out, want))
		fail_msg("kubectl %s (exit %d):\n%s\nwanted:\n%s\nrequests:\n%s",
		    args, st, out, want, s->log);
	free(out);
}

static void test_kubectl_pods(void **state)
{
	struct kt_server *s = *state;
	NEED_KUBECTL(s);
	expect(s, "get pods",
	    "NAME       READY   STATUS              RESTARTS      AGE\n"
	    "web-1      1/1     Running             0             15m\n"
	    "crash      0/1     CrashLoopBackOff    2 (15m ago)   121m\n"
	    "pending    0/1     Pending             0             5h30m\n"
	    "creating   0/2     ContainerCreating   0             10h\n"
	    "done       0/1     Completed           0             2d3h\n"
	    "term       1/1     Terminating         0             15m\n"
	    "failed     0/1     ExitCode:137        0             10d\n"
	    "init       0/1     Init:1/2            0             3y5d\n");
	expect(s, "get pods -o wide",
	    "NAME       READY   STATUS              RESTARTS      AGE     IP"
	    "           NODE     NOMINATED NODE   READINESS GATES\n"
	    "web-1      1/1     Running             0             15m     "
	    "10.244.0.5   node-1   <none>           <none>\n"
	    "crash      0/1     CrashLoopBackOff    2 (15m ago)   121m    "
	    "10.244.0.6   node-1   <none>           <none>\n"
	    "pending    0/1     Pending             0             5h30m   "
	    "<none>       <none>   node-3           <none>\n"
	    "creating   0/2     ContainerCreating   0             10h     "
	    "<none>       node-1   <none>           <none>\n"
	    "done       0/1     Completed           0             2d3h    "
	    "10.244.0.7   node-2   <none>           <none>\n"
	    "term       1/1     Terminating         0             15m     "
	    "10.244.0.8   node-2   <none>           <none>\n"
	    "failed     0/1     ExitCode:137        0             10d     "
	    "<none>       node-2   <none>           <none>\n"
	    "init       0/1     Init:1/2            0             3y5d    "
	    "10.244.0.9   node-1   <none>           1/1\n");
	expect(s, "get pod web-1",
	    "NAME    READY   STATUS    RESTARTS   AGE\n"
	    "web-1   1/1     Running   0          15m\n");
	expect(s, "get pods -n kube-system --show-labels",
	    "NAME      READY   STATUS    RESTARTS   AGE   LABELS\n"
	    "coredns   1/1     Running   1          10d   app=coredns\n");
	expect(s, "get pods -A -l app=coredns",
	    "NAMESPACE     NAME      READY   STATUS    RESTARTS   AGE\n"
	    "kube-system   coredns   1/1     Running   1          10d\n");
}

static void test_kubectl_workloads(void **state)
{
	struct kt_server *s = *state;
	NEED_KUBECTL(s);
	expect(s, "get deployments",
	    "NAME   READY   UP-TO-DATE   AVAILABLE   AGE\n"
	    "web    3/3     3            3           15m\n"
	    "api    0/2     1            0           121m\n");
	expect(s, "get deploy -o wide",
	    "NAME   READY   UP-TO-DATE   AVAILABLE   AGE    CONTAINERS    "
	    "IMAGES               SELECTOR\n"
	    "web    3/3     3            3           15m    app,sidecar   "
	    "nginx:1.27,busybox   app=web\n"
	    "api    0/2     1            0           121m   api           "
	    "api:2                app=api,!canary,env in (dev,prod),"
	    "tier=backend\n");
	expect(s, "get rs",
	    "NAME       DESIRED   CURRENT   READY   AGE\n"
	    "web-5d8f   3         3         2       15m\n");
	expect(s, "get rs -o wide",
	    "NAME       DESIRED   CURRENT   READY   AGE   CONTAINERS   IMAGES"
	    "       SELECTOR\n"
	    "web-5d8f   3         3         2       15m   app          "
	    "nginx:1.27   app=web,pod-template-hash=5d8f\n");
}

static void test_kubectl_services(void **state)
{
	struct kt_server *s = *state;
	NEED_KUBECTL(s);
	expect(s, "get svc",
	    "NAME         TYPE           CLUSTER-IP    EXTERNAL-IP    "
	    "PORT(S)                      AGE\n"
	    "kubernetes   ClusterIP      10.96.0.1     <none>         "
	    "443/TCP                      10d\n"
	    "web          NodePort       10.96.12.34   <none>         "
	    "80:30080/TCP,443:30443/TCP   15m\n"
	    "lb           LoadBalancer   10.96.7.7     203.0.113.9    "
	    "8080:31000/UDP               15m\n"
	    "pend         LoadBalancer   10.96.7.8     <pending>      "
	    "80/TCP                       15m\n"
	    "ext          ExternalName   <none>        example.com    "
	    "<none>                       15m\n"
	    "headless     ClusterIP      None          198.51.100.1   "
	    "53/UDP                       15m\n");
	expect(s, "get svc kubernetes headless -o wide",
	    "NAME         TYPE        CLUSTER-IP   EXTERNAL-IP    PORT(S)   "
	    "AGE   SELECTOR\n"
	    "kubernetes   ClusterIP   10.96.0.1    <none>         443/TCP   "
	    "10d   <none>\n"
	    "headless     ClusterIP   None         198.51.100.1   53/UDP    "
	    "15m   app=dns\n");
	expect(s, "get endpoints",
	    "NAME         ENDPOINTS                                          "
	    "      AGE\n"
	    "kubernetes   192.168.1.10:6443                                  "
	    "      10d\n"
	    "web          10.244.0.5:80,10.244.0.6:80,10.244.0.5:443 + 1 "
	    "more...   15m\n"
	    "none         <none>                                             "
	    "      15m\n"
	    "headless     10.244.0.9                                         "
	    "      15m\n");
	expect(s, "get endpointslices",
	    "NAME      ADDRESSTYPE   PORTS               ENDPOINTS         "
	    "                       AGE\n"
	    "web-abc   IPv4          80,metrics,*        10.244.0.5,"
	    "10.244.0.6                    15m\n"
	    "big-xyz   IPv4          1,2,3 + 2 more...   10.0.0.1,10.0.0.2,"
	    "10.0.0.3 + 1 more...   15m\n"
	    "empty-q   IPv6          <unset>             <unset>           "
	    "                       15m\n");
}

static void test_kubectl_cluster(void **state)
{
	struct kt_server *s = *state;
	NEED_KUBECTL(s);
	expect(s, "get nodes",
	    "NAME     STATUS                        ROLES           AGE     "
	    "VERSION\n"
	    "node-1   Ready                         control-plane   10d     "
	    "v1.32.0-kubus.1\n"
	    "node-2   NotReady,SchedulingDisabled   <none>          5h30m   "
	    "v1.32.0-kubus.1\n"
	    "node-3   Unknown                       edge,worker     15m     "
	    "\n");
	expect(s, "get node node-1 node-2 -o wide",
	    "NAME     STATUS                        ROLES           AGE     "
	    "VERSION           INTERNAL-IP    EXTERNAL-IP   OS-IMAGE       "
	    "                  KERNEL-VERSION   CONTAINER-RUNTIME\n"
	    "node-1   Ready                         control-plane   10d     "
	    "v1.32.0-kubus.1   192.168.1.10   <none>        Debian GNU/Linux "
	    "12 (bookworm)   6.1.0-18-amd64   runc://1.1.5\n"
	    "node-2   NotReady,SchedulingDisabled   <none>          5h30m   "
	    "v1.32.0-kubus.1   192.168.1.11   203.0.113.2   <unknown>      "
	    "                  <unknown>        <unknown>\n");
	expect(s, "get ns",
	    "NAME          STATUS        AGE\n"
	    "default       Active        10d\n"
	    "kube-system   Active        10d\n"
	    "old           Terminating   15m\n");
	expect(s, "get leases -A",
	    "NAMESPACE         NAME             HOLDER   AGE\n"
	    "kube-node-lease   node-1           node-1   10d\n"
	    "kube-system       kube-scheduler            121m\n");
}

static void test_kubectl_config(void **state)
{
	struct kt_server *s = *state;
	NEED_KUBECTL(s);
	expect(s, "get cm",
	    "NAME               DATA   AGE\n"
	    "kube-root-ca.crt   1      10d\n"
	    "app-config         3      15m\n"
	    "empty              0      15m\n");
	expect(s, "get secrets",
	    "NAME     TYPE                DATA   AGE\n"
	    "tls      kubernetes.io/tls   2      15m\n"
	    "opaque   Opaque              0      121m\n");
	expect(s, "get sa",
	    "NAME      SECRETS   AGE\n"
	    "default   0         10d\n"
	    "builder   1         15m\n");
}

static void test_kubectl_events(void **state)
{
	struct kt_server *s = *state;
	NEED_KUBECTL(s);
	expect(s, "get events",
	    "LAST SEEN   TYPE      REASON              OBJECT           "
	    "MESSAGE\n"
	    "121m        Normal    Scheduled           pod/web-1        "
	    "Successfully assigned default/web-1 to node-1\n"
	    "15m         Warning   BackOff             pod/crash        "
	    "Back-off restarting failed container c\n"
	    "10h         Normal    RegisteredNode      node/node-1      "
	    "Node node-1 event\n"
	    "5h30m       Normal    ScalingReplicaSet   deployment/web   "
	    "Scaled up\n");
	/* events.k8s.io events are "ev" too, as in Kubernetes, and kubectl
	 * says so on a real cluster just the same */
	expect(s, "get ev -o wide",
	    "Warning: short name \"ev\" could also match lower priority "
	    "resource events.events.k8s.io\n"
	    "LAST SEEN   TYPE      REASON              OBJECT           "
	    "SUBOBJECT            SOURCE                  MESSAGE"
	    "                                         FIRST SEEN   COUNT   NAME\n"
	    "121m        Normal    Scheduled           pod/web-1        "
	    "                     default-scheduler       Successfully "
	    "assigned default/web-1 to node-1   121m         1       "
	    "web-1.17a\n"
	    "15m         Warning   BackOff             pod/crash        "
	    "spec.containers{c}   kubelet, node-1         Back-off "
	    "restarting failed container c          121m         7       "
	    "crash.17b\n"
	    "10h         Normal    RegisteredNode      node/node-1      "
	    "                     node-controller, cp-1   Node node-1 event"
	    "                               10h          1       node-1.17c\n"
	    "5h30m       Normal    ScalingReplicaSet   deployment/web   "
	    "                                             Scaled up"
	    "                                       10h          4       "
	    "web.17d\n");
}

/* `get all` walks the "all" category: pods, services, deployments,
 * replica sets, each its own table with kind/name. */
static void test_kubectl_all(void **state)
{
	struct kt_server *s = *state;
	NEED_KUBECTL(s);
	expect(s, "get all -l app=web",
	    "NAME        READY   STATUS    RESTARTS   AGE\n"
	    "pod/web-1   1/1     Running   0          15m\n"
	    "\n"
	    "NAME          TYPE       CLUSTER-IP    EXTERNAL-IP   PORT(S)"
	    "                      AGE\n"
	    "service/web   NodePort   10.96.12.34   <none>        "
	    "80:30080/TCP,443:30443/TCP   15m\n"
	    "\n"
	    "NAME                  READY   UP-TO-DATE   AVAILABLE   AGE\n"
	    "deployment.apps/web   3/3     3            3           15m\n");
}

/* Debian's kubectl 1.20 (when KUBUS_KUBECTL_OLD names it) reads the
 * same tables the same way. */
static void test_kubectl_old(void **state)
{
	struct kt_server *s = *state;
	const char *old = getenv("KUBUS_KUBECTL_OLD");
	NEED_KUBECTL(s);
	if (old == NULL || !*old)
		skip();
	setenv("KUBECTL", old, 1);
	expect(s, "get deployments",
	    "NAME   READY   UP-TO-DATE   AVAILABLE   AGE\n"
	    "web    3/3     3            3           15m\n"
	    "api    0/2     1            0           121m\n");
	expect(s, "get pod crash -o wide",
	    "NAME    READY   STATUS             RESTARTS      AGE    IP"
	    "           NODE     NOMINATED NODE   READINESS GATES\n"
	    "crash   0/1     CrashLoopBackOff   2 (15m ago)   121m   "
	    "10.244.0.6   node-1   <none>           <none>\n");
	expect(s, "get all -l app=web",
	    "NAME        READY   STATUS    RESTARTS   AGE\n"
	    "pod/web-1   1/1     Running   0          15m\n"
	    "\n"
	    "NAME          TYPE       CLUSTER-IP    EXTERNAL-IP   PORT(S)"
	    "                      AGE\n"
	    "service/web   NodePort   10.96.12.34   <none>        "
	    "80:30080/TCP,443:30443/TCP   15m\n"
	    "\n"
	    "NAME                  READY   UP-TO-DATE   AVAILABLE   AGE\n"
	    "deployment.apps/web   3/3     3            3           15m\n");
	unsetenv("KUBECTL");
}

int main(void)
{
	load_fixtures();
	const struct CMUnitTest direct[] = {
		cmocka_unit_test(test_age),
		cmocka_unit_test(test_table_json),
		cmocka_unit_test(test_rows_total),
		cmocka_unit_test(test_pod_cells),
		cmocka_unit_test(test_pod_statuses),
		cmocka_unit_test(test_workload_cells),
		cmocka_unit_test(test_service_cells),
		cmocka_unit_test(test_node_cells),
		cmocka_unit_test(test_small_cells),
		cmocka_unit_test(test_endpoint_cells),
		cmocka_unit_test(test_event_cells),
	};
	const struct CMUnitTest kubectl[] = {
		cmocka_unit_test(test_kubectl_pods),
		cmocka_unit_test(test_kubectl_workloads),
		cmocka_unit_test(test_kubectl_services),
		cmocka_unit_test(test_kubectl_cluster),
		cmocka_unit_test(test_kubectl_config),
		cmocka_unit_test(test_kubectl_events),
		cmocka_unit_test(test_kubectl_all),
		cmocka_unit_test(test_kubectl_old),
	};
	int rc = cmocka_run_group_tests_name("tables", direct, NULL, NULL);
	rc |= cmocka_run_group_tests_name("kubectl", kubectl, setup_kubectl,
	    teardown_kubectl);
	json_decref(fixtures);
	return rc;
}
