/* plugins/apiserver/rest.c — the verbs on resources.
 *
 * get, list, watch, create, update, patch, delete and deletecollection,
 * with Kubernetes' object semantics: uid and creationTimestamp set once,
 * resourceVersion from the store with optimistic concurrency, generation
 * bumped on spec changes, status as a subresource, finalizers and
 * deletionTimestamp, graceful pod deletion, generateName, NamespaceLifecycle,
 * and the subresources status, scale, binding and eviction.
 */
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "busapi.h"
#include "evwrite.h"
#include "podbind.h"
#include "podwrite.h"
#include "server.h"
#include "store_raw.h"

#define UPDATE_RETRIES 8
/* A write without a version of its own to match (a patch, a delete, a
 * PUT without resourceVersion) is made on the latest version however
 * often it meets a newer one, as Kubernetes' GuaranteedUpdate makes it:
 * past UPDATE_RETRIES quick tries it keeps trying, yielding between
 * tries, for up to this long before its Conflict. A writer much faster
 * than this one (a kubelet's status patches, made on the cache's bytes)
 * may otherwise win every race for a while. */
#define UPDATE_PERSIST_MS 2000

/* Whether attempt number `attempt` (from 0) of a write started at t0_ms
 * (api_mono_ms) should be made. */
static bool try_again(int attempt, int64_t t0_ms)
{
	if (attempt < UPDATE_RETRIES)
		return true;
	if (api_mono_ms() - t0_ms >= UPDATE_PERSIST_MS)
		return false;
	sched_yield();
	return true;
}

/* "pods", "deployments.apps": how Kubernetes names a resource in messages. */
static const char *qual(const struct api_resource *r, char *buf, size_t n)
{
	if (r->group[0])
		snprintf(buf, n, "%s.%s", r->plural, r->group);
	else
		snprintf(buf, n, "%s", r->plural);
	return buf;
}

static void fail(struct api_resp *resp, struct api_error *e)
{
	free(resp->mp); /* the answer is the Status, not an object */
	resp->mp = NULL;
	resp->code = e->code ? e->code : 500;
	resp->json = api_status(e);
	api_err_clear(e);
}

/* Give a store error the resource's words ("pods \"x\" not found"). */
static void name_err(struct api_error *e, const struct api_resource *r, const char *name)
{
	char q[128];
	qual(r, q, sizeof(q));
	snprintf(e->kind, sizeof(e->kind), "%s", r->plural);
	snprintf(e->name, sizeof(e->name), "%s", name ? name : "");
	if (e->code == 404)
		snprintf(e->message, sizeof(e->message), "%s \"%s\" not found", q, name);
	else if (e->code == 409 && !strcmp(e->reason, "AlreadyExists"))
		snprintf(e->message, sizeof(e->message), "%s \"%s\" already exists", q, name);
	else if (e->code == 409)
		snprintf(e->message, sizeof(e->message),
		    "Operation cannot be fulfilled on %s \"%s\": the object has been modified; please apply your changes to the latest version and try again",
		    q, name);
}

static json_t *get_obj(struct api_req *req, struct api_kv *kv, struct api_error *e)
{
	char *key = api_key(req->res, req->ns, req->name);
	int rc = api_store_get(req->srv, key, kv, e);
	free(key);
	if (rc) {
		name_err(e, req->res, req->name);
		return NULL;
	}
	return kv->obj;
}

static void set_str(json_t *obj, const char *path, const char *v)
{
	api_set(obj, path, json_string(v));
}

static int64_t get_int(const json_t *obj, const char *path, int64_t def)
{
	json_t *v = api_get(obj, path);
	return json_is_integer(v) ? json_integer_value(v) : def;
}

/* --- get and list ----------------------------------------------------------- */

/* A Table as the request asks for it: rows carry PartialObjectMetadata,
 * the full object (includeObject=Object, as kubectl get --sort-by asks)
 * or no object at all (includeObject=None). */
static json_t *table_for(const struct api_req *req, const json_t *items, const char *rv,
    const char *cont)
{
	json_t *t = api_table(req->res, items, rv, cont, req->include_object_full);
	if (req->include_object_none) {
		size_t i;
		json_t *row;
		json_array_foreach(json_object_get(t, "rows"), i, row)
			json_object_del(row, "object");
	}
	return t;
}

static void do_get(struct api_req *req, struct api_resp *resp)
{
	struct api_error e = { 0 };
	struct api_kv kv = { 0 };
	if (get_obj(req, &kv, &e) == NULL)
		return fail(resp, &e);
	if (req->sub && !strcmp(req->sub, "scale")) {
		resp->json = api_scale_of(req->res, kv.obj);
		json_decref(kv.obj);
		resp->code = 200;
		return;
	}
	resp->code = 200;
	if (req->want_table) {
		json_t *items = json_pack("[o]", kv.obj);
		resp->json = table_for(req, items, api_get_str(kv.obj, "metadata.resourceVersion"),
		    NULL);
		json_decref(items);
	} else {
		resp->json = kv.obj;
	}
}

static json_t *filter(json_t *items, const struct api_selector *ls,
    const struct api_selector *fs)
{
	json_t *out = json_array();
	size_t i;
	json_t *o;
	json_array_foreach(items, i, o)
		if (api_selector_match(ls, o) && api_selector_match(fs, o))
			json_array_append(out, o);
	return out;
}

/* A page of req->limit matches for a selector: Kubernetes fills it from
 * as many store pages as it takes. Each store page asks for no more than
 * the matches still missing, so the store's continue token after the last
 * one is exactly where the next page begins. The list is at *rev. */
static int list_matching(struct api_req *req, const char *prefix, int64_t at,
    const struct api_selector *ls, const struct api_selector *fs, json_t **out,
    int64_t *rev, char **next, struct api_error *e)
{
	json_t *all = json_array();
	char *cont = req->cont ? strdup(req->cont) : NULL;
	int rc = 0;
	for (int calls = 0; calls < 1000; calls++) {
		json_t *items = NULL;
		char *nc = NULL;
		int64_t rem = 0, need = req->limit - (int64_t)json_array_size(all);
		rc = api_store_list(req->srv, prefix, need, cont, at, &items, rev, &nc, &rem, e);
		if (rc)
			break;
		json_t *m = filter(items, ls, fs);
		json_array_extend(all, m);
		json_decref(m);
		json_decref(items);
		free(cont);
		cont = nc;
		if (cont == NULL || (int64_t)json_array_size(all) >= req->limit)
			break;
	}
	if (rc) {
		json_decref(all);
		free(cont);
		return rc;
	}
	*out = all;
	*next = cont;
	return 0;
}

static void do_list(struct api_req *req, struct api_resp *resp)
{
	struct api_error e = { 0 };
	struct api_selector *ls = api_label_selector(req->label_selector, &e);
	struct api_selector *fs = ls ? api_field_selector(req->res, req->field_selector, &e) : NULL;
	if (fs == NULL) {
		api_selector_free(ls);
		return fail(resp, &e);
	}
	json_t *items = NULL, *sel = NULL;
	int64_t rev = 0, remaining = 0;
	char *next = NULL;
	const char *rv = req->resource_version;
	bool selective = (req->label_selector && *req->label_selector) ||
	    (req->field_selector && *req->field_selector);
	int rc;
	/* resourceVersion=0 means "any version will do": the cache. */
	if (rv && !strcmp(rv, "0") && req->limit == 0 && req->cont == NULL) {
		rc = api_cache_list(req->srv, req->res, req->ns, &items, &rev, &e);
	} else if (req->limit > 0 && selective) {
		char *prefix = api_key(req->res, req->ns, NULL);
		int64_t at = rv && *rv && strcmp(rv, "0") ? strtoll(rv, NULL, 10) : 0;
		rc = list_matching(req, prefix, at, ls, fs, &sel, &rev, &next, &e);
		free(prefix);
	} else {
		char *prefix = api_key(req->res, req->ns, NULL);
		int64_t at = rv && *rv && strcmp(rv, "0") ? strtoll(rv, NULL, 10) : 0;
		rc = api_store_list(req->srv, prefix, req->limit, req->cont, at, &items, &rev,
		    &next, &remaining, &e);
		free(prefix);
	}
	if (rc) {
		api_selector_free(ls);
		api_selector_free(fs);
		return fail(resp, &e);
	}
	if (sel == NULL) {
		sel = filter(items, ls, fs);
		json_decref(items);
	}
	api_selector_free(ls);
	api_selector_free(fs);
	char rvs[32], gv[64];
	snprintf(rvs, sizeof(rvs), "%" PRId64, rev);
	resp->code = 200;
	if (req->want_table) {
		resp->json = table_for(req, sel, rvs, next);
		json_decref(sel);
	} else {
		json_t *md = json_pack("{s:s}", "resourceVersion", rvs);
		if (next) {
			json_object_set_new(md, "continue", json_string(next));
			if (remaining > 0)
				json_object_set_new(md, "remainingItemCount", json_integer(remaining));
		}
		resp->json = json_pack("{s:s, s:s, s:o, s:o}", "kind", req->res->list_kind,
		    "apiVersion", api_group_version(req->res, gv, sizeof(gv)), "metadata", md,
		    "items", sel);
	}
	free(next);
}

static void do_watch(struct api_req *req, struct api_resp *resp)
{
	struct api_error e = { 0 };
	resp->stream = api_watch(req->srv, req, &e);
	if (resp->stream == NULL)
		return fail(resp, &e);
	resp->code = 200;
}

/* --- create ---------------------------------------------------------------------- */

static bool namespace_open(struct api_req *req, const char *name, struct api_error *e)
{
	if (!req->res->namespaced || req->ns == NULL)
		return true;
	const struct api_resource *nsr = api_resource_find("", "v1", "namespaces");
	char *key = api_key(nsr, NULL, req->ns);
	bool terminating = false;
	/* The watch cache first, as Kubernetes asks its informer; what the
	 * cache cannot answer, the store does. */
	if (api_cache_peek(req->srv, nsr, key, &terminating) == 0) {
		struct api_kv kv = { 0 };
		int rc = api_store_get(req->srv, key, &kv, e);
		if (rc == KB_ENOTFOUND) {
			free(key);
			api_err_clear(e);
			api_err(e, 404, "NotFound", "namespaces \"%s\" not found", req->ns);
			snprintf(e->kind, sizeof(e->kind), "namespaces");
			snprintf(e->name, sizeof(e->name), "%s", req->ns);
			return false;
		}
		if (rc) {
			free(key);
			return false;
		}
		terminating = api_get(kv.obj, "metadata.deletionTimestamp") != NULL;
		json_decref(kv.obj);
	}
	free(key);
	if (terminating) {
		/* As NamespaceLifecycle words it: a Forbidden on the object. */
		char q[128];
		api_err(e, 403, "Forbidden",
		    "%s \"%s\" is forbidden: unable to create new content in namespace %s because it is being terminated",
		    qual(req->res, q, sizeof(q)), name ? name : "", req->ns);
		snprintf(e->kind, sizeof(e->kind), "%s", req->res->plural);
		snprintf(e->name, sizeof(e->name), "%s", name ? name : "");
		return false;
	}
	return true;
}

/* The node a node principal is (NULL for anyone else). */
static const char *node_of(const struct api_req *req)
{
	const char *u = req->user && req->user->name ? req->user->name : "";
	return strncmp(u, "node:", 5) ? NULL : u + 5;
}

/* NodeRestriction: a kubelet (node:<name>) writes only pods bound to
 * it; `what` as Kubernetes words it ("update pod status for pods"). */
static bool node_restrict(const struct api_req *req, const json_t *pod, const char *what,
    struct api_error *e)
{
	const char *node = node_of(req);
	if (node == NULL || strcmp(req->res->plural, "pods") || req->res->group[0])
		return true;
	if (!strcmp(api_get_str(pod, "spec.nodeName") ?: "", node))
		return true;
	const char *name = api_get_str(pod, "metadata.name") ?: "";
	api_err(e, 403, "Forbidden",
	    "pods \"%s\" is forbidden: node \"%s\" can only %s with spec.nodeName set to itself",
	    name, node, what);
	snprintf(e->kind, sizeof(e->kind), "pods");
	snprintf(e->name, sizeof(e->name), "%s", name);
	return false;
}

/* The object in a write must be of this resource and this namespace. */
static bool check_body(struct api_req *req, json_t *obj, struct api_error *e)
{
	char gv[64];
	const char *kind = api_get_str(obj, "kind");
	const char *av = api_get_str(obj, "apiVersion");
	api_group_version(req->res, gv, sizeof(gv));
	if (!json_is_object(obj)) {
		api_err(e, 400, "BadRequest", "the body of the request was not a JSON object");
		return false;
	}
	if ((kind && strcmp(kind, req->res->kind)) || (av && strcmp(av, gv))) {
		api_err(e, 400, "BadRequest",
		    "the API version in the data (%s) does not match the expected API version (%s)",
		    av ? av : "", gv);
		if (kind && av && !strcmp(av, gv))
			api_err(e, 400, "BadRequest", "%s in version \"%s\" cannot be handled as a %s: expected kind %s",
			    kind, req->res->version, req->res->kind, req->res->kind);
		return false;
	}
	set_str(obj, "kind", req->res->kind);
	set_str(obj, "apiVersion", gv);
	const char *ns = api_get_str(obj, "metadata.namespace");
	if (req->res->namespaced) {
		if (ns && *ns && req->ns && strcmp(ns, req->ns)) {
			api_err(e, 400, "BadRequest",
			    "the namespace of the provided object does not match the namespace sent on the request");
			return false;
		}
		if (req->ns)
			set_str(obj, "metadata.namespace", req->ns);
	} else if (ns) {
		json_object_del(json_object_get(obj, "metadata"), "namespace");
	}
	if (req->name) {
		const char *name = api_get_str(obj, "metadata.name");
		if (name && strcmp(name, req->name)) {
			api_err(e, 400, "BadRequest",
			    "the name of the object (%s) does not match the name on the URL (%s)", name,
			    req->name);
			return false;
		}
		set_str(obj, "metadata.name", req->name);
	}
	return true;
}

static void generate_name(json_t *obj)
{
	const char *gen = api_get_str(obj, "metadata.generateName");
	const char *name = api_get_str(obj, "metadata.name");
	if (gen == NULL || (name && *name))
		return;
	static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
	unsigned char rnd[5];
	api_random(rnd, sizeof(rnd));
	char buf[300];
	size_t n = strlen(gen);
	if (n > 58)
		n = 58;
	snprintf(buf, sizeof(buf), "%.*s", (int)n, gen);
	for (int i = 0; i < 5; i++)
		buf[n + (size_t)i] = alnum[rnd[i] % (sizeof(alnum) - 1)];
	buf[n + 5] = '\0';
	set_str(obj, "metadata.name", buf);
}

/* What the server sets on a new object, whatever the client sent. */
static void stamp_new(const struct api_resource *r, json_t *obj)
{
	char uid[40], now[40];
	api_uuid(uid, sizeof(uid));
	api_now(now, sizeof(now));
	set_str(obj, "metadata.uid", uid);
	set_str(obj, "metadata.creationTimestamp", now);
	json_t *md = json_object_get(obj, "metadata");
	json_object_del(md, "deletionTimestamp");
	json_object_del(md, "deletionGracePeriodSeconds");
	json_object_del(md, "resourceVersion");
	json_object_del(md, "selfLink");
	if (r->generation)
		json_object_set_new(md, "generation", json_integer(1));
	else
		json_object_del(md, "generation");
	/* Status is the controllers' to write, not the creator's. */
	if (r->has_status && strcmp(r->plural, "nodes") && strcmp(r->plural, "pods"))
		json_object_del(obj, "status");
	if (!strcmp(r->plural, "pods")) {
		json_t *st = json_pack("{s:s}", "phase", "Pending");
		json_object_set_new(obj, "status", st);
	}
	if (!strcmp(r->plural, "namespaces"))
		api_set(obj, "status.phase", json_string("Active"));
}

/* resp->warning for unknown fields: one `299 - "unknown field \"x\""`
 * per field, comma-separated in one header value as HTTP allows (kubectl
 * prints each as "Warning: unknown field \"x\""). */
static void field_warnings(const json_t *causes, struct api_resp *resp)
{
	char buf[4096];
	size_t n = 0, i;
	json_t *c;
	json_array_foreach(causes, i, c) {
		const char *m = api_get_str(c, "message");
		if (m == NULL || n + 16 >= sizeof(buf))
			continue;
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s299 - \"", n ? ", " : "");
		for (; *m && n + 4 < sizeof(buf); m++) {
			if (*m == '"' || *m == '\\')
				buf[n++] = '\\';
			buf[n++] = (*m == '\n' || *m == '\r') ? ' ' : *m;
		}
		buf[n++] = '"';
		buf[n] = '\0';
	}
	free(resp->warning);
	resp->warning = n ? strdup(buf) : NULL;
}

/* fieldValidation, checked first as Kubernetes' decoder does: Strict
 * refuses unknown fields with its 400 ("<Kind> in version \"v1\" cannot
 * be handled as a <Kind>: strict decoding error: unknown field …", a
 * Status without causes); Warn, also the default, answers with a Warning
 * per unknown field; Ignore says nothing. Admission drops the fields. */
static bool check_fields(struct api_req *req, const json_t *obj, struct api_resp *resp,
    struct api_error *e)
{
	const char *fv = req->field_validation ? req->field_validation : "Warn";
	if (!strcmp(fv, "Ignore"))
		return true;
	struct api_error u = { 0 };
	if (api_check_unknown_fields(req->res, obj, &u))
		return true;
	if (!strcmp(fv, "Strict")) {
		json_decref(u.causes);
		u.causes = NULL;
		api_err_clear(e);
		*e = u;
		return false;
	}
	field_warnings(u.causes, resp);
	api_err_clear(&u);
	return true;
}

/* A create's put done: resp filled from its result; obj (NULL when mp is
 * the answer) and mp taken. */
static void created(struct api_server *srv, const struct api_resource *res, json_t *obj,
    const char *name, int rc, char *mp, size_t mp_len, struct api_error *e,
    struct api_resp *resp)
{
	if (rc) {
		api_release(srv, res, obj);
		name_err(e, res, name);
		json_decref(obj);
		free(mp);
		return fail(resp, e);
	}
	resp->code = 201;
	resp->json = obj;
	resp->mp = mp;
	resp->mp_len = mp_len;
}

/* A write answered when its store call is done (api_later). */
struct write_wait {
	struct api_later *later;
	struct api_server *srv;
	const struct api_resource *res;
	char name[256];
	char *mp; /* the answer made before (a delete's); else the put's bytes */
	size_t mp_len;
};

static struct write_wait *write_wait_new(const struct api_req *req, const char *name)
{
	struct write_wait *ww = req->want_mp ? calloc(1, sizeof(*ww)) : NULL;
	if (ww == NULL || strlen(name) >= sizeof(ww->name)) {
		free(ww);
		return NULL;
	}
	*ww = (struct write_wait){ req->later, req->srv, req->res, "", NULL, 0 };
	memcpy(ww->name, name, strlen(name) + 1);
	return ww;
}

/* True when the put of obj is on its way, done(wait) to answer (obj
 * freed: the answer is the stored bytes, made by the completion) and resp
 * says so; false to put and wait. */
static bool write_later(struct api_req *req, const char *key, json_t *obj,
    int64_t if_mod_rev, const char *name, api_put_done done, struct api_resp *resp)
{
	struct write_wait *ww = write_wait_new(req, name);
	struct api_error e = { 0 };
	if (ww == NULL)
		return false;
	if (api_store_put_mp_async(req->srv, key, obj, if_mod_rev, true, done, ww, &e)) {
		api_err_clear(&e);
		free(ww);
		return false;
	}
	json_decref(obj);
	resp->later = true;
	return true;
}

static void create_done(void *arg, int rc, char *mp, size_t mp_len, struct api_error *e)
{
	struct write_wait *ww = arg;
	struct api_resp resp = { 0 };
	created(ww->srv, ww->res, NULL, ww->name, rc, mp, mp_len, e, &resp);
	ww->later->answer(ww->later, &resp);
	free(ww);
}

/* Create obj (stolen) at the request's resource. */
static void create_obj(struct api_req *req, json_t *obj, struct api_resp *resp)
{
	struct api_error e = { 0 };
	if (!check_fields(req, obj, resp, &e)) {
		json_decref(obj);
		return fail(resp, &e);
	}
	generate_name(obj);
	const char *name = api_get_str(obj, "metadata.name");
	char name0[256], kq[96];
	snprintf(name0, sizeof(name0), "%s", name ? name : "");
	/* NamespaceLifecycle is admission, before validation, as in
	 * Kubernetes: a bad object in a missing namespace is a NotFound. */
	if (!namespace_open(req, name0, &e)) {
		json_decref(obj);
		return fail(resp, &e);
	}
	if (name == NULL || !*name) {
		api_err_cause(&e, "FieldValueRequired", "metadata.name", "Required value: name or generateName is required");
		api_err_invalid(&e, api_kind_qual(req->res, kq, sizeof(kq)), "");
		json_decref(obj);
		return fail(resp, &e);
	}
	stamp_new(req->res, obj);
	if (!node_restrict(req, obj, "create pods", &e) || !api_admit(req->res, obj, NULL, &e) ||
	    !api_allocate(req->srv, req->res, obj, NULL, &e)) {
		json_decref(obj);
		return fail(resp, &e);
	}
	name = api_get_str(obj, "metadata.name");
	if (req->dry_run) {
		resp->code = 201;
		resp->json = obj;
		return;
	}
	char *key = api_key(req->res, req->res->namespaced ? req->ns : NULL, name);
	if (req->later && write_later(req, key, obj, 0, name, create_done, resp)) {
		free(key);
		return;
	}
	char *mp = NULL;
	size_t mp_len = 0;
	int rc = api_store_put_mp(req->srv, key, obj, 0, NULL,
	    req->want_mp ? &mp : NULL, &mp_len, &e);
	free(key);
	created(req->srv, req->res, obj, name, rc, mp, mp_len, &e, resp);
}

/* A kubelet's Event, a bus create of one the bus service left as bytes:
 * made on them (evwrite.c) and put; the store's completion answers
 * (create_done), as it does the JSON path's. False when that cannot
 * say: do_create decodes the object and goes on. */
static bool event_mp(struct api_req *req, struct api_resp *resp)
{
	if (!req->later || !req->want_mp || req->dry_run || req->name || req->sub ||
	    req->ns == NULL || req->res->group[0] || strcmp(req->res->plural, "events"))
		return false;
	char uid[40], now[40], name[256], *out = NULL, *key = NULL;
	size_t outlen = 0;
	struct write_wait *ww = NULL;
	struct api_error e = { 0 };
	api_uuid(uid, sizeof(uid));
	api_now(now, sizeof(now));
	/* a closed namespace's answer is the JSON path's */
	bool ok = api_event_create_mp(req->obj_mp, req->obj_mp_len, req->ns, uid, now, &out,
		      &outlen, name) == API_PSTAT_OK &&
	    namespace_open(req, name, &e) && (key = api_key(req->res, req->ns, name)) != NULL &&
	    (ww = write_wait_new(req, name)) != NULL &&
	    api_store_put_raw_async(req->srv, key, out, outlen, 0, true, create_done, ww, &e) == 0;
	if (!ok)
		free(ww);
	api_err_clear(&e);
	free(key);
	free(out);
	resp->later = ok;
	return ok;
}

static void do_create(struct api_req *req, struct api_resp *resp)
{
	struct api_error e = { 0 };
	if (req->body == NULL && req->obj_mp) {
		if (event_mp(req, resp))
			return;
		req->body = api_busapi_object(req->obj_mp, req->obj_mp_len);
	}
	if (req->body == NULL) {
		api_err(&e, 400, "BadRequest", "the request has no body");
		return fail(resp, &e);
	}
	/* The body is read once, here: take it rather than copy it. */
	json_t *obj = req->body;
	req->body = NULL;
	char *name = req->name;
	req->name = NULL; /* POST to a collection: the name is the body's */
	bool ok = check_body(req, obj, &e);
	req->name = name;
	if (!ok) {
		json_decref(obj);
		return fail(resp, &e);
	}
	create_obj(req, obj, resp);
}

/* --- update and patch ------------------------------------------------------------- */

/* Keep what a write may not change, and bump generation on spec changes. */
static void carry_over(const struct api_req *req, json_t *obj, const json_t *old)
{
	const struct api_resource *r = req->res;
	static const char *const keep[] = { "metadata.uid", "metadata.creationTimestamp",
		"metadata.deletionTimestamp", "metadata.deletionGracePeriodSeconds", NULL };
	for (int i = 0; keep[i]; i++) {
		json_t *v = api_get(old, keep[i]);
		if (v)
			api_set(obj, keep[i], json_deep_copy(v));
		else if (api_get(obj, keep[i]))
			json_object_del(json_object_get(obj, "metadata"), strrchr(keep[i], '.') + 1);
	}
	bool status_only = req->sub && !strcmp(req->sub, "status");
	if (status_only) {
		/* Only status changes through /status: everything else is
		 * old, in old's order (status where old had it, else last). */
		json_t *st = json_incref(json_object_get(obj, "status"));
		json_object_clear(obj);
		const char *k;
		json_t *v;
		json_object_foreach((json_t *)old, k, v) {
			json_t *nv = strcmp(k, "status") ? json_deep_copy(v) :
			    json_incref(st);
			if (nv)
				json_object_set_new(obj, k, nv);
		}
		if (st && json_object_get(obj, "status") == NULL)
			json_object_set(obj, "status", st);
		json_decref(st);
	} else if (r->has_status) {
		json_t *st = json_object_get(old, "status");
		if (st)
			json_object_set_new(obj, "status", json_deep_copy(st));
		else
			json_object_del(obj, "status");
	}
}

/* After admission (defaults in place): bump generation only when the spec
 * really changed, so a replace with what is there already bumps nothing. */
static void bump_generation(const struct api_resource *r, json_t *obj, const json_t *old)
{
	if (!r->generation)
		return;
	int64_t gen = get_int(old, "metadata.generation", 1);
	bool changed = !json_equal(json_object_get(obj, "spec"), json_object_get(old, "spec"));
	api_set(obj, "metadata.generation", json_integer(changed ? gen + 1 : gen));
}

/* Delete for real once the last finalizer of a deleting object is gone
 * (Kubernetes' shouldDeleteDuringUpdate): an object whose deletion waits
 * on nothing else, its deletionGracePeriodSeconds 0. A pod in its grace
 * period stays whatever is written to it, for its kubelet to delete. */
static bool finalized(const json_t *obj)
{
	json_t *f = api_get(obj, "metadata.finalizers");
	/* A namespace also waits for its spec.finalizers (the namespace
	 * controller's "kubernetes"). */
	json_t *sf = !strcmp(api_get_str(obj, "kind") ?: "", "Namespace")
	    ? api_get(obj, "spec.finalizers") : NULL;
	return api_get(obj, "metadata.deletionTimestamp") &&
	    get_int(obj, "metadata.deletionGracePeriodSeconds", -1) == 0 &&
	    json_array_size(f) == 0 && json_array_size(sf) == 0;
}

/* Kinds whose PUT creates a missing object, as in Kubernetes (their
 * strategies' AllowCreateOnUpdate); every other kind answers NotFound. */
static bool create_on_update(const struct api_resource *r)
{
	return r->group[0] == '\0' && (!strcmp(r->plural, "endpoints") ||
	    !strcmp(r->plural, "events")) ? true : !strcmp(r->plural, "leases");
}

/* An update's or patch's put done (write_later). */
static void update_done(void *arg, int rc, char *mp, size_t mp_len, struct api_error *e)
{
	struct write_wait *ww = arg;
	struct api_later *later = ww->later;
	struct api_resp resp = { 0 };
	if (ww->mp) {
		free(mp);
		mp = ww->mp;
		mp_len = ww->mp_len;
	}
	if (rc == KB_ECONFLICT || rc == KB_ENOTFOUND) {
		/* the store moved on (or the pod's copy was the cache's, and
		 * stale): handled again, reading the store */
		free(mp);
		free(ww);
		return later->again(later);
	}
	if (rc) {
		name_err(e, ww->res, ww->name);
		free(mp);
		fail(&resp, e);
	} else {
		resp.code = 200;
		resp.mp = mp;
		resp.mp_len = mp_len;
	}
	free(ww);
	later->answer(later, &resp);
}

/* As write_later for a delete: the answer is obj as it was deleted,
 * encoded now (obj freed when this returns true). */
static bool delete_later(struct api_req *req, const char *key, json_t *obj,
    int64_t if_mod_rev, struct api_resp *resp)
{
	struct write_wait *ww = write_wait_new(req, req->name);
	struct api_error e = { 0 };
	if (ww == NULL)
		return false;
	if (api_mp_encode(obj, &ww->mp, &ww->mp_len) != 0 ||
	    api_store_delete_async(req->srv, key, if_mod_rev, update_done, ww, &e) != 0) {
		api_err_clear(&e);
		free(ww->mp);
		free(ww);
		return false;
	}
	json_decref(obj);
	resp->later = true;
	return true;
}

static void store_update(struct api_req *req, json_t *obj, const struct api_kv *old,
    struct api_resp *resp, struct api_error *e, bool *conflict)
{
	char *key = api_key(req->res, req->ns, req->name);
	int64_t want = old->mod_rev;
	int rc;
	*conflict = false;
	if (req->dry_run) {
		rc = 0;
		api_set(obj, "metadata.resourceVersion",
		    json_string(api_get_str(old->obj, "metadata.resourceVersion")));
	} else if (finalized(obj)) {
		rc = api_store_delete(req->srv, key, want, NULL, e);
		if (rc == 0)
			api_release(req->srv, req->res, obj);
	} else {
		bool same = !(req->sub && !strcmp(req->sub, "scale")); /* answered as is */
		if (same && req->later &&
		    write_later(req, key, obj, want, req->name, update_done, resp)) {
			free(key);
			return;
		}
		rc = api_store_put_mp(req->srv, key, obj, want, NULL,
		    req->want_mp && same ? &resp->mp : NULL, &resp->mp_len, e);
	}
	free(key);
	if (rc == KB_ECONFLICT) {
		*conflict = true;
		json_decref(obj);
		return;
	}
	if (rc) {
		name_err(e, req->res, req->name);
		json_decref(obj);
		return fail(resp, e);
	}
	resp->code = 200;
	resp->json = req->sub && !strcmp(req->sub, "scale") ? api_scale_of(req->res, obj) : json_incref(obj);
	json_decref(obj);
}

/* Admit obj (stolen) as the next version of old and store it. True when
 * the store moved on meanwhile and the caller should start again; else resp
 * holds the answer. old->obj is released either way. */
static bool write_over(struct api_req *req, json_t *obj, struct api_kv *old,
    struct api_resp *resp)
{
	struct api_error e = { 0 };
	char gv[64];
	carry_over(req, obj, old->obj);
	set_str(obj, "kind", req->res->kind);
	set_str(obj, "apiVersion", api_group_version(req->res, gv, sizeof(gv)));
	if (!node_restrict(req, old->obj, "update pod status for pods", &e) ||
	    !check_fields(req, obj, resp, &e) || !api_admit(req->res, obj, old->obj, &e) ||
	    !api_allocate(req->srv, req->res, obj, old->obj, &e)) {
		json_decref(obj);
		json_decref(old->obj);
		fail(resp, &e);
		return false;
	}
	bump_generation(req->res, obj, old->obj);
	bool conflict;
	store_update(req, obj, old, resp, &e, &conflict);
	json_decref(old->obj);
	if (conflict)
		api_err_clear(&e);
	return conflict;
}

/* Every attempt met a newer version: the client's Conflict. */
static void conflict_fail(struct api_req *req, struct api_resp *resp)
{
	struct api_error e = { 0 };
	api_err(&e, 409, "Conflict", "conflict");
	name_err(&e, req->res, req->name);
	fail(resp, &e);
}

/* The new object for a PUT: the body, or for /scale the old object with
 * the Scale's replicas. */
static json_t *put_body(struct api_req *req, const json_t *old, struct api_error *e)
{
	if (req->sub && !strcmp(req->sub, "scale")) {
		json_t *rep = api_get(req->body, "spec.replicas");
		if (!json_is_integer(rep)) {
			api_err_cause(e, "FieldValueRequired", "spec.replicas", "Required value");
			api_err_invalid(e, "Scale.autoscaling", req->name);
			return NULL;
		}
		json_t *obj = json_deep_copy(old);
		api_set(obj, "spec.replicas", json_deep_copy(rep));
		return obj;
	}
	json_t *obj = json_deep_copy(req->body);
	if (!check_body(req, obj, e)) {
		json_decref(obj);
		return NULL;
	}
	return obj;
}

static void do_update(struct api_req *req, struct api_resp *resp)
{
	struct api_error e = { 0 };
	if (req->body == NULL) {
		api_err(&e, 400, "BadRequest", "the request has no body");
		return fail(resp, &e);
	}
	const char *body_rv = api_get_str(req->body, "metadata.resourceVersion");
	int64_t t0 = api_mono_ms();
	for (int attempt = 0; try_again(attempt, t0); attempt++) {
		struct api_kv old = { 0 };
		if (get_obj(req, &old, &e) == NULL) {
			if (e.code == 404 && !(req->sub && *req->sub) &&
			    create_on_update(req->res) && !(body_rv && *body_rv)) {
				/* PUT of a missing object creates it. */
				api_err_clear(&e);
				json_t *obj = json_deep_copy(req->body);
				if (!check_body(req, obj, &e)) {
					json_decref(obj);
					return fail(resp, &e);
				}
				return create_obj(req, obj, resp);
			}
			return fail(resp, &e);
		}
		/* A client that names a version gets exactly that one. */
		if (body_rv && *body_rv && strtoll(body_rv, NULL, 10) != old.mod_rev) {
			json_decref(old.obj);
			api_err(&e, 409, "Conflict", "conflict");
			name_err(&e, req->res, req->name);
			return fail(resp, &e);
		}
		json_t *obj = put_body(req, old.obj, &e);
		if (obj == NULL) {
			json_decref(old.obj);
			return fail(resp, &e);
		}
		if (!write_over(req, obj, &old, resp))
			return;
	}
	conflict_fail(req, resp);
}

/* A pod as the watch cache holds it, decoded: what get_obj returns when
 * the cache is not behind the store (the stored bytes with the
 * resourceVersion spliced where api_store_get sets it). Only for a write
 * whose success is checked against the store (if_mod_rev): the caller
 * takes an answer from it only when that write succeeds, and starts over
 * from the store on anything else, since a cache behind the store may
 * refuse what the store's object allows. Pods only: their writes
 * allocate nothing. */
static bool cached_pod(struct api_req *req, struct api_kv *old)
{
	if (req->dry_run || req->res->group[0] || strcmp(req->res->plural, "pods") ||
	    req->name == NULL)
		return false;
	char *key = api_key(req->res, req->ns, req->name);
	char *mp = NULL;
	size_t len = 0;
	int64_t rev = 0;
	int rc = key ? api_cache_stored(req->srv, req->res, key, &mp, &len, &rev) : KB_ENOMEM;
	free(key);
	if (rc || rev <= 0) {
		free(mp);
		return false;
	}
	old->obj = api_mp_decode(mp, len);
	old->mod_rev = rev;
	old->create_rev = 0;
	free(mp);
	return old->obj != NULL;
}

/* A pod write every pod sees made on the watch cache's bytes of the pod
 * (podwrite.c) rather than a JSON tree of it, and put (or deleted) only if
 * the store still has that version. The store's completion answers
 * (update_done); one that meets another version has the request handled
 * again, without req->later, so the JSON way. */
static bool cached_pod_write(const struct api_req *req)
{
	return req->later && req->want_mp && !req->dry_run && req->name &&
	    !req->res->group[0] && !strcmp(req->res->plural, "pods");
}

/* The request's pod as the cache holds it at a known revision: its key
 * in *key (malloc'd, or NULL), the bytes in *data, *len, the revision in
 * *mod_rev. False when the cache cannot say. */
static bool cached_pod_bytes(const struct api_req *req, char **key, char **data, size_t *len,
    int64_t *mod_rev)
{
	*data = NULL;
	*mod_rev = 0;
	*key = api_key(req->res, req->ns, req->name);
	return *key && api_cache_stored(req->srv, req->res, *key, data, len, mod_rev) == 0 &&
	    *mod_rev > 0;
}

/* A kubelet's status patch (a merge patch of pods/NAME/status), as
 * above. False when this cannot say: do_patch's JSON path goes on. */
static bool status_cached(struct api_req *req, struct api_resp *resp)
{
	if (!cached_pod_write(req) || req->patch_type != API_PATCH_MERGE || req->sub == NULL ||
	    strcmp(req->sub, "status"))
		return false;
	char *key, *data, *out = NULL;
	size_t len = 0, outlen = 0;
	int64_t mod_rev;
	struct write_wait *ww = NULL;
	struct api_error e = { 0 };
	bool ok = cached_pod_bytes(req, &key, &data, &len, &mod_rev) &&
	    api_pod_status_mp_rv(req->res, data, len, req->body, node_of(req), &out, &outlen) ==
		API_PSTAT_OK &&
	    (ww = write_wait_new(req, req->name)) != NULL &&
	    api_store_put_raw_async(req->srv, key, out, outlen, mod_rev, true, update_done, ww, &e) == 0;
	if (!ok) {
		free(ww);
		api_err_clear(&e);
	}
	free(key);
	free(data);
	free(out);
	resp->later = ok;
	return ok;
}

/* A pod's deletion, as above: the pod kept with its deletionTimestamp
 * (a running pod's grace period starts) or deleted. False when this
 * cannot say: delete_one's JSON path goes on. */
static bool delete_cached(struct api_req *req, struct api_resp *resp)
{
	if (!cached_pod_write(req) || req->sub)
		return false;
	char *key, *data, *put = NULL;
	size_t len = 0, putlen = 0;
	int64_t mod_rev;
	bool keep = false;
	struct write_wait *ww = NULL;
	struct api_error e = { 0 };
	char now[40];
	api_now(now, sizeof(now));
	bool ok = cached_pod_bytes(req, &key, &data, &len, &mod_rev) &&
	    (ww = write_wait_new(req, req->name)) != NULL &&
	    api_pod_delete_mp_rv(data, len, req->body, node_of(req), now, &keep, &put, &putlen,
		&ww->mp, &ww->mp_len) == API_PSTAT_OK &&
	    (keep ? api_store_put_raw_async(req->srv, key, put, putlen, mod_rev, true, update_done,
			ww, &e)
		  : api_store_delete_async(req->srv, key, mod_rev, update_done, ww, &e)) == 0;
	if (!ok && ww) {
		free(ww->mp);
		free(ww);
	}
	api_err_clear(&e);
	free(key);
	free(data);
	free(put);
	resp->later = ok;
	return ok;
}

static void do_patch(struct api_req *req, struct api_resp *resp)
{
	struct api_error e = { 0 };
	bool try_cache = true;
	if (status_cached(req, resp))
		return;
	if (req->body == NULL || req->patch_type == API_PATCH_NONE) {
		api_err(&e, 415, "UnsupportedMediaType",
		    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json");
		return fail(resp, &e);
	}
	int64_t t0 = api_mono_ms();
	for (int attempt = 0; try_again(attempt, t0); attempt++) {
		struct api_kv old = { 0 };
		/* The cache's copy first, once: an attempt that does not
		 * succeed with it is not counted, and the next reads the store. */
		bool cached = try_cache && cached_pod(req, &old);
		try_cache = false;
		if (cached)
			attempt--;
		if (!cached && get_obj(req, &old, &e) == NULL) {
			if (e.code == 404 && req->patch_type == API_PATCH_APPLY && !req->sub) {
				/* Server-side apply creates what is missing. */
				api_err_clear(&e);
				json_t *obj = api_patch(API_PATCH_APPLY, req->res, NULL, req->body, &e);
				if (obj == NULL || !check_body(req, obj, &e)) {
					json_decref(obj);
					return fail(resp, &e);
				}
				return create_obj(req, obj, resp);
			}
			return fail(resp, &e);
		}
		json_t *base = old.obj;
		json_t *scale = NULL;
		if (req->sub && !strcmp(req->sub, "scale"))
			base = scale = api_scale_of(req->res, old.obj);
		json_t *obj = api_patch(req->patch_type, req->res, base, req->body, &e);
		if (obj && scale) {
			json_t *rep = api_get(obj, "spec.replicas");
			json_t *full = json_deep_copy(old.obj);
			if (json_is_integer(rep))
				api_set(full, "spec.replicas", json_deep_copy(rep));
			json_decref(obj);
			obj = full;
		}
		json_decref(scale);
		if (obj == NULL && cached) {
			json_decref(old.obj);
			api_err_clear(&e);
			continue;
		}
		if (obj == NULL) {
			json_decref(old.obj);
			return fail(resp, &e);
		}
		const char *name = api_get_str(obj, "metadata.name");
		if (name && strcmp(name, req->name) && cached) {
			json_decref(obj);
			json_decref(old.obj);
			continue;
		}
		if (name && strcmp(name, req->name)) {
			api_err(&e, 400, "BadRequest", "the name of the object (%s) does not match the name on the URL (%s)",
			    name, req->name);
			json_decref(obj);
			json_decref(old.obj);
			return fail(resp, &e);
		}
		if (!write_over(req, obj, &old, resp)) {
			if (!cached || resp->code < 400)
				return;
			api_resp_free(resp);
		}
	}
	conflict_fail(req, resp);
}

/* --- delete -------------------------------------------------------------------------- */

static bool has_finalizer(const json_t *obj, const char *f)
{
	size_t i;
	json_t *v;
	json_array_foreach(api_get(obj, "metadata.finalizers"), i, v)
		if (json_is_string(v) && !strcmp(json_string_value(v), f))
			return true;
	return false;
}

static void add_finalizer(json_t *obj, const char *f)
{
	if (has_finalizer(obj, f))
		return;
	json_t *arr = api_get(obj, "metadata.finalizers");
	if (!json_is_array(arr)) {
		arr = json_array();
		api_set(obj, "metadata.finalizers", arr);
	}
	json_array_append_new(arr, json_string(f));
}

static void remove_finalizer(json_t *obj, const char *f)
{
	json_t *arr = api_get(obj, "metadata.finalizers");
	for (size_t i = 0; i < json_array_size(arr);) {
		if (!strcmp(json_string_value(json_array_get(arr, i)) ?: "", f))
			json_array_remove(arr, i);
		else
			i++;
	}
}

/* The grace period a pod deletion gets: the request's, else the pod's. */
static int64_t pod_grace(const struct api_req *req, const json_t *pod)
{
	json_t *g = req->body ? json_object_get(req->body, "gracePeriodSeconds") : NULL;
	if (json_is_integer(g))
		return json_integer_value(g);
	return get_int(pod, "spec.terminationGracePeriodSeconds", 30);
}

/* Delete one object; on success resp holds what Kubernetes answers: the
 * object (still there, being deleted) or the deleted object. */
static void delete_one(struct api_req *req, struct api_resp *resp)
{
	if (delete_cached(req, resp))
		return;
	struct api_error e = { 0 };
	const char *policy = req->body ? api_get_str(req->body, "propagationPolicy") : NULL;
	if (req->body && json_is_true(json_object_get(req->body, "orphanDependents")))
		policy = "Orphan";
	const char *pre_uid = req->body ? api_get_str(req->body, "preconditions.uid") : NULL;
	const char *pre_rv = req->body ? api_get_str(req->body, "preconditions.resourceVersion") : NULL;
	bool try_cache = true;
	int64_t t0 = api_mono_ms();
	for (int attempt = 0; try_again(attempt, t0); attempt++) {
		struct api_kv old = { 0 };
		/* A pod from the cache's copy first, as do_patch does. */
		bool cached = try_cache && cached_pod(req, &old);
		try_cache = false;
		if (cached)
			attempt--;
		if (!cached && get_obj(req, &old, &e) == NULL)
			return fail(resp, &e);
		if (!node_restrict(req, old.obj, "delete pods", &e)) {
			json_decref(old.obj);
			if (cached) {
				api_err_clear(&e);
				continue;
			}
			return fail(resp, &e);
		}
		/* old.obj is ours and not read again: changed in place */
		json_t *obj = old.obj;
		old.obj = NULL;
		bool uid_bad = pre_uid && strcmp(pre_uid, api_get_str(obj, "metadata.uid") ?: "");
		if ((uid_bad || (pre_rv && strtoll(pre_rv, NULL, 10) != old.mod_rev)) && cached) {
			json_decref(obj);
			json_decref(old.obj);
			continue;
		}
		if (uid_bad || (pre_rv && strtoll(pre_rv, NULL, 10) != old.mod_rev)) {
			char q[128];
			const char *what = uid_bad ? "UID" : "ResourceVersion";
			api_err(&e, 409, "Conflict",
			    "Operation cannot be fulfilled on %s \"%s\": Precondition failed: %s in precondition: %s, %s in object meta: %s",
			    qual(req->res, q, sizeof(q)), req->name, what, uid_bad ? pre_uid : pre_rv,
			    what, api_get_str(obj, uid_bad ? "metadata.uid" : "metadata.resourceVersion") ?: "");
			snprintf(e.kind, sizeof(e.kind), "%s", req->res->plural);
			snprintf(e.name, sizeof(e.name), "%s", req->name);
			json_decref(obj);
			json_decref(old.obj);
			return fail(resp, &e);
		}
		bool deleting = api_get(obj, "metadata.deletionTimestamp") != NULL;
		char now[40];
		api_now(now, sizeof(now));
		bool keep = false;
		if (policy && !strcmp(policy, "Foreground")) {
			add_finalizer(obj, "foregroundDeletion");
			keep = true;
		} else if (policy && !strcmp(policy, "Orphan")) {
			add_finalizer(obj, "orphan");
			keep = true;
		} else if (policy && !strcmp(policy, "Background")) {
			/* Background is the default: neither finalizer. */
			remove_finalizer(obj, "orphan");
		}
		if (json_array_size(api_get(obj, "metadata.finalizers")))
			keep = true;
		if (!strcmp(req->res->plural, "namespaces")) {
			/* The namespace controller empties it, then finalizes. */
			keep = true;
			api_set(obj, "status.phase", json_string("Terminating"));
		}
		if (!strcmp(req->res->plural, "pods")) {
			int64_t grace = pod_grace(req, obj);
			const char *node = api_get_str(obj, "spec.nodeName");
			const char *phase = api_get_str(obj, "status.phase");
			bool done = phase && (!strcmp(phase, "Succeeded") || !strcmp(phase, "Failed"));
			/* As Kubernetes' CheckGracefulDelete: a pod that no node
			 * runs (unscheduled, or finished) has no grace period; a
			 * running pod's kubelet finishes it, after its grace. */
			if (node == NULL || !*node || done)
				grace = 0;
			if (grace > 0)
				keep = true;
			if (!deleting || grace < get_int(obj, "metadata.deletionGracePeriodSeconds", INT64_MAX))
				api_set(obj, "metadata.deletionGracePeriodSeconds", json_integer(grace));
		} else if (keep && !deleting) {
			api_set(obj, "metadata.deletionGracePeriodSeconds", json_integer(0));
		}
		if (!deleting)
			set_str(obj, "metadata.deletionTimestamp", now);
		char *key = api_key(req->res, req->ns, req->name);
		if (req->later && !req->dry_run &&
		    (keep ? write_later(req, key, obj, old.mod_rev, req->name, update_done, resp)
			  : delete_later(req, key, obj, old.mod_rev, resp))) {
			free(key);
			return;
		}
		int rc;
		if (req->dry_run)
			rc = 0;
		else if (keep)
			/* the reply's msgpack made by the put, as an update's */
			rc = api_store_put_mp(req->srv, key, obj, old.mod_rev, NULL,
			    req->want_mp ? &resp->mp : NULL, &resp->mp_len, &e);
		else
			rc = api_store_delete(req->srv, key, old.mod_rev, NULL, &e);
		free(key);
		json_decref(old.obj);
		if (rc == KB_ECONFLICT || (rc && cached)) {
			json_decref(obj);
			api_err_clear(&e);
			continue;
		}
		if (rc) {
			name_err(&e, req->res, req->name);
			json_decref(obj);
			return fail(resp, &e);
		}
		if (!keep)
			api_release(req->srv, req->res, obj);
		resp->code = 200;
		resp->json = obj;
		return;
	}
	conflict_fail(req, resp);
}

static void do_delete_collection(struct api_req *req, struct api_resp *resp)
{
	struct api_resp list = { 0 };
	char *limit_cont = req->cont;
	req->cont = NULL;
	do_list(req, &list);
	req->cont = limit_cont;
	if (list.code != 200) {
		*resp = list;
		return;
	}
	size_t i;
	json_t *o;
	json_t *items = json_object_get(list.json, "items");
	json_array_foreach(items, i, o) {
		struct api_req one = *req;
		one.later = NULL; /* each answered here, at once */
		one.name = (char *)api_get_str(o, "metadata.name");
		one.ns = (char *)api_get_str(o, "metadata.namespace");
		struct api_resp r = { 0 };
		delete_one(&one, &r);
		api_resp_free(&r);
	}
	resp->code = 200;
	resp->json = list.json;
}

/* --- subresources with their own bodies ------------------------------------------------- */

/* The binding on a decoded pod: for the shapes api_pod_bind_mp leaves. */
static void bind_json(struct api_req *req, struct api_resp *resp, const char *node)
{
	struct api_error e = { 0 };
	for (int attempt = 0; attempt < UPDATE_RETRIES; attempt++) {
		struct api_kv old = { 0 };
		if (get_obj(req, &old, &e) == NULL)
			return fail(resp, &e);
		char now[40];
		api_now(now, sizeof(now));
		const char *cur = NULL;
		enum api_bind r = api_pod_bind_json(old.obj, node, now, &cur);
		if (r == API_BIND_ASSIGNED)
			api_err(&e, 409, "Conflict", "pod %s is already assigned to node \"%s\"", req->name, cur);
		else if (r == API_BIND_DELETING)
			api_err(&e, 409, "Conflict", "pod %s is being deleted, cannot be assigned to a host", req->name);
		if (r != API_BIND_OK) {
			json_decref(old.obj);
			return fail(resp, &e);
		}
		char *key = api_key(req->res, req->ns, req->name);
		int rc = api_store_put(req->srv, key, old.obj, old.mod_rev, NULL, &e);
		free(key);
		json_decref(old.obj);
		if (rc == KB_ECONFLICT) {
			api_err_clear(&e);
			continue;
		}
		if (rc)
			return fail(resp, &e);
		resp->code = 201;
		resp->json = api_status_success(NULL, NULL);
		return;
	}
	api_err(&e, 409, "Conflict", "conflict binding pod %s", req->name);
	fail(resp, &e);
}

/* A binding's answer: Success, or the Status of e. */
static void bound(int rc, struct api_error *e, struct api_resp *resp)
{
	if (rc)
		return fail(resp, e);
	resp->code = 201;
	resp->json = api_status_success(NULL, NULL);
}

/* bind_cached's put, answered later: a pod the cache had stale goes back
 * to be bound the slow way, as bind_cached's KB_ENOTFOUND. */
static void bind_done(void *arg, int rc, char *mp, size_t mp_len, struct api_error *e)
{
	struct api_later *later = arg;
	(void)mp_len;
	free(mp);
	if (rc == KB_ECONFLICT || rc == KB_ENOTFOUND)
		return later->again(later);
	struct api_resp resp = { 0 };
	bound(rc, e, &resp);
	later->answer(later, &resp);
}

/* bind_cached started the put: req->later answers. */
#define BIND_LATER (-1)

/* The binding on the pod as the watch cache holds it, put only if the
 * store still has that version: no store read. KB_ENOTFOUND when that
 * cannot say (not in the cache, not bindable there, or the store has
 * another version or none): the caller reads the store, as without the
 * cache. Else the put's result, e set on an error, or BIND_LATER when
 * req->later will answer. */
static int bind_cached(struct api_req *req, const char *key, const char *node,
    struct api_error *e)
{
	char *data = NULL, *out = NULL;
	const char *cur = NULL;
	size_t len = 0, outlen = 0, curlen = 0;
	int64_t mod_rev = 0;
	if (api_cache_stored(req->srv, req->res, key, &data, &len, &mod_rev) || mod_rev <= 0) {
		free(data);
		return KB_ENOTFOUND;
	}
	char now[40];
	api_now(now, sizeof(now));
	/* Refusals are the store read's to give: the cache may be behind. */
	enum api_bind r = api_pod_bind_mp_rv(data, len, node, now, &out, &outlen, &cur, &curlen);
	free(data);
	if (r != API_BIND_OK)
		return KB_ENOTFOUND;
	int rc;
	if (req->later && api_store_put_raw_async(req->srv, key, out, outlen, mod_rev,
	        false, bind_done, req->later, e) == 0) {
		free(out);
		return BIND_LATER;
	}
	api_err_clear(e);
	rc = api_store_put_raw(req->srv, key, out, outlen, mod_rev, NULL, e);
	free(out);
	if (rc == KB_ECONFLICT || rc == KB_ENOTFOUND) {
		api_err_clear(e);
		return KB_ENOTFOUND;
	}
	return rc;
}

/* pods/NAME/binding: the stored bytes changed where the binding changes
 * them (podbind.c), not decoded into JSON and encoded again. */
static void do_binding(struct api_req *req, struct api_resp *resp)
{
	struct api_error e = { 0 };
	const char *node = req->body ? api_get_str(req->body, "target.name") : NULL;
	if (node == NULL || !*node) {
		api_err_cause(&e, "FieldValueRequired", "target.name", "Required value");
		api_err_invalid(&e, "Binding", req->name);
		return fail(resp, &e);
	}
	char *key = api_key(req->res, req->ns, req->name);
	int rc = bind_cached(req, key, node, &e);
	if (rc == BIND_LATER) {
		free(key);
		resp->later = true;
		return;
	}
	if (rc != KB_ENOTFOUND)
		goto put;
	for (int attempt = 0; attempt < UPDATE_RETRIES; attempt++) {
		kb_msg *rep = NULL;
		const char *data = NULL, *cur = NULL;
		size_t len = 0, curlen = 0, outlen = 0;
		int64_t mod_rev = 0;
		char *out = NULL;
		if (api_store_get_raw(req->srv, key, &rep, &data, &len, &mod_rev, &e)) {
			free(key);
			name_err(&e, req->res, req->name);
			return fail(resp, &e);
		}
		char now[40];
		api_now(now, sizeof(now));
		enum api_bind r = api_pod_bind_mp(data, len, node, now, &out, &outlen, &cur, &curlen);
		if (r == API_BIND_ASSIGNED)
			api_err(&e, 409, "Conflict", "pod %s is already assigned to node \"%.*s\"",
			    req->name, (int)strnlen(cur, curlen), cur);
		else if (r == API_BIND_DELETING)
			api_err(&e, 409, "Conflict", "pod %s is being deleted, cannot be assigned to a host", req->name);
		else if (r == API_BIND_NOMEM)
			api_err(&e, 500, "InternalError", "out of memory");
		kb_msg_free(rep);
		if (r == API_BIND_JSON) {
			free(key);
			return bind_json(req, resp, node);
		}
		if (r != API_BIND_OK) {
			free(key);
			return fail(resp, &e);
		}
		rc = api_store_put_raw(req->srv, key, out, outlen, mod_rev, NULL, &e);
		free(out);
		if (rc != KB_ECONFLICT)
			goto put;
		api_err_clear(&e);
	}
	free(key);
	api_err(&e, 409, "Conflict", "conflict binding pod %s", req->name);
	return fail(resp, &e);
put:
	free(key);
	bound(rc, &e, resp);
}

static void do_eviction(struct api_req *req, struct api_resp *resp)
{
	struct api_req del = *req;
	del.later = NULL; /* its answer is read below */
	del.sub = NULL;
	del.body = req->body ? json_object_get(req->body, "deleteOptions") : NULL;
	delete_one(&del, resp);
	if (resp->code == 200) {
		json_decref(resp->json);
		free(resp->mp);
		resp->mp = NULL;
		resp->code = 201;
		resp->json = api_status_success(NULL, NULL);
	}
}

static void do_access_review(struct api_req *req, struct api_resp *resp)
{
	json_t *ra = req->body ? api_get(req->body, "spec.resourceAttributes") : NULL;
	const char *verb = api_get_str(ra, "verb");
	char reason[512] = "";
	bool allowed = false;
	if (ra && verb)
		allowed = api_authorize(req->srv, req->user, verb, api_get_str(ra, "group") ?: "",
		    api_get_str(ra, "resource") ?: "", api_get_str(ra, "subresource"),
		    api_get_str(ra, "namespace"), api_get_str(ra, "name"), reason, sizeof(reason));
	json_t *obj = req->body ? json_deep_copy(req->body) : json_object();
	set_str(obj, "apiVersion", "authorization.k8s.io/v1");
	set_str(obj, "kind", "SelfSubjectAccessReview");
	json_object_set_new(obj, "status", json_pack("{s:b}", "allowed", allowed));
	/* Kubernetes' RBAC gives no reason for a denial (kubectl prints a
	 * bare "no"); only a failed evaluation says why. */
	if (!allowed && !strncmp(reason, "the authorizer did not answer", 29))
		api_set(obj, "status.evaluationError", json_string(reason));
	resp->code = 201;
	resp->json = obj;
}

/* --- dispatch ----------------------------------------------------------------------------- */

static bool sub_allowed(const struct api_req *req)
{
	static const struct { const char *name; unsigned bit; } subs[] = {
		{ "status", API_SUB_STATUS }, { "scale", API_SUB_SCALE },
		{ "binding", API_SUB_BINDING }, { "eviction", API_SUB_EVICTION },
		{ "log", API_SUB_LOG }, { "exec", API_SUB_EXEC },
		{ "portforward", API_SUB_PORTFORWARD }, { "attach", API_SUB_ATTACH },
		{ "proxy", API_SUB_PROXY },
	};
	for (size_t i = 0; i < sizeof(subs) / sizeof(subs[0]); i++)
		if (!strcmp(req->sub, subs[i].name))
			return (req->res->subresources & subs[i].bit) != 0;
	return false;
}

void api_handle(struct api_req *req, struct api_resp *resp)
{
	struct api_error e = { 0 };
	memset(resp, 0, sizeof(*resp));
	if (req->sub && !sub_allowed(req)) {
		api_err(&e, 404, "NotFound", "the server could not find the requested resource");
		return fail(resp, &e);
	}
	if (req->res->virtual_) {
		if (req->verb != API_CREATE) {
			api_err(&e, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
			return fail(resp, &e);
		}
		return do_access_review(req, resp);
	}
	if (req->sub && !strcmp(req->sub, "binding") && req->verb == API_CREATE)
		return do_binding(req, resp);
	if (req->sub && !strcmp(req->sub, "eviction") && req->verb == API_CREATE)
		return do_eviction(req, resp);
	if (req->sub && !strcmp(req->sub, "log"))
		return api_pod_log(req, resp);
	switch (req->verb) {
	case API_GET: return do_get(req, resp);
	case API_LIST: return do_list(req, resp);
	case API_WATCH: return do_watch(req, resp);
	case API_CREATE: return do_create(req, resp);
	case API_UPDATE: return do_update(req, resp);
	case API_PATCH: return do_patch(req, resp);
	case API_DELETE: return delete_one(req, resp);
	case API_DELETECOLLECTION: return do_delete_collection(req, resp);
	}
	api_err(&e, 405, "MethodNotAllowed", "the server does not allow this method on the requested resource");
	fail(resp, &e);
}

void api_req_free(struct api_req *req)
{
	free(req->ns);
	free(req->name);
	free(req->sub);
	free(req->label_selector);
	free(req->field_selector);
	free(req->resource_version);
	free(req->resource_version_match);
	free(req->cont);
	free(req->field_manager);
	free(req->field_validation);
	free(req->container);
	json_decref(req->body);
	memset(req, 0, sizeof(*req));
}

void api_resp_free(struct api_resp *resp)
{
	json_decref(resp->json);
	free(resp->text);
	free(resp->warning);
	free(resp->mp);
	if (resp->stream)
		resp->stream->close(resp->stream);
	memset(resp, 0, sizeof(*resp));
}
