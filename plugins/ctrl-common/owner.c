/* plugins/ctrl-common/owner.c — controllers claiming objects: finding the
 * ones a controller owns or could adopt, and writing ownerReferences. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctrl.h"

struct cand {
	struct ctrl_objs *out;
	const char *ns;
	const char *uid;
	size_t uidlen;
};

static void cand_one(void *arg, const msgpack_object *o)
{
	struct cand *c = arg;
	if (!kb_mp_streq(o, "metadata.namespace", c->ns))
		return;
	const msgpack_object *ref = ctrl_controller_ref(o);
	const char *u, *name;
	size_t ul, len;
	if (ref &&
	    !(kb_mp_str(ref, "uid", &u, &ul) && ul == c->uidlen &&
		!memcmp(u, c->uid, ul)))
		return;
	if (!kb_mp_str(o, "metadata.name", &name, &len))
		return;
	struct ctrl_objs *v = c->out;
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 16;
		char **names = realloc(v->names, cap * sizeof(*names));
		if (names == NULL)
			return;
		v->names = names;
		v->cap = cap;
	}
	if ((v->names[v->n] = strndup(name, len)) != NULL)
		v->n++;
}

void ctrl_candidates(struct kb_informer *inf, const char *ns,
    const msgpack_object *owner, struct ctrl_objs *out)
{
	struct cand c = { .out = out, .ns = ns };
	memset(out, 0, sizeof(*out));
	if (!kb_mp_str(owner, "metadata.uid", &c.uid, &c.uidlen))
		return;
	kb_informer_each(inf, cand_one, &c);
}

void ctrl_objs_free(struct ctrl_objs *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->names[i]);
	free(v->names);
	memset(v, 0, sizeof(*v));
}

void ctrl_pack_owner_ref(msgpack_packer *pk, const msgpack_object *owner,
    const char *api_version, const char *kind)
{
	kb_mp_pack(pk, "{s:s, s:s, s:o, s:o, s:b, s:b}", "apiVersion",
	    api_version, "kind", kind, "name",
	    kb_mp_get(owner, "metadata.name"), "uid",
	    kb_mp_get(owner, "metadata.uid"), "controller", 1,
	    "blockOwnerDeletion", 1);
}

int ctrl_recheck_owner(kb_ctx *ctx, const struct kb_gvr *r,
    const msgpack_object *owner, int *asked)
{
	if (*asked != 1)
		return *asked;
	char *ns = kb_mp_strdup(owner, "metadata.namespace");
	char *name = kb_mp_strdup(owner, "metadata.name");
	kb_msg *rep = NULL;
	int rc = name ? kb_api_get(ctx, r, ns, name, &rep) : KB_ENOTFOUND;
	if (rc == 0 &&
	    (!ctrl_str_eq(kb_msg_body(rep), "metadata.uid", owner,
		 "metadata.uid") ||
		ctrl_deleting(kb_msg_body(rep))))
		rc = KB_ENOTFOUND;
	kb_msg_free(rep);
	free(ns);
	free(name);
	*asked = rc;
	return rc;
}

int ctrl_set_owner(kb_ctx *ctx, const struct kb_gvr *r,
    const msgpack_object *owner, const char *api_version, const char *kind,
    const msgpack_object *obj, bool adopt, kb_msg **out)
{
	const msgpack_object *refs = kb_mp_get(obj, "metadata.ownerReferences");
	const msgpack_object *uid = kb_mp_get(owner, "metadata.uid");
	uint32_t n = refs && refs->type == MSGPACK_OBJECT_ARRAY ?
	    refs->via.array.size :
	    0;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	uint32_t keep = 0;
	for (uint32_t i = 0; i < n; i++)
		keep += !ctrl_str_eq(&refs->via.array.ptr[i], "uid", uid, "");
	msgpack_pack_array(&pk, keep + adopt);
	for (uint32_t i = 0; i < n; i++)
		if (!ctrl_str_eq(&refs->via.array.ptr[i], "uid", uid, ""))
			msgpack_pack_object(&pk, refs->via.array.ptr[i]);
	if (adopt)
		ctrl_pack_owner_ref(&pk, owner, api_version, kind);
	int rc = ctrl_patch_guarded(ctx, r, obj, "/metadata/ownerReferences",
	    sb.data, sb.size, out);
	msgpack_sbuffer_destroy(&sb);
	if (kb_log_enabled(ctx, KB_LOG_DEBUG)) {
		char name[256];
		kb_debug(ctx, adopt ? "adopted" : "released",
		    "resource=%s object=%s rc=%s", r->resource,
		    kb_object_key(obj, name, sizeof(name)) ? name : "?",
		    rc ? kb_err_reason(rc) : "ok");
	}
	return rc;
}

int ctrl_patch_guarded(kb_ctx *ctx, const struct kb_gvr *r,
    const msgpack_object *obj, const char *pointer, const void *raw,
    size_t rawlen, kb_msg **out)
{
	const msgpack_object *uid = kb_mp_get(obj, "metadata.uid");
	const msgpack_object *rv = kb_mp_get(obj, "metadata.resourceVersion");
	if (out)
		*out = NULL;
	if (uid == NULL || rv == NULL)
		return KB_EINVAL;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_array(&pk, 3);
	kb_mp_pack(&pk, "{s:s, s:s, s:o}", "op", "test", "path",
	    "/metadata/uid", "value", uid);
	kb_mp_pack(&pk, "{s:s, s:s, s:o}", "op", "test", "path",
	    "/metadata/resourceVersion", "value", rv);
	if (raw)
		kb_mp_pack(&pk, "{s:s, s:s, s:r}", "op", "add", "path", pointer,
		    "value", raw, rawlen);
	else
		kb_mp_pack(&pk, "{s:s, s:s}", "op", "remove", "path", pointer);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	if (b == NULL)
		return KB_ENOMEM;
	char *ns = kb_mp_strdup(obj, "metadata.namespace");
	char *name = kb_mp_strdup(obj, "metadata.name");
	int rc = kb_api_patch(ctx, r, ns, name, NULL, "json", b, out);
	free(ns);
	free(name);
	/* A failed test is a stale cache: as a Conflict, retried once the
	 * newer version has arrived. */
	return rc == KB_EINVAL ? KB_ECONFLICT : rc;
}

struct owner_match {
	const msgpack_object *obj;
	char (*keys)[512];
	size_t n, cap;
};

static void match_owner(void *arg, const msgpack_object *owner)
{
	struct owner_match *m = arg;
	if (!ctrl_str_eq(owner, "metadata.namespace", m->obj, "metadata.namespace"))
		return;
	const msgpack_object *sel = kb_mp_get(owner, "spec.selector");
	if (ctrl_selector_empty(sel) ||
	    !ctrl_selector_matches(sel, kb_mp_get(m->obj, "metadata.labels")))
		return;
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 4;
		void *k = realloc(m->keys, cap * sizeof(*m->keys));
		if (k == NULL)
			return;
		m->keys = k;
		m->cap = cap;
	}
	if (kb_object_key(owner, m->keys[m->n], sizeof(m->keys[0])))
		m->n++;
}

void ctrl_enqueue_owners(struct ctrl *c, struct kb_informer *owners,
    const char *kind, const msgpack_object *obj)
{
	const msgpack_object *ref = ctrl_controller_ref(obj);
	if (ref) {
		const char *ns, *name;
		size_t nsl, nl;
		char key[512];
		if (!kb_mp_streq(ref, "kind", kind) ||
		    !kb_mp_str(obj, "metadata.namespace", &ns, &nsl) ||
		    !kb_mp_str(ref, "name", &name, &nl))
			return;
		snprintf(key, sizeof(key), "%.*s/%.*s", (int)nsl, ns, (int)nl, name);
		ctrl_enqueue(c, key);
		return;
	}
	if (ctrl_deleting(obj))
		return;
	struct owner_match m = { .obj = obj };
	kb_informer_each(owners, match_owner, &m);
	for (size_t i = 0; i < m.n; i++)
		ctrl_enqueue(c, m.keys[i]);
	free(m.keys);
}
