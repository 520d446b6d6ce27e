/* plugins/ctrl-deployment/rollout.c — moving replicas from the old
 * ReplicaSets to the current one: RollingUpdate within maxSurge and
 * maxUnavailable (Kubernetes' rolling.go), Recreate (all old pods gone
 * first), and revisionHistoryLimit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"

int dc_int_or_percent(const msgpack_object *v, int64_t total, bool round_up,
    int64_t def_percent)
{
	double pct = (double)def_percent;
	if (v &&
	    (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
		v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER))
		return (int)v->via.i64;
	if (v && v->type == MSGPACK_OBJECT_STR && v->via.str.size > 0 &&
	    v->via.str.size < 16) {
		char buf[16];
		memcpy(buf, v->via.str.ptr, v->via.str.size);
		buf[v->via.str.size] = '\0';
		if (buf[v->via.str.size - 1] != '%')
			return atoi(buf);
		pct = atof(buf);
	}
	double x = pct * (double)total / 100.0;
	return (int)(round_up ? ceil(x) : floor(x));
}

void dc_max_surge_unavailable(const msgpack_object *dep, int64_t replicas,
    int64_t *surge, int64_t *unavail)
{
	const msgpack_object *ru =
	    kb_mp_get(dep, "spec.strategy.rollingUpdate");
	if (kb_mp_streq(dep, "spec.strategy.type", "Recreate")) {
		*surge = 0;
		*unavail = replicas;
		return;
	}
	*surge =
	    dc_int_or_percent(kb_mp_key(ru, "maxSurge"), replicas, true, 25);
	*unavail = dc_int_or_percent(kb_mp_key(ru, "maxUnavailable"), replicas,
	    false, 25);
	if (*surge == 0 && *unavail == 0)
		*unavail = 1;
	if (*unavail > replicas)
		*unavail = replicas;
}

/* As Kubernetes' deployment controller reports each change of a
 * ReplicaSet's size, on the Deployment. */
void dc_scaled_event(struct dc *d, const msgpack_object *dep,
    const msgpack_object *rs, int64_t from, int64_t to)
{
	const char *name = "";
	size_t len = 0;
	kb_mp_str(rs, "metadata.name", &name, &len);
	kb_event_obj(d->c.events, "apps/v1", "Deployment", dep, false,
	    "ScalingReplicaSet", "Scaled %s replica set %.*s from %lld to %lld",
	    to > from ? "up" : "down", (int)len, name, (long long)from,
	    (long long)to);
}

int dc_scale(struct dc *d, const msgpack_object *dep, struct dc_rs *rs,
    int64_t to)
{
	int64_t want = 1, surge, unavail;
	kb_mp_int(dep, "spec.replicas", &want);
	dc_max_surge_unavailable(dep, want, &surge, &unavail);
	char w[24], m[24];
	snprintf(w, sizeof(w), "%lld", (long long)want);
	snprintf(m, sizeof(m), "%lld", (long long)(want + surge));
	int64_t cur = -1;
	kb_mp_int(rs->o, "spec.replicas", &cur);
	const msgpack_object *a = kb_mp_get(rs->o, "metadata.annotations");
	if (cur == to && kb_mp_is(kb_mp_key(a, DC_DESIRED), w) &&
	    kb_mp_is(kb_mp_key(a, DC_MAX), m)) {
		rs->replicas = to;
		return 0;
	}
	kb_body *p = kb_mp_body("{s:{s:{s:s, s:s}}, s:{s:I}}", "metadata",
	    "annotations", DC_DESIRED, w, DC_MAX, m, "spec", "replicas", to);
	char *ns = kb_mp_strdup(rs->o, "metadata.namespace");
	char *name = kb_mp_strdup(rs->o, "metadata.name");
	kb_msg *rep = NULL;
	int rc = kb_api_patch(d->c.ctx, &KB_GVR_REPLICASETS, ns, name, NULL,
	    "merge", p, &rep);
	kb_debug(d->c.ctx, "scaled replicaset",
	    "replicaset=%s/%s from=%lld to=%lld rc=%s", ns, name,
	    (long long)cur, (long long)to, rc ? kb_err_reason(rc) : "ok");
	free(ns);
	free(name);
	if (rc == 0) {
		kb_body_unref(rs->b);
		rs->b = kb_msg_body_ref(rep);
		rs->o = kb_body_obj(rs->b);
		rs->replicas = to;
		if (cur != to)
			dc_scaled_event(d, dep, rs->o, cur, to);
	}
	kb_msg_free(rep);
	return rc;
}

static int64_t status_of(const struct dc_rs *rs, const char *field)
{
	int64_t v = 0;
	char path[64];
	snprintf(path, sizeof(path), "status.%s", field);
	kb_mp_int(rs->o, path, &v);
	return v;
}

static int recreate(struct dc *d, const msgpack_object *dep, struct dc_set *set,
    int64_t want)
{
	bool old_running = false;
	for (size_t i = 0; i < set->n; i++) {
		struct dc_rs *rs = &set->v[i];
		if (rs == set->cur)
			continue;
		if (rs->replicas > 0) {
			int rc = dc_scale(d, dep, rs, 0);
			if (rc)
				return rc;
		}
		if (status_of(rs, "replicas") > 0)
			old_running = true;
	}
	/* Recreate: no new pod while an old one runs. */
	if (old_running || set->cur == NULL)
		return 0;
	return dc_scale(d, dep, set->cur, want);
}

/* Kubernetes' NewRSNewReplicas and reconcileNewReplicaSet. */
static int scale_current(struct dc *d, const msgpack_object *dep,
    struct dc_set *set, int64_t want, int64_t surge)
{
	struct dc_rs *cur = set->cur;
	if (cur->replicas == want)
		return 0;
	if (cur->replicas > want)
		return dc_scale(d, dep, cur, want);
	int64_t total = 0;
	for (size_t i = 0; i < set->n; i++)
		total += set->v[i].replicas;
	if (total >= want + surge)
		return 0;
	int64_t up = want + surge - total;
	if (up > want - cur->replicas)
		up = want - cur->replicas;
	return dc_scale(d, dep, cur, cur->replicas + up);
}

/* Kubernetes' reconcileOldReplicaSets: unhealthy old replicas first, then
 * as many as keep want - maxUnavailable pods available. Old ReplicaSets
 * are in set oldest first. */
static int scale_old(struct dc *d, const msgpack_object *dep,
    struct dc_set *set, int64_t want, int64_t unavail)
{
	int64_t old = 0, all = 0;
	for (size_t i = 0; i < set->n; i++) {
		all += set->v[i].replicas;
		if (&set->v[i] != set->cur)
			old += set->v[i].replicas;
	}
	if (old == 0)
		return 0;
	int64_t min_avail = want - unavail;
	int64_t cur_unavail = set->cur ?
	    set->cur->replicas - status_of(set->cur, "availableReplicas") :
	    0;
	if (cur_unavail < 0)
		cur_unavail = 0;
	int64_t budget = all - min_avail - cur_unavail;
	if (budget <= 0)
		return 0;
	/* unhealthy replicas of old sets: no availability lost */
	for (size_t i = 0; i < set->n && budget > 0; i++) {
		struct dc_rs *rs = &set->v[i];
		if (rs == set->cur || rs->replicas == 0)
			continue;
		int64_t avail = status_of(rs, "availableReplicas");
		if (avail >= rs->replicas)
			continue;
		int64_t down = rs->replicas - avail;
		if (down > budget)
			down = budget;
		int rc = dc_scale(d, dep, rs, rs->replicas - down);
		if (rc)
			return rc;
		budget -= down;
	}
	int64_t avail_all = 0;
	for (size_t i = 0; i < set->n; i++) {
		int64_t a = status_of(&set->v[i], "availableReplicas");
		avail_all += a < set->v[i].replicas ? a : set->v[i].replicas;
	}
	int64_t down_total = avail_all - min_avail;
	for (size_t i = 0; i < set->n && down_total > 0; i++) {
		struct dc_rs *rs = &set->v[i];
		if (rs == set->cur || rs->replicas == 0)
			continue;
		int64_t down = rs->replicas < down_total ? rs->replicas :
							   down_total;
		int rc = dc_scale(d, dep, rs, rs->replicas - down);
		if (rc)
			return rc;
		down_total -= down;
	}
	return 0;
}

int dc_rollout(struct dc *d, const msgpack_object *dep, struct dc_set *set)
{
	int64_t want = 1, surge, unavail;
	kb_mp_int(dep, "spec.replicas", &want);
	if (kb_mp_streq(dep, "spec.strategy.type", "Recreate"))
		return recreate(d, dep, set, want);
	dc_max_surge_unavailable(dep, want, &surge, &unavail);
	if (set->cur) {
		int rc = scale_current(d, dep, set, want, surge);
		if (rc)
			return rc;
	}
	return scale_old(d, dep, set, want, unavail);
}

static int by_revision(const void *a, const void *b)
{
	const struct dc_rs *x = *(struct dc_rs *const *)a,
			   *y = *(struct dc_rs *const *)b;
	return x->revision < y->revision ? -1 : x->revision > y->revision;
}

int dc_cleanup(struct dc *d, const msgpack_object *dep, struct dc_set *set)
{
	int64_t limit = 10;
	kb_mp_int(dep, "spec.revisionHistoryLimit", &limit);
	struct dc_rs **idle = calloc(set->n ? set->n : 1, sizeof(*idle));
	size_t n = 0;
	if (idle == NULL)
		return KB_ENOMEM;
	for (size_t i = 0; i < set->n; i++) {
		struct dc_rs *rs = &set->v[i];
		if (rs != set->cur && rs->replicas == 0 &&
		    status_of(rs, "replicas") == 0 && !ctrl_deleting(rs->o))
			idle[n++] = rs;
	}
	qsort(idle, n, sizeof(*idle), by_revision);
	int rc = 0;
	for (size_t i = 0;
	     limit >= 0 && n > (size_t)limit && i < n - (size_t)limit; i++) {
		char *ns = kb_mp_strdup(idle[i]->o, "metadata.namespace");
		char *name = kb_mp_strdup(idle[i]->o, "metadata.name");
		const char *uid;
		size_t ul;
		kb_body *opts =
		    kb_mp_str(idle[i]->o, "metadata.uid", &uid, &ul) ?
		    ctrl_delete_opts("Background", uid, ul) :
		    NULL;
		int e = kb_api_delete(d->c.ctx, &KB_GVR_REPLICASETS, ns, name,
		    opts, NULL);
		kb_debug(d->c.ctx, "deleted old replicaset",
		    "replicaset=%s/%s rc=%s", ns, name,
		    e ? kb_err_reason(e) : "ok");
		if (e && e != KB_ENOTFOUND && rc == 0)
			rc = e;
		free(ns);
		free(name);
	}
	free(idle);
	return rc;
}

/* --- proportional scaling (Kubernetes' sync.go scale()) --------------------------- */

static int64_t annotation_int(const msgpack_object *rs, const char *key,
    bool *ok)
{
	const msgpack_object *v =
	    kb_mp_key(kb_mp_get(rs, "metadata.annotations"), key);
	char buf[24];
	*ok = false;
	if (v == NULL || v->type != MSGPACK_OBJECT_STR ||
	    v->via.str.size == 0 || v->via.str.size >= sizeof(buf))
		return 0;
	memcpy(buf, v->via.str.ptr, v->via.str.size);
	buf[v->via.str.size] = '\0';
	char *end;
	long long x = strtoll(buf, &end, 10);
	if (*end)
		return 0;
	*ok = true;
	return x;
}

bool dc_is_scaling_event(const msgpack_object *dep, const struct dc_set *set)
{
	int64_t want = 1;
	kb_mp_int(dep, "spec.replicas", &want);
	for (size_t i = 0; i < set->n; i++) {
		if (set->v[i].replicas <= 0)
			continue;
		bool ok;
		int64_t desired = annotation_int(set->v[i].o, DC_DESIRED, &ok);
		if (ok && desired != want)
			return true;
	}
	return false;
}

/* The change of one ReplicaSet's size, in proportion to its share of the
 * old total (the max-replicas annotation: what the Deployment allowed when
 * it was last scaled), as GetProportion. */
static int64_t proportion(const msgpack_object *dep, const struct dc_rs *rs,
    int64_t want, int64_t surge, int64_t to_add, int64_t added)
{
	if (rs->replicas == 0 || to_add == 0 || to_add == added)
		return 0;
	int64_t fraction;
	if (want == 0) {
		fraction = -rs->replicas;
	} else {
		bool ok;
		int64_t annotated = annotation_int(rs->o, DC_MAX, &ok);
		if (!ok || annotated <= 0) {
			annotated = 0;
			kb_mp_int(dep, "status.replicas", &annotated);
		}
		if (annotated <= 0)
			annotated = want + surge;
		double size = (double)rs->replicas * (double)(want + surge) /
		    (double)annotated;
		fraction = (int64_t)llround(size) - rs->replicas;
	}
	int64_t allowed = to_add - added;
	if (to_add > 0)
		return fraction < allowed ? fraction : allowed;
	return fraction > allowed ? fraction : allowed;
}

/* Largest first; among equals the newer first when scaling up, the older
 * first when scaling down (ReplicaSetsBySizeNewer / BySizeOlder). */
static int by_size_newer(const void *a, const void *b)
{
	const struct dc_rs *x = *(struct dc_rs *const *)a,
			   *y = *(struct dc_rs *const *)b;
	if (x->replicas != y->replicas)
		return x->replicas > y->replicas ? -1 : 1;
	return x->created > y->created ? -1 : x->created < y->created;
}

static int by_size_older(const void *a, const void *b)
{
	const struct dc_rs *x = *(struct dc_rs *const *)a,
			   *y = *(struct dc_rs *const *)b;
	if (x->replicas != y->replicas)
		return x->replicas > y->replicas ? -1 : 1;
	return x->created < y->created ? -1 : x->created > y->created;
}

int dc_scale_proportional(struct dc *d, const msgpack_object *dep,
    struct dc_set *set)
{
	int64_t want = 1, surge, unavail;
	kb_mp_int(dep, "spec.replicas", &want);
	dc_max_surge_unavailable(dep, want, &surge, &unavail);
	size_t nactive = 0;
	struct dc_rs *active = NULL;
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i].replicas > 0) {
			nactive++;
			active = &set->v[i];
		}
	/* One active ReplicaSet (or none: the newest): it takes all. */
	if (nactive <= 1) {
		struct dc_rs *rs = active;
		if (rs == NULL)
			rs = set->cur;
		if (rs == NULL && set->n)
			rs = &set->v[set->n - 1]; /* the newest */
		if (rs == NULL)
			return 0;
		return dc_scale(d, dep, rs, want);
	}
	/* The current one is complete: the old ones go. */
	bool ok;
	if (set->cur && set->cur->replicas == want &&
	    annotation_int(set->cur->o, DC_DESIRED, &ok) == want && ok &&
	    status_of(set->cur, "availableReplicas") == want) {
		for (size_t i = 0; i < set->n; i++) {
			if (&set->v[i] == set->cur || set->v[i].replicas == 0)
				continue;
			int rc = dc_scale(d, dep, &set->v[i], 0);
			if (rc)
				return rc;
		}
		return 0;
	}
	if (kb_mp_streq(dep, "spec.strategy.type", "Recreate")) {
		/* no proportions for Recreate: its rollout empties the old
		 * ones (and writes their annotations), unless paused */
		bool paused = false;
		kb_mp_bool(dep, "spec.paused", &paused);
		return paused ? 0 : dc_rollout(d, dep, set);
	}
	struct dc_rs **all = calloc(nactive, sizeof(*all));
	int64_t *size = calloc(nactive, sizeof(*size));
	if (all == NULL || size == NULL) {
		free(all);
		free(size);
		return KB_ENOMEM;
	}
	size_t n = 0;
	int64_t total = 0;
	for (size_t i = 0; i < set->n; i++)
		if (set->v[i].replicas > 0) {
			all[n++] = &set->v[i];
			total += set->v[i].replicas;
		}
	int64_t allowed = want > 0 ? want + surge : 0;
	int64_t to_add = allowed - total, added = 0;
	if (to_add > 0)
		qsort(all, n, sizeof(*all), by_size_newer);
	else if (to_add < 0)
		qsort(all, n, sizeof(*all), by_size_older);
	for (size_t i = 0; i < n; i++) {
		int64_t p = proportion(dep, all[i], want, surge, to_add, added);
		size[i] = all[i]->replicas + p;
		added += p;
	}
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		/* what rounding left over goes to the largest */
		if (i == 0 && to_add != 0) {
			size[0] += to_add - added;
			if (size[0] < 0)
				size[0] = 0;
		}
		rc = dc_scale(d, dep, all[i], size[i]);
	}
	free(all);
	free(size);
	return rc;
}
