/* plugins/ctrl-gc/sync.c — one object's look by the garbage collector,
 * as Kubernetes' garbagecollector.go:
 *
 *  - an owner being deleted with the `orphan` finalizer: take its
 *    ownerReferences off every dependent, then the finalizer;
 *  - with `foregroundDeletion`: delete its dependents, wait until none
 *    with blockOwnerDeletion is left, then take the finalizer off;
 *  - a dependent: when every owner is gone (checked with a live GET
 *    before acting on a cache miss), delete it, once a live GET of the
 *    dependent agrees; when some are gone or
 *    are being deleted in the foreground while others live, drop those
 *    references; when its owners all wait on it, delete it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"

static char *str(const msgpack_object *o, const char *path)
{
	return kb_mp_strdup(o, path);
}

/* Write one field of obj, guarded by its uid and resourceVersion. */
static int patch(struct gc *g, size_t res, const msgpack_object *obj,
    const char *pointer, msgpack_sbuffer *value)
{
	int rc = ctrl_patch_guarded(g->c.ctx, gc_res[res].gvr, obj, pointer,
	    value ? value->data : NULL, value ? value->size : 0, NULL);
	if (kb_log_enabled(g->c.ctx, KB_LOG_DEBUG)) {
		char key[512];
		kb_debug(g->c.ctx, "patched",
		    "resource=%s object=%s field=%s rc=%s",
		    gc_res[res].gvr->resource,
		    kb_object_key(obj, key, sizeof(key)) ? key : "?", pointer,
		    rc ? kb_err_reason(rc) : "ok");
	}
	return rc == KB_ENOTFOUND ? 0 : rc;
}

static int remove_finalizer(struct gc *g, size_t res, const msgpack_object *obj,
    const char *f)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	ctrl_pack_strs_without(&pk, kb_mp_get(obj, "metadata.finalizers"), f);
	int rc = patch(g, res, obj, "/metadata/finalizers", &sb);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

/* obj's ownerReferences without those whose uid is in uids[n]. */
static int remove_refs(struct gc *g, size_t res, const msgpack_object *obj,
    const msgpack_object **uids, size_t n)
{
	const msgpack_object *refs = kb_mp_get(obj, "metadata.ownerReferences");
	uint32_t total = refs && refs->type == MSGPACK_OBJECT_ARRAY ?
	    refs->via.array.size :
	    0;
	bool *drop = calloc(total ? total : 1, sizeof(*drop));
	if (drop == NULL)
		return KB_ENOMEM;
	uint32_t keep = 0;
	for (uint32_t i = 0; i < total; i++) {
		for (size_t k = 0; k < n; k++)
			if (ctrl_str_eq(&refs->via.array.ptr[i], "uid", uids[k],
				""))
				drop[i] = true;
		keep += !drop[i];
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, keep);
	for (uint32_t i = 0; i < total; i++)
		if (!drop[i])
			msgpack_pack_object(&pk, refs->via.array.ptr[i]);
	free(drop);
	int rc =
	    patch(g, res, obj, "/metadata/ownerReferences", keep ? &sb : NULL);
	msgpack_sbuffer_destroy(&sb);
	return rc;
}

static bool has_dependents(struct gc *g, const msgpack_object *obj)
{
	const char *uid;
	size_t ul, n;
	if (!kb_mp_str(obj, "metadata.uid", &uid, &ul))
		return false;
	char **keys = gc_index_dependents(g->idx, uid, ul, &n);
	gc_keys_free(keys, n);
	return n > 0;
}

static int delete_obj(struct gc *g, size_t res, const msgpack_object *obj,
    const char *policy)
{
	const char *uid;
	size_t ul;
	if (!kb_mp_str(obj, "metadata.uid", &uid, &ul))
		return 0;
	char *ns = gc_res[res].namespaced ? str(obj, "metadata.namespace") :
					    NULL;
	char *name = str(obj, "metadata.name");
	/* the uid precondition: never a new object of the same name */
	int rc = kb_api_delete(g->c.ctx, gc_res[res].gvr, ns, name,
	    ctrl_delete_opts(policy, uid, ul), NULL);
	kb_debug(g->c.ctx, "deleting",
	    "resource=%s object=%s/%s policy=%s rc=%s",
	    gc_res[res].gvr->resource, ns ? ns : "", name, policy,
	    rc ? kb_err_reason(rc) : "ok");
	free(ns);
	free(name);
	return rc == KB_ENOTFOUND || rc == KB_ECONFLICT ? 0 : rc;
}

/* The policy a dependent is deleted with: its own finalizers say. */
static const char *own_policy(const msgpack_object *obj)
{
	if (ctrl_has_finalizer(obj, "metadata.finalizers", "orphan"))
		return "Orphan";
	if (ctrl_has_finalizer(obj, "metadata.finalizers",
		"foregroundDeletion"))
		return "Foreground";
	return "Background";
}

/* --- owners being deleted ---------------------------------------------------------- */

static int orphan(struct gc *g, size_t res, const msgpack_object *obj)
{
	const char *uid;
	size_t ul, n;
	const msgpack_object *uido = kb_mp_get(obj, "metadata.uid");
	if (!kb_mp_str(obj, "metadata.uid", &uid, &ul))
		return 0;
	char **keys = gc_index_dependents(g->idx, uid, ul, &n);
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		size_t dres;
		kb_body *db = gc_lookup(g, keys[i], &dres);
		if (db == NULL)
			continue;
		if (ctrl_has_owner_uid(kb_body_obj(db), uid, ul))
			rc = remove_refs(g, dres, kb_body_obj(db), &uido, 1);
		kb_body_unref(db);
	}
	gc_keys_free(keys, n);
	return rc ? rc : remove_finalizer(g, res, obj, "orphan");
}

static bool blocks(const msgpack_object *dep, const char *uid, size_t ul)
{
	const msgpack_object *refs = kb_mp_get(dep, "metadata.ownerReferences");
	for (uint32_t i = 0; refs && refs->type == MSGPACK_OBJECT_ARRAY &&
	     i < refs->via.array.size;
	     i++) {
		const msgpack_object *r = &refs->via.array.ptr[i];
		const char *u;
		size_t l;
		bool b = false;
		if (kb_mp_str(r, "uid", &u, &l) && l == ul &&
		    !memcmp(u, uid, l) &&
		    kb_mp_bool(r, "blockOwnerDeletion", &b) && b)
			return true;
	}
	return false;
}

static int foreground(struct gc *g, size_t res, const msgpack_object *obj)
{
	const char *uid;
	size_t ul, n;
	if (!kb_mp_str(obj, "metadata.uid", &uid, &ul))
		return 0;
	char **keys = gc_index_dependents(g->idx, uid, ul, &n);
	int rc = 0, blocking = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		size_t dres;
		kb_body *db = gc_lookup(g, keys[i], &dres);
		if (db == NULL)
			continue;
		const msgpack_object *dep = kb_body_obj(db);
		if (ctrl_has_owner_uid(dep, uid, ul)) {
			if (!ctrl_deleting(dep))
				rc = delete_obj(g, dres, dep,
				    has_dependents(g, dep) ? "Foreground" :
							     "Background");
			blocking += blocks(dep, uid, ul);
		}
		kb_body_unref(db);
	}
	gc_keys_free(keys, n);
	if (rc || blocking)
		return rc; /* each dependent's deletion brings this key back */
	return remove_finalizer(g, res, obj, "foregroundDeletion");
}

/* --- dependents ----------------------------------------------------------------------- */

enum owner_state {
	SOLID,
	DANGLING,
	WAITING,
	UNKNOWN
};

static enum owner_state state_of(const msgpack_object *owner)
{
	if (ctrl_deleting(owner) &&
	    ctrl_has_finalizer(owner, "metadata.finalizers",
		"foregroundDeletion"))
		return WAITING;
	return SOLID;
}

static int owner_state(struct gc *g, const msgpack_object *dep,
    const msgpack_object *ref, enum owner_state *st)
{
	int r = gc_res_of_ref(ref);
	*st = UNKNOWN;
	if (r < 0)
		return 0; /* a kind this API server does not serve: leave it */
	char *ns = gc_res[r].namespaced ? str(dep, "metadata.namespace") : NULL;
	char *name = str(ref, "name");
	int rc = 0;
	kb_body *b = name ? kb_informer_get(g->inf[r], ns, name) : NULL;
	if (b && ctrl_str_eq(kb_body_obj(b), "metadata.uid", ref, "uid")) {
		*st = state_of(kb_body_obj(b));
	} else if (name) {
		/* A cache miss is not proof: the owner may be newer than the
		 * cache. Ask the API server. */
		kb_msg *rep = NULL;
		rc = kb_api_get(g->c.ctx, gc_res[r].gvr, ns, name, &rep);
		if (rc == KB_ENOTFOUND) {
			*st = DANGLING;
			rc = 0;
		} else if (rc == 0) {
			*st = ctrl_str_eq(kb_msg_body(rep), "metadata.uid", ref,
				  "uid") ?
			    state_of(kb_msg_body(rep)) :
			    DANGLING;
		}
		kb_msg_free(rep);
	}
	if (b)
		kb_body_unref(b);
	free(ns);
	free(name);
	return rc;
}

static int dependent(struct gc *g, size_t res, const msgpack_object *obj,
    bool live);

/* Before deleting a dependent the cache calls dangling, look at it as the
 * API server has it, as Kubernetes' attemptToDeleteItem: the owner's
 * deletion comes on another watch than the dependent's updates and can
 * overtake the one that took its reference off (an orphaning). */
static int delete_live(struct gc *g, size_t res, const msgpack_object *cached)
{
	char *ns = gc_res[res].namespaced ?
	    str(cached, "metadata.namespace") :
	    NULL;
	char *name = str(cached, "metadata.name");
	kb_msg *rep = NULL;
	int rc = name ? kb_api_get(g->c.ctx, gc_res[res].gvr, ns, name, &rep) :
			KB_ENOTFOUND;
	if (rc == 0 &&
	    ctrl_str_eq(kb_msg_body(rep), "metadata.uid", cached,
		"metadata.uid"))
		rc = dependent(g, res, kb_msg_body(rep), true);
	kb_msg_free(rep);
	free(ns);
	free(name);
	return rc == KB_ENOTFOUND ? 0 : rc;
}

static int dependent(struct gc *g, size_t res, const msgpack_object *obj,
    bool live)
{
	const msgpack_object *refs = kb_mp_get(obj, "metadata.ownerReferences");
	if (refs == NULL || refs->type != MSGPACK_OBJECT_ARRAY ||
	    refs->via.array.size == 0)
		return 0;
	uint32_t n = refs->via.array.size;
	const msgpack_object **gone = calloc(n, sizeof(*gone));
	if (gone == NULL)
		return KB_ENOMEM;
	size_t ngone = 0, solid = 0, dangling = 0, waiting = 0;
	int rc = 0;
	for (uint32_t i = 0; rc == 0 && i < n; i++) {
		enum owner_state st;
		rc = owner_state(g, obj, &refs->via.array.ptr[i], &st);
		if (rc)
			break;
		if (st == SOLID || st == UNKNOWN)
			solid++;
		else
			gone[ngone++] =
			    kb_mp_get(&refs->via.array.ptr[i], "uid");
		dangling += st == DANGLING;
		waiting += st == WAITING;
	}
	if (rc == 0) {
		if (solid && ngone)
			rc = remove_refs(g, res, obj, gone, ngone);
		else if (!solid && (waiting || dangling) && !live)
			rc = delete_live(g, res, obj);
		else if (!solid && waiting)
			rc = delete_obj(g, res, obj,
			    has_dependents(g, obj) ? "Foreground" :
						     "Background");
		else if (!solid && dangling)
			rc = delete_obj(g, res, obj, own_policy(obj));
	}
	free(gone);
	return rc;
}

int gc_sync(void *arg, const char *key)
{
	struct gc *g = arg;
	size_t res;
	kb_body *b = gc_lookup(g, key, &res);
	if (b == NULL)
		return 0;
	const msgpack_object *obj = kb_body_obj(b);
	int rc;
	if (ctrl_deleting(obj)) {
		if (ctrl_has_finalizer(obj, "metadata.finalizers", "orphan"))
			rc = orphan(g, res, obj);
		else if (ctrl_has_finalizer(obj, "metadata.finalizers",
			     "foregroundDeletion"))
			rc = foreground(g, res, obj);
		else
			rc = 0;
	} else {
		rc = dependent(g, res, obj, false);
	}
	kb_body_unref(b);
	return rc;
}
