/* plugins/ctrl-replicaset/sync.c — one ReplicaSet's reconcile: claim its
 * pods (adopt matching orphans, release those that no longer match),
 * create or delete pods to match spec.replicas, write status. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rsc.h"

static void pack_owner_ref(msgpack_packer *pk, const msgpack_object *rs)
{
	ctrl_pack_owner_ref(pk, rs, "apps/v1", "ReplicaSet");
}

static int set_owner(struct rsc *r, const msgpack_object *rs,
    const msgpack_object *pod, bool adopt, kb_msg **out)
{
	return ctrl_set_owner(r->c.ctx, &KB_GVR_PODS, rs, "apps/v1",
	    "ReplicaSet", pod, adopt, out);
}

/* --- pods --------------------------------------------------------------------------- */

static kb_body *pod_from_template(const msgpack_object *rs)
{
	const msgpack_object *tm = kb_mp_get(rs, "spec.template.metadata");
	const char *name;
	size_t len;
	char gen[300];
	if (!kb_mp_str(rs, "metadata.name", &name, &len))
		return NULL;
	snprintf(gen, sizeof(gen), "%.*s-", (int)len, name);
	static const char *const copied[] = { "labels", "annotations",
		"finalizers" };
	uint32_t nmeta = 3;
	for (size_t i = 0; i < 3; i++)
		nmeta += kb_mp_key(tm, copied[i]) != NULL;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	/* kb_mp_pack packs whole values: the maps of varying size by hand */
	msgpack_pack_map(&pk, 4);
	kb_mp_pack_cstr(&pk, "apiVersion");
	kb_mp_pack_cstr(&pk, "v1");
	kb_mp_pack_cstr(&pk, "kind");
	kb_mp_pack_cstr(&pk, "Pod");
	kb_mp_pack_cstr(&pk, "metadata");
	msgpack_pack_map(&pk, nmeta);
	kb_mp_pack_cstr(&pk, "generateName");
	kb_mp_pack_cstr(&pk, gen);
	kb_mp_pack_cstr(&pk, "namespace");
	kb_mp_pack(&pk, "o", kb_mp_get(rs, "metadata.namespace"));
	kb_mp_pack_cstr(&pk, "ownerReferences");
	msgpack_pack_array(&pk, 1);
	pack_owner_ref(&pk, rs);
	for (size_t i = 0; i < 3; i++) {
		if (kb_mp_key(tm, copied[i])) {
			kb_mp_pack_cstr(&pk, copied[i]);
			kb_mp_pack(&pk, "o", kb_mp_key(tm, copied[i]));
		}
	}
	kb_mp_pack_cstr(&pk, "spec");
	kb_mp_pack(&pk, "o", kb_mp_get(rs, "spec.template.spec"));
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

/* One call of a batch: what its reply said, read on the worker thread
 * once the batch is over. */
struct call {
	int rc;
	char *name; /* the pod; of a create, the name generated */
	char why[200];
};

static void call_done(void *arg, int rc, const kb_msg *rep)
{
	struct call *c = arg;
	c->rc = rc;
	if (rc == 0 && rep && c->name == NULL) /* a create: the new name */
		c->name = kb_mp_strdup(kb_msg_body(rep), "metadata.name");
	else if (rc && rep) {
		const char *why = "";
		kb_msg_err(rep, &why);
		snprintf(c->why, sizeof(c->why), "%s", why);
	}
}

/* Kubernetes' slowStartBatch: batches of 1, 2, 4, … creates, each sent at
 * once (at most `concurrency` in flight) and waited for; the first batch
 * with a failure ends it, so a ReplicaSet whose pods are refused (quota,
 * admission) costs a few calls, not `n`. A generated name that is taken
 * is no failure: the pod is made up for on the next sync. */
static int create_pods(struct rsc *r, const char *key, const char *ns,
    const msgpack_object *rs, int64_t n, bool *collided)
{
	struct kb_api_batch *b =
	    kb_api_batch_new(r->c.ctx, (int)r->cfg.concurrency);
	struct call *calls = calloc(n > 0 ? (size_t)n : 1, sizeof(*calls));
	int rc = b && calls ? 0 : KB_ENOMEM;
	int64_t done = 0;
	for (int64_t size = 1; rc == 0 && done < n; size *= 2) {
		if (size > n - done)
			size = n - done;
		int64_t sent = 0;
		for (int64_t i = done; i < done + size; i++, sent++) {
			kb_body *pb = pod_from_template(rs);
			int e = pb ? kb_api_batch_create(b, &KB_GVR_PODS, ns,
					 pb, call_done, &calls[i]) :
				     KB_ENOMEM;
			if (e) {
				calls[i].rc = e;
				sent++;
				break;
			}
		}
		kb_api_batch_wait(b);
		for (int64_t i = done; i < done + sent; i++) {
			if (calls[i].rc == 0 && calls[i].name) {
				rsc_expect(r, key, calls[i].name, true);
			} else if (calls[i].rc == KB_EEXIST) {
				*collided = true;
			} else if (calls[i].rc && rc == 0) {
				kb_warn(r->c.ctx, "cannot create pod",
				    "replicaset=%s err=%s message=\"%s\"", key,
				    kb_err_reason(calls[i].rc), calls[i].why);
				rc = calls[i].rc;
			}
		}
		done += sent;
	}
	kb_api_batch_free(b);
	for (int64_t i = 0; calls && i < n; i++)
		free(calls[i].name);
	free(calls);
	return rc;
}

/* All at once (at most `concurrency` in flight), as Kubernetes. */
static int delete_pods(struct rsc *r, const char *key, const char *ns,
    struct rsc_pod *pods, size_t npods, int64_t n)
{
	rsc_rank_for_deletion(pods, npods);
	if ((size_t)n > npods)
		n = (int64_t)npods;
	struct kb_api_batch *b =
	    kb_api_batch_new(r->c.ctx, (int)r->cfg.concurrency);
	struct call *calls = calloc(n > 0 ? (size_t)n : 1, sizeof(*calls));
	int rc = b && calls ? 0 : KB_ENOMEM;
	for (int64_t i = 0; rc == 0 && i < n; i++) {
		calls[i].name = kb_mp_strdup(pods[i].o, "metadata.name");
		if (calls[i].name == NULL)
			continue; /* nameless: nothing to delete */
		int e = kb_api_batch_delete(b, &KB_GVR_PODS, ns, calls[i].name,
		    NULL, call_done, &calls[i]);
		if (e)
			calls[i].rc = rc = e;
	}
	kb_api_batch_wait(b);
	for (int64_t i = 0; calls && i < n; i++) {
		int e = calls[i].rc;
		if (calls[i].name == NULL)
			continue;
		if (e == 0 || e == KB_ENOTFOUND)
			rsc_expect(r, key, calls[i].name, false);
		else if (rc == 0) {
			kb_warn(r->c.ctx, "cannot delete pod",
			    "replicaset=%s pod=%s err=%s message=\"%s\"", key,
			    calls[i].name ? calls[i].name : "?",
			    kb_err_reason(e), calls[i].why);
			rc = e;
		}
	}
	kb_api_batch_free(b);
	for (int64_t i = 0; calls && i < n; i++)
		free(calls[i].name);
	free(calls);
	return rc;
}

/* --- status --------------------------------------------------------------------------- */

static bool labels_superset(const msgpack_object *labels,
    const msgpack_object *want)
{
	if (want == NULL || want->type != MSGPACK_OBJECT_MAP)
		return true;
	for (uint32_t i = 0; i < want->via.map.size; i++) {
		const msgpack_object *k = &want->via.map.ptr[i].key;
		if (k->type != MSGPACK_OBJECT_STR)
			continue;
		const msgpack_object *v =
		    kb_mp_keyn(labels, k->via.str.ptr, k->via.str.size);
		const msgpack_object *w = &want->via.map.ptr[i].val;
		if (v == NULL || v->type != MSGPACK_OBJECT_STR ||
		    w->type != MSGPACK_OBJECT_STR ||
		    v->via.str.size != w->via.str.size ||
		    memcmp(v->via.str.ptr, w->via.str.ptr, v->via.str.size))
			return false;
	}
	return true;
}

static bool int_is(const msgpack_object *o, const char *path, int64_t want)
{
	int64_t v = 0;
	if (!kb_mp_int(o, path, &v))
		return want == 0 && strcmp(path, "status.observedGeneration");
	return v == want;
}

static int write_status(struct rsc *r, const char *ns, const char *name,
    const msgpack_object *rs, struct rsc_pod *pods, size_t n,
    int64_t *requeue_ms)
{
	int64_t min_ready = 0, gen = 0, now = ctrl_now_ms();
	kb_mp_int(rs, "spec.minReadySeconds", &min_ready);
	kb_mp_int(rs, "metadata.generation", &gen);
	const msgpack_object *tl =
	    kb_mp_get(rs, "spec.template.metadata.labels");
	int64_t full = 0, ready = 0, avail = 0;
	for (size_t i = 0; i < n; i++) {
		full += labels_superset(kb_mp_get(pods[i].o, "metadata.labels"),
		    tl);
		if (ctrl_pod_ready(pods[i].o)) {
			ready++;
			if (ctrl_pod_available(pods[i].o, min_ready, now)) {
				avail++;
			} else {
				int64_t left = ctrl_pod_ready_since(pods[i].o) +
				    min_ready * 1000 - now;
				if (left > 0 &&
				    (*requeue_ms < 0 || left < *requeue_ms))
					*requeue_ms = left + 10;
			}
		}
	}
	if (int_is(rs, "status.replicas", (int64_t)n) &&
	    int_is(rs, "status.fullyLabeledReplicas", full) &&
	    int_is(rs, "status.readyReplicas", ready) &&
	    int_is(rs, "status.availableReplicas", avail) &&
	    int_is(rs, "status.observedGeneration", gen))
		return 0;
	const msgpack_object *conds = kb_mp_get(rs, "status.conditions");
	kb_body *b = conds ?
	    ctrl_obj_setf(rs, "status", "{s:I, s:I, s:I, s:I, s:I, s:o}",
		"replicas", (int64_t)n, "fullyLabeledReplicas", full,
		"readyReplicas", ready, "availableReplicas", avail,
		"observedGeneration", gen, "conditions", conds) :
	    ctrl_obj_setf(rs, "status", "{s:I, s:I, s:I, s:I, s:I}", "replicas",
		(int64_t)n, "fullyLabeledReplicas", full, "readyReplicas",
		ready, "availableReplicas", avail, "observedGeneration", gen);
	if (b == NULL)
		return KB_ENOMEM;
	int rc = kb_api_update(r->c.ctx, &KB_GVR_REPLICASETS, ns, name,
	    "status", b, NULL);
	return rc == KB_ENOTFOUND ? 0 : rc;
}

/* --- the reconcile -------------------------------------------------------------------- */

int rsc_sync(void *arg, const char *key)
{
	struct rsc *r = arg;
	char ns[256], name[256];
	if (!ctrl_split_key(key, ns, sizeof(ns), name, sizeof(name)))
		return 0;
	kb_body *rsb = kb_informer_get(r->rs, ns, name);
	if (rsb == NULL) {
		/* Gone: its pods are the garbage collector's. */
		rsc_expect_forget(r, key);
		return 0;
	}
	const msgpack_object *rs = kb_body_obj(rsb);
	const msgpack_object *sel = kb_mp_get(rs, "spec.selector");
	bool deleting = ctrl_deleting(rs);
	/* Before looking at the cache: what it shows afterwards is at least
	 * as new as what the expectations were checked against. */
	bool met = rsc_expectations_met(r, key, ns);
	struct ctrl_objs cand;
	ctrl_candidates(r->pods, ns, rs, &cand);

	struct rsc_pod *pods = calloc(cand.n ? cand.n : 1, sizeof(*pods));
	size_t n = 0;
	int rc = pods ? 0 : KB_ENOMEM;
	for (size_t i = 0; rc == 0 && i < cand.n; i++) {
		kb_body *pb = kb_informer_get(r->pods, ns, cand.names[i]);
		if (pb == NULL)
			continue;
		const msgpack_object *pod = kb_body_obj(pb);
		bool ours = ctrl_controller_ref(pod) != NULL;
		bool match = !ctrl_selector_empty(sel) &&
		    ctrl_selector_matches(sel,
			kb_mp_get(pod, "metadata.labels"));
		kb_msg *rep = NULL;
		if (ours && !match) {
			int e = set_owner(r, rs, pod, false, NULL);
			if (e && e != KB_ENOTFOUND)
				rc = e;
			kb_body_unref(pb);
			continue;
		}
		if (!ours) {
			if (!match || deleting || ctrl_deleting(pod)) {
				kb_body_unref(pb);
				continue;
			}
			int e = set_owner(r, rs, pod, true, &rep);
			kb_body_unref(pb);
			pb = e == 0 ? kb_msg_body_ref(rep) : NULL;
			kb_msg_free(rep);
			if (e && e != KB_ENOTFOUND)
				rc = e;
			if (pb == NULL)
				continue;
			pod = kb_body_obj(pb);
		}
		if (!ctrl_pod_active(pod)) {
			kb_body_unref(pb);
			continue;
		}
		pods[n].b = pb;
		pods[n].o = pod;
		n++;
	}
	ctrl_objs_free(&cand);

	int64_t want = 1;
	kb_mp_int(rs, "spec.replicas", &want);
	bool collided = false;
	if (rc == 0 && met && !deleting) {
		int64_t diff = (int64_t)n - want;
		if (diff < 0)
			rc = create_pods(r, key, ns, rs,
			    -diff < r->cfg.burst ? -diff : r->cfg.burst,
			    &collided);
		else if (diff > 0)
			rc = delete_pods(r, key, ns, pods, n,
			    diff < r->cfg.burst ? diff : r->cfg.burst);
	}
	int64_t requeue = -1;
	int src = write_status(r, ns, name, rs, pods, n, &requeue);
	if (rc == 0)
		rc = src;
	if (collided && (requeue < 0 || requeue > 10))
		requeue = 10; /* the pods whose generated names were taken */
	if (requeue > 0)
		ctrl_requeue_after(&r->c, key, requeue);
	for (size_t i = 0; i < n; i++)
		kb_body_unref(pods[i].b);
	free(pods);
	kb_body_unref(rsb);
	return rc;
}
