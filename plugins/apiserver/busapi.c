/* plugins/apiserver/busapi.c — the `api` bus service: the same verbs as
 * over HTTP, on msgpack objects, for plugins (controllers, scheduler,
 * kubelet). Authorized by the same rules, with the caller's principal.
 *
 * op get|list|create|update|patch|delete|watch|unwatch, body:
 *   {group: "" | "apps" …, version: "v1", resource: "pods",
 *    namespace?, name?, subresource?,
 *    object? (create, update), patch? + patchType: json|merge|strategic|apply
 *    (patch), options? (delete: DeleteOptions), labelSelector?,
 *    fieldSelector?, limit?, continue?, resourceVersion?,
 *    topic? (watch: where events go, subscribed first by the caller),
 *    fieldValidation? (create, update, patch: Strict or Ignore, the
 *    default; a reply carries no warnings, so Warn is Ignore here and the
 *    body is not checked for unknown fields, which are dropped as always)}
 * reply: the object, the List, or {watch_id} for watch; events published
 * as {watch_id, type, object}. A watch's last publication is
 * {watch_id, type: "ERROR", object: Status} saying why it ended (unwatched,
 * or the API server stopping: 503 ServiceUnavailable), so that the
 * subscriber watches again rather than waiting for events that will never
 * come. Errors carry the Status as body.
 *
 * Requests are answered by a pool of `bus_workers` threads, not the
 * plugin's dispatch thread: a verb may wait on the store, and the dispatch
 * thread must stay free to take the store's watch events. The pool bounds
 * how many writes reach the store's group commit at once, so it is sized
 * for the controllers' calls in flight, not for the cores.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "busapi.h"
#include "server.h"

struct job {
	kb_msg *req;
	struct job *next;
};

struct bus_watch {
	int64_t id;
	char *topic;
	char *owner;          /* principal that may cancel it */
	struct api_watcher *w;
	struct api_server *s;
	struct bus_watch *next;
};

struct api_busapi {
	struct api_server *s;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail;
	bool stop;
	pthread_t *threads;   /* s->bus_workers of them */
	int nthreads;
	struct bus_watch *watches;
	atomic_llong next_watch;
};

static char *mp_str(const msgpack_object *b, const char *k)
{
	return kb_mp_strdup(b, k);
}

static kb_body *json_body(const json_t *j)
{
	char *data;
	size_t len;
	if (api_mp_encode(j, &data, &len) != 0)
		return NULL;
	return kb_body_take(data, len);
}

static void reply_status(kb_msg *req, int code, json_t *status)
{
	const char *msg = api_get_str(status, "message");
	/* The Status's reason tells apart what one HTTP code cannot (409 is
	 * AlreadyExists or Conflict, 410 Expired or Gone). */
	const char *reason = api_get_str(status, "reason");
	int by_reason = reason ? (int)kb_err_from_reason(reason) : KB_EINTERNAL;
	if (by_reason != KB_EINTERNAL || (reason && !strcmp(reason, "InternalError")))
		code = by_reason;
	kb_body *b = json_body(status);
	if (kb_reply_err_body(req, code, b, "%s", msg ? msg : "") != 0)
		kb_body_unref(b);
}

static int kb_code_of(int http)
{
	switch (http) {
	case 400: return KB_EBADREQUEST;
	case 401: return KB_EUNAUTHORIZED;
	case 403: return KB_EFORBIDDEN;
	case 404: return KB_ENOTFOUND;
	case 405: return KB_EMETHOD;
	case 409: return KB_ECONFLICT;
	case 410: return KB_EEXPIRED;
	case 413: return KB_ETOOLARGE;
	case 422: return KB_EINVAL;
	case 429: return KB_ETOOMANY;
	case 503: return KB_EUNAVAILABLE;
	case 504: return KB_ETIMEOUT;
	default: return KB_EINTERNAL;
	}
}

static int verb_of(const char *op, bool has_name)
{
	if (!strcmp(op, "get")) return API_GET;
	if (!strcmp(op, "list")) return API_LIST;
	if (!strcmp(op, "watch")) return API_WATCH;
	if (!strcmp(op, "create")) return API_CREATE;
	if (!strcmp(op, "update")) return API_UPDATE;
	if (!strcmp(op, "patch")) return API_PATCH;
	if (!strcmp(op, "delete")) return has_name ? API_DELETE : API_DELETECOLLECTION;
	return 0;
}

static const char *k8s_verb(int verb)
{
	static const char *const names[] = { "", "get", "list", "watch", "create", "update",
		"patch", "delete", "deletecollection" };
	return verb > 0 && verb <= API_DELETECOLLECTION ? names[verb] : "";
}

static int patch_type_of(const char *t)
{
	if (t == NULL) return API_PATCH_MERGE;
	if (!strcmp(t, "json")) return API_PATCH_JSON;
	if (!strcmp(t, "merge")) return API_PATCH_MERGE;
	if (!strcmp(t, "strategic")) return API_PATCH_STRATEGIC;
	if (!strcmp(t, "apply")) return API_PATCH_APPLY;
	return API_PATCH_NONE;
}

/* Fill req from the message; false with e set when it does not parse. */
static bool parse(struct api_server *s, const kb_msg *m, struct api_req *req,
    struct api_user *user, struct api_error *e)
{
	const msgpack_object *b = kb_msg_body(m);
	char *group = mp_str(b, "group"), *version = mp_str(b, "version"),
	     *resource = mp_str(b, "resource");
	req->srv = s;
	req->res = api_resource_find(group ? group : "", version ? version : "v1",
	    resource ? resource : "");
	if (req->res == NULL)
		api_err(e, 404, "NotFound", "the server could not find the requested resource (%s %s/%s)",
		    resource ? resource : "(none)", group ? group : "", version ? version : "v1");
	free(group);
	free(version);
	free(resource);
	if (req->res == NULL)
		return false;
	req->ns = mp_str(b, "namespace");
	req->name = mp_str(b, "name");
	req->sub = mp_str(b, "subresource");
	req->verb = verb_of(kb_msg_op(m), req->name != NULL);
	if (req->verb == API_LIST && !strcmp(kb_msg_op(m), "list") && req->name) {
		free(req->name);
		req->name = NULL;
	}
	req->label_selector = mp_str(b, "labelSelector");
	req->field_selector = mp_str(b, "fieldSelector");
	req->resource_version = mp_str(b, "resourceVersion");
	req->cont = mp_str(b, "continue");
	req->field_manager = mp_str(b, "fieldManager");
	kb_mp_int(b, "limit", &req->limit);
	req->tail_lines = req->since_seconds = req->limit_bytes = -1;
	req->want_mp = true;
	const msgpack_object *o = kb_mp_key(b, "object");
	if (o == NULL)
		o = kb_mp_key(b, "patch");
	if (o == NULL)
		o = kb_mp_key(b, "options");
	if (o)
		req->body = api_json_from_mp(o);
	/* Warn's warnings would have nowhere to go on the bus. */
	char *fv = mp_str(b, "fieldValidation");
	if (fv && strcmp(fv, "Strict") && strcmp(fv, "Warn") && strcmp(fv, "Ignore")) {
		api_err(e, 400, "BadRequest",
		    "fieldValidation parameter must be one of Strict, Warn or Ignore, got %.64s", fv);
		free(fv);
		return false;
	}
	req->field_validation = fv && !strcmp(fv, "Strict") ? fv : strdup("Ignore");
	if (req->field_validation != fv)
		free(fv);
	char *pt = mp_str(b, "patchType");
	req->patch_type = req->verb == API_PATCH ? patch_type_of(pt) : API_PATCH_NONE;
	free(pt);
	/* The caller as the core stamped it. */
	user->name = strdup(kb_msg_principal(m));
	user->uid = strdup("");
	user->ngroups = kb_msg_ngroups(m);
	user->groups = calloc(user->ngroups + 1, sizeof(char *));
	for (size_t i = 0; user->groups && i < user->ngroups; i++)
		user->groups[i] = strdup(kb_msg_group(m, i));
	req->user = user;
	if (req->verb == 0) {
		api_err(e, 405, "MethodNotAllowed", "unknown op `%s`", kb_msg_op(m));
		return false;
	}
	if (req->res->namespaced && req->name && req->ns == NULL) {
		api_err(e, 400, "BadRequest", "%s is namespaced: give a namespace", req->res->plural);
		return false;
	}
	return true;
}

static bool authorized(struct api_server *s, const struct api_req *req, struct api_error *e)
{
	char reason[512];
	if (api_authorize(s, req->user, k8s_verb(req->verb), req->res->group, req->res->plural,
	        req->sub, req->ns, req->name, reason, sizeof(reason)))
		return true;
	api_err(e, 403, "Forbidden", "%s", reason);
	return false;
}

/* --- watch over the bus ------------------------------------------------------------ */

/* {watch_id, type, object}: the object's bytes as the cache keeps them
 * (the stored bytes with their resourceVersion, shared by every watcher),
 * so a watcher costs a copy, not an encoding; no json_t is made for it. */
static void on_event(void *arg, const struct api_event *ev)
{
	struct bus_watch *bw = arg;
	char *own = NULL;
	const char *obj = ev->obj_mp;
	size_t len = ev->obj_mp_len;
	if (obj == NULL) {
		if (api_mp_encode(ev->obj, &own, &len) != 0)
			return;
		obj = own;
	}
	/* Sized for the whole event: the envelope is under 64 bytes. */
	msgpack_sbuffer sb = { .alloc = len + 64 };
	msgpack_packer pk;
	if ((sb.data = malloc(sb.alloc)) == NULL) {
		free(own);
		return;
	}
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 3);
	kb_mp_pack(&pk, "s:I", "watch_id", (int64_t)bw->id);
	kb_mp_pack(&pk, "s:s", "type", ev->type);
	kb_mp_pack_cstr(&pk, "object");
	msgpack_sbuffer_write(&sb, obj, len);
	free(own);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	if (b && kb_publish(bw->s->ctx, bw->topic, b) != 0)
		kb_body_unref(b);
}

/* After api_unwatch: no event can follow this one. */
static void publish_end(struct bus_watch *bw, const char *why)
{
	struct api_error e = { 0 };
	api_err(&e, 503, "ServiceUnavailable", "watch %lld closed: %s", (long long)bw->id, why);
	json_t *st = api_status(&e);
	json_t *o = st ? json_pack("{s:I, s:s, s:o}", "watch_id", (json_int_t)bw->id, "type", "ERROR",
	                     "object", st)
	               : NULL;
	kb_body *b = o ? json_body(o) : NULL;
	json_decref(o);
	if (b && kb_publish(bw->s->ctx, bw->topic, b) != 0)
		kb_body_unref(b);
	api_err_clear(&e);
}

static void do_watch(struct api_busapi *ba, kb_msg *m, struct api_req *req)
{
	struct api_error e = { 0 };
	char *topic = mp_str(kb_msg_body(m), "topic");
	if (topic == NULL) {
		api_err(&e, 400, "BadRequest", "watch needs a topic the caller subscribed to");
		json_t *st = api_status(&e);
		reply_status(m, KB_EBADREQUEST, st);
		json_decref(st);
		api_err_clear(&e);
		return;
	}
	struct bus_watch *bw = calloc(1, sizeof(*bw));
	bw->id = atomic_fetch_add(&ba->next_watch, 1);
	bw->topic = topic;
	bw->owner = strdup(kb_msg_principal(m));
	bw->s = ba->s;
	bw->w = api_watch_fn(ba->s, req, on_event, bw, &e);
	if (bw->w == NULL) {
		json_t *st = api_status(&e);
		reply_status(m, kb_code_of(e.code), st);
		json_decref(st);
		api_err_clear(&e);
		free(bw->topic);
		free(bw->owner);
		free(bw);
		return;
	}
	pthread_mutex_lock(&ba->mu);
	bw->next = ba->watches;
	ba->watches = bw;
	pthread_mutex_unlock(&ba->mu);
	kb_reply(m, kb_mp_body("{s:I}", "watch_id", (int64_t)bw->id));
}

static void do_unwatch(struct api_busapi *ba, kb_msg *m)
{
	int64_t id = 0;
	kb_mp_int(kb_msg_body(m), "watch_id", &id);
	pthread_mutex_lock(&ba->mu);
	struct bus_watch *found = NULL;
	for (struct bus_watch **pp = &ba->watches; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == id && !strcmp((*pp)->owner, kb_msg_principal(m))) {
			found = *pp;
			*pp = found->next;
			break;
		}
	}
	pthread_mutex_unlock(&ba->mu);
	if (found == NULL) {
		kb_reply_err(m, KB_ENOTFOUND, "no watch %lld of yours", (long long)id);
		return;
	}
	api_unwatch(found->w);
	publish_end(found, "unwatched");
	free(found->topic);
	free(found->owner);
	free(found);
	kb_reply(m, NULL);
}

/* --- the workers ---------------------------------------------------------------------- */

static void handle(struct api_busapi *ba, kb_msg *m)
{
	if (!strcmp(kb_msg_op(m), "unwatch"))
		return do_unwatch(ba, m);
	struct api_req req = { 0 };
	struct api_user user = { 0 };
	struct api_error e = { 0 };
	if (!parse(ba->s, m, &req, &user, &e) || !authorized(ba->s, &req, &e)) {
		json_t *st = api_status(&e);
		reply_status(m, kb_code_of(e.code), st);
		json_decref(st);
		api_err_clear(&e);
		goto out;
	}
	if (req.verb == API_WATCH) {
		do_watch(ba, m, &req);
		goto out;
	}
	struct api_resp resp = { 0 };
	api_handle(&req, &resp);
	if (resp.code >= 400)
		reply_status(m, kb_code_of(resp.code), resp.json);
	else if (resp.text)
		kb_reply(m, kb_mp_body("{s:S}", "text", resp.text, resp.text_len));
	else if (resp.mp && resp.json) {
		/* a write made the object's msgpack already */
		kb_reply(m, kb_body_take(resp.mp, resp.mp_len));
		resp.mp = NULL;
	} else
		kb_reply(m, resp.json ? json_body(resp.json) : NULL);
	api_resp_free(&resp);
out:
	api_req_free(&req);
	api_user_free(&user);
}

static void *worker(void *arg)
{
	struct api_busapi *ba = arg;
	pthread_setname_np(pthread_self(), "api:worker");
	pthread_mutex_lock(&ba->mu);
	for (;;) {
		while (ba->head == NULL && !ba->stop)
			pthread_cond_wait(&ba->cv, &ba->mu);
		if (ba->head == NULL)
			break;
		struct job *j = ba->head;
		ba->head = j->next;
		if (ba->head == NULL)
			ba->tail = NULL;
		pthread_mutex_unlock(&ba->mu);
		handle(ba, j->req);
		free(j);
		pthread_mutex_lock(&ba->mu);
	}
	pthread_mutex_unlock(&ba->mu);
	return NULL;
}

/* The dispatch thread only queues. */
static void serve(void *arg, kb_msg *m)
{
	struct api_busapi *ba = arg;
	struct job *j = malloc(sizeof(*j));
	if (j == NULL) {
		kb_reply_err(m, KB_EUNAVAILABLE, "out of memory");
		return;
	}
	j->req = m;
	j->next = NULL;
	pthread_mutex_lock(&ba->mu);
	if (ba->stop) {
		pthread_mutex_unlock(&ba->mu);
		free(j);
		kb_reply_err(m, KB_EUNAVAILABLE, "the API server is stopping");
		return;
	}
	if (ba->tail)
		ba->tail->next = j;
	else
		ba->head = j;
	ba->tail = j;
	pthread_cond_signal(&ba->cv);
	pthread_mutex_unlock(&ba->mu);
}

struct api_busapi *api_busapi_new(struct api_server *s)
{
	struct api_busapi *ba = calloc(1, sizeof(*ba));
	if (ba == NULL)
		return NULL;
	ba->s = s;
	atomic_init(&ba->next_watch, 1);
	pthread_mutex_init(&ba->mu, NULL);
	pthread_cond_init(&ba->cv, NULL);
	if (kb_serve(s->ctx, "api", serve, ba) != 0) {
		free(ba);
		return NULL;
	}
	return ba;
}

int api_busapi_start(struct api_busapi *ba)
{
	int n = ba->s->bus_workers > 0 ? (int)ba->s->bus_workers : 1;
	ba->threads = calloc((size_t)n, sizeof(*ba->threads));
	if (ba->threads == NULL)
		return KB_ENOMEM;
	for (int i = 0; i < n; i++) {
		if (pthread_create(&ba->threads[i], NULL, worker, ba) != 0)
			return KB_ESYS;
		ba->nthreads++;
	}
	return 0;
}

void api_busapi_stop(struct api_busapi *ba)
{
	pthread_mutex_lock(&ba->mu);
	ba->stop = true;
	pthread_cond_broadcast(&ba->cv);
	pthread_mutex_unlock(&ba->mu);
	for (int i = 0; i < ba->nthreads; i++)
		pthread_join(ba->threads[i], NULL);
	ba->nthreads = 0;
	free(ba->threads);
	ba->threads = NULL;
	while (ba->watches) {
		struct bus_watch *bw = ba->watches;
		ba->watches = bw->next;
		api_unwatch(bw->w);
		publish_end(bw, "the API server is stopping");
		free(bw->topic);
		free(bw->owner);
		free(bw);
	}
}

void api_busapi_free(struct api_busapi *ba)
{
	if (ba == NULL)
		return;
	pthread_mutex_destroy(&ba->mu);
	pthread_cond_destroy(&ba->cv);
	free(ba);
}
