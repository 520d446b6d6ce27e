/* plugins/scheduler/cache.c — the scheduler's view of the cluster: every
 * node, and every pod assigned (or assumed) to one, accounted on its node.
 * Pods may name a node the cache has not seen yet: it then holds a
 * placeholder that the snapshot leaves out until the Node arrives. The
 * caller holds the scheduler's lock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"

/* "ns/name" into key (truncated as snprintf would): the cache's key of
 * a pod, made on every pod update, without snprintf's format reading. */
static void pod_key(char *key, size_t size, const char *ns, const char *name)
{
	size_t nl = strlen(ns), ml = strlen(name);
	if (nl > size - 1)
		nl = size - 1;
	memcpy(key, ns, nl);
	size_t at = nl;
	if (at < size - 1)
		key[at++] = '/';
	if (ml > size - 1 - at)
		ml = size - 1 - at;
	memcpy(key + at, name, ml);
	key[at + ml] = '\0';
}

struct sp_node {
	struct kb_sched_node *node;
	bool real; /* false: a placeholder for pods bound to an unseen node */
};

struct sp_cpod {
	const struct kb_sched_pod *pod;
	char *node;
	bool assumed;
};

void sp_cache_init(struct sp_cache *c)
{
	memset(c, 0, sizeof(*c));
}

static void node_free(void *v)
{
	struct sp_node *n = v;
	kb_sched_node_free(n->node);
	free(n);
}

static void cpod_free(void *v)
{
	struct sp_cpod *p = v;
	kb_sched_pod_unref(p->pod);
	free(p->node);
	free(p);
}

void sp_cache_free(struct sp_cache *c)
{
	kb_sched_columns_free(c->cols);
	c->cols = NULL;
	kb_strmap_clear(&c->pods, cpod_free);
	kb_strmap_clear(&c->nodes, node_free);
	free(c->list);
	c->list = NULL;
}

static struct kb_sched_node *bare_node(const char *name)
{
	kb_body *b = kb_mp_body("{s:{s:s}}", "metadata", "name", name);
	struct kb_sched_node *n = b ? kb_sched_node_new(kb_body_obj(b)) : NULL;
	kb_body_unref(b);
	return n;
}

static struct sp_node *placeholder(struct sp_cache *c, const char *name)
{
	struct sp_node *n = calloc(1, sizeof(*n));
	if (n == NULL || (n->node = bare_node(name)) == NULL ||
	    kb_strmap_put(&c->nodes, name, n, NULL)) {
		if (n)
			kb_sched_node_free(n->node);
		free(n);
		return NULL;
	}
	return n;
}

/* Put `nn` where `old` is in the sorted list; false when it is not
 * there (the list is then rebuilt). */
static bool replace_in_list(struct sp_cache *c, const struct kb_sched_node *old,
    const struct kb_sched_node *nn)
{
	size_t lo = 0, hi = c->nlist;
	while (c->list && lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = strcmp(c->list[mid]->name, old->name);
		if (r == 0) {
			if (c->list[mid] != old)
				return false;
			c->list[mid] = nn;
			kb_sched_columns_set(c->cols, mid, nn);
			return true;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return false;
}

void sp_cache_node_set(struct sp_cache *c, const msgpack_object *obj)
{
	struct kb_sched_node *nn = kb_sched_node_new(obj);
	if (nn)
		sp_cache_node_put(c, nn);
}

void sp_cache_node_put(struct sp_cache *c, struct kb_sched_node *nn)
{
	struct sp_node *n = kb_strmap_get(&c->nodes, nn->name);
	if (n == NULL) {
		n = calloc(1, sizeof(*n));
		if (n == NULL || kb_strmap_put(&c->nodes, nn->name, n, NULL)) {
			free(n);
			kb_sched_node_free(nn);
			return;
		}
	} else {
		kb_sched_node_move_pods(nn, n->node);
		/* A known node changed (a heartbeat, a label): swap it in the
		 * sorted list rather than sorting every node again. */
		if (n->real && !c->dirty && !replace_in_list(c, n->node, nn))
			c->dirty = true;
		else if (!n->real)
			c->dirty = true;
		kb_sched_node_free(n->node);
		n->node = nn;
		n->real = true;
		return;
	}
	n->node = nn;
	n->real = true;
	c->dirty = true;
}

void sp_cache_node_del(struct sp_cache *c, const char *name)
{
	struct sp_node *n = kb_strmap_get(&c->nodes, name);
	if (n == NULL)
		return;
	c->dirty = true;
	if (n->node->npods) {
		/* Its pods stay accounted until they go: keep a placeholder. */
		struct kb_sched_node *ph = bare_node(name);
		if (ph) {
			kb_sched_node_move_pods(ph, n->node);
			kb_sched_node_free(n->node);
			n->node = ph;
			n->real = false;
			return;
		}
	}
	node_free(kb_strmap_del(&c->nodes, name));
}

static void tally(struct sp_cache *c, const struct kb_sched_pod *p, int sign)
{
	if (p->naffinity || p->npref_affinity || p->nanti_affinity ||
	    p->npref_anti_affinity)
		c->naffinity_pods += (size_t)sign;
	if (p->nanti_affinity)
		c->nanti_pods += (size_t)sign;
}

int sp_cache_pod_set(struct sp_cache *c, const struct kb_sched_pod *pod,
    const char *node, bool assumed)
{
	char key[512];
	pod_key(key, sizeof(key), pod->ns, pod->name);
	struct sp_cpod *cp = kb_strmap_get(&c->pods, key);
	if (cp) {
		struct sp_node *old = kb_strmap_get(&c->nodes, cp->node);
		if (old)
			kb_sched_node_remove_pod(old->node, pod->ns, pod->name);
		tally(c, cp->pod, -1);
		kb_sched_pod_unref(cp->pod);
		free(cp->node);
	} else {
		cp = calloc(1, sizeof(*cp));
		if (cp == NULL || kb_strmap_put(&c->pods, key, cp, NULL)) {
			free(cp);
			return KB_ENOMEM;
		}
	}
	cp->pod = kb_sched_pod_ref(pod);
	tally(c, pod, 1);
	cp->node = strdup(node);
	cp->assumed = assumed;
	struct sp_node *n = kb_strmap_get(&c->nodes, node);
	if (n == NULL)
		n = placeholder(c, node);
	if (n == NULL || cp->node == NULL)
		return KB_ENOMEM;
	return kb_sched_node_add_pod(n->node, pod);
}

void sp_cache_pod_del(struct sp_cache *c, const char *ns, const char *name,
    const char *node, bool only_assumed)
{
	char key[512];
	pod_key(key, sizeof(key), ns, name);
	struct sp_cpod *cp = kb_strmap_get(&c->pods, key);
	if (cp == NULL)
		return;
	if (only_assumed && (!cp->assumed || strcmp(cp->node, node)))
		return;
	kb_strmap_del(&c->pods, key);
	tally(c, cp->pod, -1);
	struct sp_node *n = kb_strmap_get(&c->nodes, cp->node);
	if (n) {
		kb_sched_node_remove_pod(n->node, ns, name);
		if (!n->real && n->node->npods == 0)
			node_free(kb_strmap_del(&c->nodes, cp->node));
	}
	cpod_free(cp);
}

struct collect {
	struct sp_cache *c;
	size_t n;
};

static void collect_one(void *arg, const char *key, void *val)
{
	struct collect *col = arg;
	struct sp_node *n = val;
	if (n->real)
		col->c->list[col->n++] = n->node;
}

static int by_name(const void *a, const void *b)
{
	const struct kb_sched_node *x = *(const struct kb_sched_node *const *)a;
	const struct kb_sched_node *y = *(const struct kb_sched_node *const *)b;
	return strcmp(x->name, y->name);
}

void sp_cache_snapshot(struct sp_cache *c, struct kb_sched_snapshot *snap)
{
	if (c->dirty || c->list == NULL) {
		free(c->list);
		c->list = calloc(c->nodes.n + 1, sizeof(*c->list));
		struct collect col = { c, 0 };
		if (c->list)
			kb_strmap_each(&c->nodes, collect_one, &col);
		c->nlist = col.n;
		qsort(c->list, c->nlist, sizeof(*c->list), by_name);
		c->dirty = false;
		/* Without columns (no memory) policies go node by node. */
		kb_sched_columns_free(c->cols);
		c->cols = c->list ? kb_sched_columns_new(c->list, c->nlist) :
				    NULL;
	}
	snap->size = sizeof(*snap);
	snap->nodes = (const struct kb_sched_node *const *)c->list;
	snap->nnodes = c->nlist;
	snap->totals = true;
	snap->naffinity_pods = c->naffinity_pods;
	snap->nanti_pods = c->nanti_pods;
	snap->cols = c->cols;
}
