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

/* The replicaset-controller's events about the ReplicaSet, as
 * Kubernetes' pod control records them. */
#define rs_event(r, rs, warn, reason, ...)                                    \
	kb_event_obj((r)->c.events, "apps/v1", "ReplicaSet", (rs), (warn),     \
	    (reason), __VA_ARGS__)

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
				rs_event(r, rs, false, "SuccessfulCreate",
				    "Created pod: %s", calls[i].name);
			} else if (calls[i].rc == KB_EEXIST) {
				*collided = true;
			} else if (calls[i].rc) {
				rs_event(r, rs, true, "FailedCreate",
				    "Error creating: %s", calls[i].why[0] ?
					calls[i].why :
					kb_strerror(calls[i].rc));
				if (rc == 0) {
					kb_warn(r->c.ctx, "cannot create pod",
					    "replicaset=%s err=%s message=\"%s\"",
					    key, kb_err_reason(calls[i].rc),
					    calls[i].why);
					rc = calls[i].rc;
				}
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
    const msgpack_object *rs, struct rsc_pod *pods, size_t npods, int64_t n)
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
		if (e == 0 || e == KB_ENOTFOUND) {
			rsc_expect(r, key, calls[i].name, false);
			if (e == 0)
				rs_event(r, rs, false, "SuccessfulDelete",
				    "Deleted pod: %s", calls[i].name);
		} else {
			rs_event(r, rs, true, "FailedDelete",
			    "Error deleting: %s",
			    calls[i].why[0] ? calls[i].why : kb_strerror(e));
			if (rc == 0) {
				kb_warn(r->c.ctx, "cannot delete pod",
				    "replicaset=%s pod=%s err=%s message=\"%s\"",
				    key, calls[i].name, kb_err_reason(e),
				    calls[i].why);
				rc = e;
			}
		}
	}
	kb_api_batch_free(b);
	for (int64_t i = 0; calls && i < n; i++)
		free(calls[i].name);
	free(calls);
	return rc;
}

/* --- the pods of a ReplicaSet: one pass over the cache ---------------------------- */

/* What status says about the active pods it controls. */
struct tally {
	int64_t n, full, ready, avail;
	int64_t requeue_ms; /* -1, or when a pod becomes available */
};

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

struct scan {
	const char *ns;
	size_t nslen;
	const char *uid;
	size_t uidlen;
	const msgpack_object *sel, *tmpl_labels;
	bool sel_empty, rs_deleting;
	int64_t min_ready, now;
	struct tally t;
	struct ctrl_objs active; /* ours, matching, active */
	struct ctrl_objs claim;  /* to release (ours, not matching) or adopt */
	int rc;
};

static bool ours(const struct scan *s, const struct rsc_podv *v)
{
	return v->ctl_uid && v->ctl_uidlen == s->uidlen &&
	    !memcmp(v->ctl_uid, s->uid, s->uidlen);
}

/* Count an active pod it controls into the status. */
static void tally_pod(struct scan *s, const struct rsc_podv *v)
{
	s->t.n++;
	s->t.full += labels_superset(v->labels, s->tmpl_labels);
	if (!v->rank.ready)
		return;
	s->t.ready++;
	if (s->min_ready <= 0) {
		s->t.avail++;
		return;
	}
	int64_t since = v->rank.ready_since;
	if (since >= 0 && since + s->min_ready * 1000 <= s->now) {
		s->t.avail++;
		return;
	}
	int64_t left = since >= 0 ? since + s->min_ready * 1000 - s->now : -1;
	if (left > 0 && (s->t.requeue_ms < 0 || left + 10 < s->t.requeue_ms))
		s->t.requeue_ms = left + 10;
}

static void push(struct scan *s, struct ctrl_objs *l, const struct rsc_podv *v)
{
	if (v->name == NULL)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **names = realloc(l->names, cap * sizeof(*names));
		if (names == NULL) {
			s->rc = KB_ENOMEM;
			return;
		}
		l->names = names;
		l->cap = cap;
	}
	if ((l->names[l->n] = strndup(v->name, v->namelen)))
		l->n++;
	else
		s->rc = KB_ENOMEM;
}

static bool matches(const struct scan *s, const struct rsc_podv *v)
{
	return !s->sel_empty && ctrl_selector_matches(s->sel, v->labels);
}

/* One cached pod and its view (under the informer's lock: no calls back
 * into it). */
static void scan_pod(void *arg, const msgpack_object *pod, const void *view)
{
	struct scan *s = arg;
	const struct rsc_podv *v = view;
	(void)pod;
	if (s->rc || v->ns == NULL || v->nslen != s->nslen ||
	    memcmp(v->ns, s->ns, s->nslen))
		return;
	if (v->ctl_ref && !ours(s, v))
		return; /* someone else's */
	bool match = matches(s, v);
	if (v->ctl_ref == NULL) {
		if (match && !s->rs_deleting && !v->deleting)
			push(s, &s->claim, v); /* an orphan to adopt */
		return;
	}
	if (!match) {
		push(s, &s->claim, v); /* ours no more: release it */
		return;
	}
	if (v->deleting || v->terminal)
		return;
	tally_pod(s, v);
	push(s, &s->active, v);
}

/* Adopt or release what the pass found; an adopted active pod counts. */
static int claim_pods(struct rsc *r, const msgpack_object *rs, struct scan *s)
{
	int rc = 0, asked = 1;
	for (size_t i = 0; rc == 0 && i < s->claim.n; i++) {
		struct rsc_podv v;
		kb_body *pb =
		    kb_informer_get_view(r->pods, s->ns, s->claim.names[i], &v);
		if (pb == NULL)
			continue;
		const msgpack_object *pod = kb_body_obj(pb);
		bool match = matches(s, &v);
		kb_msg *rep = NULL;
		int e = 0;
		if (v.ctl_ref && ours(s, &v) && !match) {
			e = set_owner(r, rs, pod, false, NULL);
		} else if (!v.ctl_ref && match && !s->rs_deleting &&
		    !v.deleting &&
		    (e = ctrl_recheck_owner(r->c.ctx, &KB_GVR_REPLICASETS, rs,
			 &asked)) == 0) {
			e = set_owner(r, rs, pod, true, &rep);
			const msgpack_object *got =
			    e == 0 && rep ? kb_msg_body(rep) : NULL;
			struct rsc_podv a;
			if (got)
				rsc_pod_view(got, &a);
			if (got && !a.deleting && !a.terminal) {
				tally_pod(s, &a);
				push(s, &s->active, &a);
				rc = s->rc;
			}
		}
		kb_msg_free(rep);
		kb_body_unref(pb);
		if (e && e != KB_ENOTFOUND)
			rc = e;
	}
	return rc;
}

/* The bodies of the active pods, to rank them for deletion. */
static int active_pods(struct rsc *r, struct scan *s, struct rsc_pod **out,
    size_t *nout)
{
	struct rsc_pod *pods = calloc(s->active.n ? s->active.n : 1,
	    sizeof(*pods));
	size_t n = 0;
	if (pods == NULL)
		return KB_ENOMEM;
	for (size_t i = 0; i < s->active.n; i++) {
		struct rsc_podv v;
		kb_body *pb = kb_informer_get_view(r->pods, s->ns,
		    s->active.names[i], &v);
		if (pb == NULL)
			continue;
		/* changed since the pass: left for the next reconcile */
		if (v.ctl_ref == NULL || !ours(s, &v) || v.deleting ||
		    v.terminal) {
			kb_body_unref(pb);
			continue;
		}
		pods[n].b = pb;
		pods[n].o = kb_body_obj(pb);
		pods[n].k = v.rank;
		n++;
	}
	*out = pods;
	*nout = n;
	return 0;
}

/* --- status --------------------------------------------------------------------------- */

static bool int_is(const msgpack_object *o, const char *path, int64_t want)
{
	int64_t v = 0;
	if (!kb_mp_int(o, path, &v))
		return want == 0 && strcmp(path, "status.observedGeneration");
	return v == want;
}

/* The status of the tally for rs (observedGeneration: gen, the version
 * reconciled), or NULL when rs has it already (*same) or on no memory. */
static kb_body *status_body(const msgpack_object *rs, const struct tally *t,
    int64_t gen, bool *same)
{
	*same = int_is(rs, "status.replicas", t->n) &&
	    int_is(rs, "status.fullyLabeledReplicas", t->full) &&
	    int_is(rs, "status.readyReplicas", t->ready) &&
	    int_is(rs, "status.availableReplicas", t->avail) &&
	    int_is(rs, "status.observedGeneration", gen);
	if (*same)
		return NULL;
	const msgpack_object *conds = kb_mp_get(rs, "status.conditions");
	return conds ?
	    ctrl_obj_setf(rs, "status", "{s:I, s:I, s:I, s:I, s:I, s:o}",
		"replicas", t->n, "fullyLabeledReplicas", t->full,
		"readyReplicas", t->ready, "availableReplicas", t->avail,
		"observedGeneration", gen, "conditions", conds) :
	    ctrl_obj_setf(rs, "status", "{s:I, s:I, s:I, s:I, s:I}", "replicas",
		t->n, "fullyLabeledReplicas", t->full, "readyReplicas",
		t->ready, "availableReplicas", t->avail, "observedGeneration",
		gen);
}

/* Write the status; on a Conflict (the cache's copy is older than the
 * store's: our own last status write, the deployment controller's
 * scale) once more on a fresh copy, as Kubernetes' updateReplicaSetStatus
 * does, rather than fail the reconcile into the queue's backoff. */
static int write_status(struct rsc *r, const char *ns, const char *name,
    const msgpack_object *rs, const struct tally *t)
{
	int64_t gen = 0;
	kb_mp_int(rs, "metadata.generation", &gen);
	kb_msg *fresh = NULL;
	int rc = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		bool same;
		kb_body *b = status_body(rs, t, gen, &same);
		if (b == NULL) {
			rc = same ? 0 : KB_ENOMEM;
			break;
		}
		rc = kb_api_update(r->c.ctx, &KB_GVR_REPLICASETS, ns, name,
		    "status", b, NULL);
		if (rc != KB_ECONFLICT || attempt == 1)
			break;
		kb_msg_free(fresh);
		fresh = NULL;
		rc = kb_api_get(r->c.ctx, &KB_GVR_REPLICASETS, ns, name, &fresh);
		if (rc != 0)
			break;
		rs = kb_msg_body(fresh);
	}
	kb_msg_free(fresh);
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
	struct scan s = { .ns = ns,
		.nslen = strlen(ns),
		.sel = kb_mp_get(rs, "spec.selector"),
		.tmpl_labels = kb_mp_get(rs, "spec.template.metadata.labels"),
		.rs_deleting = ctrl_deleting(rs),
		.now = ctrl_now_ms(),
		.t = { .requeue_ms = -1 } };
	s.sel_empty = ctrl_selector_empty(s.sel);
	kb_mp_int(rs, "spec.minReadySeconds", &s.min_ready);
	if (!kb_mp_str(rs, "metadata.uid", &s.uid, &s.uidlen)) {
		kb_body_unref(rsb);
		return 0;
	}
	/* Before looking at the cache: what it shows afterwards is at least
	 * as new as what the expectations were checked against. */
	bool met = rsc_expectations_met(r, key, ns);
	char ik[KB_INDEX_KEY_MAX];
	if (s.uidlen + 3 > sizeof(ik) || s.nslen + 3 > sizeof(ik)) {
		kb_informer_each_view(r->pods, scan_pod, &s);
	} else {
		snprintf(ik, sizeof(ik), "u/%.*s", (int)s.uidlen, s.uid);
		kb_informer_each_indexed_view(r->pods, ik, scan_pod, &s);
		snprintf(ik, sizeof(ik), "o/%s", ns);
		kb_informer_each_indexed_view(r->pods, ik, scan_pod, &s);
	}
	int rc = s.rc;
	if (rc == 0)
		rc = claim_pods(r, rs, &s);

	int64_t want = 1;
	kb_mp_int(rs, "spec.replicas", &want);
	bool collided = false;
	if (rc == 0 && met && !s.rs_deleting) {
		int64_t diff = s.t.n - want;
		if (diff < 0) {
			rc = create_pods(r, key, ns, rs,
			    -diff < r->cfg.burst ? -diff : r->cfg.burst,
			    &collided);
		} else if (diff > 0) {
			struct rsc_pod *pods = NULL;
			size_t np = 0;
			rc = active_pods(r, &s, &pods, &np);
			if (rc == 0)
				rc = delete_pods(r, key, ns, rs, pods, np,
				    diff < r->cfg.burst ? diff : r->cfg.burst);
			for (size_t i = 0; i < np; i++)
				kb_body_unref(pods[i].b);
			free(pods);
		}
	}
	int64_t requeue = s.t.requeue_ms;
	int src = write_status(r, ns, name, rs, &s.t);
	if (rc == 0)
		rc = src;
	if (collided && (requeue < 0 || requeue > 10))
		requeue = 10; /* the pods whose generated names were taken */
	if (requeue > 0)
		ctrl_requeue_after(&r->c, key, requeue);
	ctrl_objs_free(&s.active);
	ctrl_objs_free(&s.claim);
	kb_body_unref(rsb);
	return rc;
}
