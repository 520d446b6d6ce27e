/* plugins/ctrl-endpoints/sync.c — one Service's reconcile: the Endpoints
 * of the same name lists the addresses of the pods its selector picks,
 * ready ones in `addresses`, the others in `notReadyAddresses`, with the
 * service's ports resolved per pod. Written only when it differs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "epc.h"

struct collect {
	const msgpack_object *svc;
	struct ep_set *set;
	bool publish;
	int rc;
};

/* One pod (the informer's lock is held: no calls back into it). */
static void collect_pod(void *arg, const msgpack_object *pod)
{
	struct collect *c = arg;
	if (c->rc || !sp_svc_selects(c->svc, pod) || sp_pod_terminal(pod))
		return;
	struct ep_addr a;
	memset(&a, 0, sizeof(a));
	if (!sp_pod_ipv4(pod, a.ip, sizeof(a.ip)))
		return; /* no IP yet */
	if (!c->publish && ctrl_deleting(pod))
		return;
	sp_str(pod, "spec.nodeName", a.node, sizeof(a.node));
	sp_pod_hostname(pod, c->svc, a.host, sizeof(a.host));
	a.has_ref = true;
	sp_str(pod, "metadata.namespace", a.ns, sizeof(a.ns));
	sp_str(pod, "metadata.name", a.name, sizeof(a.name));
	sp_str(pod, "metadata.uid", a.uid, sizeof(a.uid));
	bool ready = c->publish || ctrl_pod_ready(pod);
	const msgpack_object *ports = kb_mp_get(c->svc, "spec.ports");
	uint32_t np = ports && ports->type == MSGPACK_OBJECT_ARRAY ?
	    ports->via.array.size :
	    0;
	if (np == 0) {
		/* only a headless service lists addresses without ports */
		if (sp_svc_headless(c->svc))
			c->rc = ep_set_pair(c->set, ep_set_addr(c->set, &a), -1,
			    ready);
		return;
	}
	long ai = -2;
	for (uint32_t i = 0; i < np && !c->rc; i++) {
		struct sp_port p;
		if (!sp_resolve_port(pod, &ports->via.array.ptr[i], &p))
			continue; /* as Kubernetes: this port skips this pod */
		if (ai == -2)
			ai = ep_set_addr(c->set, &a);
		c->rc = ep_set_pair(c->set, ai, ep_set_port(c->set, &p), ready);
	}
}

/* --- labels and annotations ------------------------------------------------------ */

static bool sbuf_eq(const msgpack_sbuffer *a, const msgpack_sbuffer *b)
{
	return a->size == b->size && !memcmp(a->data, b->data, a->size);
}

/* --- writing ---------------------------------------------------------------------- */

struct want {
	msgpack_sbuffer subsets, labels;
	bool truncated;
};

static int write_endpoints(struct epc *e, const char *ns, const char *name,
    const msgpack_object *cur, const struct want *w)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	const msgpack_object *ann =
	    cur ? kb_mp_get(cur, "metadata.annotations") : NULL;
	bool with_ann = w->truncated ||
	    (ann && ann->type == MSGPACK_OBJECT_MAP && ann->via.map.size > 0);
	if (cur == NULL) {
		msgpack_pack_map(&pk, 4);
		kb_mp_pack(&pk, "s:s, s:s", "apiVersion", "v1", "kind",
		    "Endpoints");
		kb_mp_pack_cstr(&pk, "metadata");
		msgpack_pack_map(&pk, 3 + with_ann);
		kb_mp_pack(&pk, "s:s, s:s", "name", name, "namespace", ns);
	} else {
		/* the object as it is, but metadata's labels and annotations
		 * and the subsets */
		uint32_t n = 0;
		for (uint32_t i = 0; i < cur->via.map.size; i++)
			n += !kb_mp_is(&cur->via.map.ptr[i].key, "subsets");
		msgpack_pack_map(&pk, n + 1);
		for (uint32_t i = 0; i < cur->via.map.size; i++) {
			const msgpack_object *k = &cur->via.map.ptr[i].key;
			if (kb_mp_is(k, "subsets") || kb_mp_is(k, "metadata"))
				continue;
			msgpack_pack_object(&pk, *k);
			msgpack_pack_object(&pk, cur->via.map.ptr[i].val);
		}
		const msgpack_object *meta = kb_mp_key(cur, "metadata");
		uint32_t mn = 0;
		for (uint32_t i = 0; meta && i < meta->via.map.size; i++) {
			const msgpack_object *k = &meta->via.map.ptr[i].key;
			mn += !kb_mp_is(k, "labels") &&
			    !kb_mp_is(k, "annotations");
		}
		kb_mp_pack_cstr(&pk, "metadata");
		msgpack_pack_map(&pk, mn + 1 + with_ann);
		for (uint32_t i = 0; meta && i < meta->via.map.size; i++) {
			const msgpack_object *k = &meta->via.map.ptr[i].key;
			if (kb_mp_is(k, "labels") || kb_mp_is(k, "annotations"))
				continue;
			msgpack_pack_object(&pk, *k);
			msgpack_pack_object(&pk, meta->via.map.ptr[i].val);
		}
	}
	kb_mp_pack(&pk, "s:r", "labels", w->labels.data, w->labels.size);
	if (with_ann) {
		kb_mp_pack_cstr(&pk, "annotations");
		const char *const drop[] = { EPC_OVER_CAPACITY, NULL };
		const char *const add[] = { EPC_OVER_CAPACITY, "truncated",
			NULL };
		sp_pack_strmap(&pk, ann, drop, w->truncated ? add : NULL);
	}
	kb_mp_pack(&pk, "s:r", "subsets", w->subsets.data, w->subsets.size);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	if (b == NULL)
		return KB_ENOMEM;
	kb_msg *rep = NULL;
	int rc = cur ? kb_api_update(e->c.ctx, &KB_GVR_ENDPOINTS, ns, name,
			   NULL, b, &rep) :
		       kb_api_create(e->c.ctx, &KB_GVR_ENDPOINTS, ns, b, &rep);
	if (rc == KB_EEXIST)
		rc = KB_ECONFLICT; /* the cache is behind: retry */
	if (rc && rc != KB_ECONFLICT) {
		const char *why = "";
		if (rep)
			kb_msg_err(rep, &why);
		kb_warn(e->c.ctx, "cannot write endpoints",
		    "service=%s/%s err=%s message=\"%s\"", ns, name,
		    kb_err_reason(rc), why);
	}
	kb_msg_free(rep);
	return rc;
}

/* --- left-overs ------------------------------------------------------------------------ */

struct leftover {
	struct epc *e;
	struct ctrl_objs keys;
};

static void leftover_one(void *arg, const msgpack_object *eps)
{
	struct leftover *l = arg;
	char key[520];
	/* leader-election records (old-style) are Endpoints of no service */
	if (kb_mp_get(eps,
		"metadata.annotations.control-plane\\.alpha\\."
		"kubernetes\\.io/leader") ||
	    !kb_object_key(eps, key, sizeof(key)))
		return;
	if (l->keys.n == l->keys.cap) {
		size_t cap = l->keys.cap ? l->keys.cap * 2 : 16;
		char **v = realloc(l->keys.names, cap * sizeof(*v));
		if (v == NULL)
			return;
		l->keys.names = v;
		l->keys.cap = cap;
	}
	if ((l->keys.names[l->keys.n] = strdup(key)) != NULL)
		l->keys.n++;
}

/* As Kubernetes' checkLeftoverEndpoints: every Endpoints whose Service is
 * not in the cache is queued, and its reconcile deletes it. */
static int scan_leftovers(struct epc *e)
{
	struct leftover l = { .e = e };
	kb_informer_each(e->eps, leftover_one, &l);
	for (size_t i = 0; i < l.keys.n; i++) {
		char ns[256], name[256];
		if (!ctrl_split_key(l.keys.names[i], ns, sizeof(ns), name,
			sizeof(name)))
			continue;
		kb_body *svc = kb_informer_get(e->svcs, ns, name);
		if (svc)
			kb_body_unref(svc);
		else
			ctrl_enqueue(&e->c, l.keys.names[i]);
	}
	ctrl_objs_free(&l.keys);
	return 0;
}

/* --- the reconcile ------------------------------------------------------------------ */

int epc_sync(void *arg, const char *key)
{
	struct epc *e = arg;
	char ns[256], name[256];
	if (!strcmp(key, EPC_LEFTOVER_KEY))
		return scan_leftovers(e);
	if (!ctrl_split_key(key, ns, sizeof(ns), name, sizeof(name)))
		return 0;
	kb_body *svcb = kb_informer_get(e->svcs, ns, name);
	if (svcb == NULL) {
		/* the service is gone: so are its endpoints */
		int rc = kb_api_delete(e->c.ctx, &KB_GVR_ENDPOINTS, ns, name,
		    NULL, NULL);
		return rc == KB_ENOTFOUND ? 0 : rc;
	}
	const msgpack_object *svc = kb_body_obj(svcb);
	if (!sp_svc_selects_pods(svc)) {
		/* no selector (or ExternalName): someone else's endpoints */
		kb_body_unref(svcb);
		return 0;
	}
	/* the pods are watched from the first Service that selects some */
	if (!ctrl_lazy_synced(&e->c, e->pods, 1000)) {
		kb_body_unref(svcb);
		ctrl_requeue_after(&e->c, key, 100);
		return 0;
	}
	struct ep_set set = { 0 };
	struct collect c = { .svc = svc,
		.set = &set,
		.publish = sp_svc_publish_not_ready(svc) };
	kb_informer_each(e->pods, collect_pod, &c);

	struct want w = { 0 };
	msgpack_packer pk;
	msgpack_sbuffer_init(&w.subsets);
	msgpack_sbuffer_init(&w.labels);
	msgpack_packer_init(&pk, &w.subsets, msgpack_sbuffer_write);
	int rc = c.rc ?
	    c.rc :
	    ep_set_pack(&set, &pk, (size_t)e->cfg.max_capacity, &w.truncated);
	ep_set_free(&set);
	msgpack_packer_init(&pk, &w.labels, msgpack_sbuffer_write);
	const char *const drop[] = { EPC_HEADLESS, NULL };
	const char *const add[] = { EPC_HEADLESS, "", NULL };
	sp_pack_strmap(&pk, kb_mp_get(svc, "metadata.labels"), drop,
	    sp_svc_headless(svc) ? add : NULL);

	kb_body *curb = rc ? NULL : kb_informer_get(e->eps, ns, name);
	const msgpack_object *cur = curb ? kb_body_obj(curb) : NULL;
	bool same = false;
	if (cur) {
		struct ep_set old = { 0 };
		msgpack_sbuffer a, l;
		msgpack_sbuffer_init(&a);
		msgpack_sbuffer_init(&l);
		msgpack_packer_init(&pk, &a, msgpack_sbuffer_write);
		bool cut = false;
		same = ep_set_parse(&old, kb_mp_key(cur, "subsets")) == 0 &&
		    ep_set_pack(&old, &pk, (size_t)-1, &cut) == 0 &&
		    sbuf_eq(&a, &w.subsets);
		ep_set_free(&old);
		msgpack_packer_init(&pk, &l, msgpack_sbuffer_write);
		sp_pack_strmap(&pk, kb_mp_get(cur, "metadata.labels"), NULL,
		    NULL);
		same = same && sbuf_eq(&l, &w.labels) &&
		    kb_mp_streq(cur,
			"metadata.annotations.endpoints\\.kubernetes\\.io/over-capacity",
			"truncated") == w.truncated;
		msgpack_sbuffer_destroy(&a);
		msgpack_sbuffer_destroy(&l);
	}
	if (rc == 0 && !same)
		rc = write_endpoints(e, ns, name, cur, &w);
	if (curb)
		kb_body_unref(curb);
	msgpack_sbuffer_destroy(&w.subsets);
	msgpack_sbuffer_destroy(&w.labels);
	kb_body_unref(svcb);
	return rc;
}
