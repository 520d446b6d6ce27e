/* plugins/ctrl-endpointslice/sync.c — one Service's reconcile, as
 * Kubernetes' EndpointSlice reconciler: endpoints of the selected pods,
 * grouped by the ports they resolve to; existing slices are updated in
 * place (endpoints changed or gone), new endpoints fill slices being
 * updated anyway, then new full slices, then one existing slice with room;
 * slices left empty are deleted; a service with no endpoints keeps one
 * empty placeholder slice. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "esc.h"

struct des {
	struct es_ep ep;
	char *key; /* the packed ports: its group */
	size_t keylen;
	bool placed;
};

struct desired {
	const msgpack_object *svc;
	bool publish;
	struct des *v;
	size_t n, cap;
	int rc;
};

static void collect_pod(void *arg, const msgpack_object *pod)
{
	struct desired *d = arg;
	if (d->rc || !sp_svc_selects(d->svc, pod) || sp_pod_terminal(pod))
		return;
	struct es_ep ep;
	memset(&ep, 0, sizeof(ep));
	if (!sp_pod_ipv4(pod, ep.ip, sizeof(ep.ip)))
		return;
	sp_str(pod, "spec.nodeName", ep.node, sizeof(ep.node));
	sp_pod_hostname(pod, d->svc, ep.host, sizeof(ep.host));
	ep.has_ref = true;
	sp_str(pod, "metadata.namespace", ep.ns, sizeof(ep.ns));
	sp_str(pod, "metadata.name", ep.name, sizeof(ep.name));
	sp_str(pod, "metadata.uid", ep.uid, sizeof(ep.uid));
	ep.serving = d->publish || ctrl_pod_ready(pod);
	ep.terminating = ctrl_deleting(pod);
	ep.ready = d->publish || (ep.serving && !ep.terminating);

	struct sp_port ports[ESC_MAX_PORTS];
	size_t np = 0;
	const msgpack_object *sp = kb_mp_get(d->svc, "spec.ports");
	for (uint32_t i = 0; sp && sp->type == MSGPACK_OBJECT_ARRAY &&
	     i < sp->via.array.size && np < ESC_MAX_PORTS;
	     i++)
		if (sp_resolve_port(pod, &sp->via.array.ptr[i], &ports[np]))
			np++;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 64;
		struct des *v = realloc(d->v, cap * sizeof(*v));
		if (v == NULL) {
			d->rc = KB_ENOMEM;
			return;
		}
		d->v = v;
		d->cap = cap;
	}
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	es_ports_pack(&pk, ports, np);
	struct des *x = &d->v[d->n++];
	x->ep = ep;
	x->keylen = sb.size;
	x->key = msgpack_sbuffer_release(&sb);
	x->placed = false;
	msgpack_sbuffer_destroy(&sb);
	if (x->key == NULL) {
		d->n--;
		d->rc = KB_ENOMEM;
	}
}

static int key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
	if (al != bl)
		return al < bl ? -1 : 1;
	return memcmp(a, b, al);
}

static int des_cmp(const void *x, const void *y)
{
	const struct des *a = x, *b = y;
	int c = key_cmp(a->key, a->keylen, b->key, b->keylen);
	return c ? c : strcmp(es_ep_id(&a->ep), es_ep_id(&b->ep));
}

/* --- existing slices ------------------------------------------------------------ */

struct cur {
	char name[SP_NAME];
	kb_body *b;
	const msgpack_object *o;
	char *key;
	size_t keylen;
	struct es_ep *out; /* the endpoints it will hold */
	size_t nout;
	size_t group; /* first des of its group, or (size_t)-1 */
	bool update, del, create;
};

struct names {
	const char *ns, *svc;
	char (*v)[SP_NAME];
	size_t n, cap;
};

static void collect_slice(void *arg, const msgpack_object *s)
{
	struct names *n = arg;
	if (!kb_mp_streq(s, "metadata.namespace", n->ns) ||
	    !kb_mp_streq(s, "metadata.labels.kubernetes\\.io/service-name",
		n->svc) ||
	    !kb_mp_streq(s,
		"metadata.labels.endpointslice\\.kubernetes\\.io/managed-by",
		ESC_CONTROLLER))
		return;
	if (n->n == n->cap) {
		size_t cap = n->cap ? n->cap * 2 : 8;
		char(*v)[SP_NAME] = realloc(n->v, cap * sizeof(*v));
		if (v == NULL)
			return;
		n->v = v;
		n->cap = cap;
	}
	sp_str(s, "metadata.name", n->v[n->n], SP_NAME);
	n->n++;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

struct state {
	struct esc *e;
	const char *key, *ns, *svcname;
	const msgpack_object *svc;
	struct desired d;
	struct cur *cs;
	size_t ncs, capcs;
	msgpack_sbuffer labels;
	size_t max;
};

static bool owner_ok(const msgpack_object *slice, const msgpack_object *svc)
{
	const msgpack_object *refs =
	    kb_mp_get(slice, "metadata.ownerReferences");
	bool ctl = false;
	return refs && refs->type == MSGPACK_OBJECT_ARRAY &&
	    refs->via.array.size == 1 &&
	    kb_mp_bool(&refs->via.array.ptr[0], "controller", &ctl) && ctl &&
	    kb_mp_streq(&refs->via.array.ptr[0], "kind", "Service") &&
	    ctrl_str_eq(&refs->via.array.ptr[0], "uid", svc, "metadata.uid");
}

static bool labels_ok(struct state *st, const msgpack_object *slice)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	sp_pack_strmap(&pk, kb_mp_get(slice, "metadata.labels"), NULL, NULL);
	bool ok = !key_cmp(sb.data, sb.size, st->labels.data, st->labels.size);
	msgpack_sbuffer_destroy(&sb);
	return ok;
}

static struct cur *new_cur(struct state *st)
{
	if (st->ncs == st->capcs) {
		size_t cap = st->capcs ? st->capcs * 2 : 8;
		struct cur *v = realloc(st->cs, cap * sizeof(*v));
		if (v == NULL)
			return NULL;
		st->cs = v;
		st->capcs = cap;
	}
	struct cur *c = &st->cs[st->ncs++];
	memset(c, 0, sizeof(*c));
	c->group = (size_t)-1;
	c->out = calloc(st->max, sizeof(*c->out));
	if (c->out == NULL) {
		st->ncs--;
		return NULL;
	}
	return c;
}

/* The desired endpoint with this key and id, or NULL. */
static struct des *find_des(struct state *st, size_t group, const char *id)
{
	size_t lo = group, hi = group;
	const struct des *g = &st->d.v[group];
	while (hi < st->d.n &&
	    !key_cmp(st->d.v[hi].key, st->d.v[hi].keylen, g->key, g->keylen))
		hi++;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(es_ep_id(&st->d.v[mid].ep), id);
		if (c == 0)
			return &st->d.v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static size_t find_group(struct state *st, const char *key, size_t keylen)
{
	size_t lo = 0, hi = st->d.n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (key_cmp(st->d.v[mid].key, st->d.v[mid].keylen, key,
			keylen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < st->d.n &&
		!key_cmp(st->d.v[lo].key, st->d.v[lo].keylen, key, keylen) ?
	    lo :
	    (size_t)-1;
}

/* Step 1: keep, change or drop each existing slice's endpoints. */
static int review(struct state *st, struct cur *c)
{
	const msgpack_object *s = c->o;
	struct sp_port ports[ESC_MAX_PORTS];
	size_t np = es_ports_parse(kb_mp_key(s, "ports"), ports, ESC_MAX_PORTS);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	es_ports_pack(&pk, ports, np);
	c->keylen = sb.size;
	c->key = msgpack_sbuffer_release(&sb);
	msgpack_sbuffer_destroy(&sb);
	if (!kb_mp_streq(s, "addressType", "IPv4")) {
		c->del = true;
		return 0;
	}
	c->group = find_group(st, c->key, c->keylen);
	const msgpack_object *eps = kb_mp_key(s, "endpoints");
	uint32_t n =
	    eps && eps->type == MSGPACK_OBJECT_ARRAY ? eps->via.array.size : 0;
	for (uint32_t i = 0; i < n; i++) {
		struct es_ep cur;
		es_ep_parse(&eps->via.array.ptr[i], &cur);
		struct des *d = c->group == (size_t)-1 ?
		    NULL :
		    find_des(st, c->group, es_ep_id(&cur));
		if (d == NULL || d->placed || c->nout >= st->max) {
			c->update = true; /* gone (or twice) */
			continue;
		}
		d->placed = true;
		if (!es_ep_equal(&cur, &d->ep))
			c->update = true;
		c->out[c->nout++] = d->ep;
	}
	if (c->nout == 0)
		c->del = true;
	else if (!labels_ok(st, s) || !owner_ok(s, st->svc))
		c->update = true;
	return 0;
}

static int fuller_first(const void *x, const void *y)
{
	const struct cur *const *a = x, *const *b = y;
	return (int)(*b)->nout - (int)(*a)->nout;
}

/* Steps 2 and 3 for one group [g, end): fill slices being updated, then
 * new full slices, then one existing slice that fits the rest, else a new
 * one. */
static int place(struct state *st, size_t g, size_t end, bool creating)
{
	struct cur **upd = calloc(st->ncs + 1, sizeof(*upd));
	if (upd == NULL)
		return KB_ENOMEM;
	size_t nupd = 0;
	for (size_t i = 0; i < st->ncs; i++)
		if (st->cs[i].group == g && !st->cs[i].del &&
		    st->cs[i].update && !st->cs[i].create)
			upd[nupd++] = &st->cs[i];
	qsort(upd, nupd, sizeof(*upd), fuller_first);
	size_t left = 0;
	for (size_t i = g; i < end; i++)
		left += !st->d.v[i].placed;
	size_t next = g;
#define NEXT_UNPLACED()                                                        \
	({                                                                     \
		while (st->d.v[next].placed)                                   \
			next++;                                                \
		st->d.v[next].placed = true;                                   \
		left--;                                                        \
		&st->d.v[next];                                                \
	})
	for (size_t i = 0; i < nupd && left; i++)
		while (upd[i]->nout < st->max && left)
			upd[i]->out[upd[i]->nout++] = NEXT_UNPLACED()->ep;
	free(upd);
	while (creating && left >= st->max) {
		struct cur *c = new_cur(st);
		if (c == NULL)
			return KB_ENOMEM;
		c->create = true;
		c->group = g;
		while (c->nout < st->max && left)
			c->out[c->nout++] = NEXT_UNPLACED()->ep;
	}
	if (left == 0)
		return 0;
	/* the fullest unchanged slice of the group the rest fits in */
	struct cur *best = NULL;
	for (size_t i = 0; i < st->ncs; i++) {
		struct cur *c = &st->cs[i];
		if (c->group != g || c->del || c->update || c->create ||
		    c->nout + left > st->max)
			continue;
		if (best == NULL || c->nout > best->nout)
			best = c;
	}
	if (best == NULL) {
		if (!creating)
			return 0;
		best = new_cur(st);
		if (best == NULL)
			return KB_ENOMEM;
		best->create = true;
		best->group = g;
	} else {
		best->update = true;
	}
	while (left)
		best->out[best->nout++] = NEXT_UNPLACED()->ep;
#undef NEXT_UNPLACED
	return 0;
}

/* --- writing ---------------------------------------------------------------------- */

static void pack_meta_rest(msgpack_packer *pk, struct state *st)
{
	kb_mp_pack(pk, "s:r", "labels", st->labels.data, st->labels.size);
	kb_mp_pack_cstr(pk, "ownerReferences");
	msgpack_pack_array(pk, 1);
	ctrl_pack_owner_ref(pk, st->svc, "v1", "Service");
}

static void pack_eps(msgpack_packer *pk, const struct cur *c)
{
	kb_mp_pack_cstr(pk, "endpoints");
	msgpack_pack_array(pk, (uint32_t)c->nout);
	for (size_t i = 0; i < c->nout; i++)
		es_ep_pack(pk, &c->out[i]);
}

static const char *group_key(struct state *st, const struct cur *c, size_t *len)
{
	if (c->group != (size_t)-1) {
		*len = st->d.v[c->group].keylen;
		return st->d.v[c->group].key;
	}
	*len = 1;
	return "\x90"; /* [] */
}

static void log_err(struct state *st, const char *what, int rc, kb_msg *rep)
{
	const char *why = "";
	if (rep)
		kb_msg_err(rep, &why);
	kb_log(st->e->c.ctx, rc == KB_ECONFLICT ? KB_LOG_DEBUG : KB_LOG_WARN,
	    what, "service=%s err=%s message=\"%s\"", st->key,
	    kb_err_reason(rc), why);
}

static void track_reply(struct state *st, kb_msg *rep)
{
	char name[SP_NAME];
	int64_t gen = 1;
	sp_str(kb_msg_body(rep), "metadata.name", name, sizeof(name));
	kb_mp_int(kb_msg_body(rep), "metadata.generation", &gen);
	if (name[0])
		esc_track_wrote(st->e, st->key, name, gen);
}

static int create_slice(struct state *st, struct cur *c)
{
	char gen[SP_NAME + 2];
	size_t kl;
	const char *k = group_key(st, c, &kl);
	snprintf(gen, sizeof(gen), "%.*s-",
	    (int)(strlen(st->svcname) > 57 ? 57 : strlen(st->svcname)),
	    st->svcname);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 6);
	kb_mp_pack(&pk, "s:s, s:s, s:s", "apiVersion", "discovery.k8s.io/v1",
	    "kind", "EndpointSlice", "addressType", "IPv4");
	kb_mp_pack_cstr(&pk, "metadata");
	msgpack_pack_map(&pk, 4);
	kb_mp_pack(&pk, "s:s, s:s", "generateName", gen, "namespace", st->ns);
	pack_meta_rest(&pk, st);
	pack_eps(&pk, c);
	kb_mp_pack(&pk, "s:r", "ports", k, kl);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	if (b == NULL)
		return KB_ENOMEM;
	kb_msg *rep = NULL;
	int rc = kb_api_create(st->e->c.ctx, &KB_GVR_ENDPOINTSLICES, st->ns, b,
	    &rep);
	if (rc == 0)
		track_reply(st, rep);
	else
		log_err(st, "cannot create an endpointslice", rc, rep);
	kb_msg_free(rep);
	return rc;
}

static int update_slice(struct state *st, struct cur *c)
{
	const msgpack_object *o = c->o;
	size_t kl;
	const char *k = group_key(st, c, &kl);
	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	/* the object as it is, but labels, owner, endpoints and ports */
	uint32_t n = 0;
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *key = &o->via.map.ptr[i].key;
		n += !kb_mp_is(key, "endpoints") && !kb_mp_is(key, "ports");
	}
	msgpack_pack_map(&pk, n + 2);
	for (uint32_t i = 0; i < o->via.map.size; i++) {
		const msgpack_object *key = &o->via.map.ptr[i].key;
		if (kb_mp_is(key, "endpoints") || kb_mp_is(key, "ports"))
			continue;
		msgpack_pack_object(&pk, *key);
		if (!kb_mp_is(key, "metadata")) {
			msgpack_pack_object(&pk, o->via.map.ptr[i].val);
			continue;
		}
		const msgpack_object *m = &o->via.map.ptr[i].val;
		uint32_t mn = 0;
		for (uint32_t j = 0;
		     m->type == MSGPACK_OBJECT_MAP && j < m->via.map.size; j++)
			mn += !kb_mp_is(&m->via.map.ptr[j].key, "labels") &&
			    !kb_mp_is(&m->via.map.ptr[j].key,
				"ownerReferences");
		msgpack_pack_map(&pk, mn + 2);
		for (uint32_t j = 0;
		     m->type == MSGPACK_OBJECT_MAP && j < m->via.map.size;
		     j++) {
			const msgpack_object *mk = &m->via.map.ptr[j].key;
			if (kb_mp_is(mk, "labels") ||
			    kb_mp_is(mk, "ownerReferences"))
				continue;
			msgpack_pack_object(&pk, *mk);
			msgpack_pack_object(&pk, m->via.map.ptr[j].val);
		}
		pack_meta_rest(&pk, st);
	}
	pack_eps(&pk, c);
	kb_mp_pack(&pk, "s:r", "ports", k, kl);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	if (b == NULL)
		return KB_ENOMEM;
	kb_msg *rep = NULL;
	int rc = kb_api_update(st->e->c.ctx, &KB_GVR_ENDPOINTSLICES, st->ns,
	    c->name, NULL, b, &rep);
	if (rc == 0)
		track_reply(st, rep);
	else
		log_err(st, "cannot update an endpointslice", rc, rep);
	kb_msg_free(rep);
	return rc == KB_ENOTFOUND ? KB_ECONFLICT : rc;
}

static int delete_slice(struct state *st, struct cur *c)
{
	const char *uid;
	size_t ul;
	kb_body *opts = kb_mp_str(c->o, "metadata.uid", &uid, &ul) ?
	    ctrl_delete_opts("Background", uid, ul) :
	    NULL;
	kb_msg *rep = NULL;
	int rc = kb_api_delete(st->e->c.ctx, &KB_GVR_ENDPOINTSLICES, st->ns,
	    c->name, opts, &rep);
	if (rc == 0 || rc == KB_ENOTFOUND)
		esc_track_deleted(st->e, st->key, c->name);
	if (rc && rc != KB_ENOTFOUND)
		log_err(st, "cannot delete an endpointslice", rc, rep);
	kb_msg_free(rep);
	return rc == KB_ENOTFOUND ? 0 : rc;
}

/* A slice with no endpoints and no ports, labelled and owned right. */
static bool is_placeholder(struct state *st, const struct cur *c)
{
	const msgpack_object *eps = kb_mp_key(c->o, "endpoints");
	return kb_mp_streq(c->o, "addressType", "IPv4") &&
	    (eps == NULL || eps->type != MSGPACK_OBJECT_ARRAY ||
		eps->via.array.size == 0) &&
	    c->keylen == 1 && labels_ok(st, c->o) && owner_ok(c->o, st->svc);
}

static int reconcile(struct state *st)
{
	bool creating = !ctrl_deleting(st->svc);
	for (size_t i = 0; i < st->ncs; i++) {
		int rc = review(st, &st->cs[i]);
		if (rc)
			return rc;
	}
	for (size_t g = 0; g < st->d.n;) {
		size_t end = g;
		while (end < st->d.n &&
		    !key_cmp(st->d.v[end].key, st->d.v[end].keylen,
			st->d.v[g].key, st->d.v[g].keylen))
			end++;
		int rc = place(st, g, end, creating);
		if (rc)
			return rc;
		g = end;
	}
	if (st->d.n == 0) {
		/* no endpoints: one empty placeholder slice */
		struct cur *keep = NULL;
		for (size_t i = 0; i < st->ncs && keep == NULL; i++)
			if (is_placeholder(st, &st->cs[i]))
				keep = &st->cs[i];
		if (keep) {
			keep->del = keep->update = false;
		} else if (creating) {
			struct cur *c = new_cur(st);
			if (c == NULL)
				return KB_ENOMEM;
			c->create = true;
		}
	}
	/* creates first, then updates, then deletes: never fewer endpoints
	 * on the way than before or after */
	int first = 0;
	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < st->ncs; i++) {
			struct cur *c = &st->cs[i];
			int rc = 0;
			if (pass == 0 && c->create)
				rc = create_slice(st, c);
			else if (pass == 1 && c->update && !c->del &&
			    !c->create)
				rc = update_slice(st, c);
			else if (pass == 2 && c->del)
				rc = delete_slice(st, c);
			if (rc && !first)
				first = rc;
		}
	}
	return first;
}

int esc_sync(void *arg, const char *key)
{
	struct esc *e = arg;
	char ns[256], name[256];
	if (!ctrl_split_key(key, ns, sizeof(ns), name, sizeof(name)))
		return 0;
	kb_body *svcb = kb_informer_get(e->svcs, ns, name);
	if (svcb == NULL) {
		/* its slices go with it: the garbage collector's work */
		esc_track_forget(e, key);
		return 0;
	}
	const msgpack_object *svc = kb_body_obj(svcb);
	if (!sp_svc_selects_pods(svc)) {
		kb_body_unref(svcb);
		return 0;
	}
	/* the pods are watched from the first Service that selects some */
	if (!ctrl_lazy_synced(&e->c, e->pods, 1000)) {
		kb_body_unref(svcb);
		ctrl_requeue_after(&e->c, key, 100);
		return 0;
	}
	if (esc_track_stale(e, key, ns)) {
		kb_body_unref(svcb);
		ctrl_requeue_after(&e->c, key, 25);
		return 0;
	}
	struct state st = { .e = e,
		.key = key,
		.ns = ns,
		.svcname = name,
		.svc = svc,
		.max = (size_t)e->cfg.max_per_slice };
	st.d.svc = svc;
	st.d.publish = sp_svc_publish_not_ready(svc);
	kb_informer_each(e->pods, collect_pod, &st.d);
	int rc = st.d.rc;
	if (st.d.n)
		qsort(st.d.v, st.d.n, sizeof(*st.d.v), des_cmp);

	msgpack_sbuffer_init(&st.labels);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &st.labels, msgpack_sbuffer_write);
	const char *const drop[] = { ESC_SERVICE_NAME, ESC_MANAGED_BY,
		ESC_HEADLESS, NULL };
	const char *const add[] = { ESC_SERVICE_NAME, name, ESC_MANAGED_BY,
		ESC_CONTROLLER, sp_svc_headless(svc) ? ESC_HEADLESS : NULL, "",
		NULL };
	sp_pack_strmap(&pk, kb_mp_get(svc, "metadata.labels"), drop, add);

	struct names nm = { .ns = ns, .svc = name };
	kb_informer_each(e->slices, collect_slice, &nm);
	if (nm.n)
		qsort(nm.v, nm.n, sizeof(*nm.v), name_cmp);
	for (size_t i = 0; rc == 0 && i < nm.n; i++) {
		kb_body *b = kb_informer_get(e->slices, ns, nm.v[i]);
		if (b == NULL)
			continue;
		struct cur *c = new_cur(&st);
		if (c == NULL) {
			kb_body_unref(b);
			rc = KB_ENOMEM;
			break;
		}
		snprintf(c->name, sizeof(c->name), "%s", nm.v[i]);
		c->b = b;
		c->o = kb_body_obj(b);
	}
	free(nm.v);
	if (rc == 0)
		rc = reconcile(&st);
	for (size_t i = 0; i < st.ncs; i++) {
		if (st.cs[i].b)
			kb_body_unref(st.cs[i].b);
		free(st.cs[i].key);
		free(st.cs[i].out);
	}
	free(st.cs);
	for (size_t i = 0; i < st.d.n; i++)
		free(st.d.v[i].key);
	free(st.d.v);
	msgpack_sbuffer_destroy(&st.labels);
	kb_body_unref(svcb);
	return rc;
}
