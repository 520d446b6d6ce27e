/* plugins/ctrl-gc/plugin.c — the garbage collector plugin: an informer on
 * every resource, the owner index kept from their events, and which keys
 * each event makes worth a look. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc.h"

/* Events are left out, as Kubernetes' garbage collector ignores them
 * (DefaultIgnoredResources: their owners are not cascaded and they expire
 * by TTL): watching them cost a watch event per Event written — three or
 * four per pod a kubelet starts. */
const struct gc_res gc_res[] = {
	{ &KB_GVR_NAMESPACES, "", "Namespace", false },
	{ &KB_GVR_NODES, "", "Node", false },
	{ &KB_GVR_PODS, "", "Pod", true },
	{ &KB_GVR_SERVICES, "", "Service", true },
	{ &KB_GVR_ENDPOINTS, "", "Endpoints", true },
	{ &KB_GVR_CONFIGMAPS, "", "ConfigMap", true },
	{ &KB_GVR_SECRETS, "", "Secret", true },
	{ &KB_GVR_SERVICEACCOUNTS, "", "ServiceAccount", true },
	{ &KB_GVR_DEPLOYMENTS, "apps", "Deployment", true },
	{ &KB_GVR_REPLICASETS, "apps", "ReplicaSet", true },
	{ &KB_GVR_ENDPOINTSLICES, "discovery.k8s.io", "EndpointSlice", true },
	{ &KB_GVR_LEASES, "coordination.k8s.io", "Lease", true },
};
const size_t gc_nres = sizeof(gc_res) / sizeof(gc_res[0]);

static const struct kb_opt opts[] = {
	CTRL_OPTS(struct gc_cfg, ctl),
	KB_OPT_END,
};

/* The informers' handler argument: which resource. */
struct gc_src {
	struct gc *g;
	size_t i;
};

struct gc_plugin {
	struct gc g;
	struct gc_src src[CTRL_MAX_INFORMERS];
};

bool gc_key(size_t i, const msgpack_object *obj, char *buf, size_t len)
{
	const char *ns = "", *name;
	size_t nsl = 0, nl;
	if (!kb_mp_str(obj, "metadata.name", &name, &nl))
		return false;
	kb_mp_str(obj, "metadata.namespace", &ns, &nsl);
	int n =
	    snprintf(buf, len, "%zu|%.*s|%.*s", i, (int)nsl, ns, (int)nl, name);
	return n > 0 && (size_t)n < len;
}

kb_body *gc_lookup(struct gc *g, const char *key, size_t *res)
{
	char *end;
	unsigned long i = strtoul(key, &end, 10);
	if (*end != '|' || i >= gc_nres)
		return NULL;
	const char *ns = end + 1, *bar = strchr(ns, '|');
	if (bar == NULL)
		return NULL;
	char nsbuf[256];
	size_t nsl = (size_t)(bar - ns);
	if (nsl >= sizeof(nsbuf))
		return NULL;
	memcpy(nsbuf, ns, nsl);
	nsbuf[nsl] = '\0';
	*res = i;
	return kb_informer_get(g->inf[i], nsl ? nsbuf : NULL, bar + 1);
}

int gc_res_of_ref(const msgpack_object *ref)
{
	const char *av, *slash;
	size_t avl;
	if (!kb_mp_str(ref, "apiVersion", &av, &avl))
		return -1;
	slash = memchr(av, '/', avl);
	size_t gl = slash ? (size_t)(slash - av) : 0;
	for (size_t i = 0; i < gc_nres; i++)
		if (kb_mp_streq(ref, "kind", gc_res[i].kind) &&
		    strlen(gc_res[i].group) == gl &&
		    !memcmp(gc_res[i].group, av, gl))
			return (int)i;
	return -1;
}

static bool has_refs(const msgpack_object *obj)
{
	const msgpack_object *r = kb_mp_get(obj, "metadata.ownerReferences");
	return r && r->type == MSGPACK_OBJECT_ARRAY && r->via.array.size > 0;
}

static bool finalizing(const msgpack_object *obj)
{
	return ctrl_deleting(obj) &&
	    (ctrl_has_finalizer(obj, "metadata.finalizers", "orphan") ||
		ctrl_has_finalizer(obj, "metadata.finalizers",
		    "foregroundDeletion"));
}

/* The owner ref names is in the cache, the same object (uid) and not
 * being deleted: a look at its dependent would find it there and leave
 * both alone (gc_sync), and its own events will bring the dependent back
 * should it go or start deleting. */
static bool owner_settled(struct gc *g, const msgpack_object *ref, int r,
    const char *ns, size_t nsl)
{
	char nsb[256], name[256];
	const char *n;
	size_t nl;
	if (!kb_mp_str(ref, "name", &n, &nl) || nl >= sizeof(name) ||
	    nsl >= sizeof(nsb))
		return false;
	if (nl) /* msgpack-c's empty strings have no pointer */
		memcpy(name, n, nl);
	name[nl] = '\0';
	if (nsl)
		memcpy(nsb, ns, nsl);
	nsb[nsl] = '\0';
	kb_body *b = kb_informer_get(g->inf[r], gc_res[r].namespaced ? nsb : NULL,
	    name);
	const msgpack_object *o = kb_body_obj(b);
	bool settled = o && ctrl_str_eq(o, "metadata.uid", ref, "uid") &&
	    !ctrl_deleting(o);
	kb_body_unref(b);
	return settled;
}

typedef bool (*owner_fn)(struct gc *g, const msgpack_object *ref, int r,
    const char *ns, size_t nsl);

/* fn for each of obj's owner references of a kind this server serves,
 * until one says false; false then. */
static bool each_owner(struct gc *g, const msgpack_object *obj, owner_fn fn)
{
	const msgpack_object *refs = kb_mp_get(obj, "metadata.ownerReferences");
	const char *ns = "";
	size_t nsl = 0;
	kb_mp_str(obj, "metadata.namespace", &ns, &nsl);
	for (uint32_t i = 0; refs && refs->type == MSGPACK_OBJECT_ARRAY &&
	     i < refs->via.array.size;
	     i++) {
		const msgpack_object *ref = &refs->via.array.ptr[i];
		int r = gc_res_of_ref(ref);
		if (r >= 0 && !fn(g, ref, r, ns, nsl))
			return false;
	}
	return true;
}

/* Every owner of obj settled (a kind this server does not serve counts as
 * one, as gc_sync counts it). */
static bool owners_settled(struct gc *g, const msgpack_object *obj)
{
	return each_owner(g, obj, owner_settled);
}

static void enqueue_dependents(struct gc *g, const msgpack_object *obj)
{
	const char *uid;
	size_t ul, n;
	if (!kb_mp_str(obj, "metadata.uid", &uid, &ul))
		return;
	char **keys = gc_index_dependents(g->idx, uid, ul, &n);
	for (size_t i = 0; i < n; i++)
		ctrl_enqueue(&g->c, keys[i]);
	gc_keys_free(keys, n);
}

/* An owner waiting for its dependents looks again when one goes (an
 * owner settled has nothing to look at). */
static bool enqueue_owner(struct gc *g, const msgpack_object *ref, int r,
    const char *ns, size_t nsl)
{
	const char *name;
	size_t nl;
	char key[600];
	if (!kb_mp_str(ref, "name", &name, &nl) ||
	    owner_settled(g, ref, r, ns, nsl))
		return true;
	snprintf(key, sizeof(key), "%d|%.*s|%.*s", r,
	    gc_res[r].namespaced ? (int)nsl : 0, ns, (int)nl, name);
	ctrl_enqueue(&g->c, key);
	return true;
}

static void enqueue_owners(struct gc *g, const msgpack_object *obj)
{
	each_owner(g, obj, enqueue_owner);
}

static void on_add(void *arg, const msgpack_object *obj)
{
	struct gc_src *s = arg;
	char key[600];
	if (!gc_key(s->i, obj, key, sizeof(key)))
		return;
	gc_index_update(s->g->idx, key, obj, true);
	if ((has_refs(obj) && !owners_settled(s->g, obj)) || finalizing(obj))
		ctrl_enqueue(&s->g->c, key);
}

static bool same_refs(const msgpack_object *a, const msgpack_object *b)
{
	const msgpack_object *x = kb_mp_get(a, "metadata.ownerReferences");
	const msgpack_object *y = kb_mp_get(b, "metadata.ownerReferences");
	if (x == NULL || y == NULL)
		return x == y;
	return msgpack_object_equal(*x, *y);
}

static void on_update(void *arg, const msgpack_object *old,
    const msgpack_object *obj)
{
	struct gc_src *s = arg;
	char key[600];
	if (!gc_key(s->i, obj, key, sizeof(key)))
		return;
	/* Most updates (a pod's status) leave the references as they were:
	 * as Kubernetes' graph builder, such an update is no reason to look
	 * at the object or its owners again. A dependent is looked at when it
	 * is added, when its references change, when an owner goes or starts
	 * deleting in the foreground (enqueue_dependents), and at resync. */
	bool resync = old == obj;
	bool refs_changed = !resync && !same_refs(old, obj);
	if (refs_changed) {
		gc_index_update(s->g->idx, key, old, false);
		gc_index_update(s->g->idx, key, obj, true);
	}
	if (((resync || refs_changed) && has_refs(obj)) || finalizing(obj))
		ctrl_enqueue(&s->g->c, key);
	/* dependents of an owner that started deleting in the foreground */
	if (!resync && finalizing(obj) && !finalizing(old))
		enqueue_dependents(s->g, obj);
	/* refs dropped or changed: the owners it blocked may go now */
	if (refs_changed && has_refs(old))
		enqueue_owners(s->g, old);
}

static void on_del(void *arg, const msgpack_object *obj)
{
	struct gc_src *s = arg;
	char key[600];
	if (!gc_key(s->i, obj, key, sizeof(key)))
		return;
	gc_index_update(s->g->idx, key, obj, false);
	enqueue_dependents(s->g, obj);
	enqueue_owners(s->g, obj);
}

static void gc_free(struct gc_plugin *p)
{
	ctrl_fini(&p->g.c);
	gc_index_free(p->g.idx);
	kb_conf_opts_free(opts, &p->g.cfg);
	free(p);
}

static int gc_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	char err[512];
	struct gc_plugin *p = calloc(1, sizeof(*p));
	if (p == NULL)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	struct gc *g = &p->g;
	if (kb_conf_opts(conf, opts, &g->cfg, kb_instance(ctx), err,
		sizeof(err))) {
		free(p);
		return kb_fail(ctx, KB_EINVAL, "%s", err);
	}
	static const struct kb_informer_handlers h = { on_add, on_update,
		on_del };
	int rc =
	    ctrl_init(&g->c, ctx, "garbagecollector", &g->cfg.ctl, gc_sync, g);
	if (rc == 0 && (g->idx = gc_index_new()) == NULL)
		rc = KB_ENOMEM;
	for (size_t i = 0; rc == 0 && i < gc_nres; i++) {
		p->src[i] = (struct gc_src){ g, i };
		if ((g->inf[i] = ctrl_watch(&g->c, gc_res[i].gvr, &h,
			 &p->src[i])) == NULL)
			rc = KB_ENOMEM;
	}
	if (rc) {
		gc_free(p);
		return kb_fail(ctx, rc, "cannot set up the informers");
	}
	*state = p;
	return 0;
}

static int gc_start(kb_ctx *ctx, void *state)
{
	return ctrl_start(&((struct gc_plugin *)state)->g.c);
}

static void gc_stop(kb_ctx *ctx, void *state)
{
	ctrl_stop(&((struct gc_plugin *)state)->g.c);
}

static void gc_fini(void *state)
{
	gc_free(state);
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "ctrl-gc",
		.version = "0.1.0",
		.description =
		    "garbage collector: cascading deletion by ownerReferences",
		.kind = KB_KIND_CONTROLLER,
		.init = gc_init,
		.start = gc_start,
		.stop = gc_stop,
		.fini = gc_fini,
	};
	return &p;
}
