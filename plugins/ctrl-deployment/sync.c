/* plugins/ctrl-deployment/sync.c — one Deployment's reconcile: find (or
 * make) the ReplicaSet of its current template, keep revisions in order,
 * roll out, clean up old ReplicaSets, write status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"

static int64_t max_old_revision(const struct dc_set *set)
{
	int64_t m = 0;
	for (size_t i = 0; i < set->n; i++)
		if (&set->v[i] != set->cur && set->v[i].revision > m)
			m = set->v[i].revision;
	return m;
}

static void find_current(const msgpack_object *dep, struct dc_set *set,
    const char *hash)
{
	int64_t coll = 0;
	kb_mp_int(dep, "status.collisionCount", &coll);
	set->cur = NULL;
	for (size_t i = 0; i < set->n; i++) {
		char h[16];
		dc_template_hash(kb_mp_get(set->v[i].o, "spec.template"), coll,
		    h, sizeof(h));
		/* the oldest of equal templates, as Kubernetes' FindNewReplicaSet */
		if (!strcmp(h, hash)) {
			set->cur = &set->v[i];
			return;
		}
	}
}

static void pack_str_kv(msgpack_packer *pk, const char *k, const char *v)
{
	kb_mp_pack_cstr(pk, k);
	kb_mp_pack_cstr(pk, v);
}

static kb_body *new_rs_body(const msgpack_object *dep, const char *hash,
    int64_t replicas, int64_t revision, int64_t max_replicas)
{
	char name[320], rev[24], want[24], max[24];
	const char *dn;
	size_t dl;
	if (!kb_mp_str(dep, "metadata.name", &dn, &dl))
		return NULL;
	snprintf(name, sizeof(name), "%.*s-%s", (int)dl, dn, hash);
	snprintf(rev, sizeof(rev), "%lld", (long long)revision);
	int64_t desired = 1;
	kb_mp_int(dep, "spec.replicas", &desired);
	snprintf(want, sizeof(want), "%lld", (long long)desired);
	snprintf(max, sizeof(max), "%lld", (long long)max_replicas);
	kb_body *tmpl = ctrl_obj_setf(kb_mp_get(dep, "spec.template"),
	    "metadata.labels." DC_HASH_LABEL, "s", hash);
	kb_body *sel = ctrl_obj_setf(kb_mp_get(dep, "spec.selector"),
	    "matchLabels." DC_HASH_LABEL, "s", hash);
	if (tmpl == NULL || sel == NULL) {
		if (tmpl)
			kb_body_unref(tmpl);
		if (sel)
			kb_body_unref(sel);
		return NULL;
	}
	int64_t min_ready = 0;
	kb_mp_int(dep, "spec.minReadySeconds", &min_ready);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 4);
	pack_str_kv(&pk, "apiVersion", "apps/v1");
	pack_str_kv(&pk, "kind", "ReplicaSet");
	kb_mp_pack_cstr(&pk, "metadata");
	msgpack_pack_map(&pk, 5);
	pack_str_kv(&pk, "name", name);
	kb_mp_pack(&pk, "s:o, s:o", "namespace",
	    kb_mp_get(dep, "metadata.namespace"), "labels",
	    kb_mp_get(kb_body_obj(tmpl), "metadata.labels"));
	kb_mp_pack_cstr(&pk, "annotations");
	kb_mp_pack(&pk, "{s:s, s:s, s:s}", DC_REVISION, rev, DC_DESIRED, want,
	    DC_MAX, max);
	kb_mp_pack_cstr(&pk, "ownerReferences");
	msgpack_pack_array(&pk, 1);
	ctrl_pack_owner_ref(&pk, dep, "apps/v1", "Deployment");
	kb_mp_pack_cstr(&pk, "spec");
	kb_mp_pack(&pk, "{s:I, s:I, s:o, s:o}", "replicas", replicas,
	    "minReadySeconds", min_ready, "selector", kb_body_obj(sel),
	    "template", kb_body_obj(tmpl));
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	kb_body_unref(tmpl);
	kb_body_unref(sel);
	return b;
}

/* The first replicas of a new ReplicaSet: all of them for Recreate once
 * the old pods are gone (rollout.c scales it), as many as the surge allows
 * for RollingUpdate. */
static int64_t first_replicas(const msgpack_object *dep,
    const struct dc_set *set)
{
	int64_t want = 1, total = 0, surge, unavail;
	kb_mp_int(dep, "spec.replicas", &want);
	if (kb_mp_streq(dep, "spec.strategy.type", "Recreate"))
		return 0;
	dc_max_surge_unavailable(dep, want, &surge, &unavail);
	for (size_t i = 0; i < set->n; i++)
		total += set->v[i].replicas;
	int64_t room = want + surge - total;
	if (room <= 0)
		return 0;
	return room < want ? room : want;
}

/* The ReplicaSet name for this template exists. Ours with this template
 * and not cached yet: its event is on the way. Anything else is a hash
 * collision: as Kubernetes, bump status.collisionCount, which changes the
 * hash and so the name, and come back. */
static int name_taken(struct dc *d, const msgpack_object *dep, const char *ns,
    const char *hash)
{
	char name[320];
	const char *dn, *uid;
	size_t dl, ul;
	if (!kb_mp_str(dep, "metadata.name", &dn, &dl) ||
	    !kb_mp_str(dep, "metadata.uid", &uid, &ul))
		return KB_EINVAL;
	snprintf(name, sizeof(name), "%.*s-%s", (int)dl, dn, hash);
	kb_msg *rep = NULL;
	int rc = kb_api_get(d->c.ctx, &KB_GVR_REPLICASETS, ns, name, &rep);
	if (rc) {
		kb_msg_free(rep);
		return rc == KB_ENOTFOUND ? KB_ECONFLICT : rc; /* gone: retry */
	}
	const msgpack_object *rs = kb_msg_body(rep);
	const msgpack_object *ref = ctrl_controller_ref(rs);
	const char *ru;
	size_t rl;
	char a[16], b[16];
	dc_template_hash(kb_mp_get(rs, "spec.template"), 0, a, sizeof(a));
	dc_template_hash(kb_mp_get(dep, "spec.template"), 0, b, sizeof(b));
	bool ours = ref && kb_mp_str(ref, "uid", &ru, &rl) && rl == ul &&
	    !memcmp(ru, uid, ul);
	kb_msg_free(rep);
	if (ours && !strcmp(a, b))
		return 0;
	int64_t coll = 0;
	kb_mp_int(dep, "status.collisionCount", &coll);
	kb_body *st =
	    ctrl_obj_setf(dep, "status.collisionCount", "I", coll + 1);
	if (st == NULL)
		return KB_ENOMEM;
	kb_warn(d->c.ctx, "replicaset name collision",
	    "deployment=%s/%.*s replicaset=%s collisionCount=%lld", ns, (int)dl,
	    dn, name, (long long)(coll + 1));
	char dname[256];
	snprintf(dname, sizeof(dname), "%.*s", (int)dl, dn);
	rc = kb_api_update(d->c.ctx, &KB_GVR_DEPLOYMENTS, ns, dname, "status",
	    st, NULL);
	/* requeue either way: the next sync computes the new name */
	return rc ? rc : KB_ECONFLICT;
}

static int create_current(struct dc *d, const msgpack_object *dep,
    struct dc_set *set, const char *ns, const char *hash)
{
	int64_t want = 1, surge, unavail;
	kb_mp_int(dep, "spec.replicas", &want);
	dc_max_surge_unavailable(dep, want, &surge, &unavail);
	int64_t revision = max_old_revision(set) + 1;
	kb_body *b = new_rs_body(dep, hash, first_replicas(dep, set), revision,
	    want + surge);
	if (b == NULL)
		return KB_ENOMEM;
	kb_msg *rep = NULL;
	int rc = kb_api_create(d->c.ctx, &KB_GVR_REPLICASETS, ns, b, &rep);
	if (rc == 0) {
		struct dc_rs *v = realloc(set->v, (set->n + 1) * sizeof(*v));
		if (v == NULL) {
			kb_msg_free(rep);
			return KB_ENOMEM;
		}
		set->v = v;
		struct dc_rs *r = &set->v[set->n++];
		r->b = kb_msg_body_ref(rep);
		r->o = kb_body_obj(r->b);
		r->replicas = 0;
		kb_mp_int(r->o, "spec.replicas", &r->replicas);
		r->revision = revision;
		r->created = ctrl_now_ms();
		set->cur = r;
		if (r->replicas > 0)
			dc_scaled_event(d, dep, r->o, 0, r->replicas);
		kb_debug(d->c.ctx, "created replicaset",
		    "namespace=%s hash=%s revision=%lld", ns, hash,
		    (long long)revision);
	} else if (rc == KB_EEXIST) {
		rc = name_taken(d, dep, ns, hash);
	}
	kb_msg_free(rep);
	return rc;
}

/* The current ReplicaSet carries the newest revision (it may be an old
 * template back again, after `kubectl rollout undo`). */
static int bump_revision(struct dc *d, const char *ns, struct dc_set *set)
{
	int64_t want = max_old_revision(set) + 1;
	if (set->cur->revision >= want)
		return 0;
	char rev[24];
	snprintf(rev, sizeof(rev), "%lld", (long long)want);
	kb_body *p = kb_mp_body("{s:{s:{s:s}}}", "metadata", "annotations",
	    DC_REVISION, rev);
	char *name = kb_mp_strdup(set->cur->o, "metadata.name");
	kb_msg *rep = NULL;
	int rc = kb_api_patch(d->c.ctx, &KB_GVR_REPLICASETS, ns, name, NULL,
	    "merge", p, &rep);
	free(name);
	if (rc == 0) {
		kb_body_unref(set->cur->b);
		set->cur->b = kb_msg_body_ref(rep);
		set->cur->o = kb_body_obj(set->cur->b);
		set->cur->revision = want;
	}
	kb_msg_free(rep);
	return rc;
}

/* The Deployment's own revision annotation follows its current ReplicaSet. */
static int sync_dep_revision(struct dc *d, kb_body **db, const char *ns,
    const char *name, const struct dc_set *set)
{
	const msgpack_object *dep = kb_body_obj(*db);
	if (set->cur == NULL || set->cur->revision == 0)
		return 0;
	char rev[24];
	snprintf(rev, sizeof(rev), "%lld", (long long)set->cur->revision);
	const msgpack_object *a = kb_mp_get(dep, "metadata.annotations");
	if (kb_mp_is(kb_mp_key(a, DC_REVISION), rev))
		return 0;
	kb_body *p = kb_mp_body("{s:{s:{s:s}}}", "metadata", "annotations",
	    DC_REVISION, rev);
	kb_msg *rep = NULL;
	int rc = kb_api_patch(d->c.ctx, &KB_GVR_DEPLOYMENTS, ns, name, NULL,
	    "merge", p, &rep);
	if (rc == 0) {
		/* status goes on top of this version, not the cached one */
		kb_body_unref(*db);
		*db = kb_msg_body_ref(rep);
	}
	kb_msg_free(rep);
	return rc == KB_ENOTFOUND ? 0 : rc;
}

int dc_sync(void *arg, const char *key)
{
	struct dc *d = arg;
	char ns[256], name[256];
	if (!ctrl_split_key(key, ns, sizeof(ns), name, sizeof(name)))
		return 0;
	kb_body *db = kb_informer_get(d->deps, ns, name);
	if (db == NULL)
		return 0; /* its ReplicaSets are the garbage collector's */
	const msgpack_object *dep = kb_body_obj(db);
	struct dc_set set;
	int rc = dc_claim(d, dep, &set);
	int64_t requeue = -1;
	char hash[16];
	int64_t coll = 0;
	kb_mp_int(dep, "status.collisionCount", &coll);
	dc_template_hash(kb_mp_get(dep, "spec.template"), coll, hash,
	    sizeof(hash));
	find_current(dep, &set, hash);
	bool paused = false;
	kb_mp_bool(dep, "spec.paused", &paused);
	if (rc == 0 && !ctrl_deleting(dep) &&
	    !ctrl_selector_empty(kb_mp_get(dep, "spec.selector"))) {
		/* Scaled (or paused): only resize, in proportion, as
		 * Kubernetes' sync(); no new ReplicaSet, no rollout step. */
		bool scale_only = paused || dc_is_scaling_event(dep, &set);
		if (set.cur == NULL && !scale_only)
			rc = create_current(d, dep, &set, ns, hash);
		if (rc == 0 && set.cur)
			rc = bump_revision(d, ns, &set);
		if (rc == 0 && scale_only)
			rc = dc_scale_proportional(d, dep, &set);
		else if (rc == 0)
			rc = dc_rollout(d, dep, &set);
		if (rc == 0)
			rc = dc_cleanup(d, dep, &set);
		if (rc == 0)
			rc = sync_dep_revision(d, &db, ns, name, &set);
	}
	int src = dc_status(d, kb_body_obj(db), &set, &requeue);
	if (rc == 0)
		rc = src;
	if (requeue > 0)
		ctrl_requeue_after(&d->c, key, requeue);
	dc_set_free(&set);
	kb_body_unref(db);
	return rc;
}
