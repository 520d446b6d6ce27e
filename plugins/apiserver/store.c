/* plugins/apiserver/store.c — the `store` bus service as typed calls.
 *
 * Objects are stored as msgpack without metadata.resourceVersion: the
 * revision is the key's mod_revision, put back on every read, so it can
 * never disagree with the store.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "busapi.h"
#include "codec.h"
#include "http.h"
#include "server.h"
#include "store_raw.h"

static double secs_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* kb_mp_int(kb_msg_body(rep), key), without the SDK's tree when the bytes
 * read as plainly (a put's reply carries the value and the previous one:
 * only the revision is wanted). */
static bool reply_int(const kb_msg *rep, const char *key, int64_t *out)
{
	kb_body *b = kb_msg_body_ref(rep);
	size_t len = 0;
	const void *data = kb_body_data(b, &len);
	bool found = false;
	bool read = api_mp_body_int(data, len, key, &found, out);
	kb_body_unref(b);
	return read ? found : kb_mp_int(kb_msg_body(rep), key, out);
}

/* e from a store call's failure; conflicts and expiries are the caller's
 * to word. */
static void call_err(int rc, const kb_msg *rep, struct api_error *e)
{
	if (rc == 0 || rc == KB_ECONFLICT || rc == KB_EEXPIRED)
		return;
	const char *msg = "";
	if (rep)
		kb_msg_err(rep, &msg);
	api_err_from_kb(e, rc, msg[0] ? msg : kb_strerror(rc));
}

static int call(struct api_server *s, const char *op, kb_body *body,
    kb_msg **rep, struct api_error *e)
{
	if (body == NULL) {
		api_err(e, 500, "InternalError", "out of memory");
		return KB_ENOMEM;
	}
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	int rc = api_call(s->ctx, KB_STORE_SERVICE, op, body,
	    (int)s->request_timeout_ms, rep);
	double secs = secs_since(&t0);
	api_metrics_store(s, op, secs);
	if (!strcmp(op, "get")) {
		/* a moving average, for the HTTP side (server.h) */
		int64_t avg = __atomic_load_n(&s->store_get_ns, __ATOMIC_RELAXED);
		avg += ((int64_t)(secs * 1e9) - avg) / 8;
		__atomic_store_n(&s->store_get_ns, avg, __ATOMIC_RELAXED);
	}
	call_err(rc, *rep, e);
	return rc;
}

/* rev in decimal, as "%" PRId64 writes it; returns buf. */
static const char *rv_text(int64_t rev, char buf[static 24])
{
	if (rev >= 0)
		return api_u64_text((uint64_t)rev, buf);
	char *p = (char *)api_u64_text(-(uint64_t)rev, buf);
	*--p = '-';
	return p;
}

static void set_rv(json_t *obj, int64_t rev)
{
	char buf[24];
	const char *rv = rv_text(rev, buf);
	json_t *md = json_object_get(obj, "metadata");
	if (!json_is_object(md)) {
		md = json_object();
		json_object_set_new(obj, "metadata", md);
	}
	json_object_set_new(md, "resourceVersion", json_string(rv));
}

/* A store KV -> object with its resourceVersion; NULL if undecodable. */
static json_t *kv_object(const msgpack_object *kv, int64_t *mod_rev,
    int64_t *create_rev)
{
	const msgpack_object *v = kb_mp_key(kv, "value");
	int64_t mr = 0, cr = 0;
	kb_mp_int(kv, "mod_rev", &mr);
	kb_mp_int(kv, "create_rev", &cr);
	if (mod_rev)
		*mod_rev = mr;
	if (create_rev)
		*create_rev = cr;
	if (v == NULL || (v->type != MSGPACK_OBJECT_BIN && v->type != MSGPACK_OBJECT_STR))
		return NULL;
	json_t *obj = api_mp_decode(v->via.bin.ptr, v->via.bin.size);
	if (obj)
		set_rv(obj, mr);
	return obj;
}

json_t *api_store_kv_object(const msgpack_object *kv, int64_t *mod_rev)
{
	return kv_object(kv, mod_rev, NULL);
}

int api_store_get(struct api_server *s, const char *key, struct api_kv *out,
    struct api_error *e)
{
	kb_msg *rep = NULL;
	int rc = call(s, "get", kb_mp_body("{s:s}", "key", key), &rep, e);
	if (rc == 0) {
		const msgpack_object *kv = kb_mp_key(kb_msg_body(rep), "kv");
		if (kv == NULL || kv->type == MSGPACK_OBJECT_NIL) {
			rc = KB_ENOTFOUND;
			api_err(e, 404, "NotFound", "%s not found", key);
		} else if ((out->obj = kv_object(kv, &out->mod_rev, &out->create_rev)) == NULL) {
			rc = KB_EINTERNAL;
			api_err(e, 500, "InternalError", "stored object %s is corrupt", key);
		}
	}
	kb_msg_free(rep);
	return rc;
}

int api_store_put(struct api_server *s, const char *key, json_t *obj,
    int64_t if_mod_rev, int64_t *rev, struct api_error *e)
{
	return api_store_put_mp(s, key, obj, if_mod_rev, rev, NULL, NULL, e);
}

/* Put the object that pack(pk, arg) writes (without resourceVersion). */
typedef int (*pack_fn)(msgpack_packer *pk, const void *arg);

/* A put on its way: what its reply is read with. */
struct put {
	struct api_server *s;
	char *key;
	int64_t if_mod_rev;
	kb_body *keep;        /* the request, when the object's msgpack is wanted */
	size_t at;            /* the value's bytes in it */
	uint32_t len;
	struct timespec t0;
	api_put_done done;
	void *arg;
};

static void put_free(struct put *p)
{
	kb_body_unref(p->keep);
	free(p->key);
	free(p);
}

/* The put request for key: {key, value: bin, if_mod_rev?}, the object
 * encoded in place behind a bin 32 header whose length is filled in
 * after: one buffer, no copy. p->at and p->len say where it is. `hint`
 * is the value's size when known (0: 4 KiB, grown as needed): sized to
 * the request, a kubelet's Event or status takes a small block rather
 * than a page (the buffer is freed on the store's thread, and jemalloc
 * refilled a thread's cache of 4 KiB blocks every few puts). */
static kb_body *put_body(struct put *p, pack_fn pack, const void *arg, size_t hint,
    int *rc, struct api_error *e)
{
	*rc = KB_ENOMEM;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	kb_mp_sbuffer_init(&sb, hint ? hint + strlen(p->key) + 48 : 4096);
	if (sb.data == NULL) {
		api_err(e, 500, "InternalError", "out of memory");
		return NULL;
	}
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, p->if_mod_rev >= 0 ? 3 : 2);
	kb_mp_pack(&pk, "s:s", "key", p->key);
	kb_mp_pack_cstr(&pk, "value");
	static const char bin32[5] = { (char)0xc6 };
	msgpack_sbuffer_write(&sb, bin32, sizeof bin32);
	p->at = sb.size;
	if (pack(&pk, arg) != 0 || sb.size - p->at > UINT32_MAX) {
		msgpack_sbuffer_destroy(&sb);
		api_err(e, 500, "InternalError", "cannot encode the object");
		*rc = KB_EINTERNAL;
		return NULL;
	}
	p->len = (uint32_t)(sb.size - p->at);
	unsigned char *hd = (unsigned char *)sb.data + p->at - 4;
	hd[0] = (unsigned char)(p->len >> 24);
	hd[1] = (unsigned char)(p->len >> 16);
	hd[2] = (unsigned char)(p->len >> 8);
	hd[3] = (unsigned char)p->len;
	if (p->if_mod_rev >= 0)
		kb_mp_pack(&pk, "s:I", "if_mod_rev", p->if_mod_rev);
	/* The buffer itself, not a copy of it trimmed to size as
	 * kb_body_from_sbuf makes one: the body lives as long as the put
	 * (nothing keeps it past the reply), so what it wastes is brief. */
	kb_body *b = kb_body_take(sb.data, sb.size);
	if (b == NULL)
		api_err(e, 500, "InternalError", "out of memory");
	return b;
}

/* The put's reply read: rc as the caller sees it, *rev the new revision,
 * *mp the stored object with resourceVersion r last in its metadata (the
 * stored bytes with it spliced in) when p->keep holds them. */
static int put_result(struct put *p, int rc, const kb_msg *rep, int64_t *rev,
    char **mp, size_t *mp_len, struct api_error *e)
{
	int64_t r = 0;
	api_metrics_store(p->s, "put", secs_since(&p->t0));
	call_err(rc, rep, e);
	if (rc == 0 && rep && reply_int(rep, "rev", &r)) {
		api_cache_wrote(p->s, p->key, r);
		if (rev)
			*rev = r;
		if (p->keep && api_mp_with_rv((const char *)kb_body_data(p->keep, NULL) + p->at,
		    p->len, r, mp, mp_len) != 0)
			*mp = NULL;
	} else if (rc == KB_ECONFLICT) {
		/* Absent when it had to be absent: it exists. */
		const msgpack_object *kv = rep ? kb_mp_key(kb_msg_body(rep), "kv") : NULL;
		bool exists = kv && kv->type != MSGPACK_OBJECT_NIL;
		if (p->if_mod_rev == 0 && exists) {
			rc = KB_EEXIST;
			api_err(e, 409, "AlreadyExists", "%s already exists", p->key);
		} else if (p->if_mod_rev > 0 && !exists) {
			rc = KB_ENOTFOUND;
			api_err(e, 404, "NotFound", "%s not found", p->key);
		} else {
			api_err(e, 409, "Conflict",
			    "the object has been modified; please apply your changes to the latest version and try again");
		}
	} else if (rc == 0) {
		rc = KB_EINTERNAL;
		api_err(e, 500, "InternalError", "store reply without a revision");
	}
	return rc;
}

static int put_packed(struct api_server *s, const char *key, pack_fn pack,
    const void *arg, size_t hint, int64_t if_mod_rev, int64_t *rev, char **mp,
    size_t *mp_len, struct api_error *e)
{
	if (mp)
		*mp = NULL;
	struct put p = { .s = s, .key = (char *)key, .if_mod_rev = if_mod_rev };
	int rc;
	kb_body *b = put_body(&p, pack, arg, hint, &rc, e);
	if (b == NULL)
		return rc;
	p.keep = mp ? kb_body_ref(b) : NULL; /* the value's bytes */
	kb_msg *rep = NULL;
	clock_gettime(CLOCK_MONOTONIC, &p.t0);
	rc = api_call(s->ctx, KB_STORE_SERVICE, "put", b, (int)s->request_timeout_ms, &rep);
	rc = put_result(&p, rc, rep, rev, mp, mp_len, e);
	kb_body_unref(p.keep);
	kb_msg_free(rep);
	return rc;
}

static void put_replied(void *arg, int rc, const kb_msg *rep)
{
	struct put *p = arg;
	struct api_error e = { 0 };
	int64_t r = 0;
	char *mp = NULL;
	size_t mp_len = 0;
	rc = put_result(p, rc, rep, &r, &mp, &mp_len, &e);
	if (rc == 0 && p->keep && mp == NULL) {
		/* bytes the splice does not take: through a tree */
		json_t *obj = api_mp_decode((const char *)kb_body_data(p->keep, NULL) + p->at,
		    p->len);
		if (obj)
			set_rv(obj, r);
		if (obj == NULL || api_mp_encode(obj, &mp, &mp_len) != 0) {
			mp = NULL;
			rc = KB_EINTERNAL;
			api_err(&e, 500, "InternalError", "%s was stored but cannot be encoded again",
			    p->key);
		}
		json_decref(obj);
	}
	p->done(p->arg, rc, mp, mp_len, &e);
	api_err_clear(&e);
	put_free(p);
}

/* A store call not waited for (a put or a delete): NULL, e set, when out
 * of memory. */
static struct put *put_new(struct api_server *s, const char *key, int64_t if_mod_rev,
    api_put_done done, void *arg, struct api_error *e)
{
	struct put *p = calloc(1, sizeof(*p));
	if (p == NULL || (p->key = strdup(key)) == NULL) {
		free(p);
		api_err(e, 500, "InternalError", "out of memory");
		return NULL;
	}
	*p = (struct put){ .s = s, .key = p->key, .if_mod_rev = if_mod_rev, .done = done,
		.arg = arg };
	return p;
}

/* Send b (taken; NULL: out of memory) as p's op, fn to read the reply:
 * 0 when on its way; else the error, e set, and p freed. */
static int send_async(struct put *p, const char *op, kb_body *b, kb_reply_fn fn,
    struct api_error *e)
{
	int rc = KB_ENOMEM;
	if (b) {
		clock_gettime(CLOCK_MONOTONIC, &p->t0);
		rc = kb_request(p->s->ctx, KB_STORE_SERVICE, op, b,
		    (int)p->s->request_timeout_ms, fn, p);
		if (rc == 0)
			return 0;
		kb_body_unref(b);
	}
	api_err_from_kb(e, rc, kb_strerror(rc));
	put_free(p);
	return rc;
}

static int put_async(struct api_server *s, const char *key, pack_fn pack,
    const void *arg, size_t hint, int64_t if_mod_rev, bool want_mp, api_put_done done,
    void *done_arg, struct api_error *e)
{
	struct put *p = put_new(s, key, if_mod_rev, done, done_arg, e);
	if (p == NULL)
		return KB_ENOMEM;
	int rc;
	kb_body *b = put_body(p, pack, arg, hint, &rc, e);
	if (b == NULL) {
		put_free(p);
		return rc;
	}
	p->keep = want_mp ? kb_body_ref(b) : NULL;
	return send_async(p, "put", b, put_replied, e);
}

static int pack_json(msgpack_packer *pk, const void *obj)
{
	return api_mp_from_json(pk, obj);
}

int api_store_put_mp(struct api_server *s, const char *key, json_t *obj,
    int64_t if_mod_rev, int64_t *rev, char **mp, size_t *mp_len,
    struct api_error *e)
{
	json_t *md = json_object_get(obj, "metadata");
	if (json_is_object(md))
		json_object_del(md, "resourceVersion");
	int64_t r = 0;
	int rc = put_packed(s, key, pack_json, obj, 0, if_mod_rev, &r, mp, mp_len, e);
	if (rc == 0) {
		set_rv(obj, r);
		if (rev)
			*rev = r;
	}
	return rc;
}

struct bytes {
	const void *data;
	size_t len;
};

static int pack_bytes(msgpack_packer *pk, const void *arg)
{
	const struct bytes *b = arg;
	return msgpack_sbuffer_write(pk->data, b->data, b->len);
}

int api_store_put_raw(struct api_server *s, const char *key, const void *data,
    size_t len, int64_t if_mod_rev, int64_t *rev, struct api_error *e)
{
	struct bytes b = { data, len };
	return put_packed(s, key, pack_bytes, &b, len, if_mod_rev, rev, NULL, NULL, e);
}

int api_store_put_mp_async(struct api_server *s, const char *key, json_t *obj,
    int64_t if_mod_rev, bool want_mp, api_put_done done, void *arg,
    struct api_error *e)
{
	json_t *md = json_object_get(obj, "metadata");
	if (json_is_object(md))
		json_object_del(md, "resourceVersion");
	return put_async(s, key, pack_json, obj, 0, if_mod_rev, want_mp, done, arg, e);
}

int api_store_put_raw_async(struct api_server *s, const char *key, const void *data,
    size_t len, int64_t if_mod_rev, bool want_mp, api_put_done done, void *arg,
    struct api_error *e)
{
	struct bytes b = { data, len };
	return put_async(s, key, pack_bytes, &b, len, if_mod_rev, want_mp, done, arg, e);
}

int api_store_get_raw(struct api_server *s, const char *key, kb_msg **rep,
    const char **data, size_t *len, int64_t *mod_rev, struct api_error *e)
{
	*rep = NULL;
	int rc = call(s, "get", kb_mp_body("{s:s}", "key", key), rep, e);
	if (rc)
		return rc;
	const msgpack_object *kv = kb_mp_key(kb_msg_body(*rep), "kv");
	const msgpack_object *v = kb_mp_key(kv, "value");
	if (kv == NULL || kv->type == MSGPACK_OBJECT_NIL) {
		rc = KB_ENOTFOUND;
		api_err(e, 404, "NotFound", "%s not found", key);
	} else if (v == NULL || (v->type != MSGPACK_OBJECT_BIN && v->type != MSGPACK_OBJECT_STR) ||
	    v->via.bin.size == 0) {
		rc = KB_EINTERNAL;
		api_err(e, 500, "InternalError", "stored object %s is corrupt", key);
	} else {
		*mod_rev = 0;
		kb_mp_int(kv, "mod_rev", mod_rev);
		*data = v->via.bin.ptr;
		*len = v->via.bin.size;
		return 0;
	}
	kb_msg_free(*rep);
	*rep = NULL;
	return rc;
}

static kb_body *delete_body(const char *key, int64_t if_mod_rev)
{
	return if_mod_rev > 0
	    ? kb_mp_body("{s:s, s:I}", "key", key, "if_mod_rev", if_mod_rev)
	    : kb_mp_body("{s:s}", "key", key);
}

/* A delete's reply read: rc as the caller sees it, *rev the revision. */
static int delete_result(struct api_server *s, const char *key, int rc,
    const kb_msg *rep, int64_t *rev, struct api_error *e)
{
	int64_t deleted = 0, r = 0;
	if (rc == 0) {
		kb_mp_int(kb_msg_body(rep), "deleted", &deleted);
		kb_mp_int(kb_msg_body(rep), "rev", &r);
		if (deleted == 0) {
			rc = KB_ENOTFOUND;
			api_err(e, 404, "NotFound", "%s not found", key);
		} else {
			api_cache_wrote(s, key, r);
			if (rev)
				*rev = r;
		}
	} else if (rc == KB_ECONFLICT) {
		const msgpack_object *kv = rep ? kb_mp_key(kb_msg_body(rep), "kv") : NULL;
		if (kv == NULL || kv->type == MSGPACK_OBJECT_NIL) {
			rc = KB_ENOTFOUND;
			api_err(e, 404, "NotFound", "%s not found", key);
		} else {
			api_err(e, 409, "Conflict",
			    "the object has been modified; please apply your changes to the latest version and try again");
		}
	}
	return rc;
}

int api_store_delete(struct api_server *s, const char *key, int64_t if_mod_rev,
    int64_t *rev, struct api_error *e)
{
	kb_msg *rep = NULL;
	int rc = call(s, "delete", delete_body(key, if_mod_rev), &rep, e);
	rc = delete_result(s, key, rc, rep, rev, e);
	kb_msg_free(rep);
	return rc;
}

static void delete_replied(void *arg, int rc, const kb_msg *rep)
{
	struct put *p = arg;
	struct api_error e = { 0 };
	api_metrics_store(p->s, "delete", secs_since(&p->t0));
	call_err(rc, rep, &e);
	rc = delete_result(p->s, p->key, rc, rep, NULL, &e);
	p->done(p->arg, rc, NULL, 0, &e);
	api_err_clear(&e);
	put_free(p);
}

int api_store_delete_async(struct api_server *s, const char *key, int64_t if_mod_rev,
    api_put_done done, void *arg, struct api_error *e)
{
	struct put *p = put_new(s, key, if_mod_rev, done, arg, e);
	if (p == NULL)
		return KB_ENOMEM;
	return send_async(p, "delete", delete_body(key, if_mod_rev), delete_replied, e);
}

int api_store_list(struct api_server *s, const char *prefix, int64_t limit,
    const char *cont, int64_t at_rev, json_t **items, int64_t *rev,
    char **next_cont, int64_t *remaining, struct api_error *e)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 1 + (limit > 0) + (cont != NULL) + (at_rev > 0 && !cont));
	kb_mp_pack(&pk, "s:s", "prefix", prefix);
	if (limit > 0)
		kb_mp_pack(&pk, "s:I", "limit", limit);
	if (cont)
		kb_mp_pack(&pk, "s:s", "continue", cont);
	if (at_rev > 0 && !cont)
		kb_mp_pack(&pk, "s:I", "rev", at_rev);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	kb_msg *rep = NULL;
	*items = NULL;
	if (next_cont)
		*next_cont = NULL;
	int rc = call(s, "range", b, &rep, e);
	if (rc == KB_EEXPIRED) {
		api_err(e, 410, "Expired",
		    "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.");
	}
	if (rc) {
		kb_msg_free(rep);
		return rc;
	}
	const msgpack_object *body = kb_msg_body(rep);
	const msgpack_object *kvs = kb_mp_key(body, "kvs");
	int64_t count = 0;
	bool more = false;
	kb_mp_int(body, "rev", rev);
	kb_mp_int(body, "count", &count);
	kb_mp_bool(body, "more", &more);
	json_t *arr = json_array();
	for (uint32_t i = 0; kvs && kvs->type == MSGPACK_OBJECT_ARRAY && i < kvs->via.array.size; i++) {
		json_t *o = kv_object(&kvs->via.array.ptr[i], NULL, NULL);
		if (o)
			json_array_append_new(arr, o);
	}
	*items = arr;
	if (more && next_cont)
		*next_cont = kb_mp_strdup(body, "continue");
	if (remaining)
		*remaining = more ? count - (int64_t)json_array_size(arr) : 0;
	kb_msg_free(rep);
	return 0;
}
