/* tests/unit/test_api_discovery.c — /version, /api, /apis and /openapi/v3
 * (plugins/apiserver/discovery.c), checked directly and through real
 * kubectl against a small HTTP server that answers from api_discovery().
 *
 * KUBUS_KUBECTL_OLD may name a second kubectl (Debian's 1.20) that only
 * speaks legacy discovery; its checks are skipped when it is unset.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_kubectl.h"


#define AGG_V2                                                                 \
	"application/json;g=apidiscovery.k8s.io;v=v2;"                         \
	"as=APIGroupDiscoveryList"
#define AGG_V2BETA1                                                            \
	"application/json;g=apidiscovery.k8s.io;v=v2beta1;"                    \
	"as=APIGroupDiscoveryList"
/* What kubectl 1.32 sends for /api and /apis */
#define KUBECTL_ACCEPT AGG_V2 "," AGG_V2BETA1 ",application/json"

    /* GET path; the body (caller frees) or NULL when not served. */
    static json_t *get(const char *path, const char *accept, const char **ct)
{
	struct api_resp resp = { 0 };
	if (!api_discovery(path, accept, NULL, &resp))
		return NULL;
	assert_int_equal(resp.code, 200);
	if (ct)
		*ct = resp.content_type;
	if (resp.json)
		return resp.json;
	/* the OpenAPI documents come as their (cached) text */
	assert_non_null(resp.text);
	json_t *j = json_loadb(resp.text, resp.text_len, 0, NULL);
	assert_non_null(j);
	api_resp_free(&resp);
	return j;
}

static const char *str_at(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* The element of array `a` whose `key` is `value`. */
static json_t *find_by(const json_t *a, const char *key, const char *value)
{
	size_t i;
	json_t *e;
	json_array_foreach(a, i, e)
		if (str_at(e, key) && !strcmp(str_at(e, key), value))
			return e;
	return NULL;
}

static bool array_has(const json_t *a, const char *s)
{
	size_t i;
	json_t *e;
	json_array_foreach(a, i, e)
		if (json_string_value(e) && !strcmp(json_string_value(e), s))
			return true;
	return false;
}

/* --- direct ------------------------------------------------------------------------ */

static void test_version(void **state)
{
	(void)state;
	const char *ct = NULL;
	json_t *v = get("/version", "application/json, */*", &ct);
	assert_non_null(v);
	assert_string_equal(ct, "application/json");
	assert_string_equal(str_at(v, "major"), "1");
	assert_string_equal(str_at(v, "minor"), "32");
	assert_string_equal(str_at(v, "gitVersion"), "v1.32.0-kubus.1");
	static const char *const fields[] = { "gitCommit", "gitTreeState",
		"buildDate", "goVersion", "compiler", "platform" };
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		assert_non_null(str_at(v, fields[i]));
	/* RFC 3339 */
	assert_int_equal(strlen(str_at(v, "buildDate")), 20);
	assert_int_equal(str_at(v, "buildDate")[10], 'T');
	json_decref(v);
}

static void test_not_served(void **state)
{
	(void)state;
	static const char *const paths[] = { "/", "/healthz", "/api/v2",
		"/api/v1/pods", "/apis/apps/v2", "/apis/metrics.k8s.io",
		"/apis/metrics.k8s.io/v1beta1", "/apis/apps/v1/deployments",
		"/apis/policy/v1", "/openapi/v2", "/openapi/v3/api/v2",
		"/openapi/v3/apis/apps", "/openapi/v3/apis/apps/v1/x",
		"/openapi/v3/apis/nosuch/v1", "/versions", "/apisx", "" };
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct api_resp resp = { 0 };
		if (api_discovery(paths[i], KUBECTL_ACCEPT, NULL, &resp))
			fail_msg("%s should not be served", paths[i]);
		assert_null(resp.json);
	}
	struct api_resp resp = { 0 };
	assert_false(api_discovery(NULL, NULL, NULL, &resp));
}

static void test_legacy_roots(void **state)
{
	(void)state;
	const char *ct;
	json_t *api = get("/api", "application/json, */*", &ct);
	assert_string_equal(ct, "application/json");
	assert_string_equal(str_at(api, "kind"), "APIVersions");
	assert_true(array_has(json_object_get(api, "versions"), "v1"));
	assert_true(
	    json_is_array(json_object_get(api, "serverAddressByClientCIDRs")));
	json_decref(api);

	/* a trailing slash is the same path; a missing Accept is legacy */
	json_t *apis = get("/apis/", NULL, &ct);
	assert_string_equal(ct, "application/json");
	assert_string_equal(str_at(apis, "kind"), "APIGroupList");
	assert_string_equal(str_at(apis, "apiVersion"), "v1");
	json_t *groups = json_object_get(apis, "groups");
	static const char *const order[] = { "apps", "events.k8s.io",
		"authorization.k8s.io", "coordination.k8s.io",
		"discovery.k8s.io" };
	assert_int_equal(json_array_size(groups), 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(str_at(json_array_get(groups, i), "name"),
		    order[i]);
	json_t *apps = json_array_get(groups, 0);
	json_t *pv = json_object_get(apps, "preferredVersion");
	assert_string_equal(str_at(pv, "groupVersion"), "apps/v1");
	assert_string_equal(str_at(pv, "version"), "v1");
	assert_string_equal(str_at(json_array_get(json_object_get(apps,
						      "versions"),
				       0),
				"groupVersion"),
	    "apps/v1");
	json_decref(apis);

	json_t *g = get("/apis/apps", "application/json", NULL);
	assert_string_equal(str_at(g, "kind"), "APIGroup");
	assert_string_equal(str_at(g, "name"), "apps");
	json_decref(g);
}

/* Accept headers that must not get aggregated discovery. */
static void test_accept_legacy(void **state)
{
	(void)state;
	static const char *const accepts[] = { NULL, "", "*/*",
		"application/json",
		"application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
		"application/json, " AGG_V2,
		"application/json;g=apidiscovery.k8s.io;v=v3;"
		"as=APIGroupDiscoveryList,application/json",
		"application/vnd.kubernetes.protobuf, */*" };
	for (size_t i = 0; i < sizeof(accepts) / sizeof(accepts[0]); i++) {
		const char *ct;
		json_t *j = get("/apis", accepts[i], &ct);
		assert_string_equal(ct, "application/json");
		assert_string_equal(str_at(j, "kind"), "APIGroupList");
		json_decref(j);
	}
}

static void check_agg(const char *accept, const char *want_ct,
    const char *want_version)
{
	const char *ct;
	json_t *l = get("/apis", accept, &ct);
	assert_string_equal(ct, want_ct);
	assert_string_equal(str_at(l, "kind"), "APIGroupDiscoveryList");
	assert_string_equal(str_at(l, "apiVersion"), want_version);
	json_decref(l);
}

static void test_accept_aggregated(void **state)
{
	(void)state;
	check_agg(KUBECTL_ACCEPT, AGG_V2, "apidiscovery.k8s.io/v2");
	check_agg(AGG_V2BETA1 ",application/json", AGG_V2BETA1,
	    "apidiscovery.k8s.io/v2beta1");
	/* spaces, other parameter order, q-values */
	check_agg(" application/json; as=APIGroupDiscoveryList; v=v2; "
		  "g=apidiscovery.k8s.io;q=0.9, application/json",
	    AGG_V2, "apidiscovery.k8s.io/v2");
	/* an unknown aggregated version is skipped for the next range */
	check_agg("application/json;g=apidiscovery.k8s.io;v=v9;"
		  "as=APIGroupDiscoveryList," AGG_V2BETA1,
	    AGG_V2BETA1, "apidiscovery.k8s.io/v2beta1");
}

static json_t *agg_resource(json_t *list, const char *group, const char *plural)
{
	size_t i;
	json_t *item;
	json_array_foreach(json_object_get(list, "items"), i, item) {
		const char *name =
		    str_at(json_object_get(item, "metadata"), "name");
		if (strcmp(name ? name : "", group))
			continue;
		json_t *v =
		    json_array_get(json_object_get(item, "versions"), 0);
		assert_string_equal(str_at(v, "version"), "v1");
		assert_string_equal(str_at(v, "freshness"), "Current");
		return find_by(json_object_get(v, "resources"), "resource",
		    plural);
	}
	return NULL;
}

static void test_aggregated_core(void **state)
{
	(void)state;
	json_t *l = get("/api", KUBECTL_ACCEPT, NULL);
	assert_int_equal(json_array_size(json_object_get(l, "items")), 1);
	json_t *pods = agg_resource(l, "", "pods");
	assert_non_null(pods);
	assert_string_equal(str_at(pods, "scope"), "Namespaced");
	assert_string_equal(str_at(pods, "singularResource"), "pod");
	assert_true(array_has(json_object_get(pods, "shortNames"), "po"));
	assert_true(array_has(json_object_get(pods, "categories"), "all"));
	json_t *rk = json_object_get(pods, "responseKind");
	assert_string_equal(str_at(rk, "group"), "");
	assert_string_equal(str_at(rk, "version"), "v1");
	assert_string_equal(str_at(rk, "kind"), "Pod");
	json_t *subs = json_object_get(pods, "subresources");
	json_t *ev = find_by(subs, "subresource", "eviction");
	assert_non_null(ev);
	assert_string_equal(str_at(json_object_get(ev, "responseKind"),
				"group"),
	    "policy");
	assert_true(array_has(json_object_get(ev, "verbs"), "create"));
	static const char *const names[] = { "attach", "binding", "eviction",
		"exec", "log", "portforward", "status" };
	assert_int_equal(json_array_size(subs), 7);
	for (size_t i = 0; i < 7; i++)
		assert_string_equal(str_at(json_array_get(subs, i),
					"subresource"),
		    names[i]);
	json_t *ns = agg_resource(l, "", "namespaces");
	assert_string_equal(str_at(ns, "scope"), "Cluster");
	assert_false(
	    array_has(json_object_get(ns, "verbs"), "deletecollection"));
	assert_null(
	    json_object_get(agg_resource(l, "", "secrets"), "shortNames"));
	json_decref(l);
}

static void test_aggregated_groups(void **state)
{
	(void)state;
	json_t *l = get("/apis", KUBECTL_ACCEPT, NULL);
	json_t *d = agg_resource(l, "apps", "deployments");
	assert_non_null(d);
	assert_true(array_has(json_object_get(d, "shortNames"), "deploy"));
	json_t *scale =
	    find_by(json_object_get(d, "subresources"), "subresource", "scale");
	json_t *rk = json_object_get(scale, "responseKind");
	assert_string_equal(str_at(rk, "group"), "autoscaling");
	assert_string_equal(str_at(rk, "kind"), "Scale");
	json_t *ssar =
	    agg_resource(l, "authorization.k8s.io", "selfsubjectaccessreviews");
	assert_non_null(ssar);
	assert_string_equal(str_at(ssar, "scope"), "Cluster");
	json_t *verbs = json_object_get(ssar, "verbs");
	assert_int_equal(json_array_size(verbs), 1);
	assert_true(array_has(verbs, "create"));
	assert_non_null(agg_resource(l, "events.k8s.io", "events"));
	assert_non_null(agg_resource(l, "coordination.k8s.io", "leases"));
	assert_non_null(agg_resource(l, "discovery.k8s.io", "endpointslices"));
	assert_null(agg_resource(l, "metrics.k8s.io", "pods"));
	json_decref(l);
}

static void test_resource_lists(void **state)
{
	(void)state;
	json_t *l = get("/api/v1", "application/json, */*", NULL);
	assert_string_equal(str_at(l, "kind"), "APIResourceList");
	assert_string_equal(str_at(l, "groupVersion"), "v1");
	json_t *res = json_object_get(l, "resources");
	json_t *pods = find_by(res, "name", "pods");
	assert_string_equal(str_at(pods, "kind"), "Pod");
	assert_string_equal(str_at(pods, "singularName"), "pod");
	assert_true(json_is_true(json_object_get(pods, "namespaced")));
	assert_true(array_has(json_object_get(pods, "verbs"), "watch"));
	/* kubectl drain looks for pods/eviction in policy/v1 */
	json_t *ev = find_by(res, "name", "pods/eviction");
	assert_non_null(ev);
	assert_string_equal(str_at(ev, "group"), "policy");
	assert_string_equal(str_at(ev, "version"), "v1");
	assert_string_equal(str_at(ev, "kind"), "Eviction");
	json_t *st = find_by(res, "name", "pods/status");
	assert_string_equal(str_at(st, "kind"), "Pod");
	assert_null(json_object_get(st, "group"));
	assert_string_equal(str_at(find_by(res, "name", "pods/exec"), "kind"),
	    "PodExecOptions");
	assert_string_equal(str_at(find_by(res, "name", "pods/log"), "kind"),
	    "Pod");
	assert_non_null(find_by(res, "name", "nodes/status"));
	assert_null(find_by(res, "name", "deployments"));
	json_decref(l);

	l = get("/apis/apps/v1", "application/json", NULL);
	assert_string_equal(str_at(l, "groupVersion"), "apps/v1");
	assert_string_equal(str_at(l, "apiVersion"), "v1");
	res = json_object_get(l, "resources");
	json_t *sc = find_by(res, "name", "deployments/scale");
	assert_string_equal(str_at(sc, "group"), "autoscaling");
	assert_string_equal(str_at(sc, "kind"), "Scale");
	assert_non_null(find_by(res, "name", "replicasets/status"));
	json_decref(l);
}

/* --- OpenAPI v3 -------------------------------------------------------------------- */

/* No strategic merge patch anywhere in the document. */
static void assert_no_smp(const json_t *j)
{
	const char *k;
	json_t *v;
	size_t i;
	if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k, v) {
			assert_null(strstr(k, "strategic-merge"));
			assert_no_smp(v);
		}
	} else if (json_is_array(j)) {
		json_array_foreach(j, i, v)
			assert_no_smp(v);
	}
}

static bool has_param(const json_t *op, const char *name)
{
	return find_by(json_object_get(op, "parameters"), "name", name) != NULL;
}

/* Every PATCH names its kind and takes fieldValidation; returns how many
 * PATCH operations are for `kind`. */
static size_t check_patches(const json_t *doc, const char *group,
    const char *kind)
{
	const char *path;
	json_t *item;
	size_t n = 0;
	json_object_foreach(json_object_get(doc, "paths"), path, item) {
		json_t *patch = json_object_get(item, "patch");
		if (patch == NULL)
			continue;
		json_t *gvk =
		    json_object_get(patch, "x-kubernetes-group-version-kind");
		assert_non_null(gvk);
		assert_true(has_param(patch, "fieldValidation"));
		assert_string_equal(str_at(patch, "x-kubernetes-action"),
		    "patch");
		if (!strcmp(str_at(gvk, "group"), group) &&
		    !strcmp(str_at(gvk, "kind"), kind))
			n++;
	}
	return n;
}

static json_t *oa_doc(const json_t *index, const char *gv)
{
	json_t *e = json_object_get(json_object_get(index, "paths"), gv);
	assert_non_null(e);
	const char *url = str_at(e, "serverRelativeURL");
	char path[256];
	assert_non_null(strstr(url, "?hash="));
	snprintf(path, sizeof(path), "%.*s", (int)(strchr(url, '?') - url),
	    url);
	json_t *doc = get(path, "application/json", NULL);
	assert_non_null(doc);
	return doc;
}

static void test_openapi(void **state)
{
	(void)state;
	json_t *idx = get("/openapi/v3", "application/json, */*", NULL);
	static const char *const gvs[] = { "api/v1", "apis/apps/v1",
		"apis/events.k8s.io/v1", "apis/authorization.k8s.io/v1",
		"apis/coordination.k8s.io/v1", "apis/discovery.k8s.io/v1" };
	assert_int_equal(json_object_size(json_object_get(idx, "paths")), 6);
	for (size_t i = 0; i < 6; i++) {
		json_t *doc = oa_doc(idx, gvs[i]);
		assert_string_equal(str_at(doc, "openapi"), "3.0.0");
		assert_no_smp(doc);
		json_decref(doc);
	}
	json_t *core = oa_doc(idx, "api/v1");
	/* pods, pods/status */
	assert_int_equal(check_patches(core, "", "Pod"), 2);
	assert_int_equal(check_patches(core, "", "ConfigMap"), 1);
	json_t *item = json_object_get(json_object_get(core, "paths"),
	    "/api/v1/namespaces/{namespace}/pods/{name}");
	assert_non_null(item);
	assert_string_equal(str_at(json_object_get(item, "patch"),
				"operationId"),
	    "patchCoreV1NamespacedPod");
	assert_non_null(json_object_get(json_object_get(core, "paths"),
	    "/api/v1/nodes/{name}/status"));
	json_decref(core);
	json_t *apps = oa_doc(idx, "apis/apps/v1");
	assert_int_equal(check_patches(apps, "apps", "Deployment"), 2);
	assert_int_equal(check_patches(apps, "autoscaling", "Scale"), 2);
	json_decref(apps);
	json_t *authz = oa_doc(idx, "apis/authorization.k8s.io/v1");
	item = json_object_get(json_object_get(authz, "paths"),
	    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews");
	assert_non_null(json_object_get(item, "post"));
	assert_null(json_object_get(item, "get"));
	json_decref(authz);
	/* the hash is stable */
	json_t *again = get("/openapi/v3", NULL, NULL);
	assert_true(json_equal(idx, again));
	json_decref(again);
	json_decref(idx);
}

/* --- real kubectl ------------------------------------------------------------------- */

/* A little store for kubectl's writes: path -> object. */
static pthread_mutex_t store_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *store;

static json_t *not_found(const char *path)
{
	const char *name = strrchr(path, '/') + 1;
	char msg[256];
	snprintf(msg, sizeof(msg), "\"%s\" not found", name);
	return json_pack("{s:s, s:s, s:{}, s:s, s:s, s:s, s:{s:s}, s:i}",
	    "kind", "Status", "apiVersion", "v1", "metadata", "status",
	    "Failure", "message", msg, "reason", "NotFound", "details", "name",
	    name, "code", 404);
}

static json_t *route(const char *method, const char *path, const char *query,
    const char *accept, const json_t *body, int *code)
{
	char key[512];
	(void)query;
	(void)accept;
	pthread_mutex_lock(&store_mu);
	json_t *out = NULL;
	if (!strcmp(method, "GET")) {
		out = json_incref(json_object_get(store, path));
		if (out == NULL) {
			*code = 404;
			out = not_found(path);
		}
	} else if (!strcmp(method, "POST") && body) {
		const char *name = json_string_value(
		    json_object_get(json_object_get(body, "metadata"), "name"));
		snprintf(key, sizeof(key), "%s/%s", path, name ? name : "x");
		json_object_set(store, key, (json_t *)body);
		*code = 201;
		out = json_incref((json_t *)body);
	} else if (!strcmp(method, "PATCH")) {
		out = json_incref(json_object_get(store, path));
		if (out == NULL && body) {
			/* server-side apply creates */
			json_object_set(store, path, (json_t *)body);
			out = json_incref((json_t *)body);
			*code = 201;
		}
	}
	pthread_mutex_unlock(&store_mu);
	return out;
}

static int setup_kubectl(void **state)
{
	if (!kt_have_kubectl())
		return 0;
	store = json_object();
	*state = kt_start(route);
	return *state ? 0 : -1;
}

static int teardown_kubectl(void **state)
{
	kt_stop(*state);
	json_decref(store);
	store = NULL;
	return 0;
}

#define NEED_KUBECTL(s)                                                        \
	do {                                                                   \
		if ((s) == NULL)                                               \
			skip();                                                \
	} while (0)

/* Was "METHOD /path" requested (with or without a query)? */
static bool logged(const struct kt_server *s, const char *req)
{
	size_t n = strlen(req);
	for (const char *p = strstr(s->log, req); p; p = strstr(p + 1, req))
		if ((p == s->log || p[-1] == '\n') &&
		    (p[n] == ' ' || p[n] == '?'))
			return true;
	return false;
}

static char *kubectl_ok(struct kt_server *s, const char *args)
{
	int st = -1;
	char *out = kt_kubectl(s, args, &st);
	assert_non_null(out);
	if (st != 0)
		fail_msg("kubectl %s: exit %d\n%s\nrequests:\n%s", args, st,
		    out, s->log);
	return out;
}

static void test_kubectl_version(void **state)
{
	struct kt_server *s = *state;
	NEED_KUBECTL(s);
	char *out = kubectl_ok(s, "version -o json");
	/* kubectl may add a version-skew warning after the JSON */
	json_t *v = json_loads(out, JSON_DISABLE_EOF_CHECK, NULL);
	if (v == NULL)
		fail_msg("not JSON: %s", out);
	json_t *sv = json_object_get(v, "serverVersion");
	assert_string_equal(str_at(sv, "gitVersion"), "v1.32.0-kubus.1");
	assert_string_equal(str_at(sv, "minor"), "32");
	json_decref(v);
	free(out);
}

static const char api_resources_text[] =
    "NAME                       SHORTNAMES   APIVERSION                "
    "NAMESPACED   KIND\n"
    "configmaps                 cm           v1                        "
    "true         ConfigMap\n"
    "endpoints                  ep           v1                        "
    "true         Endpoints\n"
    "events                     ev           v1                        "
    "true         Event\n"
    "namespaces                 ns           v1                        "
    "false        Namespace\n"
    "nodes                      no           v1                        "
    "false        Node\n"
    "pods                       po           v1                        "
    "true         Pod\n"
    "secrets                                 v1                        "
    "true         Secret\n"
    "serviceaccounts            sa           v1                        "
    "true         ServiceAccount\n"
    "services                   svc          v1                        "
    "true         Service\n"
    "deployments                deploy       apps/v1                   "
    "true         Deployment\n"
    "replicasets                rs           apps/v1                   "
    "true         ReplicaSet\n"
    "selfsubjectaccessreviews                authorization.k8s.io/v1   "
    "false        SelfSubjectAccessReview\n"
    "leases                                  coordination.k8s.io/v1    "
    "true         Lease\n"
    "endpointslices                          discovery.k8s.io/v1       "
    "true         EndpointSlice\n"
    "events                     ev           events.k8s.io/v1          "
    "true         Event\n";

static const char api_versions_text[] = "apps/v1\n"
					"authorization.k8s.io/v1\n"
					"coordination.k8s.io/v1\n"
					"discovery.k8s.io/v1\n"
					"events.k8s.io/v1\n"
					"v1\n";

static void test_kubectl_api_resources(void **state)
{
	struct kt_server *s = *state;
	NEED_KUBECTL(s);
	char *out = kubectl_ok(s, "api-resources");
	assert_string_equal(out, api_resources_text);
	/* aggregated discovery answered it all: no per-group requests */
	assert_true(logged(s, "GET /apis"));
	assert_false(logged(s, "GET /api/v1"));
	assert_false(logged(s, "GET /apis/apps/v1"));
	free(out);
	out = kubectl_ok(s, "api-versions");
	assert_string_equal(out, api_versions_text);
	free(out);
	out = kubectl_ok(s, "api-resources --categories=all -o name");
	assert_string_equal(out,
	    "pods\nservices\ndeployments.apps\nreplicasets.apps\n");
	free(out);
	out = kubectl_ok(s, "api-resources --namespaced=false -o name");
	assert_string_equal(out,
	    "namespaces\nnodes\n"
	    "selfsubjectaccessreviews.authorization.k8s.io\n");
	free(out);
}

/* kubectl resolves short names and categories through discovery. */
static void test_kubectl_names(void **state)
{
	struct kt_server *s = *state;
	NEED_KUBECTL(s);
	static const char *const cmds[][2] = {
		{ "get po x", "GET /api/v1/namespaces/default/pods/x" },
		{ "get deploy x",
		    "GET /apis/apps/v1/namespaces/default/"
		    "deployments/x" },
		{ "get svc x", "GET /api/v1/namespaces/default/services/x" },
		{ "get rs x",
		    "GET /apis/apps/v1/namespaces/default/"
		    "replicasets/x" },
		{ "get no x", "GET /api/v1/nodes/x" },
		{ "get ns x", "GET /api/v1/namespaces/x" },
		{ "get cm x", "GET /api/v1/namespaces/default/configmaps/x" },
		{ "get ev x", "GET /api/v1/namespaces/default/events/x" },
		{ "get events.events.k8s.io x",
		    "GET /apis/events.k8s.io/v1/"
		    "namespaces/default/events/x" },
		{ "get lease x -n kube-node-lease",
		    "GET /apis/coordination."
		    "k8s.io/v1/namespaces/kube-node-lease/leases/x" },
	};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		int st;
		char *out = kt_kubectl(s, cmds[i][0], &st);
		if (!logged(s, cmds[i][1]))
			fail_msg("kubectl %s did not %s:\n%s\n%s", cmds[i][0],
			    cmds[i][1], out, s->log);
		assert_int_equal(st, 1); /* NotFound from the test store */
		assert_non_null(strstr(out, "NotFound"));
		free(out);
	}
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static const char deploy_yaml[] = "apiVersion: apps/v1\n"
				  "kind: Deployment\n"
				  "metadata:\n"
				  "  name: web\n"
				  "  namespace: default\n"
				  "spec:\n"
				  "  replicas: 2\n"
				  "  selector: {matchLabels: {app: web}}\n"
				  "  template:\n"
				  "    metadata: {labels: {app: web}}\n"
				  "    spec:\n"
				  "      containers:\n"
				  "      - {name: app, image: nginx:1.27}\n";

/* Default validation: kubectl reads the OpenAPI v3 documents, sees
 * fieldValidation on PATCH and leaves validation to the server. */
static void test_kubectl_apply(void **state)
{
	struct kt_server *s = *state;
	char args[1024];
	NEED_KUBECTL(s);
	write_file(s->home, "deploy.yaml", deploy_yaml);
	snprintf(args, sizeof(args), "apply -f %s/deploy.yaml", s->home);
	char *out = kubectl_ok(s, args);
	assert_string_equal(out, "deployment.apps/web created\n");
	free(out);
	assert_true(logged(s, "GET /openapi/v3"));
	assert_non_null(strstr(s->log, "GET /openapi/v3/apis/apps/v1?hash="));
	assert_non_null(strstr(s->log,
	    "POST /apis/apps/v1/namespaces/default/"
	    "deployments?fieldManager=kubectl-client-side-apply&"
	    "fieldValidation=Strict "));
	assert_null(strstr(s->log, "/openapi/v2"));

	/* A second apply patches: kubectl finds no strategic merge patch in
	 * the v3 document, so it asks for v2 (404) and falls back to its own
	 * types, as against Kubernetes with an incomplete v3 document. */
	char *changed = strdup(deploy_yaml);
	memcpy(strstr(changed, "replicas: 2"), "replicas: 3", 11);
	write_file(s->home, "deploy.yaml", changed);
	free(changed);
	snprintf(args, sizeof(args), "apply -f %s/deploy.yaml", s->home);
	out = kubectl_ok(s, args);
	assert_string_equal(out, "deployment.apps/web configured\n");
	free(out);
	assert_non_null(strstr(s->log,
	    "PATCH /apis/apps/v1/namespaces/default/"
	    "deployments/web?fieldManager=kubectl-client-side-apply&"
	    "fieldValidation=Strict "));

	write_file(s->home, "pod.yaml",
	    "apiVersion: v1\nkind: Pod\n"
	    "metadata: {name: p1}\nspec:\n  containers:\n"
	    "  - {name: c, image: busybox}\n");
	snprintf(args, sizeof(args), "create -f %s/pod.yaml", s->home);
	out = kubectl_ok(s, args);
	assert_string_equal(out, "pod/p1 created\n");
	free(out);
	assert_non_null(strstr(s->log, "GET /openapi/v3/api/v1?hash="));
	assert_non_null(strstr(s->log,
	    "POST /api/v1/namespaces/default/pods?"
	    "fieldManager=kubectl-create&fieldValidation=Strict "));
	assert_null(strstr(s->log, "/openapi/v2"));

	/* server-side apply: one PATCH, validated by the server */
	snprintf(args, sizeof(args),
	    "apply --server-side -f %s/pod.yaml "
	    "--force-conflicts",
	    s->home);
	out = kubectl_ok(s, args);
	assert_string_equal(out, "pod/p1 serverside-applied\n");
	free(out);
	assert_non_null(strstr(s->log,
	    "PATCH /api/v1/namespaces/default/pods/"
	    "p1?fieldManager=kubectl&fieldValidation=Strict&force=true "));
}

/* An older kubectl (Debian's 1.20) only speaks legacy discovery. */
static void test_kubectl_legacy(void **state)
{
	struct kt_server *s = *state;
	const char *old = getenv("KUBUS_KUBECTL_OLD");
	NEED_KUBECTL(s);
	if (old == NULL || !*old)
		skip();
	setenv("KUBECTL", old, 1);
	char *out = kubectl_ok(s, "api-resources");
	assert_string_equal(out, api_resources_text);
	assert_true(logged(s, "GET /api/v1"));
	assert_true(logged(s, "GET /apis/apps/v1"));
	free(out);
	out = kubectl_ok(s, "api-versions");
	assert_string_equal(out, api_versions_text);
	free(out);
	out = kubectl_ok(s, "version");
	assert_non_null(strstr(out, "GitVersion:\"v1.32.0-kubus.1\""));
	free(out);
	unsetenv("KUBECTL");
}

int main(void)
{
	const struct CMUnitTest direct[] = {
		cmocka_unit_test(test_version),
		cmocka_unit_test(test_not_served),
		cmocka_unit_test(test_legacy_roots),
		cmocka_unit_test(test_accept_legacy),
		cmocka_unit_test(test_accept_aggregated),
		cmocka_unit_test(test_aggregated_core),
		cmocka_unit_test(test_aggregated_groups),
		cmocka_unit_test(test_resource_lists),
		cmocka_unit_test(test_openapi),
	};
	const struct CMUnitTest kubectl[] = {
		cmocka_unit_test(test_kubectl_version),
		cmocka_unit_test(test_kubectl_api_resources),
		cmocka_unit_test(test_kubectl_names),
		cmocka_unit_test(test_kubectl_apply),
		cmocka_unit_test(test_kubectl_legacy),
	};
	int rc = cmocka_run_group_tests_name("discovery", direct, NULL, NULL);
	return rc |
	    cmocka_run_group_tests_name("kubectl", kubectl, setup_kubectl,
		teardown_kubectl);
}
