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
 * Requests are answered by a pool of threads, not the plugin's dispatch
 * thread: a verb may wait on the store, and the dispatch thread must stay
 * free to take the store's watch events.
 *
 * Writes do not wait for their last step, one store put: the worker
 * hands it to the store and takes the next request, and the put's
 * completion answers (api_later in api.h) on the thread that takes the
 * store's reply. A worker that waited cost a sleep and a wake-up per
 * write, which on two cores was a tenth of all the CPU a pod took. A write
 * whose put met a newer version (a binding or patch made from the watch
 * cache's stale copy) goes back in the queue to be handled again, waiting
 * for the store this time.
 *
 * Only as many workers run as there are cores (at least two): a request
 * that comes while they do waits in the queue for one of them, rather
 * than waking another thread to take that one request and sleep again.
 * On two virtual cores each such wake-up cost a cross-CPU interrupt and
 * the workers' mutexes went contended: keeping two running took the CPU
 * of a scheduled pod from about 220 to 145 µs.
 *
 * Store reads (an update's current object), the deletes answered at once
 * (of a collection, an eviction, a finalized object) and the auth calls
 * still wait (api_call): a worker waiting does not count as running, so
 * the queue goes to an idle worker, or to a new thread when none is idle.
 * The pool starts with `bus_workers` threads and grows so up to
 * `bus_workers_max`, which bounds how many deletes share one group commit
 * (one fsync with `sync: true`); threads stay until the plugin stops,
 * which waits for every put on its way.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "busapi.h"
#include "codec.h"
#include "server.h"

struct job {
	kb_msg *req;           /* a bus request, or: */
	void (*run)(void *);   /* work handed over by the HTTP side */
	void *arg;
	struct job *next;
	struct api_later later; /* a write answered after its put */
	struct api_busapi *ba;
	bool again;             /* handled once already: answer before returning */
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
	int queued, idle;     /* jobs waiting; workers waiting for one */
	int waking;           /* of the idle: signalled, not yet awake */
	int blocked;          /* workers in a blocking call (api_call) */
	int target;           /* workers kept running while jobs wait */
	atomic_int later;     /* jobs that may be answered by a put's completion */
	bool stop;
	pthread_t *threads;   /* room for s->bus_workers_max */
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

/* --- the request's fields ---------------------------------------------------------- */

enum { F_GROUP, F_VERSION, F_RESOURCE, F_NS, F_NAME, F_SUB, F_LS, F_FS, F_RV, F_CONT,
	F_FM, F_FV, F_PT, F_LIMIT, F_OBJECT, F_PATCH, F_OPTIONS, NFIELDS };

static const char *const field_names[NFIELDS] = { "group", "version", "resource",
	"namespace", "name", "subresource", "labelSelector", "fieldSelector",
	"resourceVersion", "continue", "fieldManager", "fieldValidation", "patchType",
	"limit", "object", "patch", "options" };

/* What the body says for a field: its first key only (as kb_mp_key
 * reads), a string when that value is a msgpack str (kb_mp_strdup's),
 * an integer when it is one kb_mp_int takes. */
struct fval {
	bool str, is_int;
	const char *s;
	size_t n;
	int64_t i;
};

struct fields {
	struct fval f[NFIELDS];
	json_t *body; /* object, else patch, else options, converted */
	/* a core Event's object left as bytes (fields_of_bytes, lazily):
	 * body is NULL then */
	const void *obj_mp;
	size_t obj_mp_len;
};

static char *fdup(const struct fval *f)
{
	return f->str ? strndup(f->s, f->n) : NULL;
}

/* From the decoded body, as the SDK gives it. */
static void fields_of_obj(const msgpack_object *b, struct fields *fs)
{
	memset(fs, 0, sizeof(*fs));
	for (int i = 0; i < F_OBJECT; i++) {
		const msgpack_object *v = kb_mp_key(b, field_names[i]);
		struct fval *f = &fs->f[i];
		if (v && v->type == MSGPACK_OBJECT_STR) {
			f->str = true;
			f->s = v->via.str.ptr;
			f->n = v->via.str.size;
		}
		f->is_int = v && kb_mp_int(v, NULL, &f->i);
	}
	const msgpack_object *o = kb_mp_key(b, "object");
	if (o == NULL)
		o = kb_mp_key(b, "patch");
	if (o == NULL)
		o = kb_mp_key(b, "options");
	if (o)
		fs->body = api_json_from_mp(o);
}

/* fs's string field i is absent or `v`. */
static bool field_is(const struct fields *fs, int i, const char *v)
{
	const struct fval *f = &fs->f[i];
	return !f->str || (f->n == strlen(v) && !memcmp(f->s, v, f->n));
}

/* From the bytes in one pass, the object decoded straight into a json_t:
 * no msgpack_object tree. False (fs cleared) for a body this cannot read
 * exactly as the SDK's tree and api_json_from_mp would (not a map, an ext,
 * keys that are not scalars, an object that does not convert or nests
 * near the SDK's limit): the caller reads it that way then.
 *
 * `lazy`: a core Event's object (a kubelet's create, which rest.c may
 * write without a json_t) is left as its bytes in fs->obj_mp rather than
 * decoded; api_busapi_object decodes it as this would have. */
static bool fields_of_bytes(const void *data, size_t len, bool lazy, struct fields *fs)
{
	struct api_mpc c = { data, (const unsigned char *)data + len };
	struct api_mval m, k;
	json_t *objs[3] = { NULL, NULL, NULL };
	struct api_mpc spans[3] = { { NULL, NULL } };
	bool seen[NFIELDS] = { false };
	memset(fs, 0, sizeof(*fs));
	if (data == NULL || !api_mpc_read(&c, &m) || m.kind != API_MV_MAP)
		return false;
	for (uint64_t i = 0; i < m.n; i++) {
		if (c.p >= c.end)
			goto fail;
		bool kstr = api_mp_str_type(*c.p);
		if (!api_mpc_read(&c, &k) || k.kind == API_MV_EXT || k.kind == API_MV_MAP ||
		    k.kind == API_MV_ARR)
			goto fail;
		int fi = -1;
		for (int j = 0; kstr && j < NFIELDS && fi < 0; j++)
			if (strlen(field_names[j]) == k.n && !memcmp(field_names[j], k.s, k.n))
				fi = j;
		if (fi < 0 || seen[fi]) {
			if (!api_mpc_skip_sdk(&c, 1))
				goto fail;
			continue;
		}
		seen[fi] = true;
		if (fi >= F_OBJECT) {
			/* decoded once the other fields are known */
			spans[fi - F_OBJECT].p = c.p;
			if (!api_mpc_skip_sdk(&c, 1))
				goto fail;
			spans[fi - F_OBJECT].end = c.p;
			continue;
		}
		struct api_mpc at = c;
		bool vstr = c.p < c.end && api_mp_str_type(*c.p);
		struct api_mval v;
		if (!api_mpc_skip_sdk(&c, 1) || !api_mpc_read(&at, &v))
			goto fail;
		struct fval *f = &fs->f[fi];
		if (vstr) {
			f->str = true;
			f->s = v.n ? v.s : "";
			f->n = (size_t)v.n;
		}
		if (v.kind == API_MV_INT) {
			f->is_int = true;
			f->i = v.i;
		}
	}
	if (c.p != c.end)
		goto fail;
	if (lazy && spans[0].p && field_is(fs, F_GROUP, "") && field_is(fs, F_VERSION, "v1") &&
	    fs->f[F_RESOURCE].str && field_is(fs, F_RESOURCE, "events")) {
		fs->obj_mp = spans[0].p;
		fs->obj_mp_len = (size_t)(spans[0].end - spans[0].p);
		return true;
	}
	for (int j = 0; j < 3; j++) {
		/* the object's containers open at level 1 on: 30 below it
		 * stays clear of API_MP_SDK_DEPTH */
		if (spans[j].p && (objs[j] = api_mp_decode_next(&spans[j], API_MP_SDK_DEPTH - 2)) == NULL)
			goto fail;
	}
	for (int j = 0; j < 3; j++) {
		if (fs->body == NULL && objs[j])
			fs->body = objs[j];
		else
			json_decref(objs[j]);
	}
	return true;
fail:
	for (int j = 0; j < 3; j++)
		json_decref(objs[j]);
	memset(fs, 0, sizeof(*fs));
	return false;
}

json_t *api_busapi_object(const void *data, size_t len)
{
	struct api_mpc c = { data, (const unsigned char *)data + len };
	json_t *o = api_mp_decode_next(&c, API_MP_SDK_DEPTH - 2);
	if (o)
		return o;
	/* as parse reads a body fields_of_bytes refuses: the SDK's tree */
	kb_body *b = kb_body_new(data, len);
	o = api_json_from_mp(kb_body_obj(b));
	kb_body_unref(b);
	return o;
}

json_t *api_busapi_fields(const void *data, size_t len, bool fast)
{
	struct fields fs;
	kb_body *b = NULL;
	if (fast) {
		if (!fields_of_bytes(data, len, true, &fs))
			return NULL;
		if (fs.obj_mp)
			fs.body = api_busapi_object(fs.obj_mp, fs.obj_mp_len);
	} else {
		b = kb_body_new(data, len);
		fields_of_obj(kb_body_obj(b), &fs);
	}
	json_t *out = json_object();
	for (int i = 0; i < NFIELDS; i++) {
		const struct fval *f = &fs.f[i];
		json_t *v = json_object();
		if (f->str)
			json_object_set_new(v, "s", json_stringn_nocheck(f->s, f->n));
		if (f->is_int)
			json_object_set_new(v, "i", json_integer(f->i));
		json_object_set_new(out, field_names[i], v);
	}
	if (fs.body)
		json_object_set_new(out, "body", fs.body);
	kb_body_unref(b);
	return out;
}

/* Fill req from the message; false with e set when it does not parse. */
static bool parse(struct api_server *s, const kb_msg *m, struct api_req *req,
    struct api_user *user, struct api_error *e)
{
	struct fields fs;
	kb_body *raw = kb_msg_body_ref(m);
	size_t rawlen = 0;
	const void *data = kb_body_data(raw, &rawlen);
	if (!fields_of_bytes(data, rawlen, !strcmp(kb_msg_op(m), "create"), &fs))
		fields_of_obj(kb_msg_body(m), &fs);
	char *group = fdup(&fs.f[F_GROUP]), *version = fdup(&fs.f[F_VERSION]),
	     *resource = fdup(&fs.f[F_RESOURCE]);
	req->srv = s;
	req->res = api_resource_find(group ? group : "", version ? version : "v1",
	    resource ? resource : "");
	if (req->res == NULL)
		api_err(e, 404, "NotFound", "the server could not find the requested resource (%s %s/%s)",
		    resource ? resource : "(none)", group ? group : "", version ? version : "v1");
	free(group);
	free(version);
	free(resource);
	bool ok = false;
	if (req->res == NULL)
		goto out;
	req->ns = fdup(&fs.f[F_NS]);
	req->name = fdup(&fs.f[F_NAME]);
	req->sub = fdup(&fs.f[F_SUB]);
	req->verb = verb_of(kb_msg_op(m), req->name != NULL);
	if (req->verb == API_LIST && !strcmp(kb_msg_op(m), "list") && req->name) {
		free(req->name);
		req->name = NULL;
	}
	req->label_selector = fdup(&fs.f[F_LS]);
	req->field_selector = fdup(&fs.f[F_FS]);
	req->resource_version = fdup(&fs.f[F_RV]);
	req->cont = fdup(&fs.f[F_CONT]);
	req->field_manager = fdup(&fs.f[F_FM]);
	if (fs.f[F_LIMIT].is_int)
		req->limit = fs.f[F_LIMIT].i;
	req->tail_lines = req->since_seconds = req->limit_bytes = -1;
	req->want_mp = true;
	req->body = fs.body;
	fs.body = NULL;
	req->obj_mp = fs.obj_mp; /* in m's body, which outlives req */
	req->obj_mp_len = fs.obj_mp_len;
	/* Warn's warnings would have nowhere to go on the bus. */
	char *fv = fdup(&fs.f[F_FV]);
	if (fv && strcmp(fv, "Strict") && strcmp(fv, "Warn") && strcmp(fv, "Ignore")) {
		api_err(e, 400, "BadRequest",
		    "fieldValidation parameter must be one of Strict, Warn or Ignore, got %.64s", fv);
		free(fv);
		goto out;
	}
	req->field_validation = fv && !strcmp(fv, "Strict") ? fv : strdup("Ignore");
	if (req->field_validation != fv)
		free(fv);
	char *pt = fdup(&fs.f[F_PT]);
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
		goto out;
	}
	if (req->res->namespaced && req->name && req->ns == NULL) {
		api_err(e, 400, "BadRequest", "%s is namespaced: give a namespace", req->res->plural);
		goto out;
	}
	ok = true;
out:
	json_decref(fs.body);
	kb_body_unref(raw);
	return ok;
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

/* The envelope's head, {watch_id, type, object: packed into a buffer on
 * the stack (msgpack_packer's writer); `over` when it did not fit. */
struct ev_head {
	size_t n;
	bool over;
	char b[128];
};

static int ev_head_write(void *arg, const char *p, size_t n)
{
	struct ev_head *h = arg;
	if (h->over || n > sizeof(h->b) - h->n) {
		h->over = true;
		return -1;
	}
	memcpy(h->b + h->n, p, n);
	h->n += n;
	return 0;
}

/* {watch_id, type, object}: the object's bytes as the cache keeps them
 * (the stored bytes with their resourceVersion, shared by every watcher),
 * so a watcher costs a copy, not an encoding; no json_t is made for it.
 * The head is packed first, so the body is one block of its exact size. */
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
	struct ev_head h = { 0 };
	msgpack_packer pk;
	msgpack_packer_init(&pk, &h, ev_head_write);
	msgpack_pack_map(&pk, 3);
	kb_mp_pack(&pk, "s:I", "watch_id", (int64_t)bw->id);
	kb_mp_pack(&pk, "s:s", "type", ev->type);
	kb_mp_pack_cstr(&pk, "object");
	void *p = NULL;
	kb_body *b = h.over ? NULL : kb_body_alloc(h.n + len, &p);
	if (b) {
		memcpy(p, h.b, h.n);
		memcpy((char *)p + h.n, obj, len);
	}
	free(own);
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

static void *worker(void *arg);

/* Under ba->mu: j last in the queue. */
static void enqueue(struct api_busapi *ba, struct job *j)
{
	j->next = NULL;
	if (ba->tail)
		ba->tail->next = j;
	else
		ba->head = j;
	ba->tail = j;
	ba->queued++;
}

/* The pool a worker thread serves: its blocking calls count. */
static _Thread_local struct api_busapi *tl_ba;

/* Under ba->mu: one more worker to take the queued jobs, unless `target`
 * of them run already (busy, not blocked in a call); true when the caller
 * must signal one after the unlock. With writes not waiting for the store
 * (above), two workers on two cores keep up, and every other one woken
 * only to take one request cost a wake-up and a sleep. Workers blocked in
 * a call do not count, so jobs never wait behind them: an idle worker is
 * woken, or, when none is, a thread added (up to bus_workers_max). */
static bool wake_or_grow(struct api_busapi *ba)
{
	if (ba->queued == 0)
		return false;
	int running = ba->nthreads - ba->idle + ba->waking - ba->blocked;
	if (running >= ba->target)
		return false;
	if (ba->idle > ba->waking) {
		ba->waking++;
		return true;
	}
	if (ba->threads && ba->nthreads < ba->s->bus_workers_max &&
	    pthread_create(&ba->threads[ba->nthreads], NULL, worker, ba) == 0)
		ba->nthreads++;
	return false;
}

void api_bus_blocking(bool on)
{
	struct api_busapi *ba = tl_ba;
	if (ba == NULL)
		return;
	pthread_mutex_lock(&ba->mu);
	ba->blocked += on ? 1 : -1;
	bool wake = on && wake_or_grow(ba);
	pthread_mutex_unlock(&ba->mu);
	if (wake)
		pthread_cond_signal(&ba->cv);
}

int api_call(kb_ctx *ctx, const char *service, const char *op, kb_body *body,
    int timeout_ms, kb_msg **rep)
{
	api_bus_blocking(true);
	int rc = kb_call(ctx, service, op, body, timeout_ms, rep);
	api_bus_blocking(false);
	return rc;
}

/* The answer to a request, on m (which it frees). */
static void answer(kb_msg *m, struct api_resp *resp)
{
	if (resp->code >= 400)
		reply_status(m, kb_code_of(resp->code), resp->json);
	else if (resp->text)
		kb_reply(m, kb_mp_body("{s:S}", "text", resp->text, resp->text_len));
	else if (resp->mp) {
		/* a write made the object's msgpack already */
		kb_reply(m, kb_body_take(resp->mp, resp->mp_len));
		resp->mp = NULL;
	} else
		kb_reply(m, resp->json ? json_body(resp->json) : NULL);
	api_resp_free(resp);
}

/* A put's completion is done with its job: after answering it (the job
 * freed), or to see it handled again (back in the queue). Under the
 * mutex, so that a stopping plugin's workers, which wait for every such
 * job, see the count fall. */
static void later_done(struct job *j, bool again)
{
	struct api_busapi *ba = j->ba;
	pthread_mutex_lock(&ba->mu);
	if (again) {
		j->again = true;
		enqueue(ba, j);
	}
	if (atomic_fetch_sub(&ba->later, 1) == 1 && ba->stop)
		pthread_cond_broadcast(&ba->cv);
	else if (again && wake_or_grow(ba))
		pthread_cond_signal(&ba->cv);
	pthread_mutex_unlock(&ba->mu);
	if (!again)
		free(j);
}

static void later_answer(struct api_later *l, struct api_resp *resp)
{
	struct job *j = (struct job *)((char *)l - offsetof(struct job, later));
	answer(j->req, resp);
	later_done(j, false);
}

static void later_again(struct api_later *l)
{
	struct job *j = (struct job *)((char *)l - offsetof(struct job, later));
	later_done(j, true);
}

/* Handle a job; false when its answer is left to its put's completion
 * (which frees the job then). */
static bool handle(struct api_busapi *ba, struct job *j)
{
	kb_msg *m = j->req;
	if (j->run) {
		j->run(j->arg);
		return true;
	}
	if (!strcmp(kb_msg_op(m), "unwatch")) {
		do_unwatch(ba, m);
		return true;
	}
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
	if (!j->again) {
		/* counted before its put can complete */
		atomic_fetch_add(&ba->later, 1);
		req.later = &j->later;
	}
	api_handle(&req, &resp);
	if (resp.later) {
		api_resp_free(&resp); /* nothing but a warning, which has nowhere to go */
		api_req_free(&req);
		api_user_free(&user);
		return false; /* j may be gone already */
	}
	if (req.later)
		atomic_fetch_sub(&ba->later, 1);
	answer(m, &resp);
out:
	api_req_free(&req);
	api_user_free(&user);
	return true;
}

static void *worker(void *arg)
{
	struct api_busapi *ba = arg;
	pthread_setname_np(pthread_self(), "api:worker");
	tl_ba = ba;
	pthread_mutex_lock(&ba->mu);
	for (;;) {
		ba->idle++;
		/* A stopping plugin's workers stay for the jobs that a put's
		 * completion may send back. */
		while (ba->head == NULL && !(ba->stop && atomic_load(&ba->later) == 0)) {
			pthread_cond_wait(&ba->cv, &ba->mu);
			/* the wake-up owed: this one (or a spurious one,
			 * which at worst wakes one worker too many) */
			if (ba->waking > 0)
				ba->waking--;
		}
		ba->idle--;
		if (ba->head == NULL)
			break;
		struct job *j = ba->head;
		ba->head = j->next;
		ba->queued--;
		if (ba->head == NULL)
			ba->tail = NULL;
		pthread_mutex_unlock(&ba->mu);
		if (handle(ba, j))
			free(j);
		pthread_mutex_lock(&ba->mu);
	}
	/* the others may wait for a count this worker brought to 0 */
	pthread_cond_broadcast(&ba->cv);
	pthread_mutex_unlock(&ba->mu);
	return NULL;
}

/* Queue j for a worker; KB_EUNAVAILABLE once the pool stops. */
static int submit(struct api_busapi *ba, struct job *j)
{
	pthread_mutex_lock(&ba->mu);
	if (ba->stop) {
		pthread_mutex_unlock(&ba->mu);
		return KB_EUNAVAILABLE;
	}
	enqueue(ba, j);
	bool wake = wake_or_grow(ba);
	pthread_mutex_unlock(&ba->mu);
	/* after the unlock: the woken worker does not wait for the mutex */
	if (wake)
		pthread_cond_signal(&ba->cv);
	return 0;
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
	*j = (struct job){ .req = m, .ba = ba,
		.later = { .answer = later_answer, .again = later_again } };
	if (submit(ba, j) != 0) {
		free(j);
		kb_reply_err(m, KB_EUNAVAILABLE, "the API server is stopping");
	}
}

int api_busapi_run(struct api_busapi *ba, void (*run)(void *), void *arg)
{
	struct job *j = malloc(sizeof(*j));
	if (j == NULL)
		return KB_ENOMEM;
	*j = (struct job){ .run = run, .arg = arg, .ba = ba };
	int rc = submit(ba, j);
	if (rc)
		free(j);
	return rc;
}

struct api_busapi *api_busapi_new(struct api_server *s)
{
	struct api_busapi *ba = calloc(1, sizeof(*ba));
	if (ba == NULL)
		return NULL;
	ba->s = s;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	ba->target = ncpu > 2 ? (int)ncpu : 2;
	atomic_init(&ba->next_watch, 1);
	pthread_mutex_init(&ba->mu, NULL);
	pthread_cond_init(&ba->cv, NULL);
	/* serve only queues the request: in-process callers run it */
	if (kb_serve_inline(s->ctx, "api", serve, ba) != 0) {
		free(ba);
		return NULL;
	}
	return ba;
}

int api_busapi_start(struct api_busapi *ba)
{
	int n = ba->s->bus_workers > 0 ? (int)ba->s->bus_workers : 1;
	if (ba->s->bus_workers_max < n)
		ba->s->bus_workers_max = n;
	ba->threads = calloc((size_t)ba->s->bus_workers_max,
	    sizeof(*ba->threads));
	if (ba->threads == NULL)
		return KB_ENOMEM;
	pthread_mutex_lock(&ba->mu);
	int rc = 0;
	for (int i = 0; rc == 0 && i < n; i++) {
		if (pthread_create(&ba->threads[i], NULL, worker, ba) != 0)
			rc = KB_ESYS;
		else
			ba->nthreads++;
	}
	pthread_mutex_unlock(&ba->mu);
	return rc;
}

void api_busapi_stop(struct api_busapi *ba)
{
	pthread_mutex_lock(&ba->mu);
	ba->stop = true;
	pthread_cond_broadcast(&ba->cv);
	int n = ba->nthreads; /* no more are added once stop is set */
	pthread_mutex_unlock(&ba->mu);
	for (int i = 0; i < n; i++)
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
