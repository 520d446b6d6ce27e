/* plugins/ctrl-deployment/claim.c — the ReplicaSets a Deployment owns:
 * its controlled ones that still match its selector, plus orphans that
 * match (adopted); controlled ones that no longer match are released. */
#include <stdlib.h>
#include <string.h>

#include "dc.h"

static int by_age(const void *a, const void *b)
{
	const struct dc_rs *x = a, *y = b;
	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return x->revision < y->revision ? -1 : x->revision > y->revision;
}

static int64_t revision_of(const msgpack_object *rs)
{
	const msgpack_object *a = kb_mp_get(rs, "metadata.annotations");
	const msgpack_object *v = kb_mp_key(a, DC_REVISION);
	if (v == NULL || v->type != MSGPACK_OBJECT_STR || v->via.str.size > 18)
		return 0;
	char buf[20];
	memcpy(buf, v->via.str.ptr, v->via.str.size);
	buf[v->via.str.size] = '\0';
	return strtoll(buf, NULL, 10);
}

int dc_claim(struct dc *d, const msgpack_object *dep, struct dc_set *set)
{
	char *ns = kb_mp_strdup(dep, "metadata.namespace");
	const msgpack_object *sel = kb_mp_get(dep, "spec.selector");
	bool deleting = ctrl_deleting(dep);
	struct ctrl_objs cand;
	int asked = 1;
	memset(set, 0, sizeof(*set));
	if (ns == NULL)
		return 0;
	ctrl_candidates(d->rss, ns, dep, &cand);
	set->v = calloc(cand.n ? cand.n : 1, sizeof(*set->v));
	int rc = set->v ? 0 : KB_ENOMEM;
	for (size_t i = 0; rc == 0 && i < cand.n; i++) {
		kb_body *b = kb_informer_get(d->rss, ns, cand.names[i]);
		if (b == NULL)
			continue;
		const msgpack_object *rs = kb_body_obj(b);
		bool ours = ctrl_controller_ref(rs) != NULL;
		bool match = !ctrl_selector_empty(sel) &&
		    ctrl_selector_matches(sel,
			kb_mp_get(rs, "metadata.labels"));
		if (ours && !match) {
			int e = ctrl_set_owner(d->c.ctx, &KB_GVR_REPLICASETS,
			    dep, "apps/v1", "Deployment", rs, false, NULL);
			if (e && e != KB_ENOTFOUND)
				rc = e;
			kb_body_unref(b);
			continue;
		}
		if (!ours) {
			int e = !match || deleting || ctrl_deleting(rs) ?
			    KB_ENOTFOUND :
			    ctrl_recheck_owner(d->c.ctx, &KB_GVR_DEPLOYMENTS,
				dep, &asked);
			if (e) {
				if (e != KB_ENOTFOUND)
					rc = e;
				kb_body_unref(b);
				continue;
			}
			kb_msg *rep = NULL;
			e = ctrl_set_owner(d->c.ctx, &KB_GVR_REPLICASETS,
			    dep, "apps/v1", "Deployment", rs, true, &rep);
			kb_body_unref(b);
			b = e == 0 ? kb_msg_body_ref(rep) : NULL;
			kb_msg_free(rep);
			if (e && e != KB_ENOTFOUND)
				rc = e;
			if (b == NULL)
				continue;
			rs = kb_body_obj(b);
		}
		struct dc_rs *r = &set->v[set->n++];
		r->b = b;
		r->o = rs;
		r->replicas = 0;
		kb_mp_int(rs, "spec.replicas", &r->replicas);
		r->revision = revision_of(rs);
		r->created = ctrl_parse_time(rs, "metadata.creationTimestamp");
	}
	ctrl_objs_free(&cand);
	free(ns);
	if (set->n > 1)
		qsort(set->v, set->n, sizeof(*set->v), by_age);
	return rc;
}

void dc_set_free(struct dc_set *set)
{
	for (size_t i = 0; i < set->n; i++)
		kb_body_unref(set->v[i].b);
	free(set->v);
	memset(set, 0, sizeof(*set));
}
