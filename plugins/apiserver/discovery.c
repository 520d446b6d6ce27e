/* plugins/apiserver/discovery.c — /version, /api, /apis and /openapi/v3.
 *
 * Everything here is derived from the resource table (registry.c), so a
 * resource added there is discoverable without touching this file.
 *
 * /api and /apis answer aggregated discovery (apidiscovery.k8s.io v2 or
 * v2beta1) when the Accept header lists it before plain JSON, with the
 * matching Content-Type: kubectl then needs no per-group requests. Any
 * other Accept gets the legacy APIVersions / APIGroupList, never a 406,
 * which kubectl treats as fatal.
 *
 * The OpenAPI v3 documents are deliberately minimal: paths with their
 * operations, x-kubernetes-group-version-kind and a fieldValidation
 * parameter on every PATCH, so kubectl's default --validate=strict leaves
 * validation to the server (fieldValidation=Strict). Schemas are bare
 * objects; strategic merge patch is not listed in any requestBody, or
 * kubectl would try to build patches from these (empty) schemas instead
 * of its compiled-in types.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <kubus/strmap.h>

#include "api.h"

#define K8S_MAJOR KUBUS_KUBE_MAJOR
#define K8S_MINOR KUBUS_KUBE_MINOR
#define GIT_VERSION KUBUS_KUBE_VERSION

#define CT_JSON "application/json"
#define CT_AGG_V2                                                              \
	"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
#define CT_AGG_V2BETA1                                                         \
	"application/json;g=apidiscovery.k8s.io;v=v2beta1;"                    \
	"as=APIGroupDiscoveryList"

/* --- subresources ------------------------------------------------------------ */

/* Alphabetical, as Kubernetes lists them. A NULL kind is the parent's;
 * "*" is "<parent kind>ProxyOptions". */
static const struct sub_info {
	unsigned bit;
	const char *name;
	const char *group, *version, *kind;
	const char *verbs[6];
} subs[] = {
	{ API_SUB_ATTACH, "attach", "", "", "PodAttachOptions",
	    { "create", "get" } },
	{ API_SUB_BINDING, "binding", "", "", "Binding", { "create" } },
	{ API_SUB_EVICTION, "eviction", "policy", "v1", "Eviction",
	    { "create" } },
	{ API_SUB_EXEC, "exec", "", "", "PodExecOptions", { "create", "get" } },
	{ API_SUB_LOG, "log", "", "", NULL, { "get" } },
	{ API_SUB_PORTFORWARD, "portforward", "", "", "PodPortForwardOptions",
	    { "create", "get" } },
	{ API_SUB_PROXY, "proxy", "", "", "*",
	    { "create", "delete", "get", "patch", "update" } },
	{ API_SUB_SCALE, "scale", "autoscaling", "v1", "Scale",
	    { "get", "patch", "update" } },
	{ API_SUB_STATUS, "status", "", "", NULL,
	    { "get", "patch", "update" } },
};

static const char *sub_kind(const struct sub_info *s,
    const struct api_resource *r, char *buf, size_t len)
{
	if (s->kind == NULL)
		return r->kind;
	if (strcmp(s->kind, "*"))
		return s->kind;
	snprintf(buf, len, "%sProxyOptions", r->kind);
	return buf;
}

static json_t *str_array(const char *const *v, size_t max)
{
	json_t *a = json_array();
	for (size_t i = 0; i < max && v[i]; i++)
		json_array_append_new(a, json_string(v[i]));
	return a;
}

/* Kubernetes offers no deletecollection on namespaces; virtual
 * resources (reviews) can only be created. */
static json_t *verbs_of(const struct api_resource *r)
{
	static const char *const all[] = { "create", "delete",
		"deletecollection", "get", "list", "patch", "update", "watch",
		NULL };
	static const char *const ns[] = { "create", "delete", "get", "list",
		"patch", "update", "watch", NULL };
	static const char *const create[] = { "create", NULL };
	if (r->virtual_)
		return str_array(create, 8);
	if (r->group[0] == '\0' && !strcmp(r->plural, "namespaces"))
		return str_array(ns, 8);
	return str_array(all, 8);
}

static json_t *gvk(const char *group, const char *version, const char *kind)
{
	return json_pack("{s:s, s:s, s:s}", "group", group, "version", version,
	    "kind", kind);
}

/* --- groups and versions ------------------------------------------------------ */

/* The distinct groups (non-core) in table order; returns how many. */
static size_t group_names(const char **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < api_nresources; i++) {
		const char *g = api_resources[i].group;
		size_t j;
		if (g[0] == '\0')
			continue;
		for (j = 0; j < n && strcmp(out[j], g); j++)
			;
		if (j == n && n < max)
			out[n++] = g;
	}
	return n;
}

/* The distinct versions of a group, in table order. */
static size_t group_versions(const char *group, const char **out, size_t max)
{
	size_t n = 0;
	for (size_t i = 0; i < api_nresources; i++) {
		const struct api_resource *r = &api_resources[i];
		size_t j;
		if (strcmp(r->group, group))
			continue;
		for (j = 0; j < n && strcmp(out[j], r->version); j++)
			;
		if (j == n && n < max)
			out[n++] = r->version;
	}
	return n;
}

static bool gv_served(const char *group, const char *version)
{
	for (size_t i = 0; i < api_nresources; i++)
		if (!strcmp(api_resources[i].group, group) &&
		    !strcmp(api_resources[i].version, version))
			return true;
	return false;
}

static json_t *legacy_gv(const char *group, const char *version)
{
	char gv[256];
	snprintf(gv, sizeof(gv), "%s/%s", group, version);
	return json_pack("{s:s, s:s}", "groupVersion", gv, "version", version);
}

static json_t *legacy_group(const char *group)
{
	const char *vs[8];
	size_t n = group_versions(group, vs, 8);
	json_t *versions = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(versions, legacy_gv(group, vs[i]));
	/* The first version listed is the preferred one. */
	return json_pack("{s:s, s:o, s:o}", "name", group, "versions", versions,
	    "preferredVersion", legacy_gv(group, vs[0]));
}

/* --- legacy discovery ---------------------------------------------------------- */

static json_t *legacy_api(void)
{
	return json_pack("{s:s, s:[s], s:[]}", "kind", "APIVersions",
	    "versions", "v1", "serverAddressByClientCIDRs");
}

static json_t *legacy_apis(void)
{
	const char *gs[32];
	size_t n = group_names(gs, 32);
	json_t *groups = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(groups, legacy_group(gs[i]));
	return json_pack("{s:s, s:s, s:o}", "kind", "APIGroupList",
	    "apiVersion", "v1", "groups", groups);
}

static json_t *legacy_resource(const struct api_resource *r)
{
	json_t *o = json_pack("{s:s, s:s, s:b, s:s, s:o}", "name", r->plural,
	    "singularName", r->singular, "namespaced", r->namespaced, "kind",
	    r->kind, "verbs", verbs_of(r));
	if (r->short_names[0])
		json_object_set_new(o, "shortNames",
		    str_array(r->short_names, 4));
	if (r->categories[0])
		json_object_set_new(o, "categories",
		    str_array(r->categories, 3));
	return o;
}

static json_t *legacy_subresource(const struct api_resource *r,
    const struct sub_info *s)
{
	char name[128], kbuf[128];
	snprintf(name, sizeof(name), "%s/%s", r->plural, s->name);
	json_t *o = json_pack("{s:s, s:s, s:b}", "name", name, "singularName",
	    "", "namespaced", r->namespaced);
	/* group and version only when they differ from the list's own. */
	if (s->group[0] || s->version[0]) {
		json_object_set_new(o, "group", json_string(s->group));
		json_object_set_new(o, "version", json_string(s->version));
	}
	json_object_set_new(o, "kind",
	    json_string(sub_kind(s, r, kbuf, sizeof(kbuf))));
	json_object_set_new(o, "verbs", str_array(s->verbs, 6));
	return o;
}

static json_t *legacy_resource_list(const char *group, const char *version)
{
	json_t *list = json_array();
	char gv[256];
	for (size_t i = 0; i < api_nresources; i++) {
		const struct api_resource *r = &api_resources[i];
		if (strcmp(r->group, group) || strcmp(r->version, version))
			continue;
		json_array_append_new(list, legacy_resource(r));
		for (size_t j = 0; j < sizeof(subs) / sizeof(subs[0]); j++)
			if (r->subresources & subs[j].bit)
				json_array_append_new(list,
				    legacy_subresource(r, &subs[j]));
	}
	snprintf(gv, sizeof(gv), "%s%s%s", group, group[0] ? "/" : "", version);
	json_t *o = json_pack("{s:s}", "kind", "APIResourceList");
	/* Kubernetes' /api/v1 has no apiVersion; the groups' lists do. */
	if (group[0])
		json_object_set_new(o, "apiVersion", json_string("v1"));
	json_object_set_new(o, "groupVersion", json_string(gv));
	json_object_set_new(o, "resources", list);
	return o;
}

/* --- aggregated discovery ------------------------------------------------------ */

static json_t *agg_subresource(const struct api_resource *r,
    const struct sub_info *s)
{
	char kbuf[128];
	return json_pack("{s:s, s:o, s:o}", "subresource", s->name,
	    "responseKind",
	    gvk(s->group, s->version, sub_kind(s, r, kbuf, sizeof(kbuf))),
	    "verbs", str_array(s->verbs, 6));
}

static json_t *agg_resource(const struct api_resource *r)
{
	json_t *o = json_pack("{s:s, s:o, s:s, s:s, s:o}", "resource",
	    r->plural, "responseKind", gvk(r->group, r->version, r->kind),
	    "scope", r->namespaced ? "Namespaced" : "Cluster",
	    "singularResource", r->singular, "verbs", verbs_of(r));
	if (r->short_names[0])
		json_object_set_new(o, "shortNames",
		    str_array(r->short_names, 4));
	if (r->categories[0])
		json_object_set_new(o, "categories",
		    str_array(r->categories, 3));
	json_t *sa = json_array();
	for (size_t j = 0; j < sizeof(subs) / sizeof(subs[0]); j++)
		if (r->subresources & subs[j].bit)
			json_array_append_new(sa, agg_subresource(r, &subs[j]));
	if (json_array_size(sa))
		json_object_set_new(o, "subresources", sa);
	else
		json_decref(sa);
	return o;
}

static json_t *agg_version(const char *group, const char *version)
{
	json_t *res = json_array();
	for (size_t i = 0; i < api_nresources; i++) {
		const struct api_resource *r = &api_resources[i];
		if (!strcmp(r->group, group) && !strcmp(r->version, version))
			json_array_append_new(res, agg_resource(r));
	}
	return json_pack("{s:s, s:o, s:s}", "version", version, "resources",
	    res, "freshness", "Current");
}

static json_t *agg_group(const char *group)
{
	const char *vs[8];
	size_t n = group_versions(group, vs, 8);
	json_t *versions = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(versions, agg_version(group, vs[i]));
	/* ObjectMeta as Go marshals it: a zero creationTimestamp is null;
	 * the core group has no name. */
	json_t *md = json_pack("{s:n}", "creationTimestamp");
	if (group[0])
		json_object_set_new(md, "name", json_string(group));
	return json_pack("{s:o, s:o}", "metadata", md, "versions", versions);
}

static json_t *agg_list(bool core, const char *api_version)
{
	json_t *items = json_array();
	if (core) {
		json_array_append_new(items, agg_group(""));
	} else {
		const char *gs[32];
		size_t n = group_names(gs, 32);
		for (size_t i = 0; i < n; i++)
			json_array_append_new(items, agg_group(gs[i]));
	}
	return json_pack("{s:s, s:s, s:{}, s:o}", "kind",
	    "APIGroupDiscoveryList", "apiVersion", api_version, "metadata",
	    "items", items);
}

/* --- content negotiation -------------------------------------------------------- */

/* The value of parameter `name` in one media range ("a/b;x=1;y=2"),
 * copied to buf ("" when absent). */
static void media_param(const char *range, size_t len, const char *name,
    char *buf, size_t blen)
{
	size_t nl = strlen(name);
	buf[0] = '\0';
	for (const char *p = memchr(range, ';', len); p && p < range + len;) {
		p++;
		while (p < range + len && (*p == ' ' || *p == '\t'))
			p++;
		const char *end = memchr(p, ';', (size_t)(range + len - p));
		if (end == NULL)
			end = range + len;
		if ((size_t)(end - p) > nl && !strncasecmp(p, name, nl) &&
		    p[nl] == '=') {
			size_t vl = (size_t)(end - p) - nl - 1;
			while (vl && (p[nl + 1 + vl - 1] == ' '))
				vl--;
			snprintf(buf, blen, "%.*s", (int)vl, p + nl + 1);
			return;
		}
		p = end;
	}
}

enum agg {
	AGG_NONE,
	AGG_V2,
	AGG_V2BETA1
};

/* One media range: aggregated v2 / v2beta1, or none. */
static int agg_of_range(const char *range, size_t len)
{
	char g[64], v[32], as[64];
	media_param(range, len, "g", g, sizeof(g));
	media_param(range, len, "v", v, sizeof(v));
	media_param(range, len, "as", as, sizeof(as));
	if (strcmp(g, "apidiscovery.k8s.io") ||
	    strcmp(as, "APIGroupDiscoveryList"))
		return AGG_NONE;
	if (!strcmp(v, "v2"))
		return AGG_V2;
	return strcmp(v, "v2beta1") ? AGG_NONE : AGG_V2BETA1;
}

/* The first range the client lists decides: aggregated if it is one we
 * serve; plain JSON (or anything else) means legacy. */
static int wanted_agg(const char *accept)
{
	const char *p = accept;
	while (p && *p) {
		while (*p == ' ' || *p == ',')
			p++;
		if (*p == '\0')
			break;
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		int a = agg_of_range(p, len);
		char g[64];
		media_param(p, len, "g", g, sizeof(g));
		if (a != AGG_NONE || g[0] == '\0')
			return a;
		p = end;
	}
	return AGG_NONE;
}

/* --- /version ---------------------------------------------------------------------- */

/* __DATE__ ("Nov 26 2026") and __TIME__ as RFC 3339. */
static void build_date(char *buf, size_t len)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	const char *d = __DATE__;
	const char *m = strstr(months, (char[4]){ d[0], d[1], d[2], 0 });
	int mon = m ? (int)(m - months) / 3 + 1 : 1;
	int day = atoi(d + 4);
	snprintf(buf, len, "%.4s-%02d-%02dT%sZ", d + 7, mon, day, __TIME__);
}

static json_t *version_doc(void)
{
	char date[32];
	build_date(date, sizeof(date));
#if defined(__x86_64__)
	const char *platform = "linux/amd64";
#elif defined(__aarch64__)
	const char *platform = "linux/arm64";
#else
	const char *platform = "linux/unknown";
#endif
	/* goVersion is informational only: the server is C, built by gcc. */
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s}",
	    "major", K8S_MAJOR, "minor", K8S_MINOR, "gitVersion", GIT_VERSION,
	    "gitCommit", "unknown", "gitTreeState", "clean", "buildDate", date,
	    "goVersion", "gcc " __VERSION__, "compiler", "gcc", "platform",
	    platform);
}

/* --- OpenAPI v3 --------------------------------------------------------------------- */

/* "apps" -> "apps", "events.k8s.io" -> "events", "" -> "core". */
static void group_word(const char *group, char *buf, size_t len)
{
	size_t n = strcspn(group, ".");
	if (n == 0)
		snprintf(buf, len, "core");
	else
		snprintf(buf, len, "%.*s", (int)n, group);
}

static void schema_name(const char *group, const char *version,
    const char *kind, char *buf, size_t len)
{
	char w[64];
	group_word(group, w, sizeof(w));
	snprintf(buf, len, "io.k8s.api.%s.%s.%s", w, version, kind);
}

static json_t *schema_ref(const char *name)
{
	char ref[256];
	snprintf(ref, sizeof(ref), "#/components/schemas/%s", name);
	return json_pack("{s:s}", "$ref", ref);
}

static json_t *param(const char *name, const char *in, const char *type,
    const char *desc)
{
	json_t *p = json_pack("{s:s, s:s, s:s, s:{s:s, s:b}}", "name", name,
	    "in", in, "description", desc, "schema", "type", type,
	    "uniqueItems", 1);
	if (!strcmp(in, "path"))
		json_object_set_new(p, "required", json_true());
	return p;
}

/* The parameters Kubernetes takes on writes; kubectl looks for
 * fieldValidation on PATCH to decide that the server validates. */
static json_t *write_params(bool patch)
{
	json_t *a = json_array();
	json_array_append_new(a,
	    param("dryRun", "query", "string",
		"When present, indicates that modifications should not be "
		"persisted. Valid values are: All."));
	json_array_append_new(a,
	    param("fieldManager", "query", "string",
		"A name associated with the actor or entity making these "
		"changes."));
	json_array_append_new(a,
	    param("fieldValidation", "query", "string",
		"How the server handles fields it does not know or that are "
		"duplicated: Ignore, Warn or Strict."));
	if (patch)
		json_array_append_new(a,
		    param("force", "query", "boolean",
			"Force is going to \"force\" Apply requests; must be unset "
			"for non-apply patch requests."));
	return a;
}

static json_t *list_params(void)
{
	static const char *const names[][2] = {
		{ "allowWatchBookmarks", "boolean" },
		{ "continue", "string" },
		{ "fieldSelector", "string" },
		{ "labelSelector", "string" },
		{ "limit", "integer" },
		{ "resourceVersion", "string" },
		{ "resourceVersionMatch", "string" },
		{ "sendInitialEvents", "boolean" },
		{ "timeoutSeconds", "integer" },
		{ "watch", "boolean" },
	};
	json_t *a = json_array();
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		json_array_append_new(a,
		    param(names[i][0], "query", names[i][1], names[i][0]));
	return a;
}

static json_t *oa_response(const char *code, const char *desc,
    const char *schema)
{
	json_t *r = json_object();
	json_t *one = json_pack("{s:s}", "description", desc);
	if (schema)
		json_object_set_new(one, "content",
		    json_pack("{s:{s:o}}", CT_JSON, "schema",
			schema_ref(schema)));
	json_object_set_new(r, code, one);
	json_object_set_new(r, "401",
	    json_pack("{s:s}", "description", "Unauthorized"));
	return r;
}

static json_t *oa_body(const char *schema, bool patch)
{
	json_t *content = json_object();
	if (patch) {
		/* no strategic-merge-patch: see the file comment */
		static const char *const types[] = {
			"application/json-patch+json",
			"application/merge-patch+json",
			"application/apply-patch+yaml",
		};
		for (size_t i = 0; i < 3; i++)
			json_object_set_new(content, types[i],
			    json_pack("{s:o}", "schema",
				schema_ref(
				    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch")));
	} else {
		json_object_set_new(content, "*/*",
		    json_pack("{s:o}", "schema", schema_ref(schema)));
	}
	return json_pack("{s:o, s:b}", "content", content, "required", 1);
}

/* One operation. `what` names the object for operationId ("NamespacedPod",
 * "NamespacedPodStatus", "Node"). */
struct oa_op {
	const char *method; /* get, put, patch, post, delete */
	const char *action; /* x-kubernetes-action */
	const char *verb;   /* operationId prefix: read, list, replace… */
	const char *resp;   /* response schema */
	const char *body;   /* request schema or NULL */
};

static json_t *oa_operation(const struct api_resource *r, const char *what,
    const struct oa_op *op, json_t *kind_gvk)
{
	char w[64], tag[80], id[256], gv[80];
	group_word(r->group, w, sizeof(w));
	snprintf(tag, sizeof(tag), "%s_%s", w, r->version);
	/* operationId as Kubernetes spells it: patchAppsV1NamespacedDeployment */
	snprintf(gv, sizeof(gv), "%c%s%c%s", w[0] & ~0x20, w + 1,
	    r->version[0] & ~0x20, r->version + 1);
	/* deleteCoreV1CollectionNamespacedPod: "Collection" after the gv */
	if (!strcmp(op->action, "deletecollection"))
		snprintf(id, sizeof(id), "delete%sCollection%s", gv, what);
	else
		snprintf(id, sizeof(id), "%s%s%s", op->verb, gv, what);
	bool patch = !strcmp(op->method, "patch");
	bool write = patch || !strcmp(op->method, "put") ||
	    !strcmp(op->method, "post");
	json_t *o = json_pack("{s:[s], s:s, s:s}", "tags", tag, "description",
	    id, "operationId", id);
	if (write)
		json_object_set_new(o, "parameters", write_params(patch));
	else if (!strcmp(op->action, "list"))
		json_object_set_new(o, "parameters", list_params());
	if (op->body)
		json_object_set_new(o, "requestBody", oa_body(op->body, patch));
	json_object_set_new(o, "responses",
	    oa_response(!strcmp(op->method, "post") ? "201" : "200",
		!strcmp(op->method, "post") ? "Created" : "OK", op->resp));
	json_object_set_new(o, "x-kubernetes-action", json_string(op->action));
	json_object_set_new(o, "x-kubernetes-group-version-kind", kind_gvk);
	return o;
}

static void oa_add(json_t *paths, const char *path, json_t *common,
    const char *method, json_t *op)
{
	json_t *item = json_object_get(paths, path);
	if (item == NULL) {
		item = json_pack("{s:o}", "parameters", common);
		json_object_set_new(paths, path, item);
	} else {
		json_decref(common);
	}
	json_object_set_new(item, method, op);
}

static json_t *path_params(const struct api_resource *r, bool named,
    const char *kind)
{
	char desc[160];
	json_t *a = json_array();
	if (named) {
		snprintf(desc, sizeof(desc), "name of the %s", kind);
		json_array_append_new(a, param("name", "path", "string", desc));
	}
	if (r->namespaced)
		json_array_append_new(a,
		    param("namespace", "path", "string",
			"object name and auth scope, such as for teams and "
			"projects"));
	json_array_append_new(a,
	    param("pretty", "query", "string",
		"If 'true', then the output is pretty printed."));
	return a;
}

static void oa_base(const struct api_resource *r, char *buf, size_t len)
{
	char gv[128];
	api_group_version(r, gv, sizeof(gv));
	snprintf(buf, len, "/%s/%s%s", r->group[0] ? "apis" : "api", gv,
	    r->namespaced ? "/namespaces/{namespace}" : "");
}

#define STATUS_SCHEMA "io.k8s.apimachinery.pkg.apis.meta.v1.Status"

static void oa_collection(json_t *paths, const struct api_resource *r,
    const char *what, const char *schema, const char *list_schema)
{
	char base[256], path[320];
	oa_base(r, base, sizeof(base));
	snprintf(path, sizeof(path), "%s/%s", base, r->plural);
	const struct oa_op ops[] = {
		{ "get", "list", "list", list_schema, NULL },
		{ "post", "post", "create", schema, schema },
		{ "delete", "deletecollection", "delete", STATUS_SCHEMA, NULL },
	};
	for (size_t i = r->virtual_ ? 1 : 0; i < (r->virtual_ ? 2u : 3u); i++)
		oa_add(paths, path, path_params(r, false, r->kind),
		    ops[i].method,
		    oa_operation(r, what, &ops[i],
			gvk(r->group, r->version, r->kind)));
}

static void oa_item(json_t *paths, const struct api_resource *r,
    const char *what, const char *schema)
{
	char base[256], path[320];
	oa_base(r, base, sizeof(base));
	snprintf(path, sizeof(path), "%s/%s/{name}", base, r->plural);
	const struct oa_op ops[] = {
		{ "get", "get", "read", schema, NULL },
		{ "put", "put", "replace", schema, schema },
		{ "patch", "patch", "patch", schema, "patch" },
		{ "delete", "delete", "delete", STATUS_SCHEMA, NULL },
	};
	for (size_t i = 0; i < 4; i++)
		oa_add(paths, path, path_params(r, true, r->kind),
		    ops[i].method,
		    oa_operation(r, what, &ops[i],
			gvk(r->group, r->version, r->kind)));
}

/* status and scale: get, put, patch on …/{name}/<sub>. */
static void oa_sub(json_t *paths, const struct api_resource *r,
    const char *what, const struct sub_info *s, const char *schema)
{
	char base[256], path[320], w[160], kbuf[64];
	oa_base(r, base, sizeof(base));
	snprintf(path, sizeof(path), "%s/%s/{name}/%s", base, r->plural,
	    s->name);
	snprintf(w, sizeof(w), "%s%c%s", what, s->name[0] & ~0x20, s->name + 1);
	const char *g = s->group[0] ? s->group : r->group;
	const char *v = s->version[0] ? s->version : r->version;
	const char *k = sub_kind(s, r, kbuf, sizeof(kbuf));
	char sch[160];
	if (s->group[0])
		schema_name(g, v, k, sch, sizeof(sch));
	else
		snprintf(sch, sizeof(sch), "%s", schema);
	const struct oa_op ops[] = {
		{ "get", "get", "read", sch, NULL },
		{ "put", "put", "replace", sch, sch },
		{ "patch", "patch", "patch", sch, "patch" },
	};
	for (size_t i = 0; i < 3; i++)
		oa_add(paths, path, path_params(r, true, k), ops[i].method,
		    oa_operation(r, w, &ops[i], gvk(g, v, k)));
}

static json_t *oa_schema(const char *group, const char *version,
    const char *kind, const char *desc)
{
	return json_pack("{s:s, s:s, s:[{s:s, s:s, s:s}]}", "type", "object",
	    "description", desc, "x-kubernetes-group-version-kind", "group",
	    group, "kind", kind, "version", version);
}

static void oa_resource(json_t *paths, json_t *schemas,
    const struct api_resource *r)
{
	char schema[160], list_schema[160], what[128];
	schema_name(r->group, r->version, r->kind, schema, sizeof(schema));
	schema_name(r->group, r->version, r->list_kind, list_schema,
	    sizeof(list_schema));
	snprintf(what, sizeof(what), "%s%s", r->namespaced ? "Namespaced" : "",
	    r->kind);
	json_object_set_new(schemas, schema,
	    oa_schema(r->group, r->version, r->kind, r->kind));
	oa_collection(paths, r, what, schema, list_schema);
	if (r->virtual_)
		return;
	json_object_set_new(schemas, list_schema,
	    oa_schema(r->group, r->version, r->list_kind, r->list_kind));
	oa_item(paths, r, what, schema);
	for (size_t j = 0; j < sizeof(subs) / sizeof(subs[0]); j++) {
		if (!(r->subresources & subs[j].bit) ||
		    (subs[j].bit != API_SUB_STATUS &&
			subs[j].bit != API_SUB_SCALE))
			continue;
		oa_sub(paths, r, what, &subs[j], schema);
		if (subs[j].bit == API_SUB_SCALE)
			json_object_set_new(schemas,
			    "io.k8s.api.autoscaling.v1.Scale",
			    oa_schema("autoscaling", "v1", "Scale", "Scale"));
	}
}

static json_t *oa_doc(const char *group, const char *version)
{
	json_t *paths = json_object(), *schemas = json_object();
	for (size_t i = 0; i < api_nresources; i++) {
		const struct api_resource *r = &api_resources[i];
		if (!strcmp(r->group, group) && !strcmp(r->version, version))
			oa_resource(paths, schemas, r);
	}
	json_object_set_new(schemas,
	    "io.k8s.apimachinery.pkg.apis.meta.v1.Patch",
	    json_pack("{s:s, s:s}", "type", "object", "description",
		"Patch is provided to give a concrete name and type to the "
		"Kubernetes PATCH request body."));
	json_object_set_new(schemas, STATUS_SCHEMA,
	    oa_schema("", "v1", "Status",
		"Status is a return value for calls that don't return "
		"other objects."));
	return json_pack("{s:s, s:{s:s, s:s}, s:o, s:{s:o}}", "openapi",
	    "3.0.0", "info", "title", "Kubernetes", "version", GIT_VERSION,
	    "paths", paths, "components", "schemas", schemas);
}

/* The OpenAPI v3 documents, made once: the resource table is fixed for
 * the life of the process, so each document (and the index naming them)
 * is the same text at every request. Building them all took ~6 ms a
 * request, and kubectl asks for the index at every apply. Each has its
 * ETag, an FNV-1a 64 of its compact text: kubectl fetches
 * `/openapi/v3/<gv>?hash=<it>` and, as Kubernetes answers such a URL as
 * immutable, keeps it in its HTTP cache. */
struct oa_text {
	char path[160];  /* "api/v1", "apis/<g>/<v>"; "" for the index */
	char *text;      /* compact JSON */
	size_t len;
	char hash[17];   /* 16 hex digits */
	char etag[19];   /* the hash in quotes */
	char url[208];   /* /openapi/v3/<path>?hash=<hash> */
};
static struct oa_text *oa_docs, oa_idx; /* a document per served group-version */
static size_t oa_ndocs;
static pthread_once_t oa_once = PTHREAD_ONCE_INIT;

/* t->text from doc (taken), its hash and ETag. */
static void oa_set(struct oa_text *t, json_t *doc)
{
	t->text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
	json_decref(doc);
	t->len = t->text ? strlen(t->text) : 0;
	snprintf(t->hash, sizeof(t->hash), "%016llX",
	    (unsigned long long)kb_hash64(t->text, t->len));
	snprintf(t->etag, sizeof(t->etag), "\"%s\"", t->hash);
}

/* "api/v1" or "apis/<g>/<v>" for a served group-version. */
static void oa_gv_path(const char *group, const char *version, char *buf,
    size_t len)
{
	if (group[0])
		snprintf(buf, len, "apis/%s/%s", group, version);
	else
		snprintf(buf, len, "api/%s", version);
}

static void oa_text_add(const char *group, const char *version)
{
	struct oa_text *t = &oa_docs[oa_ndocs++];
	oa_gv_path(group, version, t->path, sizeof(t->path));
	oa_set(t, oa_doc(group, version));
	snprintf(t->url, sizeof(t->url), "/openapi/v3/%s?hash=%s", t->path,
	    t->hash);
}

static void oa_build(void)
{
	const char *gs[32], *vs[32][8];
	size_t ng = group_names(gs, 32), nv[32], n = 1; /* and api/v1 */
	for (size_t i = 0; i < ng; i++)
		n += nv[i] = group_versions(gs[i], vs[i], 8);
	if ((oa_docs = calloc(n, sizeof(*oa_docs))) == NULL)
		return; /* no documents: every /openapi/v3 path is 404 */
	oa_text_add("", "v1");
	for (size_t i = 0; i < ng; i++)
		for (size_t j = 0; j < nv[i]; j++)
			oa_text_add(gs[i], vs[i][j]);
	json_t *paths = json_object();
	for (size_t i = 0; i < oa_ndocs; i++)
		json_object_set_new(paths, oa_docs[i].path,
		    json_pack("{s:s}", "serverRelativeURL", oa_docs[i].url));
	oa_set(&oa_idx, json_pack("{s:o}", "paths", paths));
}

/* The texts go with the plugin (dlclose), as the other caches here. */
__attribute__((destructor)) static void oa_free(void)
{
	for (size_t i = 0; i < oa_ndocs; i++)
		free(oa_docs[i].text);
	free(oa_docs);
	free(oa_idx.text);
}

/* "api/v1" or "apis/<g>/<v>" -> its document, or NULL. */
static const struct oa_text *oa_find(const char *rest)
{
	for (size_t i = 0; i < oa_ndocs; i++)
		if (!strcmp(oa_docs[i].path, rest))
			return &oa_docs[i];
	return NULL;
}

/* A document as the answer: 200 with its ETag, immutable when asked for
 * by its own hash; a stale hash is sent to the current one (301), as
 * Kubernetes does. */
static bool answer_oa(struct api_resp *resp, const struct oa_text *t,
    const char *hash)
{
	if (t == NULL || t->text == NULL)
		return false;
	resp->etag = t->etag;
	if (hash && *hash && t != &oa_idx) {
		if (strcmp(hash, t->hash)) {
			resp->code = 301;
			resp->location = t->url;
			return true;
		}
		resp->immutable = true;
	}
	if ((resp->text = malloc(t->len + 1)) == NULL)
		return false;
	memcpy(resp->text, t->text, t->len + 1);
	resp->text_len = t->len;
	resp->code = 200;
	resp->content_type = CT_JSON;
	return true;
}

/* --- routing ---------------------------------------------------------------------------- */

static bool answer(struct api_resp *resp, json_t *body, const char *ct)
{
	if (body == NULL)
		return false;
	resp->code = 200;
	resp->json = body;
	resp->content_type = ct;
	return true;
}

static bool answer_agg(struct api_resp *resp, bool core, const char *accept)
{
	switch (wanted_agg(accept)) {
	case AGG_V2:
		return answer(resp, agg_list(core, "apidiscovery.k8s.io/v2"),
		    CT_AGG_V2);
	case AGG_V2BETA1:
		return answer(resp,
		    agg_list(core, "apidiscovery.k8s.io/v2beta1"),
		    CT_AGG_V2BETA1);
	default:
		return answer(resp, core ? legacy_api() : legacy_apis(),
		    CT_JSON);
	}
}

/* /apis/<group> or /apis/<group>/<version>. */
static bool answer_group(struct api_resp *resp, const char *rest)
{
	char group[128], version[32], again[192];
	int n = sscanf(rest, "%127[^/]/%31[^/]", group, version);
	if (n == 1) {
		snprintf(again, sizeof(again), "%s", group);
		const char *vs[1];
		if (strcmp(again, rest) || !group_versions(group, vs, 1))
			return false;
		json_t *g = legacy_group(group);
		json_object_set_new(g, "kind", json_string("APIGroup"));
		json_object_set_new(g, "apiVersion", json_string("v1"));
		return answer(resp, g, CT_JSON);
	}
	if (n != 2)
		return false;
	snprintf(again, sizeof(again), "%s/%s", group, version);
	if (strcmp(again, rest) || !gv_served(group, version))
		return false;
	return answer(resp, legacy_resource_list(group, version), CT_JSON);
}

bool api_discovery(const char *path, const char *accept, const char *hash,
    struct api_resp *resp)
{
	char p[512];
	if (path == NULL ||
	    snprintf(p, sizeof(p), "%s", path) >= (int)sizeof(p))
		return false;
	/* Kubernetes answers "/apis/" as "/apis". */
	size_t len = strlen(p);
	if (len > 1 && p[len - 1] == '/')
		p[len - 1] = '\0';
	if (!strcmp(p, "/version"))
		return answer(resp, version_doc(), CT_JSON);
	if (!strcmp(p, "/api"))
		return answer_agg(resp, true, accept);
	if (!strcmp(p, "/apis"))
		return answer_agg(resp, false, accept);
	if (!strcmp(p, "/api/v1"))
		return answer(resp, legacy_resource_list("", "v1"), CT_JSON);
	if (!strncmp(p, "/apis/", 6))
		return answer_group(resp, p + 6);
	if (!strncmp(p, "/openapi/v3", 11))
		pthread_once(&oa_once, oa_build);
	if (!strcmp(p, "/openapi/v3"))
		return answer_oa(resp, &oa_idx, NULL);
	if (!strncmp(p, "/openapi/v3/", 12))
		return answer_oa(resp, oa_find(p + 12), hash);
	return false;
}
